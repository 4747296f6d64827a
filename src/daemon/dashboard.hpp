// The live dashboard: one HTML page (dashboard.html, built into the binary; no CDN, nothing to
// install) that follows /api/v1/stream and shows every host's boot stage as it moves.
#pragma once

#include <string_view>

namespace pxedust::daemon {

std::string_view dashboardPage();

}  // namespace pxedust::daemon

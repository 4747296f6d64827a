// What check-config says beyond "the file is valid": configured boot files that no client will
// ever be sent, and settings that take no effect (root_protocol = "nbd" without [nbd]), as a user
// would otherwise learn from a machine that does not boot as they meant.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace pxedust::daemon {

// One line each, for people: which key, which hosts, and what the client will see. Reads the
// filesystem (the HTTP root); changes nothing. `config` is linked (daemon::loadConfig).
std::vector<std::string> configWarnings(const config::Config& config);

}  // namespace pxedust::daemon

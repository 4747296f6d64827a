// TFTP's answer to a files/ error: the ERROR code (RFC 1350) sent with the error's client text.
// HTTP maps the same files::ErrorKind values to its own statuses.
#pragma once

#include "files/files.hpp"
#include "tftp/wire/packet.hpp"

namespace pxedust::tftp {

wire::ErrorCode errorCodeFor(files::ErrorKind kind);

}  // namespace pxedust::tftp

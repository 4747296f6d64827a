#include "tftp/file_error.hpp"

namespace pxedust::tftp {

wire::ErrorCode errorCodeFor(files::ErrorKind kind) {
  switch (kind) {
    case files::ErrorKind::NotFound:
    case files::ErrorKind::NameTooLong: return wire::ErrorCode::FileNotFound;
    case files::ErrorKind::OutsideRoot:
    case files::ErrorKind::PermissionDenied:
    case files::ErrorKind::NotAFile:
    case files::ErrorKind::BadName: return wire::ErrorCode::AccessViolation;
    case files::ErrorKind::OpenFailed: return wire::ErrorCode::NotDefined;
  }
  return wire::ErrorCode::NotDefined;
}

}  // namespace pxedust::tftp

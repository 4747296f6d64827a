#include "tftp/file_error.hpp"

#include <gtest/gtest.h>

using namespace pxedust;
using namespace pxedust::tftp;

// The ERROR codes TFTP clients have always been sent for each kind of file error.
TEST(TftpFileError, Codes) {
  EXPECT_EQ(errorCodeFor(files::ErrorKind::NotFound), wire::ErrorCode::FileNotFound);
  EXPECT_EQ(errorCodeFor(files::ErrorKind::NameTooLong), wire::ErrorCode::FileNotFound);
  EXPECT_EQ(errorCodeFor(files::ErrorKind::OutsideRoot), wire::ErrorCode::AccessViolation);
  EXPECT_EQ(errorCodeFor(files::ErrorKind::PermissionDenied), wire::ErrorCode::AccessViolation);
  EXPECT_EQ(errorCodeFor(files::ErrorKind::NotAFile), wire::ErrorCode::AccessViolation);
  EXPECT_EQ(errorCodeFor(files::ErrorKind::BadName), wire::ErrorCode::AccessViolation);
  EXPECT_EQ(errorCodeFor(files::ErrorKind::OpenFailed), wire::ErrorCode::NotDefined);
}

TEST(TftpFileError, FromRequestNames) {
  EXPECT_EQ(errorCodeFor(files::normalizeRequest(std::string(600, 'a')).error->kind), wire::ErrorCode::FileNotFound);
  EXPECT_EQ(errorCodeFor(files::normalizeRequest("../etc/passwd").error->kind), wire::ErrorCode::AccessViolation);
}

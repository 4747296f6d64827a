#include "blockstore/raw_image.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "blockstore/file.hpp"
#include "blockstore/pipe_chain.hpp"
#include "common/checked.hpp"

namespace pxedust::blockstore {

std::string_view extentStateName(ExtentState s) {
  switch (s) {
    case ExtentState::Base: return "base";
    case ExtentState::Data: return "data";
    case ExtentState::Zero: return "zero";
  }
  return "invalid";
}

Result<void> checkRange(const BlockDevice& dev, std::string_view op, std::uint64_t offset, std::uint64_t length) {
  if (!within(offset, length, dev.size())) {
    return Error{fmt::format("{}: {} of {} bytes at offset {} is outside the device ({} bytes)", dev.describe(), op,
                             length, offset, dev.size()),
                 ERANGE};
  }
  return {};
}

Uuid randomUuid() {
  Uuid u{};
  std::size_t got = 0;
  while (got < u.size()) {
    ssize_t n = ::getrandom(u.data() + got, u.size() - got, 0);
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  u[6] = static_cast<std::uint8_t>((u[6] & 0x0f) | 0x40);  // RFC 4122 version 4
  u[8] = static_cast<std::uint8_t>((u[8] & 0x3f) | 0x80);
  return u;
}

std::string uuidToString(const Uuid& u) {
  auto h = toHex(u);
  return fmt::format("{}-{}-{}-{}-{}", h.substr(0, 8), h.substr(8, 4), h.substr(12, 4), h.substr(16, 4), h.substr(20));
}

bool parseUuid(std::string_view text, Uuid& out) {
  if (text.size() != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' || text[23] != '-') return false;
  std::string hex;
  for (char c : text) {
    if (c != '-') hex.push_back(c);
  }
  return fromHex(hex, out);
}

std::string BaseIdentity::describe() const {
  return fmt::format("{} v{} (uuid {}, sha256 {}, {} bytes)", name, version, uuidToString(uuid),
                     toHex(sha256).substr(0, 16), size);
}

Result<std::shared_ptr<RawImage>> RawImage::open(const std::filesystem::path& path, BaseIdentity identity) {
  auto fd = openFile(path, O_RDONLY);
  if (!fd) return fd.error();
  auto size = fileSize(fd->get(), path.string());
  if (!size) return size.error();
  if (*size != identity.size) {
    return Error{fmt::format("base image {} is {} bytes but {} was recorded for {}: the file was modified",
                             path.string(), *size, identity.size, identity.describe()),
                 EINVAL};
  }
  return std::shared_ptr<RawImage>(new RawImage(path, std::move(*fd), std::move(identity)));
}

Capabilities RawImage::capabilities() const {
  Capabilities c;
  c.readOnly = true;
  c.canTrim = false;
  c.canZero = false;
  c.canFua = false;
  c.canExtents = false;
  return c;
}

std::string RawImage::describe() const { return fmt::format("base {} v{}", identity_.name, identity_.version); }

Result<void> RawImage::read(std::uint64_t offset, std::span<std::uint8_t> buf) {
  if (auto r = checkRange(*this, "read", offset, buf.size()); !r) return r;
  return preadFull(fd_.get(), buf, offset, path_.string());
}

std::optional<Result<void>> RawImage::tryRead(std::uint64_t offset, std::span<std::uint8_t> buf) {
  if (auto r = checkRange(*this, "read", offset, buf.size()); !r) return r;
  return preadNoWait(fd_.get(), buf, offset, path_.string());
}

Result<void> BlockDevice::spliceRead(std::uint64_t, std::uint64_t, PipeChain&) {
  return Error{fmt::format("{}: splice reads are not supported", describe()), ENOTSUP};
}

Result<void> RawImage::spliceRead(std::uint64_t offset, std::uint64_t length, PipeChain& out) {
  if (auto r = checkRange(*this, "read", offset, length); !r) return r;
  return out.spliceFrom(fd_.get(), offset, length, path_.string());
}

static Error readOnlyError(const RawImage& img, std::string_view op) {
  return Error{fmt::format("{}: {} refused: a base image is read-only", img.describe(), op), EROFS};
}

Result<void> RawImage::write(std::uint64_t offset, std::span<const std::uint8_t> data, WriteFlags) {
  if (auto r = checkRange(*this, "write", offset, data.size()); !r) return r;
  return readOnlyError(*this, "write");
}
Result<void> RawImage::trim(std::uint64_t offset, std::uint64_t length) {
  if (auto r = checkRange(*this, "trim", offset, length); !r) return r;
  return readOnlyError(*this, "trim");
}
Result<void> RawImage::writeZeroes(std::uint64_t offset, std::uint64_t length, WriteFlags) {
  if (auto r = checkRange(*this, "write-zeroes", offset, length); !r) return r;
  return readOnlyError(*this, "write-zeroes");
}
Result<std::vector<Extent>> RawImage::extents(std::uint64_t offset, std::uint64_t length) {
  if (auto r = checkRange(*this, "extents", offset, length); !r) return r.error();
  std::vector<Extent> out;
  if (length > 0) out.push_back({offset, length, ExtentState::Data});
  return out;
}

}  // namespace pxedust::blockstore

// RawImage: a read-only raw disk image (a base image), and the identity an overlay pins it by.
//
// A base's identity is its name, version number, a random UUID minted at import, its size and the
// SHA-256 of its content. Opening checks only what is cheap (the file's size against the recorded
// size); the full re-hash is Store::verifyImage. The UUID makes identities unique even when two
// imports have the same bytes, so "reset onto the new version" is always an explicit choice.
#pragma once

#include <array>
#include <filesystem>
#include <memory>
#include <string>

#include "blockstore/block_device.hpp"
#include "blockstore/hash.hpp"
#include "common/fd.hpp"

namespace pxedust::blockstore {

using Uuid = std::array<std::uint8_t, 16>;
Uuid randomUuid();
std::string uuidToString(const Uuid& u);
bool parseUuid(std::string_view text, Uuid& out);

struct BaseIdentity {
  std::string name;
  std::uint64_t version = 0;
  Uuid uuid{};
  Sha256Digest sha256{};
  std::uint64_t size = 0;
  friend bool operator==(const BaseIdentity&, const BaseIdentity&) = default;
  // "debian12 v2 (uuid 0f3c..., sha256 9a1b2c3d4e5f..., 1073741824 bytes)"
  [[nodiscard]] std::string describe() const;
};

class RawImage final : public BlockDevice {
 public:
  // Opens `path` read-only and checks its size against identity.size.
  static Result<std::shared_ptr<RawImage>> open(const std::filesystem::path& path, BaseIdentity identity);

  [[nodiscard]] std::uint64_t size() const override { return identity_.size; }
  [[nodiscard]] std::uint32_t logicalBlockSize() const override { return 512; }
  [[nodiscard]] Capabilities capabilities() const override;
  [[nodiscard]] std::string describe() const override;
  [[nodiscard]] const BaseIdentity& identity() const { return identity_; }
  [[nodiscard]] int fd() const { return fd_.get(); }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

  Result<void> read(std::uint64_t offset, std::span<std::uint8_t> buf) override;
  std::optional<Result<void>> tryRead(std::uint64_t offset, std::span<std::uint8_t> buf) override;
  [[nodiscard]] bool canSpliceRead() const override { return true; }
  Result<void> spliceRead(std::uint64_t offset, std::uint64_t length, PipeChain& out) override;
  Result<void> write(std::uint64_t offset, std::span<const std::uint8_t> data, WriteFlags flags = {}) override;
  Result<void> flush() override { return {}; }
  Result<void> trim(std::uint64_t offset, std::uint64_t length) override;
  Result<void> writeZeroes(std::uint64_t offset, std::uint64_t length, WriteFlags flags = {}) override;
  Result<std::vector<Extent>> extents(std::uint64_t offset, std::uint64_t length) override;

 private:
  RawImage(std::filesystem::path path, UniqueFd fd, BaseIdentity identity)
      : path_(std::move(path)), fd_(std::move(fd)), identity_(std::move(identity)) {}
  std::filesystem::path path_;
  UniqueFd fd_;
  BaseIdentity identity_;
};

}  // namespace pxedust::blockstore

// FaultyDevice: a BlockDevice decorator that fails chosen operations, for testing front-ends' error
// paths (sense data, NBD error replies) without a broken disk. Each operation kind fails when its
// countdown reaches zero (and, if `sticky`, every time after), with the configured errno.
#pragma once

#include <atomic>
#include <memory>
#include <optional>

#include "blockstore/block_device.hpp"

namespace pxedust::blockstore {

class FaultyDevice final : public BlockDevice {
 public:
  enum Op { Read, Write, Flush, Trim, Zero, Extents, kOps };
  explicit FaultyDevice(std::shared_ptr<BlockDevice> inner) : inner_(std::move(inner)) {}

  // Fails the `after`-th next call of `op` (0 = the next one) with `err`.
  void failAfter(Op op, int after, int err, bool sticky = false) {
    slots_[op].countdown.store(after);
    slots_[op].err.store(err);
    slots_[op].sticky.store(sticky);
  }
  void clear() {
    for (auto& s : slots_) s.countdown.store(-1);
  }

  [[nodiscard]] std::uint64_t size() const override { return inner_->size(); }
  [[nodiscard]] std::uint32_t logicalBlockSize() const override { return inner_->logicalBlockSize(); }
  [[nodiscard]] Capabilities capabilities() const override { return inner_->capabilities(); }
  [[nodiscard]] std::string describe() const override { return "faulty " + inner_->describe(); }

  Result<void> read(std::uint64_t o, std::span<std::uint8_t> b) override {
    if (auto e = trip(Read)) return *e;
    return inner_->read(o, b);
  }
  Result<void> write(std::uint64_t o, std::span<const std::uint8_t> d, WriteFlags f = {}) override {
    if (auto e = trip(Write)) return *e;
    return inner_->write(o, d, f);
  }
  Result<void> flush() override {
    if (auto e = trip(Flush)) return *e;
    return inner_->flush();
  }
  Result<void> trim(std::uint64_t o, std::uint64_t l) override {
    if (auto e = trip(Trim)) return *e;
    return inner_->trim(o, l);
  }
  Result<void> writeZeroes(std::uint64_t o, std::uint64_t l, WriteFlags f = {}) override {
    if (auto e = trip(Zero)) return *e;
    return inner_->writeZeroes(o, l, f);
  }
  Result<std::vector<Extent>> extents(std::uint64_t o, std::uint64_t l) override {
    if (auto e = trip(Extents)) return *e;
    return inner_->extents(o, l);
  }

 private:
  struct Slot {
    std::atomic<int> countdown{-1};
    std::atomic<int> err{0};
    std::atomic<bool> sticky{false};
  };
  std::optional<Error> trip(Op op) {
    auto& s = slots_[op];
    int c = s.countdown.load();
    if (c < 0) return std::nullopt;
    if (c > 0) {
      s.countdown.compare_exchange_strong(c, c - 1);
      return std::nullopt;
    }
    if (!s.sticky.load()) s.countdown.store(-1);
    return Error{describe() + ": injected failure", s.err.load()};
  }
  std::shared_ptr<BlockDevice> inner_;
  Slot slots_[kOps];
};

}  // namespace pxedust::blockstore

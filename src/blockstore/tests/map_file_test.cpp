#include "blockstore/map_file.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>

#include "blockstore/file.hpp"
#include "blockstore/tests/test_util.hpp"

namespace pxedust::blockstore {
namespace {

MapHeader sampleHeader() {
  MapHeader h;
  h.chunkSize = 65536;
  h.virtualSize = 10 * 65536 + 512;
  h.firstSeq = 17;
  h.snapshotCrc = 0xdeadbeef;
  h.base = testing::identityFor("debian-12.5_amd64", h.virtualSize, 3);
  return h;
}

TEST(MapFile, HeaderRoundTrips) {
  auto h = sampleHeader();
  auto bytes = encodeMapHeader(h);
  auto back = decodeMapHeader(bytes);
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(back->chunkSize, h.chunkSize);
  EXPECT_EQ(back->virtualSize, h.virtualSize);
  EXPECT_EQ(back->firstSeq, h.firstSeq);
  EXPECT_EQ(back->snapshotCrc, h.snapshotCrc);
  EXPECT_EQ(back->base, h.base);
  EXPECT_EQ(back->chunks(), 11U);
}

TEST(MapFile, HeaderRejectsEveryFlippedByte) {
  auto bytes = encodeMapHeader(sampleHeader());
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto copy = bytes;
    copy[i] ^= 0x40;
    EXPECT_FALSE(decodeMapHeader(copy)) << "flipped byte " << i;
  }
  EXPECT_FALSE(decodeMapHeader(std::span<const std::uint8_t>(bytes).first(100)));
}

TEST(MapFile, HeaderRejectsInsaneFieldsEvenWithAGoodChecksum) {
  for (auto mutate : std::vector<void (*)(MapHeader&)>{
           [](MapHeader& h) { h.chunkSize = 3000; },
           [](MapHeader& h) { h.chunkSize = 2U << 20; },
           [](MapHeader& h) { h.virtualSize = 0, h.base.size = 0; },
           [](MapHeader& h) { h.virtualSize = 1000, h.base.size = 1000; },
           [](MapHeader& h) { h.virtualSize = 1ULL << 62, h.base.size = 1ULL << 62; },
           [](MapHeader& h) { h.base.size += 512; },
           [](MapHeader& h) { h.base.name.clear(); },
       }) {
    auto h = sampleHeader();
    mutate(h);
    EXPECT_FALSE(decodeMapHeader(encodeMapHeader(h)));
  }
}

TEST(MapFile, RecordsRoundTripAndRejectCorruption) {
  MapRecord r{99, 12345, 678, ChunkState::Zero};
  auto bytes = encodeMapRecord(r);
  auto back = decodeMapRecord(bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->seq, 99U);
  EXPECT_EQ(back->first, 12345U);
  EXPECT_EQ(back->count, 678U);
  EXPECT_EQ(back->state, ChunkState::Zero);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    auto copy = bytes;
    copy[i] ^= 1;
    EXPECT_FALSE(decodeMapRecord(copy)) << "flipped byte " << i;
  }
}

class MapFileReplay : public ::testing::Test {
 protected:
  void SetUp() override {
    header_ = sampleHeader();
    path_ = dir_ / "m.map";
    ChunkMap m(header_.chunks());
    m.set(0, ChunkState::Data);
    auto fd = writeMapFile(path_, header_, m);
    ASSERT_TRUE(fd);
    fd_ = std::move(*fd);
    header_.snapshotCrc = crc32c(m.bytes());
  }
  void append(const MapRecord& r) {
    auto b = encodeMapRecord(r);
    ASSERT_TRUE(pwriteFull(fd_.get(), b, end_, "map"));
    end_ += b.size();
  }
  testing::TempDir dir_;
  MapHeader header_;
  std::filesystem::path path_;
  UniqueFd fd_;
  std::uint64_t end_ = kMapHeaderSize + 3;  // 11 chunks -> 3 snapshot bytes
};

TEST_F(MapFileReplay, AppliesRecordsInOrderAndStopsAtATornTail) {
  append({17, 1, 3, ChunkState::Data});
  append({18, 2, 1, ChunkState::Zero});
  std::uint8_t half[20] = {0x50, 0x58, 0x4a, 0x52};  // a record cut short by a crash
  ASSERT_TRUE(pwriteFull(fd_.get(), half, end_, "map"));
  auto m = loadMapFile(fd_.get(), "map");
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(m->records, 2U);
  EXPECT_EQ(m->nextSeq, 19U);
  EXPECT_EQ(m->tornBytes, 20U);
  EXPECT_EQ(m->map.get(0), ChunkState::Data);
  EXPECT_EQ(m->map.get(1), ChunkState::Data);
  EXPECT_EQ(m->map.get(2), ChunkState::Zero);
  EXPECT_EQ(m->map.get(3), ChunkState::Data);
  EXPECT_EQ(m->map.get(4), ChunkState::Base);
}

TEST_F(MapFileReplay, StopsAtAStaleSequenceOrOutOfRangeRecord) {
  append({17, 1, 1, ChunkState::Data});
  append({17, 2, 1, ChunkState::Data});  // replayed sequence number: stale
  append({19, 3, 1, ChunkState::Data});
  auto m = loadMapFile(fd_.get(), "map");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->records, 1U);
  EXPECT_EQ(m->map.get(2), ChunkState::Base);

  testing::TempDir d2;
  auto p2 = d2 / "m.map";
  auto fd2 = writeMapFile(p2, header_, ChunkMap(header_.chunks()));
  ASSERT_TRUE(fd2);
  auto rec = encodeMapRecord({17, 10, 2, ChunkState::Data});  // chunks 10..11 of 11
  ASSERT_TRUE(pwriteFull(fd2->get(), rec, kMapHeaderSize + 3, "map"));
  auto m2 = loadMapFile(fd2->get(), "map");
  ASSERT_TRUE(m2);
  EXPECT_EQ(m2->records, 0U);
  EXPECT_EQ(m2->tornBytes, kMapRecordSize);
}

TEST_F(MapFileReplay, CorruptSnapshotAndShortFilesAreErrors) {
  std::uint8_t bad = 0xff;
  ASSERT_TRUE(pwriteFull(fd_.get(), std::span<const std::uint8_t>(&bad, 1), kMapHeaderSize + 1, "map"));
  auto m = loadMapFile(fd_.get(), "map");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, EUCLEAN);
  EXPECT_NE(m.error().message.find("snapshot"), std::string::npos);
  ASSERT_EQ(::ftruncate(fd_.get(), kMapHeaderSize + 1), 0);
  m = loadMapFile(fd_.get(), "map");
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("too short"), std::string::npos);
  ASSERT_EQ(::ftruncate(fd_.get(), 100), 0);
  m = loadMapFile(fd_.get(), "map");
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("shorter than its header"), std::string::npos);
}

}  // namespace
}  // namespace pxedust::blockstore

#include "blockstore/map_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "blockstore/file.hpp"
#include "common/bytes.hpp"
#include "common/checked.hpp"

namespace pxedust::blockstore {
namespace {

constexpr std::array<std::uint8_t, 8> kMagic = {'P', 'X', 'D', 'C', 'O', 'W', '1', '\n'};
constexpr std::uint32_t kFormatVersion = 1;
constexpr std::uint32_t kRecordMagic = 0x50584A52;  // "PXJR"

void be64(ByteWriter& w, std::uint64_t v) {
  w.be32(static_cast<std::uint32_t>(v >> 32));
  w.be32(static_cast<std::uint32_t>(v));
}
std::uint64_t be64(ByteReader& r) {
  std::uint64_t hi = r.be32();
  return hi << 32 | r.be32();
}
std::uint32_t loadBe32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

Error corrupt(const std::string& what, std::string_view why) {
  return Error{fmt::format("overlay map {} is corrupt: {}", what, why), EUCLEAN};
}

}  // namespace

bool validChunkSize(std::uint64_t c) {
  return c >= kMinChunkSize && c <= kMaxChunkSize && (c & (c - 1)) == 0;
}

std::array<std::uint8_t, kMapHeaderSize> encodeMapHeader(const MapHeader& h) {
  std::array<std::uint8_t, kMapHeaderSize> out{};
  ByteWriter w(out);
  w.bytes(kMagic);
  w.be32(kFormatVersion);
  w.be32(kMapHeaderSize);
  w.be32(h.chunkSize);
  w.be32(512);
  be64(w, h.virtualSize);
  be64(w, h.firstSeq);
  be64(w, h.snapshotBytes());
  w.be32(h.snapshotCrc);
  w.be32(0);
  auto nameLen = std::min(h.base.name.size(), kMaxBaseNameLength);
  w.be16(static_cast<std::uint16_t>(nameLen));
  std::array<std::uint8_t, kMaxBaseNameLength> name{};
  std::memcpy(name.data(), h.base.name.data(), nameLen);
  w.bytes(name);
  be64(w, h.base.version);
  w.bytes(h.base.uuid);
  w.bytes(h.base.sha256);
  be64(w, h.base.size);
  auto crc = crc32c(std::span<const std::uint8_t>(out).first(kMapHeaderSize - 4));
  ByteWriter tail(std::span<std::uint8_t>(out).subspan(kMapHeaderSize - 4));
  tail.be32(crc);
  return out;
}

Result<MapHeader> decodeMapHeader(std::span<const std::uint8_t> bytes) {
  const std::string what = "header";
  if (bytes.size() < kMapHeaderSize) return corrupt(what, "shorter than 512 bytes");
  ByteReader r(bytes.first(kMapHeaderSize));
  auto magic = r.bytes(8);
  if (!std::equal(magic.begin(), magic.end(), kMagic.begin())) return corrupt(what, "bad magic (not a pxedust map)");
  auto version = r.be32();
  if (version != kFormatVersion) {
    return Error{fmt::format("overlay map format version {} is not supported (this build reads {})", version,
                             kFormatVersion),
                 ENOTSUP};
  }
  if (loadBe32(bytes.data() + kMapHeaderSize - 4) != crc32c(bytes.first(kMapHeaderSize - 4))) {
    return corrupt(what, "header checksum mismatch");
  }
  MapHeader h;
  if (r.be32() != kMapHeaderSize) return corrupt(what, "unexpected header size");
  h.chunkSize = r.be32();
  auto lbs = r.be32();
  h.virtualSize = be64(r);
  h.firstSeq = be64(r);
  auto snapBytes = be64(r);
  h.snapshotCrc = r.be32();
  r.be32();
  auto nameLen = r.be16();
  auto name = r.bytes(kMaxBaseNameLength);
  h.base.version = be64(r);
  auto uuid = r.bytes(16);
  auto sha = r.bytes(32);
  h.base.size = be64(r);
  if (!r.ok()) return corrupt(what, "truncated");
  if (!validChunkSize(h.chunkSize)) return corrupt(what, fmt::format("invalid chunk size {}", h.chunkSize));
  if (lbs != 512) return corrupt(what, fmt::format("invalid logical block size {}", lbs));
  if (h.virtualSize == 0 || h.virtualSize % 512 != 0 || h.virtualSize > kMaxVirtualSize) {
    return corrupt(what, fmt::format("invalid virtual size {}", h.virtualSize));
  }
  if (snapBytes != h.snapshotBytes()) return corrupt(what, "snapshot length does not match the chunk count");
  if (nameLen == 0 || nameLen > kMaxBaseNameLength) return corrupt(what, "invalid base name length");
  if (h.base.size != h.virtualSize) return corrupt(what, "base size differs from the virtual size");
  h.base.name.assign(reinterpret_cast<const char*>(name.data()), nameLen);
  std::copy(uuid.begin(), uuid.end(), h.base.uuid.begin());
  std::copy(sha.begin(), sha.end(), h.base.sha256.begin());
  return h;
}

std::array<std::uint8_t, kMapRecordSize> encodeMapRecord(const MapRecord& rec) {
  std::array<std::uint8_t, kMapRecordSize> out{};
  ByteWriter w(out);
  w.be32(kRecordMagic);
  w.u8(static_cast<std::uint8_t>(rec.state));
  w.u8(0);
  w.be16(0);
  be64(w, rec.seq);
  be64(w, rec.first);
  be64(w, rec.count);
  w.be32(crc32c(std::span<const std::uint8_t>(out).first(32)));
  return out;
}

std::optional<MapRecord> decodeMapRecord(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < kMapRecordSize) return std::nullopt;
  ByteReader r(bytes.first(kMapRecordSize));
  if (r.be32() != kRecordMagic) return std::nullopt;
  MapRecord rec;
  auto state = r.u8();
  if (r.u8() != 0 || r.be16() != 0) return std::nullopt;
  rec.seq = be64(r);
  rec.first = be64(r);
  rec.count = be64(r);
  if (r.be32() != crc32c(bytes.first(32))) return std::nullopt;
  if (state > 2) return std::nullopt;
  rec.state = static_cast<ChunkState>(state);
  return rec;
}

Result<LoadedMap> loadMapFile(int fd, const std::string& what) {
  auto size = fileSize(fd, what);
  if (!size) return size.error();
  if (*size < kMapHeaderSize) return corrupt(what, fmt::format("file is {} bytes, shorter than its header", *size));
  std::array<std::uint8_t, kMapHeaderSize> hdr{};
  if (auto r = preadFull(fd, hdr, 0, what); !r) return r.error();
  auto header = decodeMapHeader(hdr);
  if (!header) return Error{fmt::format("{}: {}", what, header.error().message), header.error().code};
  LoadedMap out;
  out.header = *header;
  const auto snapBytes = header->snapshotBytes();
  if (*size - kMapHeaderSize < snapBytes) {
    return corrupt(what, fmt::format("file is {} bytes, too short for its {}-byte snapshot", *size, snapBytes));
  }
  std::vector<std::uint8_t> snap(snapBytes);
  if (auto r = preadFull(fd, snap, kMapHeaderSize, what); !r) return r.error();
  if (crc32c(snap) != header->snapshotCrc) return corrupt(what, "snapshot checksum mismatch");
  auto map = ChunkMap::fromBytes(header->chunks(), snap);
  if (!map) return corrupt(what, "snapshot holds an invalid chunk state");
  out.map = std::move(*map);
  out.nextSeq = header->firstSeq;

  // Replay the journal in bounded reads.
  std::uint64_t pos = header->journalStart();
  std::vector<std::uint8_t> buf(kMapRecordSize * 4096);
  bool stop = false;
  while (!stop && *size - pos >= kMapRecordSize) {
    auto want = std::min<std::uint64_t>(buf.size(), (*size - pos) / kMapRecordSize * kMapRecordSize);
    std::span<std::uint8_t> chunk(buf.data(), want);
    if (auto r = preadFull(fd, chunk, pos, what); !r) return r.error();
    for (std::size_t off = 0; off < want; off += kMapRecordSize) {
      auto rec = decodeMapRecord(chunk.subspan(off, kMapRecordSize));
      if (!rec || rec->seq != out.nextSeq || rec->count == 0 ||
          !within<std::uint64_t>(rec->first, rec->count, out.map.chunks())) {
        stop = true;
        break;
      }
      out.map.setRange(rec->first, rec->count, rec->state);
      ++out.nextSeq;
      ++out.records;
      pos += kMapRecordSize;
    }
  }
  out.journalEnd = pos;
  out.tornBytes = *size - pos;
  return out;
}

Result<MapHeader> readMapHeader(const std::filesystem::path& path) {
  auto fd = openFile(path, O_RDONLY);
  if (!fd) return fd.error();
  std::array<std::uint8_t, kMapHeaderSize> hdr{};
  if (auto r = preadFull(fd->get(), hdr, 0, path.string()); !r) {
    return corrupt(path.string(), r.error().message);
  }
  auto h = decodeMapHeader(hdr);
  if (!h) return Error{fmt::format("{}: {}", path.string(), h.error().message), h.error().code};
  return h;
}

Result<UniqueFd> writeMapFile(const std::filesystem::path& path, MapHeader header, const ChunkMap& map) {
  header.snapshotCrc = crc32c(map.bytes());
  auto tmp = path;
  tmp += ".tmp";
  auto fd = openFile(tmp, O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (!fd) return fd.error();
  auto fail = [&](Error e) -> Result<UniqueFd> {
    ::unlink(tmp.c_str());
    return e;
  };
  auto hdr = encodeMapHeader(header);
  if (auto r = pwriteFull(fd->get(), hdr, 0, tmp.string()); !r) return fail(r.error());
  if (auto r = pwriteFull(fd->get(), map.bytes(), kMapHeaderSize, tmp.string()); !r) return fail(r.error());
  if (auto r = syncData(fd->get(), tmp.string()); !r) return fail(r.error());
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    return fail(errnoError(fmt::format("rename {} -> {} failed: {}", tmp.string(), path.string(), errnoText(err)), err));
  }
  return fd;
}

}  // namespace pxedust::blockstore

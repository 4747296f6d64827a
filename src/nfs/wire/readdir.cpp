#include "nfs/wire/readdir.hpp"

namespace pxedust::nfs::wire {

namespace {

constexpr std::size_t kTrailer = 8;  // end of list (FALSE) and eof

}  // namespace

std::size_t dirEntrySize(const DirEntry& e) {
  return 4 + 8 + xdrOpaqueSize(e.name.size()) + 8;  // value follows, fileid, name, cookie
}

std::size_t dirEntryPlusSize(const DirEntry& e) {
  return dirEntrySize(e) + postOpAttrSize(e.attr) + 4 + (e.handle.empty() ? 0 : xdrOpaqueSize(e.handle.size()));
}

DirEncoder DirEncoder::readdir(std::span<std::uint8_t> out, std::uint32_t count, const PostOpAttr& dirAttr,
                               const CookieVerf& verf) {
  return DirEncoder(out, false, count, count, dirAttr, verf);
}

DirEncoder DirEncoder::readdirplus(std::span<std::uint8_t> out, std::uint32_t dircount, std::uint32_t maxcount,
                                   const PostOpAttr& dirAttr, const CookieVerf& verf) {
  return DirEncoder(out, true, dircount, maxcount, dirAttr, verf);
}

DirEncoder::DirEncoder(std::span<std::uint8_t> out, bool plus, std::uint32_t dircount, std::uint32_t maxcount,
                       const PostOpAttr& dirAttr, const CookieVerf& verf)
    : out_(out), w_(out), plus_(plus), dircount_(dircount), maxcount_(maxcount), dirAttr_(dirAttr) {
  const std::size_t header = postOpAttrSize(dirAttr) + kCookieVerfSize;
  // The resok must hold the header and the trailer, and the buffer the status word too.
  if (header + kTrailer > maxcount_ || 4 + header + kTrailer > out.size()) {
    tooSmall_ = true;
    refused_ = true;
    return;
  }
  w_.u32(static_cast<std::uint32_t>(Nfsstat3::Ok));
  writePostOpAttr(w_, dirAttr);
  w_.fixedOpaque(verf);
  resok_ = header;
}

bool DirEncoder::add(const DirEntry& e) {
  if (refused_ || finished_) return false;
  const std::size_t dirSize = dirEntrySize(e);
  const std::size_t size = plus_ ? dirEntryPlusSize(e) : dirSize;
  // Invariants: resok_ + kTrailer <= maxcount_, and the writer has kTrailer bytes left, so neither
  // subtraction wraps.
  const bool fitsResok = size <= maxcount_ - resok_ - kTrailer;
  const bool fitsBuffer = size <= w_.remaining() - kTrailer;
  const bool fitsDir = !plus_ || (dirBytes_ <= dircount_ && dirSize <= dircount_ - dirBytes_);
  if (!fitsResok || !fitsBuffer || !fitsDir) {
    refused_ = true;
    return false;
  }
  w_.boolean(true);
  w_.u64(e.fileid);
  w_.string(e.name);
  w_.u64(e.cookie);
  if (plus_) {
    writePostOpAttr(w_, e.attr);
    w_.boolean(!e.handle.empty());
    if (!e.handle.empty()) writeFh3(w_, e.handle);
  }
  resok_ += size;
  dirBytes_ += dirSize;
  ++entries_;
  return true;
}

Nfsstat3 DirEncoder::finish(bool eof) {
  if (finished_) return status_;
  finished_ = true;
  if (tooSmall_ || (entries_ == 0 && refused_)) {
    w_ = XdrWriter(out_);
    encodeFailure(w_, plus_ ? nfsproc::kReaddirplus : nfsproc::kReaddir, Nfsstat3::TooSmall, dirAttr_);
    status_ = Nfsstat3::TooSmall;
    return status_;
  }
  w_.boolean(false);
  w_.boolean(eof && !refused_);
  resok_ += kTrailer;
  return status_;
}

}  // namespace pxedust::nfs::wire

// READDIR and READDIRPLUS results (RFC 1813 §3.3.16, §3.3.17) encoded one entry at a time under the
// byte budgets the client gave, so a server walks a directory of any size exactly once: it offers
// entries in cookie order until one does not fit, and the next call resumes from the last cookie
// that was sent.
//
// Design note. The budgets, as §3.3.16-17 define them:
//   READDIR      count     "the maximum size of the READDIR3resok structure, in bytes ... including
//                          all XDR overhead": post_op_attr dir_attributes, cookieverf, every entry3
//                          with its value-follows word, the end-of-list word and eof.
//   READDIRPLUS  maxcount  the same for READDIRPLUS3resok, attributes and handles included;
//                dircount  "the maximum number of bytes of directory information returned. This
//                          number should not include the size of the attributes and file handle
//                          portions of the result": per entry its value-follows word, fileid, name
//                          and cookie, i.e. what the entry would cost in READDIR (the BSD servers'
//                          nfsrv_readdirplus in sys/nfs/nfs_serv.c count the same 6 words plus
//                          the padded name).
// The nfsstat3 word before the resok is not part of either budget; the caller's buffer bounds it
// all. An entry is taken only if, with the 8-byte list trailer still reserved, it fits every budget;
// a refused entry writes nothing and ends the listing (later add() calls are refused too, so entries
// stay contiguous in cookie order), and eof is then sent FALSE whatever the caller says. If the very
// first entry does not fit, or the budget cannot even hold an empty list, finish() rewrites the
// reply as NFS3ERR_TOOSMALL with the directory's attributes (as Linux's nfsd does), so a client
// never gets an empty, non-eof listing it would ask for again forever. Nothing is computed as a sum
// of peer numbers: budgets only shrink by sizes the server chose (habit 3).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "nfs/wire/nfs3.hpp"

namespace pxedust::nfs::wire {

struct DirEntry {
  std::uint64_t fileid = 0;
  std::string_view name;
  std::uint64_t cookie = 0;
  PostOpAttr attr;  // READDIRPLUS only
  Fh3 handle;       // READDIRPLUS only; empty: post_op_fh3 handle_follows FALSE
};

// Bytes an entry costs against READDIR's count and READDIRPLUS's dircount.
std::size_t dirEntrySize(const DirEntry& e);
// Bytes an entry costs against READDIRPLUS's maxcount.
std::size_t dirEntryPlusSize(const DirEntry& e);

class DirEncoder {
 public:
  // READDIR: `count` from the arguments. The reply is written into `out` (status first).
  static DirEncoder readdir(std::span<std::uint8_t> out, std::uint32_t count, const PostOpAttr& dirAttr,
                            const CookieVerf& verf);
  // READDIRPLUS: `dircount` and `maxcount` from the arguments.
  static DirEncoder readdirplus(std::span<std::uint8_t> out, std::uint32_t dircount, std::uint32_t maxcount,
                                const PostOpAttr& dirAttr, const CookieVerf& verf);

  // True when the entry was written; false when it does not fit (nothing written; listing over).
  bool add(const DirEntry& e);
  // Ends the list; returns Ok (eof sent only if every entry was taken and `eof` is true) or
  // TooSmall (the reply was rewritten as that failure). written() is the reply either way.
  Nfsstat3 finish(bool eof);

  [[nodiscard]] std::span<const std::uint8_t> written() const { return w_.written(); }
  // False only when `out` cannot hold even the TOOSMALL reply (status and dir_attributes).
  [[nodiscard]] bool ok() const { return w_.ok(); }
  [[nodiscard]] std::size_t entries() const { return entries_; }
  [[nodiscard]] bool full() const { return refused_; }
  // Bytes of the resok and of directory information used so far (for tests and logs).
  [[nodiscard]] std::size_t resokBytes() const { return resok_; }
  [[nodiscard]] std::size_t dirBytes() const { return dirBytes_; }

 private:
  DirEncoder(std::span<std::uint8_t> out, bool plus, std::uint32_t dircount, std::uint32_t maxcount,
             const PostOpAttr& dirAttr, const CookieVerf& verf);

  std::span<std::uint8_t> out_;
  XdrWriter w_;
  bool plus_;
  std::uint32_t dircount_;
  std::uint32_t maxcount_;
  PostOpAttr dirAttr_;
  std::size_t resok_ = 0;     // resok bytes written so far
  std::size_t dirBytes_ = 0;  // directory information so far (READDIRPLUS)
  std::size_t entries_ = 0;
  bool refused_ = false;
  bool tooSmall_ = false;     // not even an empty list fits
  bool finished_ = false;
  Nfsstat3 status_ = Nfsstat3::Ok;  // finish()'s answer, repeated if it is called again
};

}  // namespace pxedust::nfs::wire

// ImageFs: a read-only view of the ext2/3/4 file system inside a base image file, for the NFSv3
// export of issue 19. The file system is read with libext2fs (the library e2fsprogs itself uses),
// so no loop device, no mount and no root privilege is needed.
//
// Design note. A base image is imported clean and never changes afterwards (a new build is a new
// version, store.hpp), so everything here may be computed once and cached, and a directory cookie
// or a file's block map stays valid for the life of the image.
//   - open() refuses a file system whose journal needs recovery (replaying it would mean writing,
//     and reading without replaying it would show a stale tree), one marked as having errors, one
//     not cleanly unmounted, and one whose image file is shorter than the file system says: run
//     `e2fsck -f` on the image before importing it. Incompatible features libext2fs does not know
//     are refused by libext2fs itself. Nothing is ever written to the image (no EXT2_FLAG_RW).
//   - Inode numbers come from clients (NFS file handles): the reserved inodes (journal, resize,
//     ...) and unused ones answer ESTALE like out-of-range numbers, so no client reads the journal.
//   - On-disk numbers are never trusted: block runs are checked against the file system's size,
//     directory records against their block, lengths against their buffers. A corrupt image
//     answers EIO with a message naming the inode, never a crash (libext2fs also verifies the
//     metadata_csum checksums of group descriptors, inodes, extent blocks and directory blocks).
//   - Symlinks are never followed: readlink() returns the target, lookup() returns the link.
//
// Directory cookies (readdir) are the byte position just past an entry in the directory's data
// (block index * block size + offset of the next record), the scheme ext4's own readdir uses for
// non-hashed directories. A position is the same in every process that opens the same image, so a
// client resumes after a server restart. Directories are read block by block in logical order even
// when they are hashed (dir_index): every leaf entry of an htree lives in exactly one data block,
// and the index blocks look like empty records, so each entry is seen exactly once. Resuming seeks
// straight to the block the cookie names. Cookie 0 is the start; "." and ".." are listed.
//
// Errors carry an errno in Error::code for the NFS layer to map:
//   ESTALE  inode number out of range, reserved, or not in use      ENOENT   lookup found no entry
//   ENOTDIR lookup/readdir of a non-directory                       EISDIR   read() of a directory
//   EINVAL  read() of a non-regular file, readlink() of a non-symlink, an invalid name
//   ENAMETOOLONG a name over 255 bytes                               EACCES   an encrypted inode
//   EIO     corrupt metadata or an I/O error on the image file
//
// Threads. libext2fs is not thread-safe, so every call into it happens under one mutex per
// ImageFs; the methods may be called from any number of threads. read() holds that mutex only to
// map a file to its physical block runs once (an extent walk, cached per inode); the data itself
// comes from pread() on the image's own descriptor with no lock held. readdir() reads a block under
// the lock and calls the visitor without it, so a visitor may call getattr() (READDIRPLUS).
// lookup() in a directory of more than one block builds a name index of it once (kept with its
// cached block map), since libext2fs offers only a linear scan.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/fd.hpp"
#include "common/result.hpp"

struct struct_ext2_filsys;  // libext2fs's file system handle (ext2_filsys), kept out of this header

namespace pxedust::imagefs {

using Ino = std::uint32_t;  // ext2's inode numbers are 32 bits
inline constexpr Ino kRootIno = 2;
inline constexpr std::size_t kMaxNameLength = 255;

enum class FileType : std::uint8_t { Unknown = 0, Regular, Directory, Symlink, CharDevice, BlockDevice, Fifo, Socket };
std::string_view fileTypeName(FileType t);

struct Timestamp {
  std::int64_t seconds = 0;      // since the epoch; ext4's extra epoch bits give dates past 2038
  std::uint32_t nanoseconds = 0;  // 0 when the inode has no extra timestamp fields (128-byte inodes)
  friend bool operator==(const Timestamp&, const Timestamp&) = default;
};

struct Attr {
  Ino ino = 0;
  std::uint32_t generation = 0;  // i_generation: the NFS handle carries it
  FileType type = FileType::Unknown;
  std::uint32_t mode = 0;        // permission bits incl. setuid/setgid/sticky (07777)
  std::uint32_t nlink = 0;
  std::uint32_t uid = 0;         // all 32 bits (low 16 + high 16)
  std::uint32_t gid = 0;
  std::uint64_t size = 0;        // bytes (i_size with i_size_high)
  std::uint64_t usedBytes = 0;   // space allocated, from i_blocks (HUGE_FILE respected), xattr block included
  std::uint32_t rdevMajor = 0;   // character and block devices only
  std::uint32_t rdevMinor = 0;
  Timestamp atime, mtime, ctime;
};

struct DirEntry {
  std::string_view name;  // valid only during the visitor call
  Ino ino = 0;
  FileType type = FileType::Unknown;  // from the entry (filetype feature); Unknown without it
  std::uint64_t cookie = 0;           // pass to readdir() to resume after this entry
};
// Returns true to take the entry and go on, false to stop: a refused entry is not consumed (resume
// with the cookie of the last entry taken).
using DirVisitor = std::function<bool(const DirEntry&)>;
struct ReaddirEnd {
  bool eof = false;  // true when the visitor saw the last entry (never refused one)
};

struct ReadResult {
  std::size_t bytes = 0;  // bytes placed at the start of `out`; short only at end of file
  bool eof = false;       // the read reached the end of the file
};

struct FsStat {
  std::uint32_t blockSize = 0;
  std::uint64_t blocks = 0;
  std::uint64_t freeBlocks = 0;
  std::uint64_t reservedBlocks = 0;  // of the free ones, reserved for root
  std::uint64_t inodes = 0;
  std::uint64_t freeInodes = 0;
};

struct FsInfo {
  std::array<std::uint8_t, 16> uuid{};  // the superblock's s_uuid
  std::string label;                    // s_volume_name, may be empty
  std::uint32_t blockSize = 0;
  std::uint64_t maxFileSize = 0;        // largest file size the format allows
  std::int64_t lastWrite = 0;           // s_wtime: when the image was last written (seconds)
};

// One entry of a POSIX ACL, as Linux keeps it (the system.posix_acl_* extended attributes).
namespace acltag {
inline constexpr std::uint16_t kUserObj = 0x01, kUser = 0x02, kGroupObj = 0x04, kGroup = 0x08, kMask = 0x10,
                               kOther = 0x20;
}
struct AclEntry {
  std::uint16_t tag = 0;   // acltag
  std::uint16_t perm = 0;  // rwx, 0..7
  std::uint32_t id = 0;    // the uid (kUser) or gid (kGroup); 0 for the other tags
  friend bool operator==(const AclEntry&, const AclEntry&) = default;
};
enum class AclKind : std::uint8_t { Access, Default };

class ImageFs {
 public:
  // Opens the file system in the image at `path` read-only; see the design note for what is refused.
  static Result<std::shared_ptr<ImageFs>> open(const std::filesystem::path& path);
  ~ImageFs();
  ImageFs(const ImageFs&) = delete;
  ImageFs& operator=(const ImageFs&) = delete;

  [[nodiscard]] const FsInfo& info() const { return info_; }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

  Result<Attr> getattr(std::uint64_t ino);
  // The inode `name` names in directory `dir`. "." is dir itself, ".." its parent (the root's is the root).
  Result<Ino> lookup(std::uint64_t dir, std::string_view name);
  // Lists `dir` from just after `cookie` (0: from the start). See DirVisitor for stopping.
  Result<ReaddirEnd> readdir(std::uint64_t dir, std::uint64_t cookie, const DirVisitor& visit);
  Result<std::string> readlink(std::uint64_t ino);
  // Reads up to out.size() bytes of regular file `ino` at `offset`. Holes and unwritten extents read
  // as zeros; an offset at or past the end reads 0 bytes with eof.
  Result<ReadResult> read(std::uint64_t ino, std::uint64_t offset, std::span<std::uint8_t> out);
  Result<FsStat> statfs();
  // The inode's POSIX ACL of that kind (a default ACL only on directories); empty when it has none,
  // its mode bits being all there is. EIO for an attribute that does not decode.
  Result<std::vector<AclEntry>> acl(std::uint64_t ino, AclKind kind);

  // Block maps currently cached (for tests and metrics).
  [[nodiscard]] std::size_t cachedMaps();

 private:
  struct Run;
  struct FileMap;
  struct Inode;
  ImageFs(std::filesystem::path path, UniqueFd fd, struct_ext2_filsys* fs);

  // All under mu_.
  Result<Inode> readInodeLocked(std::uint64_t ino);
  Result<std::shared_ptr<const FileMap>> mapLocked(Inode& inode);
  Result<std::shared_ptr<const FileMap>> map(std::uint64_t ino);
  Result<std::size_t> readMapped(const FileMap& m, std::uint64_t offset, std::span<std::uint8_t> out);
  Result<ReaddirEnd> walkDir(const FileMap& m, std::uint64_t cookie, const DirVisitor& visit);

  std::filesystem::path path_;
  UniqueFd fd_;  // the image, for pread() of file data without the lock
  FsInfo info_;
  std::mutex mu_;
  struct_ext2_filsys* fs_ = nullptr;  // guarded by mu_
  // Block maps by inode, least recently used last; guarded by mu_.
  std::list<Ino> lru_;
  std::unordered_map<Ino, std::pair<std::shared_ptr<const FileMap>, std::list<Ino>::iterator>> maps_;
};

}  // namespace pxedust::imagefs

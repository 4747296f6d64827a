#include "imagefs/image_fs.hpp"

#include <ext2fs/ext2fs.h>
extern "C" {  // com_err.h has no C++ linkage block of its own (ext2fs.h does)
#include <et/com_err.h>
}
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "common/checked.hpp"
#include "common/log.hpp"

namespace pxedust::imagefs {

// The file handle type libext2fs declares is `struct struct_ext2_filsys *`; the header forward
// declares the same struct so it can hold one without including libext2fs.
static_assert(std::is_same_v<ext2_filsys, struct_ext2_filsys*>);

namespace {

// Maps cached per ImageFs. A map is a few runs for all but badly fragmented files; the bound keeps a
// walk of a whole image (a client reading every file) from growing the cache without limit.
constexpr std::size_t kMaxCachedMaps = 1024;
// A file with more block runs than this is refused (EIO): it is corrupt or absurdly fragmented, and
// its map would cost more memory than serving it is worth (24 bytes a run).
constexpr std::size_t kMaxRuns = std::size_t{1} << 22;
// Symlink targets longer than this are corrupt (Linux's PATH_MAX includes the NUL).
constexpr std::uint64_t kMaxSymlink = 4095;

std::string e2text(errcode_t e) { return error_message(e); }

FileType typeFromMode(std::uint16_t mode) {
  switch (mode & LINUX_S_IFMT) {
    case LINUX_S_IFREG: return FileType::Regular;
    case LINUX_S_IFDIR: return FileType::Directory;
    case LINUX_S_IFLNK: return FileType::Symlink;
    case LINUX_S_IFCHR: return FileType::CharDevice;
    case LINUX_S_IFBLK: return FileType::BlockDevice;
    case LINUX_S_IFIFO: return FileType::Fifo;
    case LINUX_S_IFSOCK: return FileType::Socket;
    default: return FileType::Unknown;
  }
}

FileType typeFromDirent(int ft) {
  switch (ft) {
    case EXT2_FT_REG_FILE: return FileType::Regular;
    case EXT2_FT_DIR: return FileType::Directory;
    case EXT2_FT_CHRDEV: return FileType::CharDevice;
    case EXT2_FT_BLKDEV: return FileType::BlockDevice;
    case EXT2_FT_FIFO: return FileType::Fifo;
    case EXT2_FT_SOCK: return FileType::Socket;
    case EXT2_FT_SYMLINK: return FileType::Symlink;
    default: return FileType::Unknown;
  }
}

// ext4 timestamps: a signed 32-bit seconds field, and with large inodes an extra word holding two
// more epoch bits (dates up to 2446) and the nanoseconds shifted left by two (ext4_decode_extra_time).
Timestamp decodeTime(std::uint32_t lo, std::uint32_t extra, bool hasExtra) {
  Timestamp t;
  t.seconds = static_cast<std::int32_t>(lo);
  if (hasExtra) {
    t.seconds += static_cast<std::int64_t>(extra & EXT4_EPOCH_MASK) << 32;
    t.nanoseconds = std::min<std::uint32_t>(extra >> EXT4_EPOCH_BITS, 999'999'999);
  }
  return t;
}

std::uint64_t saturatingMul(std::uint64_t a, std::uint64_t b) {
  auto r = checkedMul(a, b);
  return r ? *r : UINT64_MAX;
}

}  // namespace

std::string_view fileTypeName(FileType t) {
  switch (t) {
    case FileType::Unknown: return "unknown";
    case FileType::Regular: return "file";
    case FileType::Directory: return "directory";
    case FileType::Symlink: return "symlink";
    case FileType::CharDevice: return "chardev";
    case FileType::BlockDevice: return "blockdev";
    case FileType::Fifo: return "fifo";
    case FileType::Socket: return "socket";
  }
  return "unknown";
}

// A run of file blocks stored contiguously: logical blocks [lblk, lblk+count) at physical pblk.
struct ImageFs::Run {
  std::uint64_t lblk = 0;
  std::uint64_t pblk = 0;
  std::uint64_t count = 0;
};

// What read(), readlink() and readdir() need of an inode, computed once: its data as physical runs
// (sorted, disjoint, inside the file system; blocks in no run are holes), or its bytes when they live
// in the inode itself (inline data, fast symlinks).
struct ImageFs::FileMap {
  Ino ino = 0;
  FileType type = FileType::Unknown;
  std::uint64_t size = 0;
  bool inlined = false;
  std::vector<std::uint8_t> inlineData;
  std::vector<Run> runs;
  // Directories of more than one block: name -> inode, built on the first lookup (libext2fs has no
  // htree lookup, and a linear scan per LOOKUP would make listing a big directory quadratic).
  mutable std::once_flag indexOnce;
  mutable std::unordered_map<std::string, Ino> index;
  mutable std::optional<Error> indexError;
};

struct ImageFs::Inode {
  Ino ino = 0;
  ext2_inode_large raw{};
  bool hasExtra = false;  // raw has the fields up to i_crtime (large inode, valid i_extra_isize)
  [[nodiscard]] ext2_inode* base() { return reinterpret_cast<ext2_inode*>(&raw); }
  [[nodiscard]] FileType type() const { return typeFromMode(raw.i_mode); }
  [[nodiscard]] std::uint64_t size() const { return raw.i_size | (std::uint64_t{raw.i_size_high} << 32); }
};

ImageFs::ImageFs(std::filesystem::path path, UniqueFd fd, struct_ext2_filsys* fs)
    : path_(std::move(path)), fd_(std::move(fd)), fs_(fs) {}

ImageFs::~ImageFs() {
  // ext2fs_free, not ext2fs_close: close would flush the superblock of a writable file system, and
  // nothing may ever be written to a base image.
  if (fs_ != nullptr) ext2fs_free(fs_);
}

Result<std::shared_ptr<ImageFs>> ImageFs::open(const std::filesystem::path& path) {
  const std::string p = path.string();
  UniqueFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return errnoError("imagefs: open " + p + ": " + std::strerror(errno), errno);
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return errnoError("imagefs: stat " + p + ": " + std::strerror(errno), errno);
  if (!S_ISREG(st.st_mode)) return Error{"imagefs: " + p + " is not a regular file", EINVAL};

  ext2_filsys fs = nullptr;
  // Read-only (no EXT2_FLAG_RW): libext2fs never writes, replays no journal and checks no MMP block.
  errcode_t e = ext2fs_open2(p.c_str(), nullptr, EXT2_FLAG_64BITS, 0, 0, unix_io_manager, &fs);
  if (e != 0) {
    int code = EIO;
    std::string why = e2text(e);
    if (e == EXT2_ET_BAD_MAGIC) {
      code = EINVAL;
      why = "not an ext2/ext3/ext4 file system";
    } else if (e == EXT2_ET_UNSUPP_FEATURE) {
      code = ENOTSUP;
      why = "it uses incompatible features this libext2fs does not support";
    } else if (e > 0 && e < 4096) {
      code = static_cast<int>(e);  // an errno from the I/O layer
    }
    return Error{"imagefs: " + p + ": " + why, code};
  }
  auto fail = [&](std::string why, int code) -> Result<std::shared_ptr<ImageFs>> {
    ext2fs_free(fs);
    return Error{"imagefs: " + p + ": " + why, code};
  };
  ext2_super_block* sb = fs->super;  // the feature tests take a non-const pointer
  if (ext2fs_has_feature_journal_dev(sb)) return fail("is an external journal, not a file system", ENOTSUP);
  if (ext2fs_has_feature_journal_needs_recovery(sb)) {
    return fail("its journal needs recovery (it was not unmounted cleanly); run e2fsck -f on the image before importing it",
                EUCLEAN);
  }
  if ((sb->s_state & EXT2_ERROR_FS) != 0) {
    return fail("it is marked as having errors; run e2fsck -f on the image before importing it", EUCLEAN);
  }
  if ((sb->s_state & EXT2_VALID_FS) == 0) {
    return fail("it was not unmounted cleanly; run e2fsck -f on the image before importing it", EUCLEAN);
  }
  const std::uint64_t blocks = ext2fs_blocks_count(fs->super);
  auto fsBytes = checkedMul<std::uint64_t>(blocks, fs->blocksize);
  if (!fsBytes || *fsBytes > static_cast<std::uint64_t>(st.st_size)) {
    return fail("the image is " + std::to_string(st.st_size) + " bytes but its file system claims " +
                    std::to_string(blocks) + " blocks of " + std::to_string(fs->blocksize) + " (truncated image?)",
                EIO);
  }

  std::shared_ptr<ImageFs> self(new ImageFs(path, std::move(fd), fs));
  FsInfo& info = self->info_;
  std::memcpy(info.uuid.data(), sb->s_uuid, info.uuid.size());
  info.label.assign(reinterpret_cast<const char*>(sb->s_volume_name),
                    ::strnlen(reinterpret_cast<const char*>(sb->s_volume_name), sizeof sb->s_volume_name));
  info.blockSize = fs->blocksize;
  // Extent and block-mapped files alike address at most 2^32 blocks.
  info.maxFileSize = saturatingMul(std::uint64_t{1} << 32, fs->blocksize) - 1;
  info.lastWrite = static_cast<std::int64_t>(sb->s_wtime | (std::uint64_t{sb->s_wtime_hi} << 32));
  char uuid[37];
  {
    static constexpr char kHex[] = "0123456789abcdef";
    std::size_t o = 0;
    for (std::size_t i = 0; i < 16; ++i) {
      if (i == 4 || i == 6 || i == 8 || i == 10) uuid[o++] = '-';
      uuid[o++] = kHex[info.uuid[i] >> 4];
      uuid[o++] = kHex[info.uuid[i] & 15];
    }
    uuid[o] = '\0';
  }
  PXD_INFO("imagefs.open", "image={} uuid={} block_size={} blocks={} inodes={}", log::q(p), uuid, fs->blocksize,
           blocks, sb->s_inodes_count);
  return self;
}

Result<ImageFs::Inode> ImageFs::readInodeLocked(std::uint64_t ino) {
  const ext2_super_block* sb = fs_->super;
  if (ino < 1 || ino > sb->s_inodes_count) {
    return Error{"imagefs: inode " + std::to_string(ino) + " is out of range (1.." + std::to_string(sb->s_inodes_count) + ")",
                 ESTALE};
  }
  if (ino != EXT2_ROOT_INO && ino < EXT2_FIRST_INO(sb)) {
    return Error{"imagefs: inode " + std::to_string(ino) + " is reserved", ESTALE};
  }
  Inode in;
  in.ino = static_cast<Ino>(ino);
  errcode_t e = ext2fs_read_inode_full(fs_, in.ino, in.base(), sizeof in.raw);
  if (e != 0) return Error{"imagefs: inode " + std::to_string(ino) + ": " + e2text(e), EIO};
  if (in.raw.i_links_count == 0) return Error{"imagefs: inode " + std::to_string(ino) + " is not in use", ESTALE};
  if (in.type() == FileType::Unknown) {
    return Error{"imagefs: inode " + std::to_string(ino) + " has an invalid mode " + std::to_string(in.raw.i_mode), EIO};
  }
  const unsigned inodeSize = EXT2_INODE_SIZE(sb);
  if (inodeSize > EXT2_GOOD_OLD_INODE_SIZE) {
    const unsigned extra = in.raw.i_extra_isize;
    const unsigned have = EXT2_GOOD_OLD_INODE_SIZE + extra;
    in.hasExtra = extra % 4 == 0 && have <= inodeSize && inode_includes(have, i_crtime);
  }
  return in;
}

Result<Attr> ImageFs::getattr(std::uint64_t ino) {
  std::lock_guard lock(mu_);
  auto in = readInodeLocked(ino);
  if (!in) return in.error();
  const ext2_inode_large& r = in->raw;
  Attr a;
  a.ino = in->ino;
  a.generation = r.i_generation;
  a.type = in->type();
  a.mode = r.i_mode & 07777;
  a.nlink = r.i_links_count;
  a.uid = r.i_uid | (std::uint32_t{r.osd2.linux2.l_i_uid_high} << 16);
  a.gid = r.i_gid | (std::uint32_t{r.osd2.linux2.l_i_gid_high} << 16);
  a.size = in->size();
  std::uint64_t blocks = r.i_blocks;
  if (ext2fs_has_feature_huge_file(fs_->super)) {
    blocks |= std::uint64_t{r.osd2.linux2.l_i_blocks_hi} << 32;
    // A HUGE_FILE inode counts i_blocks in file system blocks, not 512-byte sectors.
    if ((r.i_flags & EXT4_HUGE_FILE_FL) != 0) blocks = saturatingMul(blocks, fs_->blocksize / 512);
  }
  a.usedBytes = saturatingMul(blocks, 512);
  if (a.type == FileType::CharDevice || a.type == FileType::BlockDevice) {
    // Linux's old_encode_dev (8-bit major and minor in i_block[0]) when it fits, else
    // new_encode_dev in i_block[1] (12-bit major, 20-bit minor: mmm MMM mm).
    if (r.i_block[0] != 0) {
      a.rdevMajor = (r.i_block[0] >> 8) & 0xff;
      a.rdevMinor = r.i_block[0] & 0xff;
    } else {
      const std::uint32_t d = r.i_block[1];
      a.rdevMajor = (d & 0xfff00) >> 8;
      a.rdevMinor = (d & 0xff) | ((d >> 12) & 0xfff00);
    }
  }
  a.atime = decodeTime(r.i_atime, r.i_atime_extra, in->hasExtra);
  a.mtime = decodeTime(r.i_mtime, r.i_mtime_extra, in->hasExtra);
  a.ctime = decodeTime(r.i_ctime, r.i_ctime_extra, in->hasExtra);
  return a;
}

Result<std::shared_ptr<const ImageFs::FileMap>> ImageFs::mapLocked(Inode& in) {
  const std::string who = "imagefs: " + path_.string() + ": inode " + std::to_string(in.ino);
  auto m = std::make_shared<FileMap>();
  m->ino = in.ino;
  m->type = in.type();
  m->size = in.size();
  const std::uint32_t flags = in.raw.i_flags;
  if ((flags & EXT4_ENCRYPT_FL) != 0) return Error{who + " is encrypted", EACCES};
  const bool hasData = m->type == FileType::Regular || m->type == FileType::Directory || m->type == FileType::Symlink;
  if (!hasData) return std::shared_ptr<const FileMap>(std::move(m));

  if ((flags & EXT4_INLINE_DATA_FL) != 0) {
    std::size_t size = 0;
    errcode_t e = ext2fs_inline_data_size(fs_, in.ino, &size);
    if (e != 0) return Error{who + ": inline data: " + e2text(e), EIO};
    // i_block plus one extended attribute value, which lives in the inode or one block.
    if (size > sizeof in.raw.i_block + fs_->blocksize) return Error{who + ": inline data too large", EIO};
    m->inlineData.resize(std::max<std::size_t>(size, sizeof in.raw.i_block));
    e = ext2fs_inline_data_get(fs_, in.ino, in.base(), m->inlineData.data(), &size);
    if (e != 0) return Error{who + ": inline data: " + e2text(e), EIO};
    m->inlineData.resize(std::min(size, m->inlineData.size()));
    m->inlined = true;
    return std::shared_ptr<const FileMap>(std::move(m));
  }
  if (m->type == FileType::Symlink && ext2fs_is_fast_symlink(in.base()) != 0) {
    // A fast symlink keeps its target in i_block (size < 60 by definition).
    const auto* b = reinterpret_cast<const std::uint8_t*>(in.raw.i_block);
    m->inlineData.assign(b, b + m->size);
    m->inlined = true;
    return std::shared_ptr<const FileMap>(std::move(m));
  }

  const std::uint64_t fsBlocks = ext2fs_blocks_count(fs_->super);
  const std::uint64_t firstData = fs_->super->s_first_data_block;
  const std::uint64_t bs = fs_->blocksize;
  // Blocks past the end of the file are never read; their extents (fallocate KEEP_SIZE) are skipped.
  const std::uint64_t fileBlocks = m->size / bs + (m->size % bs != 0 ? 1 : 0);
  std::string bad;
  auto add = [&](std::uint64_t lblk, std::uint64_t pblk, std::uint64_t count) -> bool {
    if (lblk >= fileBlocks || count == 0) return true;
    if (pblk < firstData || !within(pblk, count, fsBlocks)) {
      bad = "block run " + std::to_string(pblk) + "+" + std::to_string(count) + " lies outside the file system";
      return false;
    }
    if (!m->runs.empty()) {
      Run& last = m->runs.back();
      if (lblk < last.lblk + last.count) {
        bad = "block runs overlap or are out of order at logical block " + std::to_string(lblk);
        return false;
      }
      if (lblk == last.lblk + last.count && pblk == last.pblk + last.count) {
        last.count += count;
        return true;
      }
    }
    if (m->runs.size() >= kMaxRuns) {
      bad = "more than " + std::to_string(kMaxRuns) + " block runs";
      return false;
    }
    m->runs.push_back(Run{lblk, pblk, count});
    return true;
  };

  if ((flags & EXT4_EXTENTS_FL) != 0) {
    ext2_extent_handle_t h = nullptr;
    errcode_t e = ext2fs_extent_open2(fs_, in.ino, in.base(), &h);
    if (e != 0) return Error{who + ": extent tree: " + e2text(e), EIO};
    ext2fs_extent ext{};
    int op = EXT2_EXTENT_ROOT;
    // Each step visits a node once or twice; the tree cannot hold more nodes than the file system has
    // blocks, so the bound only stops a loop a corrupt tree could cause.
    for (std::uint64_t steps = 0;; op = EXT2_EXTENT_NEXT) {
      e = ext2fs_extent_get(h, op, &ext);
      if (e == EXT2_ET_EXTENT_NO_NEXT || (e == EXT2_ET_EXTENT_NO_DOWN && op == EXT2_EXTENT_ROOT)) {
        e = 0;
        break;
      }
      if (e != 0) break;
      if (++steps > 2 * fsBlocks + 16) {
        bad = "extent tree does not end";
        break;
      }
      if ((ext.e_flags & EXT2_EXTENT_FLAGS_SECOND_VISIT) != 0 || (ext.e_flags & EXT2_EXTENT_FLAGS_LEAF) == 0) continue;
      if ((ext.e_flags & EXT2_EXTENT_FLAGS_UNINIT) != 0) continue;  // unwritten: reads as zeros
      if (!add(ext.e_lblk, ext.e_pblk, ext.e_len)) break;
    }
    ext2fs_extent_free(h);
    if (e != 0) return Error{who + ": extent tree: " + e2text(e), EIO};
  } else if (ext2fs_inode_has_valid_blocks2(fs_, in.base()) != 0) {
    struct Walk {
      decltype(add)* addRun;
      std::uint64_t fileBlocks;
      bool ok = true;
    } walk{&add, fileBlocks};
    auto cb = [](ext2_filsys, blk64_t* blocknr, e2_blkcnt_t blockcnt, blk64_t, int, void* priv) -> int {
      auto* w = static_cast<Walk*>(priv);
      if (blockcnt < 0) return 0;
      // Nothing past the end of the file is needed: stop, which also bounds the work a corrupt
      // indirect tree can cause by the file's size.
      if (static_cast<std::uint64_t>(blockcnt) >= w->fileBlocks) return BLOCK_ABORT;
      if (!(*w->addRun)(static_cast<std::uint64_t>(blockcnt), *blocknr, 1)) {
        w->ok = false;
        return BLOCK_ABORT;
      }
      return 0;
    };
    errcode_t e = ext2fs_block_iterate3(fs_, in.ino, BLOCK_FLAG_READ_ONLY | BLOCK_FLAG_DATA_ONLY, nullptr, cb, &walk);
    if (e != 0) return Error{who + ": block map: " + e2text(e), EIO};
  }
  if (!bad.empty()) return Error{who + ": " + bad, EIO};
  return std::shared_ptr<const FileMap>(std::move(m));
}

Result<std::shared_ptr<const ImageFs::FileMap>> ImageFs::map(std::uint64_t ino) {
  std::lock_guard lock(mu_);
  if (ino <= UINT32_MAX) {
    auto it = maps_.find(static_cast<Ino>(ino));
    if (it != maps_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.second);
      return it->second.first;
    }
  }
  auto in = readInodeLocked(ino);
  if (!in) return in.error();
  auto m = mapLocked(*in);
  if (!m) return m.error();
  if (maps_.size() >= kMaxCachedMaps) {
    maps_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(in->ino);
  maps_.emplace(in->ino, std::make_pair(*m, lru_.begin()));
  return m;
}

std::size_t ImageFs::cachedMaps() {
  std::lock_guard lock(mu_);
  return maps_.size();
}

Result<std::size_t> ImageFs::readMapped(const FileMap& m, std::uint64_t offset, std::span<std::uint8_t> out) {
  // The caller has clipped [offset, offset + out.size()) to the file's size.
  if (m.inlined) {
    std::size_t done = 0;
    if (offset < m.inlineData.size()) {
      done = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), m.inlineData.size() - offset));
      std::memcpy(out.data(), m.inlineData.data() + offset, done);
    }
    std::memset(out.data() + done, 0, out.size() - done);  // i_size past the inline bytes: zeros
    return out.size();
  }
  const std::uint64_t bs = info_.blockSize;
  std::size_t done = 0;
  while (done < out.size()) {
    const std::uint64_t pos = offset + done;
    const std::uint64_t lblk = pos / bs;
    const std::uint64_t inBlock = pos % bs;
    const std::size_t want = out.size() - done;
    // The first run that starts after lblk; the one before it may contain lblk.
    auto next = std::upper_bound(m.runs.begin(), m.runs.end(), lblk, [](std::uint64_t b, const Run& r) { return b < r.lblk; });
    if (next != m.runs.begin() && lblk - std::prev(next)->lblk < std::prev(next)->count) {
      const Run& r = *std::prev(next);
      const std::uint64_t avail = saturatingMul(r.count - (lblk - r.lblk), bs) - inBlock;
      const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(avail, want));
      // Inside the image: runs are checked against the block count, which open() checked against the file size.
      const std::uint64_t phys = (r.pblk + (lblk - r.lblk)) * bs + inBlock;
      std::size_t got = 0;
      while (got < take) {
        ssize_t n = ::pread(fd_.get(), out.data() + done + got, take - got, static_cast<off_t>(phys + got));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errnoError("imagefs: " + path_.string() + ": read: " + std::strerror(errno), EIO);
        if (n == 0) return Error{"imagefs: " + path_.string() + ": image ends early (truncated?)", EIO};
        got += static_cast<std::size_t>(n);
      }
      done += take;
    } else {
      const std::uint64_t hole = next == m.runs.end() ? UINT64_MAX : saturatingMul(next->lblk - lblk, bs) - inBlock;
      const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(hole, want));
      std::memset(out.data() + done, 0, take);
      done += take;
    }
  }
  return done;
}

Result<ReadResult> ImageFs::read(std::uint64_t ino, std::uint64_t offset, std::span<std::uint8_t> out) {
  auto m = map(ino);
  if (!m) return m.error();
  const FileMap& fm = **m;
  if (fm.type == FileType::Directory) return Error{"imagefs: inode " + std::to_string(ino) + " is a directory", EISDIR};
  if (fm.type != FileType::Regular) {
    return Error{"imagefs: inode " + std::to_string(ino) + " is a " + std::string(fileTypeName(fm.type)) + ", not a file",
                 EINVAL};
  }
  if (offset >= fm.size) return ReadResult{0, true};
  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), fm.size - offset));
  auto r = readMapped(fm, offset, out.first(n));
  if (!r) return r.error();
  return ReadResult{n, n == fm.size - offset};
}

Result<std::vector<AclEntry>> ImageFs::acl(std::uint64_t ino, AclKind kind) {
  std::lock_guard lock(mu_);
  auto in = readInodeLocked(ino);  // an inode not in use is an error, not an empty ACL
  if (!in) return in.error();
  std::vector<AclEntry> out;
  if (kind == AclKind::Default && in->type() != FileType::Directory) return out;
  const std::string who = "imagefs: ACL of inode " + std::to_string(ino);
  ext2_xattr_handle* h = nullptr;
  errcode_t e = ext2fs_xattrs_open(fs_, static_cast<ext2_ino_t>(ino), &h);
  if (e == EXT2_ET_MISSING_EA_FEATURE) return out;  // a file system without extended attributes
  if (e != 0) return Error{who + ": " + error_message(e), EIO};
  e = ext2fs_xattrs_read(h);
  void* value = nullptr;
  std::size_t len = 0;
  if (e == 0)
    e = ext2fs_xattr_get(h, kind == AclKind::Access ? "system.posix_acl_access" : "system.posix_acl_default", &value,
                         &len);
  ext2fs_xattrs_close(&h);
  if (e == EXT2_ET_EA_KEY_NOT_FOUND) return out;
  if (e != 0) return Error{who + ": " + error_message(e), EIO};
  // libext2fs gives it in Linux's xattr form: a version word (2), then 8-byte entries, little-endian.
  const auto* b = static_cast<const std::uint8_t*>(value);
  auto le16 = [&](std::size_t at) { return static_cast<std::uint16_t>(b[at] | b[at + 1] << 8); };
  auto le32 = [&](std::size_t at) {
    return static_cast<std::uint32_t>(b[at] | b[at + 1] << 8 | b[at + 2] << 16 | std::uint32_t{b[at + 3]} << 24);
  };
  const bool ok = len >= 4 && (len - 4) % 8 == 0 && (len - 4) / 8 <= 1024 && le32(0) == 2;
  for (std::size_t at = 4; ok && at + 8 <= len; at += 8) {
    const std::uint16_t tag = le16(at);
    const bool named = tag == acltag::kUser || tag == acltag::kGroup;  // ext4 keeps no id for the others
    out.push_back(AclEntry{tag, le16(at + 2), named ? le32(at + 4) : 0});
  }
  ext2fs_free_mem(&value);
  if (!ok) return Error{who + ": not a POSIX ACL (" + std::to_string(len) + " bytes)", EIO};
  for (const auto& a : out)
    if (a.perm > 7) return Error{who + ": an entry with permissions " + std::to_string(a.perm), EIO};
  return out;
}

Result<std::string> ImageFs::readlink(std::uint64_t ino) {
  auto m = map(ino);
  if (!m) return m.error();
  const FileMap& fm = **m;
  if (fm.type != FileType::Symlink) {
    return Error{"imagefs: inode " + std::to_string(ino) + " is a " + std::string(fileTypeName(fm.type)) + ", not a symlink",
                 EINVAL};
  }
  if (fm.size == 0 || fm.size > kMaxSymlink) {
    return Error{"imagefs: symlink inode " + std::to_string(ino) + " has an invalid size " + std::to_string(fm.size), EIO};
  }
  std::string target(static_cast<std::size_t>(fm.size), '\0');
  auto r = readMapped(fm, 0, {reinterpret_cast<std::uint8_t*>(target.data()), target.size()});
  if (!r) return r.error();
  return target;
}

namespace {

// Walks the records of one chain of directory entries, [begin, end) of `buf`, whose positions in the
// directory are `base` + offset. Returns false when the chain is corrupt (with `bad` set).
struct ChainWalk {
  ext2_filsys fs;
  bool hasFileType;
  std::uint32_t inodes;
  std::string bad;
  bool stopped = false;
};

bool walkChain(ChainWalk& w, std::span<std::uint8_t> buf, std::uint64_t base, std::uint64_t cookie,
               const DirVisitor& visit) {
  std::size_t off = 0;
  while (off < buf.size()) {
    if (buf.size() - off < 8) {
      w.bad = "directory record at " + std::to_string(base + off) + " is cut short";
      return false;
    }
    auto* d = reinterpret_cast<ext2_dir_entry*>(buf.data() + off);
    unsigned int recLen = 0;
    if (ext2fs_get_rec_len(w.fs, d, &recLen) != 0) recLen = 0;
    const std::size_t nameLen = static_cast<std::size_t>(ext2fs_dirent_name_len(d));
    if (recLen < 8 || recLen % 4 != 0 || recLen > buf.size() - off || nameLen > recLen - 8) {
      w.bad = "directory record at " + std::to_string(base + off) + " has an invalid length";
      return false;
    }
    const std::uint64_t pos = base + off;
    if (d->inode != 0 && pos >= cookie) {
      if (d->inode > w.inodes || nameLen == 0) {
        w.bad = "directory record at " + std::to_string(pos) + " names an invalid inode or an empty name";
        return false;
      }
      DirEntry e;
      e.name = std::string_view(d->name, nameLen);
      e.ino = d->inode;
      e.type = w.hasFileType ? typeFromDirent(ext2fs_dirent_file_type(d)) : FileType::Unknown;
      e.cookie = pos + recLen;
      if (!visit(e)) {
        w.stopped = true;
        return true;
      }
    }
    off += recLen;
  }
  return true;
}

}  // namespace

Result<ReaddirEnd> ImageFs::walkDir(const FileMap& m, std::uint64_t cookie, const DirVisitor& visit) {
  const std::string who = "imagefs: " + path_.string() + ": directory inode " + std::to_string(m.ino);
  // fs_ is used here without the lock only for what never changes after open (block size, features).
  ChainWalk w{fs_, ext2fs_has_feature_filetype(fs_->super) != 0, fs_->super->s_inodes_count, {}};
  if (m.inlined) {
    // An inline directory: the parent's inode number (4 bytes), then records to the end of i_block,
    // then records in the system.data attribute. "." and ".." are not stored: they get positions 0
    // and 1 (cookies 1 and 2), below every stored record's position.
    std::vector<std::uint8_t> buf = m.inlineData;
    constexpr std::size_t kIblock = EXT4_MIN_INLINE_DATA_SIZE;
    if (buf.size() < kIblock) return Error{who + ": inline directory too short", EIO};
    std::uint32_t parent;
    std::memcpy(&parent, buf.data(), 4);
    parent = ext2fs_le32_to_cpu(parent);
    if (parent == 0 || parent > w.inodes) return Error{who + ": inline directory has an invalid parent", EIO};
    if (cookie < 1 && !visit(DirEntry{".", m.ino, FileType::Directory, 1})) return ReaddirEnd{false};
    if (cookie < 2 && !visit(DirEntry{"..", parent, FileType::Directory, 2})) return ReaddirEnd{false};
    std::span<std::uint8_t> all(buf);
    if (!walkChain(w, all.subspan(4, kIblock - 4), 4, cookie, visit)) return Error{who + ": " + w.bad, EIO};
    if (w.stopped) return ReaddirEnd{false};
    if (!walkChain(w, all.subspan(kIblock), kIblock, cookie, visit)) return Error{who + ": " + w.bad, EIO};
    return ReaddirEnd{!w.stopped};
  }
  const std::uint64_t bs = info_.blockSize;
  const std::uint64_t nblocks = m.size / bs + (m.size % bs != 0 ? 1 : 0);
  std::vector<std::uint8_t> buf(bs);
  // Runs are sorted; find the first one that can hold the cookie's block and go forward from there.
  auto run = std::upper_bound(m.runs.begin(), m.runs.end(), cookie / bs,
                              [](std::uint64_t b, const Run& r) { return b < r.lblk; });
  if (run != m.runs.begin()) --run;
  for (; run != m.runs.end(); ++run) {
    for (std::uint64_t i = 0; i < run->count; ++i) {
      const std::uint64_t lblk = run->lblk + i;
      if (lblk >= nblocks) return ReaddirEnd{true};
      if (lblk < cookie / bs) continue;
      {
        std::lock_guard lock(mu_);
        errcode_t e = ext2fs_read_dir_block4(fs_, run->pblk + i, buf.data(), 0, m.ino);
        if (e != 0) return Error{who + ": block " + std::to_string(lblk) + ": " + e2text(e), EIO};
      }
      if (!walkChain(w, buf, lblk * bs, cookie, visit)) return Error{who + ": " + w.bad, EIO};
      if (w.stopped) return ReaddirEnd{false};
    }
  }
  return ReaddirEnd{true};  // holes in a directory hold no entries
}

Result<ReaddirEnd> ImageFs::readdir(std::uint64_t dir, std::uint64_t cookie, const DirVisitor& visit) {
  auto m = map(dir);
  if (!m) return m.error();
  if ((*m)->type != FileType::Directory) {
    return Error{"imagefs: inode " + std::to_string(dir) + " is not a directory", ENOTDIR};
  }
  return walkDir(**m, cookie, visit);
}

Result<Ino> ImageFs::lookup(std::uint64_t dir, std::string_view name) {
  if (name.empty() || name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return Error{"imagefs: invalid name", EINVAL};
  }
  if (name.size() > kMaxNameLength) return Error{"imagefs: name longer than 255 bytes", ENAMETOOLONG};
  auto m = map(dir);
  if (!m) return m.error();
  if ((*m)->type != FileType::Directory) {
    return Error{"imagefs: inode " + std::to_string(dir) + " is not a directory", ENOTDIR};
  }
  if (name == ".") return (*m)->ino;
  if (name == ".." && (*m)->ino == kRootIno) return kRootIno;
  const FileMap& fm = **m;
  if (!fm.inlined && fm.size > info_.blockSize) {
    std::call_once(fm.indexOnce, [&] {
      auto r = walkDir(fm, 0, [&](const DirEntry& e) {
        fm.index.emplace(std::string(e.name), e.ino);  // the first of duplicate names wins, as in a scan
        return true;
      });
      if (!r) {
        fm.indexError = r.error();
        fm.index.clear();
      }
    });
    if (fm.indexError) return *fm.indexError;
    auto it = fm.index.find(std::string(name));
    if (it == fm.index.end()) {
      return Error{"imagefs: no entry " + std::string(name) + " in directory inode " + std::to_string(dir), ENOENT};
    }
    return it->second;
  }
  Ino found = 0;
  auto r = walkDir(**m, 0, [&](const DirEntry& e) {
    if (e.name != name) return true;
    found = e.ino;
    return false;
  });
  if (!r) return r.error();
  if (found == 0) return Error{"imagefs: no entry " + std::string(name) + " in directory inode " + std::to_string(dir), ENOENT};
  return found;
}

Result<FsStat> ImageFs::statfs() {
  std::lock_guard lock(mu_);
  const ext2_super_block* sb = fs_->super;
  FsStat s;
  s.blockSize = fs_->blocksize;
  s.blocks = ext2fs_blocks_count(fs_->super);
  s.freeBlocks = std::min<std::uint64_t>(ext2fs_free_blocks_count(fs_->super), s.blocks);
  s.reservedBlocks = std::min<std::uint64_t>(ext2fs_r_blocks_count(fs_->super), s.freeBlocks);
  s.inodes = sb->s_inodes_count;
  s.freeInodes = std::min<std::uint64_t>(sb->s_free_inodes_count, s.inodes);
  return s;
}

}  // namespace pxedust::imagefs

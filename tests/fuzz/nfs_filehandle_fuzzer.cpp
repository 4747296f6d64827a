// libFuzzer harness for the NFS file handle codec.
// Input: bytes 0..15 = the key; the rest = a handle as a client sends it back.
// Invariants: a handle decodes only if it is exactly what encodeHandle() makes of the decoded
// fields under that key (so no two byte strings name the same file and nothing else is accepted);
// every refusal is BADHANDLE; and any fields taken from the input encode to a handle that decodes
// back to them, and not under another key.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include "nfs/wire/filehandle.hpp"

using namespace pxedust::nfs::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 16) return 0;
  HandleKey key{};
  std::memcpy(key.data(), data, key.size());
  std::span<const std::uint8_t> handle(data + 16, size - 16);

  FileHandle out;
  const Nfsstat3 st = decodeHandle(handle, key, out);
  if (st == Nfsstat3::Ok) {
    const HandleBytes again = encodeHandle(out, key);
    if (handle.size() != again.size() || std::memcmp(handle.data(), again.data(), again.size()) != 0) std::abort();
  } else if (st != Nfsstat3::BadHandle || out != FileHandle{}) {
    std::abort();
  }

  // Fields from the input (zero-filled where it is short) make a handle that round-trips.
  std::uint8_t raw[32] = {};
  std::memcpy(raw, handle.data(), std::min(handle.size(), sizeof raw));
  FileHandle fh;
  std::memcpy(fh.image.data(), raw, 16);
  fh.imageVersion = (std::uint32_t{raw[16]} << 24) | (std::uint32_t{raw[17]} << 16) | (std::uint32_t{raw[18]} << 8) | raw[19];
  for (int i = 20; i < 28; ++i) fh.inode = (fh.inode << 8) | raw[i];
  fh.generation = (std::uint32_t{raw[28]} << 24) | (std::uint32_t{raw[29]} << 16) | (std::uint32_t{raw[30]} << 8) | raw[31];
  const HandleBytes made = encodeHandle(fh, key);
  FileHandle back;
  if (decodeHandle(made, key, back) != Nfsstat3::Ok || back != fh) std::abort();
  HandleKey other = key;
  other[handle.empty() ? 0 : handle[0] % 16] ^= 0x80;
  FileHandle none;
  if (decodeHandle(made, other, none) != Nfsstat3::BadHandle) std::abort();  // a 2^-64 chance aside
  return 0;
}

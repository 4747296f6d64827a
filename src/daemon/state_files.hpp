// The daemon's state for programs, until the HTTP API serves it: small files in [daemon] state_dir
// that the demo, the tests and scripts read instead of matching log lines (logs are for people).
//
//   daemon.json   pid, version, state (running / stopping / stopped), each service's bound
//                 endpoints, and reload counts with the last refusal: written at start and after
//                 every reload, so a reader knows a reload was taken and how it ended.
//   hosts.json    each host's boot stage and recent boot events (events/snapshot.hpp), on change.
//   metrics.prom  every metric in Prometheus text format, on SIGUSR1.
//
// Each file is replaced whole (written beside it, then renamed over it), so a reader sees the old
// or the new file, never half of one. A file that cannot be written is logged and skipped: the state
// files never stop the daemon from serving.
#pragma once

#include <string>
#include <string_view>

#include "common/result.hpp"

namespace pxedust::daemon {

class StateFiles {
 public:
  // An empty dir disables the files.
  explicit StateFiles(std::string dir) : dir_(std::move(dir)) {}

  // Makes the directory (0755) if needed.
  Result<void> open();
  void write(std::string_view name, std::string_view text);
  [[nodiscard]] const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  bool ok_ = false;
};

}  // namespace pxedust::daemon

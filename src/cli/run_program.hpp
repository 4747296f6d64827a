// Runs a program the CLI needs (mke2fs, mmdebstrap, cp) without a shell: its arguments are passed as
// they are, whatever they contain, and its output goes to ours.
#pragma once

#include <string>
#include <vector>

namespace pxedust::cli {

// Its exit status; -1 when it could not run or was killed; 127 when it is not installed.
int runProgram(const std::vector<std::string>& args);

}  // namespace pxedust::cli

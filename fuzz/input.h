// What the targets share: CoCo's readers take paths, so a target writes its input (or the
// parts of it) to files in a directory of its own under /dev/shm. An input of several files
// is cut at lines "----".
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "coco/common/error.h"

namespace coco::fuzz {

/// Runs `read`; a coco::Error is the expected answer to bad input, anything else escapes.
template <class Read>
void read_or_reject(Read&& read) {
  try {
    read();
  } catch (const coco::Error&) {
  }
}

/// /dev/shm/coco-fuzz-PID, created on first use and removed at exit.
const std::filesystem::path& work_dir();

/// Writes `bytes` to work_dir()/name and returns the path.
std::string write_file(const std::string& name, std::string_view bytes);

/// The input cut at lines "----" into exactly `n` parts (missing ones are empty).
std::vector<std::string_view> split_parts(std::string_view input, size_t n);

}  // namespace coco::fuzz

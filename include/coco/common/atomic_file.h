// Crash-safe file replacement: write a temporary file next to the target, flush it to
// disk, then rename it over the target. A reader sees the old file or the new one,
// never a half-written one.
#pragma once

#include <functional>
#include <string>

namespace coco {

/// Replaces `path` with `contents` atomically. Throws coco::Error on failure and leaves
/// the old file untouched.
void write_file_atomic(const std::string& path, const std::string& contents);

/// Like write_file_atomic, but `write(tmp_path)` produces the temporary file (for writers
/// that need a path, such as torch::serialize).
void replace_file_atomic(const std::string& path,
                         const std::function<void(const std::string&)>& write);

}  // namespace coco

// Helpers shared by the tests: temporary directories, small files, the shared data root.
#pragma once

#include <string>

namespace coco::test {

/// The what() of the E that fn() throws, or "(no error)" when it throws nothing.
template <typename E, typename Fn>
std::string error_text(Fn&& fn) {
  try {
    fn();
  } catch (const E& e) {
    return e.what();
  }
  return "(no error)";
}

/// A fresh directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  /// Writes `contents` to `name` inside the directory and returns its path.
  std::string write(const std::string& name, const std::string& contents) const;

 private:
  std::string path_;
};

/// ../shared/data/<name>, or "" when the shared data are not present.
std::string shared_dataset(const std::string& name);

/// Runs a shell command, returning its exit code; stdout+stderr go to `output`.
int run_command(const std::string& command, std::string& output);

}  // namespace coco::test

// Replays every input the fuzzers found (tests/fixtures/fuzz/<target>/<file>) through its
// target, as the fuzzer ran it: each must be read or rejected with a coco::Error, never crash
// or throw anything else. Under scripts/sanitize.sh this also catches what ASan and UBSan saw.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "targets.h"

namespace coco::fuzz {
namespace {

namespace fs = std::filesystem;

const fs::path kFindings = fs::path(COCO_FIXTURES_DIR) / "fuzz";

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

TEST(FuzzRegressions, EveryFindingNamesATarget) {
  for (const auto& dir : fs::directory_iterator(kFindings)) {
    if (dir.is_directory()) {
      EXPECT_NE(find_target(dir.path().filename().string()), nullptr) << dir.path();
    }
  }
}

TEST(FuzzRegressions, FindingsAreReadOrRejected) {
  int replayed = 0;
  for (const auto& target : targets()) {
    const fs::path dir = kFindings / target.name;
    if (!fs::is_directory(dir)) continue;
    for (const auto& file : fs::directory_iterator(dir)) {
      SCOPED_TRACE(file.path().string());
      EXPECT_NO_THROW(target.run(read_bytes(file.path())));
      ++replayed;
    }
  }
  EXPECT_GT(replayed, 0);
}

// The seeds CoCo's own writers make are read without an error (the targets accept them).
TEST(FuzzRegressions, WrittenSeedsAreValidInputs) {
  for (const auto& target : targets()) {
    if (!target.write_seeds) continue;
    const fs::path dir =
        fs::temp_directory_path() / ("coco-fuzz-seeds-" + std::string(target.name));
    fs::remove_all(dir);
    fs::create_directories(dir);
    target.write_seeds(dir.string());
    for (const auto& file : fs::directory_iterator(dir)) {
      SCOPED_TRACE(file.path().string());
      EXPECT_NO_THROW(target.run(read_bytes(file.path())));
    }
    fs::remove_all(dir);
  }
}

}  // namespace
}  // namespace coco::fuzz

// Helpers for the LLM tests: where the shared models are, temporary directories, running the
// coco-llm tool, and a tiny GGUF writer for synthetic (and deliberately broken) files.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace coco::llm::test {

inline std::string shared_model(const std::string& rel) {
  const std::string p = std::string(COCO_SHARED_DIR) + "/models/" + rel;
  return std::filesystem::exists(p) ? p : "";
}

#define COCO_REQUIRE_MODEL(var, rel)                              \
  const std::string var = ::coco::llm::test::shared_model(rel);   \
  if (var.empty())                                                \
  GTEST_SKIP() << "shared model " << (rel) << " not found under " \
               << COCO_SHARED_DIR "/models (see shared/models/README.md)"

class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = (std::filesystem::temp_directory_path() /
             ("coco_llm_test_" + std::to_string(rd()) + std::to_string(rd())))
                .string();
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  std::string write(const std::string& name, const std::string& bytes) const {
    std::ofstream(file(name), std::ios::binary) << bytes;
    return file(name);
  }

 private:
  std::string path_;
};

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct VocabCase {
  std::string text;
  std::string expected;  // space-separated ids
};

/// llama.cpp's test-tokenizer-0 format: inputs separated by "\n__ggml_vocab_test__\n"
/// (one after every input, the last included), one output line per input.
inline std::vector<VocabCase> read_vocab_cases(const std::string& inp, const std::string& out) {
  const std::string text = read_bytes(inp);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<VocabCase> cases;
  for (size_t start = 0; start < text.size();) {
    const size_t end = text.find(sep, start);
    if (end == std::string::npos) break;
    cases.push_back({text.substr(start, end - start), ""});
    start = end + sep.size();
  }
  std::istringstream lines(read_bytes(out));
  std::string line;
  for (auto& c : cases) {
    std::getline(lines, line);
    const auto first = line.find_first_not_of(' ');
    c.expected = first == std::string::npos ? "" : line.substr(first);
  }
  return cases;
}

inline std::string join(const std::vector<int64_t>& ids) {
  std::string s;
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? " " : "") + std::to_string(ids[i]);
  return s;
}

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

/// Runs coco-llm with `args` (shell-quoted by the caller), stdin from `stdin_file` if given.
inline CommandResult run_tool(const std::string& args, const std::string& stdin_file = "") {
  TempDir tmp;
  const std::string cmd = std::string(COCO_LLM_TOOL) + " " + args +
                          (stdin_file.empty() ? " </dev/null" : " <'" + stdin_file + "'") + " >'" +
                          tmp.file("out") + "' 2>'" + tmp.file("err") + "'";
  const int rc = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = read_bytes(tmp.file("out"));
  r.err = read_bytes(tmp.file("err"));
  return r;
}

/// Builds GGUF bytes field by field.
class GgufBuilder {
 public:
  explicit GgufBuilder(uint32_t version = 3, uint64_t alignment = 32) : alignment_(alignment) {
    head_ += "GGUF";
    put(head_, version);
  }
  template <typename T>
  static void put(std::string& s, T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    s.append(b, sizeof(T));
  }
  static void put_str(std::string& s, const std::string& v) {
    put<uint64_t>(s, v.size());
    s += v;
  }
  template <typename T>
  void kv(const std::string& key, uint32_t type, T v) {
    put_str(kv_, key);
    put(kv_, type);
    put(kv_, v);
    ++n_kv_;
  }
  void kv_str(const std::string& key, const std::string& v) {
    put_str(kv_, key);
    put<uint32_t>(kv_, 8);
    put_str(kv_, v);
    ++n_kv_;
  }
  void kv_str_array(const std::string& key, const std::vector<std::string>& v) {
    put_str(kv_, key);
    put<uint32_t>(kv_, 9);
    put<uint32_t>(kv_, 8);
    put<uint64_t>(kv_, v.size());
    for (const auto& s : v) put_str(kv_, s);
    ++n_kv_;
  }
  template <typename T>
  void kv_array(const std::string& key, uint32_t elem_type, const std::vector<T>& v) {
    put_str(kv_, key);
    put<uint32_t>(kv_, 9);
    put<uint32_t>(kv_, elem_type);
    put<uint64_t>(kv_, v.size());
    for (const auto& x : v) put(kv_, x);
    ++n_kv_;
  }
  /// Raw kv bytes for odd cases.
  void kv_raw(const std::string& bytes) {
    kv_ += bytes;
    ++n_kv_;
  }
  void tensor(const std::string& name, const std::vector<uint64_t>& ne, uint32_t type,
              const std::string& data) {
    while (data_.size() % alignment_ != 0) data_.push_back('\0');
    put_str(infos_, name);
    put<uint32_t>(infos_, static_cast<uint32_t>(ne.size()));
    for (auto d : ne) put<uint64_t>(infos_, d);
    put<uint32_t>(infos_, type);
    put<uint64_t>(infos_, data_.size());
    data_ += data;
    ++n_tensors_;
  }
  std::string bytes() const {
    std::string s = head_;
    put<uint64_t>(s, n_tensors_);
    put<uint64_t>(s, n_kv_);
    s += kv_;
    s += infos_;
    while (s.size() % alignment_ != 0) s.push_back('\0');
    return s + data_;
  }

 private:
  uint64_t alignment_;
  std::string head_, kv_, infos_, data_;
  uint64_t n_kv_ = 0, n_tensors_ = 0;
};

template <typename T>
std::string raw_bytes(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

}  // namespace coco::llm::test

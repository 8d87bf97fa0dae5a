// The table of targets and the helpers of input.h.
#include "targets.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "input.h"

namespace coco::fuzz {

const std::vector<Target>& targets() {
  static const std::vector<Target> all = {
      {"gguf", gguf, nullptr},
      {"dequant", dequant, nullptr},
      {"safetensors", safetensors, safetensors_seeds},
      {"tokenizer_gguf", tokenizer_gguf, nullptr},
      {"tokenizer_json", tokenizer_json, nullptr},
      {"lora", lora, lora_seeds},
      {"checkpoint", checkpoint, checkpoint_seeds},
      {"config", config, nullptr},
      {"dataset", dataset, nullptr},
      {"recbole", recbole, nullptr},
      {"amazon", amazon, nullptr},
  };
  return all;
}

const Target* find_target(std::string_view name) {
  for (const auto& t : targets())
    if (name == t.name) return &t;
  return nullptr;
}

const std::filesystem::path& work_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::path("/dev/shm") / ("coco-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    std::atexit([] { std::filesystem::remove_all(work_dir()); });
    return d;
  }();
  return dir;
}

std::string write_file(const std::string& name, std::string_view bytes) {
  const std::string path = (work_dir() / name).string();
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

std::vector<std::string_view> split_parts(std::string_view input, size_t n) {
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < n) {
    const size_t cut = input.find("\n----\n");
    if (cut == std::string_view::npos) break;
    parts.push_back(input.substr(0, cut));
    input.remove_prefix(cut + 6);
  }
  parts.push_back(input);
  parts.resize(n);
  return parts;
}

}  // namespace coco::fuzz

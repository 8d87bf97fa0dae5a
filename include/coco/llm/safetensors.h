// safetensors reader and writer: single files and sharded checkpoints
// (model.safetensors.index.json). F32, F16, BF16, I64 and I32 (the integer types for index
// tensors, never weights: the loaders refuse them); every header offset and size is checked
// against the file before reading. Not a model loader: see llama_loader.h.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace coco::llm {

/// One tensor of a safetensors file.
struct SafetensorsEntry {
  std::string name;
  torch::Dtype dtype = torch::kFloat32;
  std::vector<int64_t> shape;
  uint64_t offset = 0;  // absolute byte offset in the file
  uint64_t nbytes = 0;
};

/// One open .safetensors file, header validated.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return path_; }
  const std::map<std::string, SafetensorsEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool has(const std::string& name) const { return entries_.count(name) != 0; }
  /// The entry of a tensor; ModelError when absent.
  const SafetensorsEntry& entry(const std::string& name) const;
  /// Reads a tensor in its stored dtype; ModelError when absent.
  torch::Tensor load(const std::string& name);
  /// Reads a tensor straight into `out`: contiguous, on the CPU, of its dtype and size.
  void read_into(const std::string& name, const torch::Tensor& out);

 private:
  std::string path_;
  std::ifstream in_;
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

/// A checkpoint: one .safetensors file, or the shards listed by a
/// model.safetensors.index.json ("weight_map": tensor → shard file).
class SafetensorsCheckpoint {
 public:
  /// `path`: a .safetensors file, an index .json, or a directory holding either.
  explicit SafetensorsCheckpoint(const std::string& path);

  /// Directory of the checkpoint (where config.json lives).
  const std::string& directory() const { return dir_; }
  std::vector<std::string> names() const;
  bool has(const std::string& name) const { return shard_of_.count(name) != 0; }
  torch::Tensor load(const std::string& name);  // stored dtype
  /// The shard holding a tensor; ModelError when no shard has it.
  SafetensorsFile& shard(const std::string& name);

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, size_t> shard_of_;
};

/// Writes tensors (made contiguous, moved to CPU) with optional string metadata.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace coco::llm

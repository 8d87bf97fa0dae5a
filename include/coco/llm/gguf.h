// GGUF (v2/v3) reader: metadata of every value type, the tensor directory, and tensor data as
// float32 (F32, F16, BF16 and Q8_0, dequantised at load). Every header field, size and offset
// is checked against the file before anything is allocated or read. Not a writer, not a model.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace coco::llm {

/// GGUF metadata value types (gguf_type in ggml).
enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

/// The ggml tensor types this reader can load; other type numbers are rejected by name.
enum class GgmlType : uint32_t { kF32 = 0, kF16 = 1, kQ8_0 = 8, kBF16 = 30 };

/// One metadata entry. Arrays become JSON arrays; array_type says what their elements were.
struct GgufMetadataValue {
  GgufValueType type = GgufValueType::kUint8;
  GgufValueType array_type = GgufValueType::kUint8;  // meaningful when type == kArray
  nlohmann::json value;
};

/// One entry of the tensor directory.
struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ggml dims, fastest-varying first ([ne0, ne1, ...])
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;  // absolute byte offset of the data in the file
  uint64_t nbytes = 0;
  /// Row-major torch shape: ne reversed ({ne1, ne0} is a Linear's [out, in]).
  std::vector<int64_t> shape() const { return {ne.rbegin(), ne.rend()}; }
};

/// An open GGUF file: header parsed and validated, tensor data read on demand.
class GgufFile {
 public:
  /// Throws coco::ModelError naming the file and the place for anything malformed.
  explicit GgufFile(const std::string& path);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t file_size() const { return file_size_; }

  const std::map<std::string, GgufMetadataValue>& metadata() const { return metadata_; }
  bool has(const std::string& key) const { return metadata_.count(key) != 0; }
  /// The value of a key; throws ModelError naming the key when absent.
  const nlohmann::json& at(const std::string& key) const;
  /// An integer key (any integer type); ModelError when absent or of another type.
  int64_t get_int(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t def) const;
  double get_float(const std::string& key, double def) const;
  std::string get_string(const std::string& key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find_tensor(const std::string& name) const;
  /// Reads one tensor as float32 in its row-major shape.
  torch::Tensor load(const std::string& name);  // [ne_{n-1}, ..., ne0]
  torch::Tensor load(const std::string& name, torch::ScalarType dtype);
  torch::Tensor load_rows(const std::string& name, int64_t row_begin, int64_t rows,
                          torch::ScalarType dtype);

 private:
  std::string path_;
  std::ifstream in_;
  uint64_t file_size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::map<std::string, GgufMetadataValue> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> index_;
};

/// Name of a ggml type number ("F32", "Q4_K", ... or "type 77").
std::string ggml_type_name(uint32_t type);

/// True when the file starts with the GGUF magic.
bool is_gguf_file(const std::string& path);

}  // namespace coco::llm

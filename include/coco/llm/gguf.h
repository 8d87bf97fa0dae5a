// GGUF (v2/v3) reader: metadata of every value type, the tensor directory of every ggml tensor
// type, and tensor data dequantised at load (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
// Q2_K..Q6_K) into the dtype asked for. Every header field, size and offset is checked against
// the file before anything is allocated or read. Not a writer, not a quantiser, not a model.
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

/// Every ggml tensor type number gguf-py lists (GGML_QUANT_SIZES). A file may hold any of them;
/// loading a tensor of a type without a dequantiser (IQ*, TQ*, Q8_1, Q8_K, integers, F64) is a
/// ModelError naming the tensor and the type.
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kIQ2_XXS = 16,
  kIQ2_XS = 17,
  kIQ3_XXS = 18,
  kIQ1_S = 19,
  kIQ4_NL = 20,
  kIQ3_S = 21,
  kIQ2_S = 22,
  kIQ4_XS = 23,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kIQ1_M = 29,
  kBF16 = 30,
  kTQ1_0 = 34,
  kTQ2_0 = 35,
};

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
  uint64_t nbytes = 0;  // ne0 / block * bytes per block * the other dims
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
  /// Reads one tensor in `dtype`, dequantising a bounded chunk at a time straight into the
  /// result (no whole-tensor float32 copy). ModelError when the type has no dequantiser.
  torch::Tensor load(const std::string& name, torch::ScalarType dtype);
  /// Rows [row_begin, row_begin + rows) of dim 0 of the row-major shape, reading only their
  /// bytes.
  torch::Tensor load_rows(const std::string& name, int64_t row_begin, int64_t rows,
                          torch::ScalarType dtype);  // [rows, ...]
  /// Dequantises rows [row_begin, row_begin + rows) straight into `out` (contiguous, on the
  /// CPU, any floating dtype, rows × row elements long), a chunk at a time.
  void read_rows_into(const std::string& name, int64_t row_begin, int64_t rows,
                      const torch::Tensor& out);

 private:
  std::string path_;
  std::ifstream in_;
  uint64_t file_size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::map<std::string, GgufMetadataValue> metadata_;
  std::vector<GgufTensorInfo> tensors_;
  std::map<std::string, size_t> index_;

  /// The tensor, or ModelError when it is missing or its type has no dequantiser.
  const GgufTensorInfo& loadable_tensor(const std::string& name) const;
  /// Dequantises flat elements [first, first + count) of `t` into `out` ([count], any dtype).
  void read_elements(const GgufTensorInfo& t, int64_t first, int64_t count, torch::Tensor out);
};

/// Name of a ggml type number ("F32", "Q4_K", "IQ2_XXS", ... or "type 77" for an unknown one).
std::string ggml_type_name(uint32_t type);

/// True when the file starts with the GGUF magic.
bool is_gguf_file(const std::string& path);

}  // namespace coco::llm

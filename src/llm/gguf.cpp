// GGUF reader. The header is parsed through a cursor that knows how many bytes the file has
// left, so no length read from the file can make us allocate or read more than the file holds.
#include "coco/llm/gguf.h"

#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cstring>
#include <limits>

#include "coco/common/error.h"

namespace coco::llm {
namespace {

constexpr uint64_t kMaxDims = 4;  // GGML_MAX_DIMS
constexpr int64_t kQ8Block = 32;
constexpr uint64_t kQ8BlockBytes = 34;  // fp16 scale + 32 int8

/// Bounds-checked little-endian reads from the header of a file.
class Cursor {
 public:
  Cursor(std::ifstream& in, const std::string& path, uint64_t size)
      : in_(in), path_(path), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }

  [[noreturn]] void fail(const std::string& what) const {
    throw ModelError(path_ + ": GGUF offset " + std::to_string(pos_) + ": " + what);
  }

  void read(void* dst, uint64_t n, const char* what) {
    if (n > left()) {
      fail(std::string("file ends while reading ") + what + " (" + std::to_string(n) +
           " bytes needed, " + std::to_string(left()) + " left)");
    }
    in_.read(static_cast<char*>(dst), static_cast<std::streamsize>(n));
    if (!in_) fail(std::string("read error while reading ") + what);
    pos_ += n;
  }

  template <typename T>
  T get(const char* what) {
    T v;
    read(&v, sizeof(T), what);
    return v;
  }

  std::string string(const char* what) {
    const auto n = get<uint64_t>(what);
    if (n > left()) {
      fail(std::string(what) + " has length " + std::to_string(n) + " but only " +
           std::to_string(left()) + " bytes are left in the file");
    }
    std::string s(n, '\0');
    read(s.data(), n, what);
    return s;
  }

 private:
  std::ifstream& in_;
  const std::string& path_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

/// Smallest encoded size of a value of a type (used to bound array counts before allocating).
uint64_t min_size(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
    case GgufValueType::kString:
      return 8;
    case GgufValueType::kArray:
      return 12;
  }
  return 1;
}

bool valid_value_type(uint32_t t) { return t <= 12; }

nlohmann::json read_scalar(Cursor& c, GgufValueType t, const std::string& key) {
  switch (t) {
    case GgufValueType::kUint8:
      return c.get<uint8_t>("uint8 value");
    case GgufValueType::kInt8:
      return c.get<int8_t>("int8 value");
    case GgufValueType::kUint16:
      return c.get<uint16_t>("uint16 value");
    case GgufValueType::kInt16:
      return c.get<int16_t>("int16 value");
    case GgufValueType::kUint32:
      return c.get<uint32_t>("uint32 value");
    case GgufValueType::kInt32:
      return c.get<int32_t>("int32 value");
    case GgufValueType::kFloat32:
      return c.get<float>("float32 value");
    case GgufValueType::kUint64:
      return c.get<uint64_t>("uint64 value");
    case GgufValueType::kInt64:
      return c.get<int64_t>("int64 value");
    case GgufValueType::kFloat64:
      return c.get<double>("float64 value");
    case GgufValueType::kBool: {
      const auto b = c.get<uint8_t>("bool value");
      if (b > 1)
        c.fail("metadata key '" + key + "': bool value " + std::to_string(b) + " is not 0 or 1");
      return b == 1;
    }
    case GgufValueType::kString:
      return c.string("string value");
    case GgufValueType::kArray:
      break;
  }
  c.fail("metadata key '" + key + "': nested arrays are not supported");
}

GgufMetadataValue read_value(Cursor& c, const std::string& key) {
  GgufMetadataValue v;
  const auto type = c.get<uint32_t>("metadata value type");
  if (!valid_value_type(type)) {
    c.fail("metadata key '" + key + "': unknown value type " + std::to_string(type) +
           " (expected 0..12)");
  }
  v.type = static_cast<GgufValueType>(type);
  if (v.type != GgufValueType::kArray) {
    v.value = read_scalar(c, v.type, key);
    return v;
  }
  const auto elem = c.get<uint32_t>("array element type");
  if (!valid_value_type(elem) || elem == static_cast<uint32_t>(GgufValueType::kArray)) {
    c.fail("metadata key '" + key + "': unsupported array element type " + std::to_string(elem));
  }
  v.array_type = static_cast<GgufValueType>(elem);
  const auto n = c.get<uint64_t>("array length");
  if (n > c.left() / min_size(v.array_type)) {
    c.fail("metadata key '" + key + "': array of " + std::to_string(n) +
           " elements does not fit in the " + std::to_string(c.left()) + " bytes left");
  }
  v.value = nlohmann::json::array();
  auto& arr = v.value.get_ref<nlohmann::json::array_t&>();
  arr.reserve(n);
  for (uint64_t i = 0; i < n; ++i) arr.push_back(read_scalar(c, v.array_type, key));
  return v;
}

uint64_t tensor_bytes(const GgufTensorInfo& t, Cursor& c) {
  uint64_t numel = 1;
  for (int64_t d : t.ne) {
    if (d <= 0)
      c.fail("tensor '" + t.name + "': dimension " + std::to_string(d) + " is not positive");
    if (static_cast<uint64_t>(d) > (uint64_t{1} << 40) / numel) {
      c.fail("tensor '" + t.name + "': element count overflows");
    }
    numel *= static_cast<uint64_t>(d);
  }
  switch (t.type) {
    case GgmlType::kF32:
      return numel * 4;
    case GgmlType::kF16:
    case GgmlType::kBF16:
      return numel * 2;
    case GgmlType::kQ8_0:
      if (t.ne[0] % kQ8Block != 0) {
        c.fail("tensor '" + t.name + "': Q8_0 row length " + std::to_string(t.ne[0]) +
               " is not a multiple of 32");
      }
      return numel / kQ8Block * kQ8BlockBytes;
  }
  return 0;
}

}  // namespace

std::string ggml_type_name(uint32_t type) {
  static const char* const kNames[] = {
      "F32",     "F16",    "Q4_0",    "Q4_1",  "Q4_2",   "Q4_3",  "Q5_0",  "Q5_1",
      "Q8_0",    "Q8_1",   "Q2_K",    "Q3_K",  "Q4_K",   "Q5_K",  "Q6_K",  "Q8_K",
      "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS",
      "I8",      "I16",    "I32",     "I64",   "F64",    "IQ1_M", "BF16"};
  if (type < sizeof(kNames) / sizeof(kNames[0])) return kNames[type];
  return "type " + std::to_string(type);
}

bool is_gguf_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  return in && std::memcmp(magic, "GGUF", 4) == 0;
}

GgufFile::GgufFile(const std::string& path) : path_(path), in_(path, std::ios::binary) {
  if (!in_) throw ModelError(path + ": cannot open GGUF file");
  in_.seekg(0, std::ios::end);
  file_size_ = static_cast<uint64_t>(in_.tellg());
  in_.seekg(0);
  Cursor c(in_, path_, file_size_);

  char magic[4];
  c.read(magic, 4, "magic");
  if (std::memcmp(magic, "GGUF", 4) != 0) c.fail("bad magic (expected \"GGUF\")");
  version_ = c.get<uint32_t>("version");
  if (version_ != 2 && version_ != 3) {
    c.fail("unsupported GGUF version " + std::to_string(version_) + " (expected 2 or 3)");
  }
  const auto n_tensors = c.get<uint64_t>("tensor count");
  const auto n_kv = c.get<uint64_t>("metadata count");
  // A key is at least 8 (length) + 4 (type) + 1 bytes; a tensor info at least 8 + 4 + 8 + 4 + 8.
  if (n_kv > c.left() / 13) {
    c.fail("metadata count " + std::to_string(n_kv) + " cannot fit in the file");
  }
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.string("metadata key");
    if (metadata_.count(key)) c.fail("duplicate metadata key '" + key + "'");
    metadata_[key] = read_value(c, key);
  }
  if (n_tensors > c.left() / 32) {
    c.fail("tensor count " + std::to_string(n_tensors) + " cannot fit in the file");
  }
  if (has("general.alignment")) {
    const auto& a = metadata_.at("general.alignment");
    if (a.type != GgufValueType::kUint32 || a.value.get<uint64_t>() == 0 ||
        (a.value.get<uint64_t>() & (a.value.get<uint64_t>() - 1)) != 0) {
      throw ModelError(path_ +
                       ": metadata key 'general.alignment': expected a power of two "
                       "uint32, got " +
                       a.value.dump());
    }
    alignment_ = a.value.get<uint64_t>();
  }
  tensors_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = c.string("tensor name");
    if (index_.count(t.name)) c.fail("duplicate tensor name '" + t.name + "'");
    const auto n_dims = c.get<uint32_t>("tensor dimension count");
    if (n_dims == 0 || n_dims > kMaxDims) {
      c.fail("tensor '" + t.name + "': " + std::to_string(n_dims) + " dimensions (expected 1..4)");
    }
    for (uint32_t d = 0; d < n_dims; ++d) {
      const auto ne = c.get<uint64_t>("tensor dimension");
      if (ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        c.fail("tensor '" + t.name + "': dimension " + std::to_string(ne) + " too large");
      }
      t.ne.push_back(static_cast<int64_t>(ne));
    }
    const auto type = c.get<uint32_t>("tensor type");
    if (type != 0 && type != 1 && type != 8 && type != 30) {
      c.fail("tensor '" + t.name + "': unsupported tensor type " + ggml_type_name(type) +
             " (supported: F32, F16, BF16, Q8_0)");
    }
    t.type = static_cast<GgmlType>(type);
    t.offset = c.get<uint64_t>("tensor data offset");
    if (t.offset % alignment_ != 0) {
      c.fail("tensor '" + t.name + "': data offset " + std::to_string(t.offset) +
             " is not a multiple of the alignment " + std::to_string(alignment_));
    }
    t.nbytes = tensor_bytes(t, c);
    index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
  // Data starts at the next multiple of the alignment after the header.
  const uint64_t data_start = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  for (auto& t : tensors_) {
    if (t.offset > file_size_ || data_start > file_size_ - t.offset ||
        t.nbytes > file_size_ - t.offset - data_start) {
      throw ModelError(path_ + ": GGUF tensor '" + t.name + "': data [" +
                       std::to_string(data_start + t.offset) + ", +" + std::to_string(t.nbytes) +
                       ") runs past the end of the file (" + std::to_string(file_size_) +
                       " bytes)");
    }
    t.offset += data_start;
  }
}

const nlohmann::json& GgufFile::at(const std::string& key) const {
  auto it = metadata_.find(key);
  if (it == metadata_.end())
    throw ModelError(path_ + ": GGUF metadata key '" + key + "' is missing");
  return it->second.value;
}

int64_t GgufFile::get_int(const std::string& key) const {
  const auto& v = at(key);
  if (!v.is_number_integer() && !v.is_number_unsigned()) {
    throw ModelError(path_ + ": GGUF metadata key '" + key + "': expected an integer, got " +
                     v.dump());
  }
  if (v.is_number_unsigned() &&
      v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    throw ModelError(path_ + ": GGUF metadata key '" + key + "': value too large");
  }
  return v.get<int64_t>();
}

int64_t GgufFile::get_int(const std::string& key, int64_t def) const {
  return has(key) ? get_int(key) : def;
}

double GgufFile::get_float(const std::string& key, double def) const {
  if (!has(key)) return def;
  const auto& v = at(key);
  if (!v.is_number()) {
    throw ModelError(path_ + ": GGUF metadata key '" + key + "': expected a number, got " +
                     v.dump());
  }
  return v.get<double>();
}

std::string GgufFile::get_string(const std::string& key) const {
  const auto& v = at(key);
  if (!v.is_string()) {
    throw ModelError(path_ + ": GGUF metadata key '" + key + "': expected a string, got " +
                     v.dump().substr(0, 80));
  }
  return v.get<std::string>();
}

const GgufTensorInfo* GgufFile::find_tensor(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

torch::Tensor GgufFile::load(const std::string& name) {
  const GgufTensorInfo* t = find_tensor(name);
  if (!t) throw ModelError(path_ + ": GGUF tensor '" + name + "' is missing");
  std::vector<uint8_t> raw(t->nbytes);
  in_.clear();
  in_.seekg(static_cast<std::streamoff>(t->offset));
  in_.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(t->nbytes));
  if (!in_) throw ModelError(path_ + ": GGUF tensor '" + name + "': read error");
  const auto shape = t->shape();
  const auto opts = torch::TensorOptions().dtype(torch::kFloat32);
  switch (t->type) {
    case GgmlType::kF32: {
      auto out = torch::empty(shape, opts);
      std::memcpy(out.data_ptr(), raw.data(), raw.size());
      return out;
    }
    case GgmlType::kF16: {
      auto out = torch::empty(shape, torch::TensorOptions().dtype(torch::kFloat16));
      std::memcpy(out.data_ptr(), raw.data(), raw.size());
      return out.to(torch::kFloat32);
    }
    case GgmlType::kBF16: {
      auto out = torch::empty(shape, torch::TensorOptions().dtype(torch::kBFloat16));
      std::memcpy(out.data_ptr(), raw.data(), raw.size());
      return out.to(torch::kFloat32);
    }
    case GgmlType::kQ8_0: {
      auto out = torch::empty(shape, opts);
      float* dst = out.data_ptr<float>();
      const uint64_t blocks = t->nbytes / kQ8BlockBytes;
      for (uint64_t b = 0; b < blocks; ++b) {
        const uint8_t* blk = raw.data() + b * kQ8BlockBytes;
        c10::Half d;
        std::memcpy(&d, blk, 2);
        const float scale = static_cast<float>(d);
        const auto* q = reinterpret_cast<const int8_t*>(blk + 2);
        for (int64_t i = 0; i < kQ8Block; ++i) dst[b * kQ8Block + i] = scale * q[i];
      }
      return out;
    }
  }
  throw ModelError(path_ + ": GGUF tensor '" + name + "': unsupported type");
}

torch::Tensor GgufFile::load(const std::string& name, torch::ScalarType dtype) {
  return load(name).to(dtype);
}

torch::Tensor GgufFile::load_rows(const std::string& name, int64_t row_begin, int64_t rows,
                                  torch::ScalarType dtype) {
  return load(name).narrow(0, row_begin, rows).to(dtype);
}

}  // namespace coco::llm

// GGUF reader. The header is parsed through a cursor that knows how many bytes the file has
// left, so no length read from the file can make us allocate or read more than the file holds.
#include "coco/llm/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "coco/common/error.h"
#include "ggml_quants.h"

namespace coco::llm {
namespace {

constexpr uint64_t kMaxDims = 4;  // GGML_MAX_DIMS
// Elements dequantised per step of a load: bounds the source read (at most 4 bytes an element
// for the loadable types) and the float32 staging buffer to 16 MiB each.
constexpr int64_t kChunkElements = int64_t{1} << 22;

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
  const ggml::TypeTraits& tt = *ggml::type_traits(static_cast<uint32_t>(t.type));
  if (t.ne[0] % tt.block != 0) {
    c.fail("tensor '" + t.name + "': " + tt.name + " row length " + std::to_string(t.ne[0]) +
           " is not a multiple of " + std::to_string(tt.block) + " (the " + tt.name +
           " block size)");
  }
  return numel / static_cast<uint64_t>(tt.block) * static_cast<uint64_t>(tt.bytes);
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

struct Preamble {
  uint32_t version;
  uint64_t n_tensors;
  uint64_t n_kv;
};

// Magic, version and the two counts at the start of the file.
Preamble read_preamble(Cursor& c) {
  char magic[4];
  c.read(magic, 4, "magic");
  if (std::memcmp(magic, "GGUF", 4) != 0) c.fail("bad magic (expected \"GGUF\")");
  Preamble p;
  p.version = c.get<uint32_t>("version");
  if (p.version != 2 && p.version != 3) {
    c.fail("unsupported GGUF version " + std::to_string(p.version) + " (expected 2 or 3)");
  }
  p.n_tensors = c.get<uint64_t>("tensor count");
  p.n_kv = c.get<uint64_t>("metadata count");
  return p;
}

void read_metadata(Cursor& c, uint64_t n_kv, std::map<std::string, GgufMetadataValue>& out) {
  // A key is at least 8 (length) + 4 (type) + 1 bytes.
  if (n_kv > c.left() / 13) {
    c.fail("metadata count " + std::to_string(n_kv) + " cannot fit in the file");
  }
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.string("metadata key");
    if (out.count(key)) c.fail("duplicate metadata key '" + key + "'");
    out[key] = read_value(c, key);
  }
}

// general.alignment when present (a power of two), 32 otherwise.
uint64_t read_alignment(const std::string& path,
                        const std::map<std::string, GgufMetadataValue>& metadata) {
  const auto it = metadata.find("general.alignment");
  if (it == metadata.end()) return 32;
  const auto& a = it->second;
  if (a.type != GgufValueType::kUint32 || a.value.get<uint64_t>() == 0 ||
      (a.value.get<uint64_t>() & (a.value.get<uint64_t>() - 1)) != 0) {
    throw ModelError(path +
                     ": metadata key 'general.alignment': expected a power of two "
                     "uint32, got " +
                     a.value.dump());
  }
  return a.value.get<uint64_t>();
}

// One entry of the tensor directory; its offset is still relative to the data section.
GgufTensorInfo read_tensor_info(Cursor& c, uint64_t alignment,
                                const std::map<std::string, size_t>& index) {
  GgufTensorInfo t;
  t.name = c.string("tensor name");
  if (index.count(t.name)) c.fail("duplicate tensor name '" + t.name + "'");
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
  if (!ggml::type_traits(type))
    c.fail("tensor '" + t.name + "': unknown ggml tensor type " + std::to_string(type));
  t.type = static_cast<GgmlType>(type);
  t.offset = c.get<uint64_t>("tensor data offset");
  if (t.offset % alignment != 0) {
    c.fail("tensor '" + t.name + "': data offset " + std::to_string(t.offset) +
           " is not a multiple of the alignment " + std::to_string(alignment));
  }
  t.nbytes = tensor_bytes(t, c);
  return t;
}

// Makes every offset absolute, checking that each tensor's data lies inside the file.
void place_tensor_data(const std::string& path, uint64_t file_size, uint64_t data_start,
                       std::vector<GgufTensorInfo>& tensors) {
  for (auto& t : tensors) {
    const bool starts_inside = t.offset <= file_size && data_start <= file_size - t.offset;
    const uint64_t available = starts_inside ? file_size - t.offset - data_start : 0;
    if (t.nbytes > available) {
      throw ModelError(path + ": GGUF tensor '" + t.name + "' (" +
                       ggml_type_name(static_cast<uint32_t>(t.type)) + " " + shape_str(t.shape()) +
                       "): data at offset " +
                       (starts_inside
                            ? std::to_string(data_start + t.offset)
                            : std::to_string(data_start) + " + " + std::to_string(t.offset)) +
                       " runs past the end of the file: " + std::to_string(t.nbytes) +
                       " bytes expected, " + std::to_string(available) + " available");
    }
    t.offset += data_start;
  }
}

}  // namespace

std::string ggml_type_name(uint32_t type) {
  const ggml::TypeTraits* tt = ggml::type_traits(type);
  return tt ? tt->name : "type " + std::to_string(type);
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
  const Preamble pre = read_preamble(c);
  version_ = pre.version;
  read_metadata(c, pre.n_kv, metadata_);
  // A tensor info is at least 8 + 4 + 8 + 4 + 8 bytes.
  if (pre.n_tensors > c.left() / 32) {
    c.fail("tensor count " + std::to_string(pre.n_tensors) + " cannot fit in the file");
  }
  alignment_ = read_alignment(path_, metadata_);
  tensors_.reserve(pre.n_tensors);
  for (uint64_t i = 0; i < pre.n_tensors; ++i) {
    GgufTensorInfo t = read_tensor_info(c, alignment_, index_);
    index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
  // Data starts at the next multiple of the alignment after the header.
  const uint64_t data_start = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  place_tensor_data(path_, file_size_, data_start, tensors_);
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

const GgufTensorInfo& GgufFile::loadable_tensor(const std::string& name) const {
  const GgufTensorInfo* t = find_tensor(name);
  if (!t) throw ModelError(path_ + ": GGUF tensor '" + name + "' is missing");
  const ggml::TypeTraits& tt = *ggml::type_traits(static_cast<uint32_t>(t->type));
  if (!tt.dequantize) {
    throw ModelError(path_ + ": GGUF tensor '" + name + "': type " + tt.name +
                     " is not supported (supported: " + ggml::loadable_type_names() + ")");
  }
  return *t;
}

void GgufFile::read_elements(const GgufTensorInfo& t, int64_t first, int64_t count,
                             torch::Tensor out) {
  const ggml::TypeTraits& tt = *ggml::type_traits(static_cast<uint32_t>(t.type));
  // Whole blocks covering [first, first + count), a chunk of them at a time.
  const int64_t chunk_blocks = std::max<int64_t>(1, kChunkElements / tt.block);
  const int64_t end_block = (first + count + tt.block - 1) / tt.block;
  std::vector<uint8_t> raw;
  std::vector<float> staged;
  for (int64_t done = 0; done < count;) {
    const int64_t block = (first + done) / tt.block;
    const int64_t blocks = std::min(chunk_blocks, end_block - block);
    raw.resize(static_cast<size_t>(blocks * tt.bytes));
    staged.resize(static_cast<size_t>(blocks * tt.block));
    in_.clear();
    in_.seekg(static_cast<std::streamoff>(t.offset + static_cast<uint64_t>(block * tt.bytes)));
    in_.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(raw.size()));
    if (!in_) {
      throw ModelError(path_ + ": GGUF tensor '" + t.name + "': read error at block " +
                       std::to_string(block) + " (was the file changed after it was opened?)");
    }
    tt.dequantize(raw.data(), staged.data(), blocks);
    const int64_t skip = first + done - block * tt.block;
    const int64_t n = std::min(blocks * tt.block - skip, count - done);
    out.narrow(0, done, n).copy_(torch::from_blob(staged.data() + skip, {n}, torch::kFloat32));
    done += n;
  }
}

torch::Tensor GgufFile::load(const std::string& name) { return load(name, torch::kFloat32); }

torch::Tensor GgufFile::load(const std::string& name, torch::ScalarType dtype) {
  const GgufTensorInfo& t = loadable_tensor(name);
  auto out = torch::empty(t.shape(), torch::TensorOptions().dtype(dtype));
  read_elements(t, 0, out.numel(), out.view(-1));
  return out;
}

torch::Tensor GgufFile::load_rows(const std::string& name, int64_t row_begin, int64_t rows,
                                  torch::ScalarType dtype) {
  auto shape = loadable_tensor(name).shape();
  shape[0] = std::max<int64_t>(0, rows);
  auto out = torch::empty(shape, torch::TensorOptions().dtype(dtype));
  read_rows_into(name, row_begin, rows, out);
  return out;
}

void GgufFile::read_rows_into(const std::string& name, int64_t row_begin, int64_t rows,
                              const torch::Tensor& out) {
  const GgufTensorInfo& t = loadable_tensor(name);
  const auto shape = t.shape();
  if (row_begin < 0 || rows < 0 || row_begin > shape[0] - rows) {
    throw ModelError(path_ + ": GGUF tensor '" + name + "' of shape " + shape_str(shape) +
                     ": rows [" + std::to_string(row_begin) + ", " +
                     std::to_string(row_begin + rows) + ") are out of range");
  }
  int64_t row_elements = 1;
  for (size_t d = 1; d < shape.size(); ++d) row_elements *= shape[d];
  TORCH_CHECK(out.device().is_cpu() && out.is_contiguous() && out.numel() == rows * row_elements,
              "read_rows_into: '", name, "' needs a contiguous CPU tensor of ", rows * row_elements,
              " elements");
  read_elements(t, row_begin * row_elements, rows * row_elements, out.view(-1));
}

}  // namespace coco::llm

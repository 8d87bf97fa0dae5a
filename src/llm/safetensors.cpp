// safetensors: an 8-byte little-endian header length, a JSON header, then raw data.
// The header is never trusted: its length, every dtype, shape and data_offsets pair is
// checked against the data section before a byte of tensor data is read.
#include "coco/llm/safetensors.h"

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "coco/common/error.h"
#include "coco/config/config.h"

namespace coco::llm {
namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

constexpr uint64_t kMaxHeader = uint64_t{100} << 20;  // the format's own 100 MB limit

struct DtypeInfo {
  const char* name;
  torch::Dtype dtype;
  uint64_t size;
};
const DtypeInfo kDtypes[] = {{"F32", torch::kFloat32, 4},
                             {"F16", torch::kFloat16, 2},
                             {"BF16", torch::kBFloat16, 2},
                             {"I64", torch::kInt64, 8},
                             {"I32", torch::kInt32, 4}};

const char* dtype_name(torch::Dtype d) {
  for (const auto& info : kDtypes) {
    if (info.dtype == d) return info.name;
  }
  return nullptr;
}

// Errors "<file>: safetensors <where>: <what>".
struct Fail {
  const std::string& path;
  ModelError operator()(const std::string& where, const std::string& what) const {
    return ModelError(path + ": safetensors " + where + ": " + what);
  }
};

// The 8-byte header length and the JSON header after it (an object).
Json read_header(std::ifstream& in, uint64_t file_size, const Fail& fail, uint64_t& header_len) {
  header_len = 0;
  if (file_size < 8)
    throw fail("offset 0", "file has " + std::to_string(file_size) + " bytes, expected at least 8");
  in.read(reinterpret_cast<char*>(&header_len), 8);
  if (header_len > file_size - 8 || header_len > kMaxHeader) {
    throw fail("offset 0", "header length " + std::to_string(header_len) + " exceeds the file (" +
                               std::to_string(file_size) + " bytes)");
  }
  std::string text(header_len, '\0');
  in.read(text.data(), static_cast<std::streamsize>(header_len));
  if (!in) throw fail("header", "read error");
  Json header;
  std::string error;
  if (!parse_json(text, header, error)) throw fail("header", error);
  if (!header.is_object()) throw fail("header", "expected a JSON object");
  return header;
}

// One tensor's header entry, checked against the data section of `data_size` bytes that
// starts at `data_start`.
SafetensorsEntry parse_entry(const std::string& name, const Json& v, uint64_t data_start,
                             uint64_t data_size, const Fail& fail) {
  const std::string where = "tensor '" + name + "'";
  if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
      !v.contains("data_offsets")) {
    throw fail(where, "expected an object with dtype, shape and data_offsets");
  }
  SafetensorsEntry e;
  e.name = name;
  const DtypeInfo* info = nullptr;
  for (const auto& d : kDtypes) {
    if (v["dtype"].is_string() && v["dtype"].get<std::string>() == d.name) info = &d;
  }
  if (!info)
    throw fail(where,
               "unsupported dtype " + v["dtype"].dump() + " (supported: F32, F16, BF16, I64, I32)");
  e.dtype = info->dtype;
  if (!v["shape"].is_array()) throw fail(where, "shape must be an array");
  uint64_t numel = 1;
  for (const auto& d : v["shape"]) {
    if (!d.is_number_unsigned())
      throw fail(where, "shape entry " + d.dump() + " is not a non-negative integer");
    const auto n = d.get<uint64_t>();
    if (n != 0 && numel > (uint64_t{1} << 42) / n) throw fail(where, "element count overflows");
    numel *= n;
    e.shape.push_back(static_cast<int64_t>(n));
  }
  const auto& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
      !off[1].is_number_unsigned()) {
    throw fail(where, "data_offsets must be [begin, end]");
  }
  const auto begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
  if (begin > end || end > data_size) {
    throw fail(where, "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                          "] outside the data section of " + std::to_string(data_size) + " bytes");
  }
  if (end - begin != numel * info->size) {
    throw fail(where, "data_offsets span " + std::to_string(end - begin) + " bytes, expected " +
                          std::to_string(numel * info->size) + " for shape " + v["shape"].dump() +
                          " " + info->name);
  }
  e.offset = data_start + begin;
  e.nbytes = end - begin;
  return e;
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path)
    : path_(path), in_(path, std::ios::binary) {
  if (!in_) throw ModelError(path + ": cannot open safetensors file");
  in_.seekg(0, std::ios::end);
  const auto file_size = static_cast<uint64_t>(in_.tellg());
  in_.seekg(0);
  const Fail fail{path_};
  uint64_t header_len = 0;
  const Json header = read_header(in_, file_size, fail, header_len);
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = file_size - data_start;
  for (auto& [name, v] : header.items()) {
    if (name == "__metadata__") {
      if (!v.is_object()) throw fail("key '__metadata__'", "expected an object");
      for (auto& [k, s] : v.items()) {
        if (!s.is_string()) throw fail("key '__metadata__." + k + "'", "expected a string");
        metadata_[k] = s.get<std::string>();
      }
      continue;
    }
    entries_[name] = parse_entry(name, v, data_start, data_size, fail);
  }
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end())
    throw ModelError(path_ + ": safetensors tensor '" + name + "' is missing");
  return it->second;
}

torch::Tensor SafetensorsFile::load(const std::string& name) {
  auto out = torch::empty(entry(name).shape, torch::TensorOptions().dtype(entry(name).dtype));
  read_into(name, out);
  return out;
}

void SafetensorsFile::read_into(const std::string& name, const torch::Tensor& out) {
  const auto& e = entry(name);
  TORCH_CHECK(out.device().is_cpu() && out.is_contiguous() && out.scalar_type() == e.dtype &&
                  static_cast<uint64_t>(out.nbytes()) == e.nbytes,
              "read_into: '", name, "' needs a contiguous CPU tensor of its dtype and size");
  in_.clear();
  in_.seekg(static_cast<std::streamoff>(e.offset));
  in_.read(static_cast<char*>(out.data_ptr()), static_cast<std::streamsize>(e.nbytes));
  if (!in_) throw ModelError(path_ + ": safetensors tensor '" + name + "': read error");
}

SafetensorsCheckpoint::SafetensorsCheckpoint(const std::string& path) {
  fs::path p(path);
  if (fs::is_directory(p)) {
    if (fs::exists(p / "model.safetensors.index.json")) {
      p /= "model.safetensors.index.json";
    } else if (fs::exists(p / "model.safetensors")) {
      p /= "model.safetensors";
    } else {
      throw ModelError(path +
                       ": directory has neither model.safetensors nor "
                       "model.safetensors.index.json");
    }
  }
  if (!fs::exists(p)) throw ModelError(p.string() + ": no such file");
  dir_ = p.parent_path().string();
  if (dir_.empty()) dir_ = ".";
  if (p.extension() == ".json") {
    std::ifstream in(p, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    Json index;
    std::string error;
    if (!parse_json(text.str(), index, error)) throw ModelError(p.string() + ":" + error);
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
      throw ModelError(p.string() + ": key 'weight_map': expected an object tensor -> shard file");
    }
    std::map<std::string, size_t> shard_index;
    for (auto& [tensor, file] : index["weight_map"].items()) {
      if (!file.is_string())
        throw ModelError(p.string() + ": key 'weight_map." + tensor + "': expected a file name");
      const auto name = file.get<std::string>();
      if (!shard_index.count(name)) {
        shard_index[name] = shards_.size();
        shards_.push_back(std::make_unique<SafetensorsFile>((fs::path(dir_) / name).string()));
      }
      auto& shard = *shards_[shard_index[name]];
      if (!shard.has(tensor)) {
        throw ModelError(shard.path() + ": tensor '" + tensor + "' listed in " + p.string() +
                         " is missing");
      }
      shard_of_[tensor] = shard_index[name];
    }
  } else {
    shards_.push_back(std::make_unique<SafetensorsFile>(p.string()));
    for (const auto& kv : shards_[0]->entries()) shard_of_[kv.first] = 0;
  }
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> out;
  for (const auto& kv : shard_of_) out.push_back(kv.first);
  return out;
}

SafetensorsFile& SafetensorsCheckpoint::shard(const std::string& name) {
  auto it = shard_of_.find(name);
  if (it == shard_of_.end())
    throw ModelError(dir_ + ": safetensors checkpoint has no tensor '" + name + "'");
  return *shards_[it->second];
}

torch::Tensor SafetensorsCheckpoint::load(const std::string& name) {
  return shard(name).load(name);
}

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  Json header = Json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t0] : tensors) {
    auto t = t0.detach().to(torch::kCPU).contiguous();
    const char* dn = dtype_name(t.scalar_type());
    if (!dn)
      throw ModelError(path + ": cannot save tensor '" + name + "' of dtype " +
                       std::string(c10::toString(t.scalar_type())) +
                       " (F32, F16, BF16, I64, I32 only)");
    const uint64_t n = t.numel() * t.element_size();
    header[name] = {
        {"dtype", dn}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + n}}};
    offset += n;
    data.push_back(t);
  }
  std::string text = header.dump();
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');  // keep the data 8-byte aligned
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw ModelError(path + ": cannot write safetensors file");
  const uint64_t len = text.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& t : data) {
    out.write(static_cast<const char*>(t.data_ptr()),
              static_cast<std::streamsize>(t.numel() * t.element_size()));
  }
  if (!out) throw ModelError(path + ": write error");
}

}  // namespace coco::llm

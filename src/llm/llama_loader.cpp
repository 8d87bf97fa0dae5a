// GGUF and safetensors → LlamaModel. Where each parameter is stored (tensor name, rows of a
// fused tensor, an offset) is the architecture's answer (architectures.h).
#include "coco/llm/llama_loader.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "architectures.h"
#include "coco/common/error.h"
#include "coco/common/log.h"
#include "coco/config/config.h"
#include "coco/llm/gguf.h"
#include "coco/llm/safetensors.h"
#include "coco/ops/finite.h"

namespace coco::llm {
namespace fs = std::filesystem;

namespace {

bool is_adapter(const std::string& name) {
  return name.find("lora_A") != std::string::npos || name.find("lora_B") != std::string::npos;
}

std::string config_json_path(const std::string& path) {
  fs::path p(path);
  fs::path dir = fs::is_directory(p) ? p : p.parent_path();
  return (dir / "config.json").string();
}

/// The tensors of one checkpoint, GGUF or safetensors, read one at a time.
class WeightReader {
 public:
  explicit WeightReader(const std::string& path) : path_(path) {
    if (!fs::is_directory(path) && is_gguf_file(path)) {
      gguf_ = std::make_unique<GgufFile>(path);
    } else {
      st_ = std::make_unique<SafetensorsCheckpoint>(path);
    }
  }
  bool has(const std::string& name) const {
    return gguf_ ? gguf_->find_tensor(name) != nullptr : st_->has(name);
  }
  std::vector<std::string> names() const {
    if (!gguf_) return st_->names();
    std::vector<std::string> v;
    for (const auto& t : gguf_->tensors()) v.push_back(t.name);
    return v;
  }
  /// ModelError naming the first tensor of the file no parameter was read from: a model that
  /// ignored it would compute something else than the file describes.
  void check_all_used(const LlamaConfig& config) const {
    for (const auto& name : names()) {
      if (used_.count(name) || name == "rope_freqs.weight" ||
          name.find("rotary_emb.inv_freq") != std::string::npos ||
          (config.tie_word_embeddings() && name == "lm_head.weight"))
        continue;
      throw ModelError(path_ + ": tensor '" + name + "' is not part of a " + config.architecture() +
                       " model with this config");
    }
  }

  /// The parameter `param` as the architecture stores it, in `dtype`.
  torch::Tensor read(const Architecture& arch, const LlamaConfig& config, const std::string& param,
                     torch::Dtype dtype) {
    const TensorSource s = source(arch, config, param);
    auto w = read(s, param, dtype);
    check_finite(s, w);
    return w;
  }

  /// Fills the parameter `param` (see copy_into) and checks that every value is finite.
  void fill(const Architecture& arch, const LlamaConfig& config, const std::string& param,
            const torch::Tensor& dst) {
    copy_into(arch, config, param, dst);
    check_finite(source(arch, config, param), dst);
  }

  /// Copies the parameter `param` into `dst`: straight from the file when `dst` is on the CPU
  /// and the file's tensor has its shape (a GGUF tensor of any type, dequantised a chunk at a
  /// time; a safetensors tensor of the same dtype), else through a converted copy.
  void copy_into(const Architecture& arch, const LlamaConfig& config, const std::string& param,
                 const torch::Tensor& dst) {
    const TensorSource s = source(arch, config, param);
    if (gguf_ && s.add == 0 && dst.is_cpu() && dst.is_contiguous() && dst.dim() > 0 &&
        (s.rows < 0 || dst.size(0) == s.rows)) {
      const auto shape = gguf_->find_tensor(s.name)->shape();
      auto want = dst.sizes().vec();
      if (s.rows >= 0) want[0] = shape[0];  // a row block of the file's tensor
      if (want == shape) {
        gguf_->read_rows_into(s.name, s.rows < 0 ? 0 : s.row_begin, s.rows < 0 ? shape[0] : s.rows,
                              dst);
        return;
      }
    }
    if (!gguf_ && s.rows < 0 && s.add == 0 && dst.is_cpu() && dst.is_contiguous()) {
      SafetensorsFile& shard = st_->shard(s.name);
      const auto& e = shard.entry(s.name);
      if (e.dtype == dst.scalar_type() && dst.sizes() == c10::IntArrayRef(e.shape)) {
        shard.read_into(s.name, dst);
        return;
      }
    }
    const auto w = read(s, param, dst.scalar_type());
    check_shape(param, w, dst);
    dst.copy_(w);
  }

  void check_shape(const std::string& param, const torch::Tensor& w,
                   const torch::Tensor& expected) const {
    if (w.sizes() != expected.sizes())
      throw ModelError(path_ + ": parameter '" + param + "' has shape " + c10::str(w.sizes()) +
                       ", expected " + c10::str(expected.sizes()));
  }

 private:
  // A NaN or Inf in a weight is a damaged file: named here, not found as a diverged loss.
  void check_finite(const TensorSource& s, const torch::Tensor& w) const {
    if (const auto bad = describe_nonfinite(w); !bad.empty()) {
      throw ModelError(path_ + ": tensor '" + s.name + "' holds " + bad + "; the file is damaged");
    }
  }

  TensorSource source(const Architecture& arch, const LlamaConfig& config,
                      const std::string& param) {
    const HasTensor has = [this](const std::string& n) { return this->has(n); };
    TensorSource s =
        gguf_ ? arch.gguf_source(param, config, has) : arch.hf_source(param, config, has);
    if (!has(s.name))
      throw ModelError(path_ + ": tensor '" + s.name + "' is missing (" + config.architecture() +
                       " parameter '" + param + "')");
    used_.insert(s.name);
    return s;
  }

  torch::Tensor read(const TensorSource& s, const std::string& param, torch::Dtype dtype) {
    const torch::Dtype read_as = s.add != 0 ? torch::kFloat32 : dtype;
    torch::Tensor w;
    if (gguf_) {
      w = s.rows < 0 ? gguf_->load(s.name, read_as)
                     : gguf_->load_rows(s.name, s.row_begin, s.rows, read_as);
    } else {
      w = st_->load(s.name);
      if (!w.is_floating_point())
        throw ModelError(path_ + ": tensor '" + s.name + "' is " +
                         std::string(c10::toString(w.scalar_type())) +
                         ", expected a floating-point weight");
      if (s.rows >= 0) {
        if (w.dim() < 1 || w.size(0) < s.row_begin + s.rows)
          throw ModelError(path_ + ": tensor '" + s.name + "' has shape " + c10::str(w.sizes()) +
                           ", too few rows for '" + param + "' (rows " +
                           std::to_string(s.row_begin) + ".." +
                           std::to_string(s.row_begin + s.rows) + ")");
        w = w.narrow(0, s.row_begin, s.rows);
      }
      w = w.to(read_as);
    }
    if (s.add != 0) w = (w + s.add).to(dtype);
    return w;
  }

  std::string path_;
  std::unique_ptr<GgufFile> gguf_;
  std::unique_ptr<SafetensorsCheckpoint> st_;
  std::set<std::string> used_;
};

const Architecture& architecture_of(const LlamaConfig& config) {
  const Architecture* arch = find_architecture(config.architecture());
  if (!arch) throw ModelError("unknown architecture '" + config.architecture() + "'");
  return *arch;
}

}  // namespace

torch::Device parse_device(const std::string& name) {
  if (name == "auto")
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  try {
    return torch::Device(name);
  } catch (const c10::Error&) {
    throw ConfigError("unknown device '" + name + "' (expected auto, cpu, cuda or cuda:N)");
  }
}

torch::Dtype parse_dtype(const std::string& name) {
  if (name == "float32" || name == "fp32") return torch::kFloat32;
  if (name == "bfloat16" || name == "bf16") return torch::kBFloat16;
  throw ConfigError("unknown dtype '" + name + "' (expected float32 or bfloat16)");
}

LlamaLoadOptions LlamaLoadOptions::from_config(ConfigNode& node) {
  LlamaLoadOptions o(node.get_string("path", ""));
  if (o.path().empty()) node.fail("path", "the LLM checkpoint path is required");
  o.dtype(parse_dtype(node.get_choice("dtype", "float32", {"float32", "bfloat16"})));
  const auto dev = node.get_string("device", "auto");
  try {
    o.device(parse_device(dev));
  } catch (const ConfigError& e) {
    node.fail("device", e.what());
  }
  node.finish();
  return o;
}

torch::Tensor permute_rope_rows(const torch::Tensor& w, int64_t n_head, RopePairing from,
                                RopePairing to) {
  if (from == to) return w;
  const auto rows = w.size(0);
  const auto half = rows / n_head / 2;
  auto shape = w.sizes().vec();
  std::vector<int64_t> split = {n_head, 0, 0};
  split[1] = from == RopePairing::kAdjacent ? half : 2;
  split[2] = from == RopePairing::kAdjacent ? 2 : half;
  for (size_t i = 1; i < shape.size(); ++i) split.push_back(shape[i]);
  return w.reshape(split).transpose(1, 2).contiguous().reshape(shape);
}

std::vector<std::pair<std::string, torch::Tensor>> read_llama_weights(const std::string& path,
                                                                      const LlamaConfig& config,
                                                                      torch::Dtype dtype) {
  const Architecture& arch = architecture_of(config);
  WeightReader reader(path);
  std::vector<std::pair<std::string, torch::Tensor>> out;
  const LlamaModel shapes(config, torch::TensorOptions().device(torch::kMeta));
  for (const auto& item : shapes->named_parameters()) {
    auto w = reader.read(arch, config, item.key(), dtype);
    reader.check_shape(item.key(), w, item.value());
    out.emplace_back(item.key(), std::move(w));
  }
  reader.check_all_used(config);
  return out;
}

LlamaConfig read_llama_config(const std::string& path) {
  if (!fs::exists(path)) throw ModelError(path + ": no such file or directory");
  if (!fs::is_directory(path) && is_gguf_file(path)) {
    GgufFile file(path);
    return LlamaConfig::from_gguf(file);
  }
  const auto cfg = config_json_path(path);
  if (!fs::exists(cfg)) throw ModelError(path + ": not a GGUF file and no config.json next to it");
  std::ifstream in(cfg, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  Json j;
  std::string error;
  if (!parse_json(text.str(), j, error)) throw ModelError(cfg + ":" + error);
  return LlamaConfig::from_hf_json(j, cfg);
}

LlamaModel load_llama(const LlamaLoadOptions& options) {
  const auto& path = options.path();
  if (!fs::exists(path)) throw ModelError(path + ": no such file or directory");
  const LlamaConfig config = read_llama_config(path);
  const Architecture& arch = architecture_of(config);
  // Weights are allocated once, in the run's dtype on its device, and filled one tensor at a
  // time: peak memory is the model plus its largest tensor.
  LlamaModel model(config, torch::TensorOptions().dtype(options.dtype()).device(options.device()));
  WeightReader reader(path);
  {
    torch::NoGradGuard no_grad;
    for (auto& item : model->named_parameters()) {
      if (is_adapter(item.key())) continue;
      reader.fill(arch, config, item.key(), item.value());
    }
  }
  reader.check_all_used(config);
  model->eval();
  log().info("[llm] loaded {} ({} layers, hidden {}, {} heads / {} kv, vocab {}) as {} on {}", path,
             config.num_layers(), config.hidden_size(), config.num_heads(), config.num_kv_heads(),
             config.vocab_size(), std::string(c10::toString(options.dtype())),
             options.device().str());
  return model;
}

}  // namespace coco::llm

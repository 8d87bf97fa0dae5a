// GGUF → safetensors + config.json + tokenizer.model.
#include "coco/llm/llama_convert.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "coco/common/error.h"
#include "coco/llm/gguf.h"
#include "coco/llm/llama_config.h"
#include "coco/llm/llama_loader.h"
#include "coco/llm/safetensors.h"
#include "coco/llm/spm_vocab.h"
#include "architectures.h"

namespace coco::llm {
namespace fs = std::filesystem;

ConvertReport convert_gguf_to_hf(const std::string& gguf_path, const std::string& out_dir,
                                 torch::Dtype dtype) {
  GgufFile file(gguf_path);
  const LlamaConfig config = LlamaConfig::from_gguf(file);
  LlamaConfig hf = config;
  hf.rope_pairing(RopePairing::kHalf);
  auto json = hf.to_hf_json();  // before writing anything: it refuses what it cannot express
  json["torch_dtype"] = dtype == torch::kBFloat16 ? "bfloat16" : "float32";
  const Architecture& arch = *find_architecture(config.architecture());
  // Each parameter goes where a Hugging Face checkpoint keeps it: fused tensors are put back
  // together from their row blocks, offsets (Gemma's 1 + w) taken off again.
  const HasTensor fused = [](const std::string&) { return true; };
  std::map<std::string, std::map<int64_t, torch::Tensor>> blocks;  // HF name → row → tensor
  for (auto& [name, w] : read_llama_weights(gguf_path, config, torch::kFloat32)) {
    if (name.find("q_proj") != std::string::npos) {
      w = permute_rope_rows(w, config.num_heads(), config.rope_pairing(), RopePairing::kHalf);
    } else if (name.find("k_proj") != std::string::npos) {
      w = permute_rope_rows(w, config.num_kv_heads(), config.rope_pairing(), RopePairing::kHalf);
    }
    const TensorSource s = arch.hf_source(name, hf, fused);
    blocks[s.name][s.row_begin] = (s.add != 0 ? w - s.add : w).to(dtype);
  }
  std::vector<std::pair<std::string, torch::Tensor>> weights;
  ConvertReport report;
  for (auto& [name, rows] : blocks) {
    std::vector<torch::Tensor> parts;
    for (auto& [begin, w] : rows) parts.push_back(w);
    weights.emplace_back(name, parts.size() == 1 ? parts[0] : torch::cat(parts, 0));
    report.bytes += static_cast<uint64_t>(weights.back().second.nbytes());
  }
  report.tensors = static_cast<int64_t>(weights.size());
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw ModelError(out_dir + ": cannot create directory (" + ec.message() + ")");
  save_safetensors((fs::path(out_dir) / "model.safetensors").string(), weights,
                   {{"format", "pt"}, {"source", fs::path(gguf_path).filename().string()}});
  if (file.has("tokenizer.ggml.bos_token_id"))
    json["bos_token_id"] = file.get_int("tokenizer.ggml.bos_token_id");
  if (file.has("tokenizer.ggml.eos_token_id"))
    json["eos_token_id"] = file.get_int("tokenizer.ggml.eos_token_id");
  std::ofstream(fs::path(out_dir) / "config.json") << json.dump(2) << "\n";
  if (file.has("tokenizer.ggml.tokens") &&
      file.get_string("tokenizer.ggml.model") == "llama") {
    const std::string proto = SpmVocab::from_gguf(file).to_model_proto();
    std::ofstream out(fs::path(out_dir) / "tokenizer.model", std::ios::binary);
    out.write(proto.data(), static_cast<std::streamsize>(proto.size()));
    if (!out) throw ModelError(out_dir + ": cannot write tokenizer.model");
    report.tokenizer_written = true;
  }
  return report;
}

}  // namespace coco::llm

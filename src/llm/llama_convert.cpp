// GGUF → safetensors + config.json + tokenizer.model.
#include "coco/llm/llama_convert.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "coco/common/error.h"
#include "coco/llm/gguf.h"
#include "coco/llm/llama_config.h"
#include "coco/llm/llama_loader.h"
#include "coco/llm/safetensors.h"
#include "coco/llm/spm_vocab.h"

namespace coco::llm {
namespace fs = std::filesystem;

ConvertReport convert_gguf_to_hf(const std::string& gguf_path, const std::string& out_dir) {
  GgufFile file(gguf_path);
  LlamaConfig config = LlamaConfig::from_gguf(file);
  auto weights = read_gguf_weights(file, config, RopePairing::kHalf);
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) throw ModelError(out_dir + ": cannot create directory (" + ec.message() + ")");
  ConvertReport report;
  for (auto& [name, w] : weights) {
    if (name.rfind("lm_head", 0) != 0) name = "model." + name;
    report.bytes += static_cast<uint64_t>(w.numel()) * 4;
  }
  report.tensors = static_cast<int64_t>(weights.size());
  save_safetensors((fs::path(out_dir) / "model.safetensors").string(), weights,
                   {{"format", "pt"}, {"source", fs::path(gguf_path).filename().string()}});
  LlamaConfig hf = config;
  hf.rope_pairing(RopePairing::kHalf);
  auto json = hf.to_hf_json();
  if (file.has("tokenizer.ggml.bos_token_id"))
    json["bos_token_id"] = file.get_int("tokenizer.ggml.bos_token_id");
  if (file.has("tokenizer.ggml.eos_token_id"))
    json["eos_token_id"] = file.get_int("tokenizer.ggml.eos_token_id");
  std::ofstream(fs::path(out_dir) / "config.json") << json.dump(2) << "\n";
  if (file.has("tokenizer.ggml.tokens")) {
    const std::string proto = SpmVocab::from_gguf(file).to_model_proto();
    std::ofstream out(fs::path(out_dir) / "tokenizer.model", std::ios::binary);
    out.write(proto.data(), static_cast<std::streamsize>(proto.size()));
    if (!out) throw ModelError(out_dir + ": cannot write tokenizer.model");
    report.tokenizer_written = true;
  }
  return report;
}

}  // namespace coco::llm

// The knowledge encoder of CoCo (METHOD.md step 3): builds each user's text from the items
// before the target (newest last, cut to T tokens), puts the selected soft prompt in front
// and runs the frozen LLM with its LoRA adapters. Not the prompt choice (nn/vq_codebook.h)
// and not the alignment (nn/aligner.h).
#pragma once

#include <torch/nn/module.h>

#include <cstdint>
#include <string>
#include <vector>

#include "coco/config/config.h"
#include "coco/data/dataset.h"
#include "coco/llm/llama_loader.h"
#include "coco/llm/llama_model.h"
#include "coco/llm/lora.h"
#include "coco/llm/tokenizer.h"

namespace coco {

enum class ItemField { kTitle, kBrand, kCategories, kFeatures, kDescription };  // items.tsv columns

struct KnowledgeOptions {
  llm::LlamaLoadOptions llm;       // the LLM file, dtype, device
  bool random_llm = false;         // llm.weights "random": the no-pretraining control
  bool checkpoint_layers = false;  // llm.activation_checkpointing: recompute in backward
  llm::LoRAOptions lora;           // adapters attached to the LLM
  std::vector<ItemField> fields = {ItemField::kTitle};  // the item text, joined by ", "
  int64_t recent_items = 10;                            // newest items that may enter the text
  int64_t max_tokens = 64;                              // T, BOS included
  int64_t item_tokens = 0;                              // an item's first n tokens only; 0 = all
  std::string separator = "; ";                         // between items
  int64_t layers = 1;                                   // states = mean of the last n layers

  /// Reads the "knowledge" object: "llm" and "lora" sub-objects and the keys above. A
  /// relative llm.path is searched from the working directory, then from `config_dir/..`.
  static KnowledgeOptions from_config(ConfigNode& node, const std::string& config_dir);
};

struct KnowledgeOutput {
  torch::Tensor states;     // [B, P + T, D] LLM states: P prompt positions, then the text
  torch::Tensor text_mask;  // [B, T] bool: real text token
};

class KnowledgeEncoderImpl : public torch::nn::Module {
 public:
  /// Loads the LLM and its tokenizer, attaches the adapters and tokenizes every item's text
  /// once (the catalogue is copied). ConfigError when the catalogue has no text in the chosen
  /// fields.
  KnowledgeEncoderImpl(KnowledgeOptions options, const ItemCatalog& catalog);

  /// Token ids of each user's text, BOS first, newest item last, right-padded.
  llm::TokenBatch user_text(const torch::Tensor& history) const;  // [B, L] item ids

  /// The LLM's states for [prompts ; text(history)]. `lora_mask` is read at backward time
  /// (see LoRALinearImpl::forward); undefined = every example trains the adapters.
  KnowledgeOutput forward(const torch::Tensor& prompts,          // [B, P, D]
                          const torch::Tensor& history,          // [B, L]
                          const torch::Tensor& lora_mask = {});  // [B] float

  /// Token embeddings of `texts` (no BOS), each cut to its last `length` tokens (or cycled
  /// when shorter), the list cycled to `count` entries: the facet-prompt initialisation of the
  /// codebook.
  torch::Tensor prompt_embeddings(const std::vector<std::string>& texts, int64_t count,
                                  int64_t length);  // → [count, length, D]

  /// The text of item 1..V in the chosen fields ("" when it has none).
  std::string item_text(int64_t item) const;
  int64_t item_count() const { return catalog_.size(); }  // V
  int64_t llm_width() const { return llm_->config().hidden_size(); }
  llm::LlamaModel& llm() { return llm_; }
  const llm::Tokenizer& tokenizer() const { return tokenizer_; }

  KnowledgeOptions options;

 private:
  ItemCatalog catalog_;
  llm::Tokenizer tokenizer_;
  llm::LlamaModel llm_{nullptr};
  std::vector<std::vector<int64_t>> item_tokens_;  // [V + 1], index = item id
  std::vector<int64_t> separator_tokens_;
};
TORCH_MODULE(KnowledgeEncoder);

}  // namespace coco

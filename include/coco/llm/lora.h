// LoRA: LoRALinear, a frozen linear layer that can carry a low-rank adapter with per-example
// gradient masking, and the functions that attach, list, merge, save and load adapters on any
// module tree by module name. Not the decoder (llama_model.h), not the optimiser.
#pragma once

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace coco {
class ConfigNode;
}

namespace coco::llm {

/// Which adapters to attach and how (config object "lora": {"rank", "alpha", "dropout",
/// "targets"}).
struct LoRAOptions {
  TORCH_ARG(int64_t, rank) = 8;
  TORCH_ARG(double, alpha) = 16.0;
  TORCH_ARG(double, dropout) = 0.05;
  /// Short names q, k, v, o, gate, up, down, or module-name suffixes ("q_proj").
  TORCH_ARG(std::vector<std::string>, targets) = std::vector<std::string>{"q", "v"};

 public:  // TORCH_ARG leaves the access at private
  double scale() const { return alpha_ / static_cast<double>(rank_); }  // s = alpha / r
  static LoRAOptions from_config(ConfigNode& node);
};

struct LoRALinearOptions {
  LoRALinearOptions(int64_t in_features, int64_t out_features)
      : in_features_(in_features), out_features_(out_features) {}
  TORCH_ARG(int64_t, in_features);   // I
  TORCH_ARG(int64_t, out_features);  // O
  TORCH_ARG(bool, bias) = false;
  TORCH_ARG(int64_t, rank) = 0;  // r; 0 = no adapter
  TORCH_ARG(double, alpha) = 16.0;
  TORCH_ARG(double, dropout) = 0.0;
  /// Set: W and b are allocated with these options and left uninitialised, for a loader to
  /// fill (no float32 copy and no random init of a model about to be overwritten).
  TORCH_ARG(c10::optional<torch::TensorOptions>, uninitialised) = c10::nullopt;
};

/// y = W x + b + s · (m ⊙ B A x + (1 − m) ⊙ sg(B) sg(A) x), s = alpha / r.
/// W and b are frozen (requires_grad false). The two adapter terms have identical values;
/// only examples with m = 1 send gradient into A and B, every example sends gradient to x.
/// B starts at zero, so a freshly attached adapter leaves the output unchanged.
class LoRALinearImpl : public torch::nn::Cloneable<LoRALinearImpl> {
 public:
  LoRALinearImpl(int64_t in_features, int64_t out_features)
      : LoRALinearImpl(LoRALinearOptions(in_features, out_features)) {}
  explicit LoRALinearImpl(LoRALinearOptions options);

  void reset() override;
  /// x: [B, ..., I]; lora_mask: [B] (bool or 0/1, no gradient), undefined = every example
  /// learns. The mask is read when the backward pass runs, so a caller may fill it in place
  /// after the forward (CoCo decides it from the forward's output).
  torch::Tensor forward(const torch::Tensor& x,
                        const torch::Tensor& lora_mask = {});  // [B, ..., O]

  /// Adds a fresh adapter (A Kaiming-uniform, B zero) in float32 on the weight's device. After
  /// merge_adapter() it re-initialises the merged adapter's tensors (same rank only).
  void attach_adapter(int64_t rank, double alpha, double dropout);
  /// W ← W + s B A, then drops the adapter (for inference).
  void merge_adapter();
  bool has_adapter() const { return options.rank() > 0; }
  bool merged() const { return merged_; }
  double scale() const { return options.alpha() / static_cast<double>(options.rank()); }

  LoRALinearOptions options;
  torch::Tensor weight;  // [O, I], frozen
  torch::Tensor bias;    // [O], frozen; undefined without bias
  torch::Tensor lora_A;  // [r, I] float32, trainable; undefined without adapter
  torch::Tensor lora_B;  // [O, r] float32, trainable; undefined without adapter

 private:
  bool merged_ = false;  // adapter folded into weight; lora_A/lora_B kept but unused
};
TORCH_MODULE(LoRALinear);

/// Attaches adapters to every LoRALinear under `root` whose name matches a target
/// ("q" → "...q_proj"). Returns the names of the adapted modules; throws ConfigError for a
/// target that matches nothing or an unknown short name.
std::vector<std::string> attach_lora(torch::nn::Module& root, const LoRAOptions& options);

/// The adapter parameters (lora_A, lora_B) under `root`, the only trainable LLM weights
/// (merged adapters excluded).
std::vector<torch::Tensor> lora_parameters(torch::nn::Module& root);

/// Merges every adapter into its frozen weight.
void merge_lora(torch::nn::Module& root);

/// Saves only the adapters (float32 safetensors, rank/alpha/targets in the metadata).
void save_lora(torch::nn::Module& root, const std::string& path, const LoRAOptions& options);

/// Attaches adapters as recorded in `path` (unless already attached with the same rank) and
/// loads their values; CheckpointError for a missing module, tensor or shape mismatch.
LoRAOptions load_lora(torch::nn::Module& root, const std::string& path);

}  // namespace coco::llm

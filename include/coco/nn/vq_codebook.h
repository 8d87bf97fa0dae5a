// The VQ prompt codebook of CoCo (METHOD.md step 2): a query W_q h_rs picks one of K code
// keys, and the code's soft prompt (P vectors in the LLM's input embedding space) goes to
// the LLM. Not the LLM encoding itself, and not the loss weighting (see
// coco/ops/contrastive_losses.h).
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>

#include "coco/config/config.h"

namespace coco {

/// How a code is chosen for each example.
enum class VQSelection {
  kHard,    // nearest key, straight-through estimator for the query (default)
  kSoft,    // softmax(-dist / τ) mixture of the prompts
  kRandom,  // a uniformly random code per example (ablation: no VQ selection); in eval
            // mode from a fixed stream, so evaluations are reproducible
};

struct VQCodebookOptions {
  VQCodebookOptions(int64_t hidden, int64_t llm_width) : hidden_(hidden), llm_width_(llm_width) {}
  TORCH_ARG(int64_t, hidden);                 // d: width of h_rs
  TORCH_ARG(int64_t, llm_width);              // D: width of one soft-prompt vector
  TORCH_ARG(int64_t, num_codes) = 64;         // K
  TORCH_ARG(int64_t, code_dim) = 64;          // d_q: width of the query and the code keys
  TORCH_ARG(int64_t, prompt_len) = 4;         // P: soft-prompt vectors per code
  TORCH_ARG(double, commitment_beta) = 0.25;  // β
  TORCH_ARG(VQSelection, selection) = VQSelection::kHard;
  TORCH_ARG(double, temperature) = 1.0;       // τ of the soft mode
  TORCH_ARG(int64_t, restart_after) = 100;    // training calls unused before a restart; 0: never
  TORCH_ARG(double, prompt_init_std) = 0.02;  // prompts before init_prompts()

 public:  // TORCH_ARG leaves the struct private
  /// Reads num_codes, code_dim, prompt_len, commitment_beta, selection ("hard" | "soft" |
  /// "random"), temperature and restart_after; d and D come from the backbone and the LLM.
  static VQCodebookOptions from_config(ConfigNode& node, int64_t hidden, int64_t llm_width);
};

struct VQCodebookOutput {
  torch::Tensor prompts;      // [B, P, D] selected (or mixed) soft prompts
  torch::Tensor codes;        // [B] int64: the selected code (soft: the most probable one)
  torch::Tensor loss_vq;      // []: codebook + β·commitment loss (0 in random mode)
  torch::Tensor query;        // [B, d_q] q = W_q h_rs
  torch::Tensor quantized;    // [B, d_q] q + sg(e_k* − q) (soft: probs · keys)
  torch::Tensor probs;        // [B, K] selection weights: one-hot (hard, random) or softmax (soft)
  int64_t num_restarted = 0;  // dead codes re-initialised by this call
};

class VQCodebookImpl : public torch::nn::Cloneable<VQCodebookImpl> {
 public:
  explicit VQCodebookImpl(VQCodebookOptions options);
  void reset() override;

  /// In training mode also counts code usage and restarts dead codes (before selecting,
  /// so that this call already sees the new keys).
  VQCodebookOutput forward(const torch::Tensor& h_rs);  // [B, d]

  /// Sets the prompts to `embeddings` plus N(0, noise_std²) noise (the caller encodes the
  /// facet prompts with the LLM and pads/cycles them to K).
  void init_prompts(const torch::Tensor& embeddings,  // [K, P, D]
                    double noise_std = 0.01);

  /// Usage counted by training-mode forward calls since the last reset_usage().
  torch::Tensor usage_counts() const { return counts_; }  // [K] float64
  torch::Tensor usage_histogram() const;                  // [K] float64, sums to 1 (or all 0)
  /// exp(entropy of the usage histogram): K for uniform usage, 1 for a single code, 0 unused.
  double perplexity() const;
  void reset_usage();  // the usage counts only; dead-code idle counters keep running

  torch::Tensor keys() const { return keys_; }        // [K, d_q]
  torch::Tensor prompts() const { return prompts_; }  // [K, P, D]
  torch::nn::Linear query_proj() const { return query_proj_; }

  VQCodebookOptions options;

 private:
  int64_t restart_dead_codes(const torch::Tensor& queries);  // [B, d_q], detached

  torch::nn::Linear query_proj_{nullptr};
  torch::Tensor keys_;     // [K, d_q]
  torch::Tensor prompts_;  // [K, P, D]
  torch::Tensor counts_;   // [K] float64 buffer: selections since reset_usage()
  torch::Tensor idle_;     // [K] int64 buffer: training calls since the code was last selected
};
TORCH_MODULE(VQCodebook);

}  // namespace coco

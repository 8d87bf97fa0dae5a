// SASRec (Kang & McAuley, ICDM 2018): causal self-attention over the item sequence,
// next-item prediction at every position, item embeddings shared with the output layer.
// Switches: pre/post LayerNorm, full cross-entropy or BCE with sampled negatives.
#pragma once

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/normalization.h>

#include "coco/backbones/backbone.h"
#include "coco/backbones/transformer.h"
#include "coco/ops/dropout.h"

namespace coco {

enum class NormPlacement { kPre, kPost };  // x + f(LN(x)) or LN(x + f(x))

struct SASRecOptions : NextItemOptions {
  int64_t num_blocks = 2;
  int64_t num_heads = 1;
  double dropout = 0.5;
  double attn_dropout = 0.5;
  NormPlacement norm = NormPlacement::kPre;
  bool scale_embeddings = true;  // multiply item embeddings by sqrt(d), as the paper

  static SASRecOptions from_config(ConfigNode& node, const BackboneSpec& spec);
};

class SASRecImpl : public NextItemBackboneImpl {
 public:
  explicit SASRecImpl(SASRecOptions options);

  torch::Tensor encode(const torch::Tensor& items) override;  // [B, L] → [B, L, d]

  SASRecOptions options;

 private:
  torch::nn::Embedding pos_emb_{nullptr};
  FastDropout emb_drop_{nullptr};
  torch::nn::ModuleList blocks_;
  torch::nn::LayerNorm final_norm_{nullptr};
};

COCO_REGISTER_BACKBONE("sasrec", SASRec, R"({"hidden": 16, "num_heads": 2})");

}  // namespace coco

// CoCoModel: a backbone strengthened with per-user LLM knowledge (METHOD.md) — VQ prompt
// choice, knowledge encoder, cross-attention aligner, decision matrix driving the LoRA
// gradient mask, and fusion — trained with L_rec + λ_fused L_rec(h_u) + λ_nce L_nce +
// λ_align L_align + λ_vq L_vq + λ_ortho L_ortho. Not the trainer (train/trainer.h) and not the
// catalogue adaptation stage (model/catalogue_adaptation.h).
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "coco/backbones/backbone.h"
#include "coco/model/catalogue_adaptation.h"
#include "coco/model/knowledge_encoder.h"
#include "coco/nn/aligner.h"
#include "coco/nn/decision.h"
#include "coco/nn/fusion.h"
#include "coco/nn/vq_codebook.h"

namespace coco {

/// Which item of a training window the knowledge path predicts.
enum class KnowledgeTarget {
  kLast,    // "last": the window's last item, from the backbone's own h_rs
  kRandom,  // "random": per row and step, an item drawn from the window's second to last,
            // h_rs from one more backbone pass on the items before it
};

/// The config's "coco" object.
struct CoCoOptions {
  KnowledgeOptions knowledge;
  VQCodebookOptions vq{1, 1};
  AlignerOptions aligner{1, 1};
  DecisionOptions decision;
  FusionOptions fusion{1};
  AdaptOptions adapt;
  std::vector<std::string> facets;  // facet prompts that initialise the codebook
  double prompt_noise = 0.01;       // std of the noise added to the facet embeddings
  // Weight of the backbone objective's full cross-entropy on the scores of h_u (the model's
  // output at the last position); 0 leaves METHOD.md's sum alone.
  double lambda_fused = 1.0;
  double lambda_nce = 0.1, lambda_align = 0.1, lambda_vq = 1.0, lambda_ortho = 0.01;
  double tau_nce = 0.1, tau_align = 0.1;
  double lr_knowledge = 1e-3;  // prompts, VQ, aligner, fusion; 0 = train.lr
  double lr_lora = 1e-3;       // LoRA adapters; 0 = train.lr
  int64_t warmup_epochs = 0;   // epochs of backbone-only training first
  // Whether L_vq's commitment term reaches the backbone through h_rs (else only W_q learns
  // from it). Off by default, so that the codes do not pull h_rs towards a few keys.
  bool vq_grad_to_backbone = false;
  // Whether the fused losses (rec_fused, nce) reach the backbone (h_rs and the item table).
  // Off by default: the backbone trains on its own objective only, exactly as alone (on
  // CPU, the same weights for the same seed and thread count), and the knowledge is a
  // residual on top.
  bool fusion_grad_to_backbone = false;
  // "random" (default) shows the knowledge path a new target each epoch, as the backbone
  // sees every position; "last" gives it each user's one target only.
  KnowledgeTarget prefix = KnowledgeTarget::kRandom;

  /// Parses `node`; d is the backbone's width. Relative LLM paths are searched from the
  /// working directory and from `config_dir/..`; D is read from the LLM file's header.
  static CoCoOptions from_config(ConfigNode& node, int64_t hidden, const std::string& config_dir);
};

/// h_rs and h_aligned of some users, without gradient (diagnostics, plots).
struct CoCoRepresentations {
  torch::Tensor h_rs;       // [B, d]
  torch::Tensor h_aligned;  // [B, d]
  torch::Tensor codes;      // [B] int64
};

class CoCoModelImpl : public RecommenderImpl {
 public:
  CoCoModelImpl(Backbone backbone, CoCoOptions options, const ItemCatalog& catalog);

  LossTerms loss(const TrainBatch& batch) override;
  /// Fused h_u; h_rs alone while the weights are in a warm-up epoch, whose knowledge is
  /// untrained. In eval mode h_aligned is cached per history and reused until a weight
  /// changes, so the knowledge of a user is computed once per checkpoint.
  torch::Tensor user_repr(const EvalBatch& batch) override;
  torch::Tensor score_all(const torch::Tensor& repr) override { return backbone_->score_all(repr); }
  torch::Tensor score(const torch::Tensor& repr, const torch::Tensor& items) override {
    return backbone_->score(repr, items);
  }
  ItemTable item_table() override { return backbone_->item_table(); }
  /// "recommender" at train.lr, "knowledge" and "lora" at their own rates.
  std::vector<ParamGroup> param_groups() override;
  void set_epoch(int64_t epoch) override { epoch_ = epoch; }
  /// The backbone, except in warm-up epochs (when the model is the backbone).
  std::shared_ptr<RecommenderImpl> inner_backbone() override {
    return warming_up() ? nullptr : std::shared_ptr<RecommenderImpl>(backbone_);
  }
  /// Codebook perplexity and usage, decision-matrix activation (overall and per code),
  /// mean alignment cosine a_u and utility δ_u, dead codes restarted.
  Json epoch_diagnostics() override;

  CoCoRepresentations representations(const EvalBatch& batch);
  /// Runs the catalogue adaptation stage (options.adapt) on the LLM; see AdaptResult.
  AdaptResult adapt_catalogue(uint64_t seed);

  /// A new run: catalogue adaptation (adaptation.json, when options.adapt asks for it), then
  /// knowledge_before.json, h_rs and h_aligned of the first validation users.
  void start_run(const RunContext& run) override;
  /// knowledge_after.json, from the best checkpoint.
  void finish_run(const RunContext& run) override;
  std::vector<std::string> run_files() const override {
    return {"adaptation.json", "knowledge_before.json", "knowledge_after.json"};
  }

  const Backbone& backbone() const { return backbone_; }
  KnowledgeEncoder& knowledge() { return knowledge_; }
  VQCodebook& codebook() { return vq_; }
  int64_t cached_users() const { return static_cast<int64_t>(cache_index_.size()); }

  CoCoOptions options;
  /// user_repr's h_rs + knowledge_scale · (fused h_u − h_rs): 1 is the model as trained, 0
  /// its backbone alone, in between the knowledge's residual shrunk (coco-eval
  /// --knowledge-scale). loss() always trains at 1.
  double knowledge_scale = 1.0;

 private:
  struct Knowledge {
    VQCodebookOutput vq;
    torch::Tensor h_aligned;  // [B, d]
  };
  Knowledge knowledge_of(const torch::Tensor& h_rs,        // [B, d]
                         const torch::Tensor& history,     // [B, L]
                         const torch::Tensor& lora_mask);  // [B] or undefined
  torch::Tensor cached_knowledge(const torch::Tensor& h_rs,
                                 const torch::Tensor& history);  // [B, d]
  /// The decision matrix on one batch (no gradient): its mask goes into `lora_mask` for the
  /// LoRA layers' backward, its statistics into the epoch's diagnostics.
  void decide(const Knowledge& k, const torch::Tensor& h_rs,  // [B, d]
              const torch::Tensor& logp_fused,                // [B] log p(target | h_u)
              const torch::Tensor& logp_rs,                   // [B] log p(target | h_rs)
              torch::Tensor& lora_mask);                      // [B], written
  std::vector<std::pair<const void*, int64_t>> weights_version() const;
  void reduce_statistics();  // over data-parallel ranks, before the epoch's diagnostics

  Backbone backbone_;
  KnowledgeEncoder knowledge_{nullptr};
  VQCodebook vq_{nullptr};
  Aligner aligner_{nullptr};
  DecisionMatrix decision_{nullptr};
  Fusion fusion_{nullptr};
  int64_t epoch_ = 0;
  bool warming_up() const { return options.warmup_epochs > 0 && epoch_ < options.warmup_epochs; }

  // Decision-matrix statistics of the current epoch.
  double sum_a_ = 0, sum_delta_ = 0, sum_mask_ = 0, examples_ = 0;
  int64_t restarted_ = 0;
  torch::Tensor code_examples_, code_active_;  // [K] float64

  // Evaluation cache: history hash → row of cache_rows_ (d floats each).
  std::unordered_map<uint64_t, int64_t> cache_index_;
  std::vector<float> cache_rows_;
  std::vector<std::pair<const void*, int64_t>> cache_version_;
};

}  // namespace coco

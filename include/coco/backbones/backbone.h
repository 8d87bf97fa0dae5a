// Sequential recommender backbones (SASRec, BERT4Rec, GRU4Rec, ...) behind one
// interface, and the registry through which configs name them.
// A new backbone is one header: options with from_config, an Impl deriving from
// BackboneImpl, and COCO_REGISTER_BACKBONE — then one #include line in
// src/backbones/builtin.cpp. Every registered backbone runs the conformance tests.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "coco/backbones/recommender.h"
#include "coco/config/config.h"

namespace coco {

/// What a backbone needs to know about the data.
struct BackboneSpec {
  int64_t num_items = 0;  // V
  int64_t max_len = 50;   // L
};

/// A training step's loss and the representation h_rs that predicts each row's last item
/// (batch.items[:, -1]) from the items before it, as user_repr would compute it.
struct BackboneStep {
  LossTerms loss;
  torch::Tensor repr;  // [B, d]
};

class BackboneImpl : public RecommenderImpl {
 public:
  /// Default: loss(batch) plus a separate user_repr pass. Backbones whose training forward
  /// already computes h_rs (SASRec, GRU4Rec) override it to share that forward.
  virtual BackboneStep train_step(const TrainBatch& batch);

  /// Hidden states of a left-padded item sequence.
  virtual torch::Tensor encode(const torch::Tensor& items) = 0;  // [B, L] → [B, L, d]

  /// Whether position t sees only positions <= t (checked by the conformance tests).
  virtual bool is_causal() const = 0;

  /// Item embedding table used for scoring: row = item id, rows 0..V at least.
  virtual torch::Tensor item_embeddings() = 0;  // [V + 1 (+ extra), d]

  virtual int64_t hidden_size() const = 0;  // d

  // Defaults: the last position's hidden state, scored by dot product.
  torch::Tensor user_repr(const EvalBatch& batch) override;
  torch::Tensor score_all(const torch::Tensor& repr) override;
  torch::Tensor score(const torch::Tensor& repr, const torch::Tensor& items) override;
};

using Backbone = std::shared_ptr<BackboneImpl>;
using BackboneFactory = std::function<Backbone(ConfigNode& node, const BackboneSpec& spec)>;

/// Name → factory. Unknown names fail with the list of registered ones.
class BackboneRegistry {
 public:
  static BackboneRegistry& instance();
  bool add(const std::string& name, BackboneFactory factory);
  /// Builds the backbone named by node["name"], which parses the rest of `node`.
  Backbone create(ConfigNode& node, const BackboneSpec& spec) const;
  std::vector<std::string> names() const;

 private:
  std::vector<std::pair<std::string, BackboneFactory>> factories_;
};

}  // namespace coco

/// Registers MODULE (with MODULE##Impl and MODULE##Options::from_config(node, spec)).
#define COCO_REGISTER_BACKBONE(NAME, MODULE)                                            \
  inline const bool coco_backbone_registered_##MODULE =                                 \
      ::coco::BackboneRegistry::instance().add(                                         \
          NAME, [](::coco::ConfigNode& node, const ::coco::BackboneSpec& spec) {        \
            return std::make_shared<MODULE##Impl>(MODULE##Options::from_config(node, spec)); \
          })

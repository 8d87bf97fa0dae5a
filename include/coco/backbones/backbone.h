// Sequential recommender backbones behind one interface, the base that carries the
// plumbing every next-item backbone shares, and the registry through which configs name
// them. A new backbone is one header in this folder (docs/architecture.md): its options,
// its encode(), and one COCO_REGISTER_BACKBONE line; the build lists every header here,
// and every registered backbone runs the conformance tests with its own small config.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/modules/embedding.h>

#include "coco/config/config.h"
#include "coco/ops/next_item_loss.h"
#include "coco/recommender/recommender.h"

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
  /// already computes h_rs override it to share that forward.
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
  ItemTable item_table() override { return {item_embeddings(), {}}; }
};

/// The options every next-item backbone has; its own options derive from these.
struct NextItemOptions {
  int64_t num_items = 0;  // V
  int64_t max_len = 50;   // L
  int64_t hidden = 64;    // d: item embedding and output width
  double init_std = 0.02;
  NextItemLossOptions loss;

  /// Reads "hidden", "init_std", "loss" and "num_negatives"; `hidden` is the default width.
  void parse_common(ConfigNode& node, const BackboneSpec& spec);
};

/// A causal backbone trained on next-item prediction at every position: it owns the item
/// table (V + 1 rows, row 0 padding, shared with the output layer), splits each training
/// window into inputs and targets, and applies the configured next-item loss. A subclass
/// registers its layers and implements encode().
class NextItemBackboneImpl : public BackboneImpl {
 public:
  explicit NextItemBackboneImpl(const NextItemOptions& options);

  LossTerms loss(const TrainBatch& batch) override { return train_step(batch).loss; }
  BackboneStep train_step(const TrainBatch& batch) override;  // one shared forward
  bool is_causal() const override { return true; }
  torch::Tensor item_embeddings() override { return item_emb_->weight; }  // [V + 1, d]
  int64_t hidden_size() const override { return common_.hidden; }

 protected:
  /// The embeddings of `items`, padding rows zero.
  torch::Tensor embed(const torch::Tensor& items) { return item_emb_(items); }  // → [B, L, d]
  /// Draws the item table from N(0, init_std²), padding row zero.
  void init_item_table();

  torch::nn::Embedding item_emb_{nullptr};

 private:
  NextItemOptions common_;
};

/// Transformer-style initialisation of every parameter of `module` (the backbone's
/// registered layers): N(0, std²) for matrices, zero for vectors, LayerNorm weights kept at
/// one; the item table's padding row (`padding_table`, if given) zeroed.
void init_normal(torch::nn::Module& module, double std, const torch::Tensor& padding_table = {});

using Backbone = std::shared_ptr<BackboneImpl>;
using BackboneFactory = std::function<Backbone(ConfigNode& node, const BackboneSpec& spec)>;

/// Name → factory. Unknown names fail with the list of registered ones.
class BackboneRegistry {
 public:
  static BackboneRegistry& instance();
  /// `small_config`: the JSON text of a small valid config (besides "name") that the
  /// conformance tests build.
  bool add(const std::string& name, BackboneFactory factory, const char* small_config);
  /// Builds the backbone named by node["name"], which parses the rest of `node`.
  Backbone create(ConfigNode& node, const BackboneSpec& spec) const;
  std::vector<std::string> names() const;
  /// The small config of a registered backbone, "name" included.
  Json small_config(const std::string& name) const;

 private:
  struct Entry {
    std::string name;
    BackboneFactory factory;
    std::string small_config;
  };
  std::vector<Entry> entries_;
};

}  // namespace coco

/// Registers MODULE (with MODULE##Impl and MODULE##Options::from_config(node, spec));
/// SMALL_CONFIG is the JSON text of a small config the conformance tests build.
#define COCO_REGISTER_BACKBONE(NAME, MODULE, SMALL_CONFIG)                                        \
  inline const bool coco_backbone_registered_##MODULE = ::coco::BackboneRegistry::instance().add( \
      NAME,                                                                                       \
      [](::coco::ConfigNode& node, const ::coco::BackboneSpec& spec) {                            \
        return std::make_shared<MODULE##Impl>(MODULE##Options::from_config(node, spec));          \
      },                                                                                          \
      SMALL_CONFIG)

// Default scoring of BackboneImpl, the next-item base, and the backbone registry.
#include "coco/backbones/backbone.h"

#include <algorithm>

#include <torch/torch.h>

#include "coco/common/error.h"

namespace coco {

void link_builtin_backbones();  // generated from the headers in include/coco/backbones/

BackboneStep BackboneImpl::train_step(const TrainBatch& batch) {
  LossTerms terms = loss(batch);
  return {std::move(terms), user_repr(batch.last_item())};
}

torch::Tensor BackboneImpl::user_repr(const EvalBatch& batch) {
  return encode(batch.history).select(1, batch.history.size(1) - 1);
}

torch::Tensor BackboneImpl::score_all(const torch::Tensor& repr) {
  return torch::matmul(repr, item_embeddings().t());
}

torch::Tensor BackboneImpl::score(const torch::Tensor& repr, const torch::Tensor& items) {
  return torch::bmm(item_embeddings().index({items}), repr.unsqueeze(2)).squeeze(2);
}

void NextItemOptions::parse_common(ConfigNode& node, const BackboneSpec& spec) {
  num_items = spec.num_items;
  max_len = spec.max_len;
  hidden = node.get_int("hidden", hidden, 1);
  init_std = node.get_double("init_std", init_std, 0, 1);
  loss = NextItemLossOptions::from_config(node);
}

NextItemBackboneImpl::NextItemBackboneImpl(const NextItemOptions& options) : common_(options) {
  item_emb_ = register_module(
      "item_emb",
      torch::nn::Embedding(
          torch::nn::EmbeddingOptions(options.num_items + 1, options.hidden).padding_idx(0)));
}

BackboneStep NextItemBackboneImpl::train_step(const TrainBatch& batch) {
  const auto inputs = batch.inputs();
  const auto hidden = encode(inputs);
  auto total = next_item_loss(hidden, inputs, batch.targets(), item_emb_->weight, common_.loss);
  return {{total, {{"rec", total.detach()}}}, hidden.select(1, hidden.size(1) - 1)};
}

void NextItemBackboneImpl::init_item_table() {
  torch::NoGradGuard no_grad;
  item_emb_->weight.normal_(0, common_.init_std);
  item_emb_->weight[0].zero_();
}

void init_normal(torch::nn::Module& module, double std, const torch::Tensor& padding_table) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.named_parameters()) {
    if (p.key().find("norm") != std::string::npos) continue;  // LayerNorm keeps 1 / 0
    if (p.value().dim() >= 2)
      p.value().normal_(0, std);
    else
      p.value().zero_();
  }
  if (padding_table.defined()) padding_table[0].zero_();
}

BackboneRegistry& BackboneRegistry::instance() {
  static BackboneRegistry registry;
  link_builtin_backbones();
  return registry;
}

bool BackboneRegistry::add(const std::string& name, BackboneFactory factory,
                           const char* small_config) {
  for (auto& e : entries_) {
    if (e.name == name) {
      e = {name, std::move(factory), small_config};
      return true;
    }
  }
  entries_.push_back({name, std::move(factory), small_config});
  return true;
}

std::vector<std::string> BackboneRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.name);
  std::sort(out.begin(), out.end());
  return out;
}

Json BackboneRegistry::small_config(const std::string& name) const {
  for (const auto& e : entries_) {
    if (e.name == name) {
      Json j = Json::parse(e.small_config);
      j["name"] = name;
      return j;
    }
  }
  throw Error("no backbone named \"" + name + "\" is registered");
}

Backbone BackboneRegistry::create(ConfigNode& node, const BackboneSpec& spec) const {
  const std::string name = node.get_string("name", "");
  for (const auto& e : entries_) {
    if (e.name == name) return e.factory(node, spec);
  }
  std::string known;
  for (const auto& n : names()) known += (known.empty() ? "" : ", ") + n;
  node.fail("name", "unknown backbone \"" + name + "\" (registered: " + known + ")");
}

}  // namespace coco

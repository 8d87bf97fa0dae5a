// Default scoring of BackboneImpl and the backbone registry.
#include "coco/backbones/backbone.h"

#include <algorithm>

#include <torch/torch.h>

#include "coco/common/error.h"

namespace coco {

void link_builtin_backbones();  // src/backbones/builtin.cpp

std::vector<ParamGroup> RecommenderImpl::param_groups() {
  ParamGroup all{"model", {}, 0};
  for (auto& p : parameters()) {
    if (p.requires_grad()) all.params.push_back(p);
  }
  return {all};
}

BackboneStep BackboneImpl::train_step(const TrainBatch& batch) {
  const int64_t l = batch.items.size(1) - 1;
  EvalBatch last{batch.users, batch.items.narrow(1, 0, l), batch.items.select(1, l)};
  LossTerms terms = loss(batch);
  return {std::move(terms), user_repr(last)};
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

BackboneRegistry& BackboneRegistry::instance() {
  static BackboneRegistry registry;
  link_builtin_backbones();
  return registry;
}

bool BackboneRegistry::add(const std::string& name, BackboneFactory factory) {
  for (auto& [n, f] : factories_) {
    if (n == name) {
      f = std::move(factory);
      return true;
    }
  }
  factories_.emplace_back(name, std::move(factory));
  return true;
}

std::vector<std::string> BackboneRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [n, f] : factories_) out.push_back(n);
  std::sort(out.begin(), out.end());
  return out;
}

Backbone BackboneRegistry::create(ConfigNode& node, const BackboneSpec& spec) const {
  const std::string name = node.get_string("name", "");
  for (const auto& [n, factory] : factories_) {
    if (n == name) return factory(node, spec);
  }
  std::string known;
  for (const auto& n : names()) known += (known.empty() ? "" : ", ") + n;
  node.fail("name", "unknown backbone \"" + name + "\" (registered: " + known + ")");
}

}  // namespace coco

// Defaults of the Recommender interface.
#include "coco/recommender/recommender.h"

#include <torch/torch.h>

#include "coco/common/error.h"

namespace coco {

ItemTable RecommenderImpl::item_table() {
  throw ConfigError(name() + ": its scores are not a dot product with an item table");
}

std::vector<ParamGroup> RecommenderImpl::param_groups() {
  ParamGroup all{"model", {}, 0};
  for (auto& p : parameters()) {
    if (p.requires_grad()) all.params.push_back(p);
  }
  return {all};
}

}  // namespace coco

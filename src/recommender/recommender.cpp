// Defaults of the Recommender interface.
#include "coco/recommender/recommender.h"

#include <torch/torch.h>

namespace coco {

std::vector<ParamGroup> RecommenderImpl::param_groups() {
  ParamGroup all{"model", {}, 0};
  for (auto& p : parameters()) {
    if (p.requires_grad()) all.params.push_back(p);
  }
  return {all};
}

}  // namespace coco

// The checkpoint target: libtorch archives holding CoCo's meta record, the weights, the
// optimiser state and the RNG state, loaded into a small SASRec and its Adam as --resume
// loads them.
#include <memory>

#include "coco/backbones/sasrec.h"
#include "coco/ops/optimizer.h"
#include "coco/train/checkpoint.h"
#include "input.h"
#include "targets.h"

namespace coco::fuzz {
namespace {

std::shared_ptr<SASRecImpl> small_sasrec() {
  SASRecOptions o;
  o.num_items = 20;
  o.max_len = 6;
  o.hidden = 8;
  return std::make_shared<SASRecImpl>(o);
}

std::unique_ptr<torch::optim::Optimizer> adam(SASRecImpl& model) {
  return make_optimizer({{"model", model.parameters()}}, OptimizerOptions{});
}

}  // namespace

void checkpoint(std::string_view input) {
  static const auto model = small_sasrec();
  const std::string path = write_file("last.pt", input);
  read_or_reject([&] {
    (void)read_checkpoint_meta(path);
    const auto optimizer = adam(*model);
    (void)load_checkpoint(path, *model, optimizer.get(), true);
  });
}

// A checkpoint after one optimiser step, so that every record is present.
void checkpoint_seeds(const std::string& dir) {
  auto model = small_sasrec();
  auto optimizer = adam(*model);
  torch::Tensor loss = torch::zeros({});
  for (const auto& p : model->parameters()) loss = loss + p.square().sum();
  optimizer_step(*optimizer, loss, 0.0);
  TrainState state;
  state.epoch = 1;
  state.step = 1;
  state.loss_sums["rec"] = 1.5;
  save_checkpoint(dir + "/last.pt", {Json{{"seed", 1}}, state}, *model, optimizer.get(), true);
}

}  // namespace coco::fuzz

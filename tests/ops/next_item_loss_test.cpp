// The chunked softmax cross-entropy equals libtorch's cross_entropy in value and gradient.
#include "coco/ops/next_item_loss.h"

#include <gtest/gtest.h>

#include <torch/torch.h>

namespace coco {
namespace {

TEST(Losses, ChunkedCrossEntropyMatchesNaiveValueAndGradients) {
  torch::manual_seed(0);
  for (bool with_bias : {false, true}) {
    // 3000 items: several chunks of rows; 700 rows.
    auto h = torch::randn({700, 8}, torch::requires_grad());
    auto emb = torch::randn({3001, 8}, torch::requires_grad());
    auto bias = with_bias ? torch::randn({3001}, torch::requires_grad()) : torch::Tensor();
    const auto targets = torch::randint(1, 3001, {700}, torch::kInt64);

    const auto ours = full_softmax_ce(h, targets, emb, bias);
    const auto grads =
        torch::autograd::grad({ours}, with_bias ? torch::autograd::variable_list{h, emb, bias}
                                                : torch::autograd::variable_list{h, emb});
    auto logits = torch::mm(h, emb.narrow(0, 1, 3000).t());
    if (with_bias) logits = logits + bias.narrow(0, 1, 3000);
    const auto ref = torch::nn::functional::cross_entropy(logits, targets - 1);
    const auto ref_grads =
        torch::autograd::grad({ref}, with_bias ? torch::autograd::variable_list{h, emb, bias}
                                               : torch::autograd::variable_list{h, emb});
    EXPECT_NEAR(ours.item<double>(), ref.item<double>(), 1e-5);
    for (size_t i = 0; i < grads.size(); ++i) {
      EXPECT_TRUE(torch::allclose(grads[i], ref_grads[i], 1e-5, 1e-6)) << "gradient " << i;
    }
    EXPECT_EQ(grads[1][0].abs().sum().item<double>(), 0);  // padding row gets no gradient
  }
}

}  // namespace
}  // namespace coco

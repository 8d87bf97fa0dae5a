// NextItNet (Yuan et al., WSDM 2019): residual blocks of dilated causal 1-D convolutions
// over the item sequence, next-item prediction at every position, item embeddings shared
// with the output layer. A block is two convolutions (dilation d, then 2d), each followed by
// LayerNorm and ReLU, added to its input; the dilations repeat num_blocks times, as in
// RecBole. Padding positions are zeroed before every convolution, so that a history's
// representation does not depend on how much padding precedes it.
#pragma once

#include <torch/nn/functional/padding.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>

#include <vector>

#include "coco/backbones/backbone.h"

namespace coco {

struct NextItNetOptions : NextItemOptions {
  std::vector<int64_t> dilations{1, 4};  // one group of blocks; block i convolves at d_i, 2 d_i
  int64_t num_blocks = 5;                // how often the group repeats
  int64_t kernel_size = 3;

  static NextItNetOptions from_config(ConfigNode& node, const BackboneSpec& spec) {
    NextItNetOptions o;
    o.parse_common(node, spec);
    o.dilations = node.get_int_list("dilations", o.dilations, 1);
    if (o.dilations.empty()) node.fail("dilations", "must list at least one dilation");
    o.num_blocks = node.get_int("num_blocks", o.num_blocks, 1);
    o.kernel_size = node.get_int("kernel_size", o.kernel_size, 1, 16);
    node.finish();
    return o;
  }
};

class NextItNetImpl : public NextItemBackboneImpl {
 public:
  explicit NextItNetImpl(NextItNetOptions options_)
      : NextItemBackboneImpl(options_), options(std::move(options_)) {
    const int64_t d = options.hidden;
    convs_ = register_module("convs", torch::nn::ModuleList());
    norms_ = register_module("norms", torch::nn::ModuleList());
    for (int64_t repeat = 0; repeat < options.num_blocks; ++repeat) {
      for (const int64_t dilation : options.dilations) {
        for (const int64_t step : {dilation, 2 * dilation}) {
          convs_->push_back(torch::nn::Conv1d(
              torch::nn::Conv1dOptions(d, d, options.kernel_size).dilation(step)));
          norms_->push_back(torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
        }
      }
    }
    init_normal(*this, options.init_std, item_emb_->weight);
  }

  torch::Tensor encode(const torch::Tensor& items) override {  // [B, L] → [B, L, d]
    const auto real = (items > 0).unsqueeze(-1).to(item_emb_->weight.scalar_type());  // [B, L, 1]
    auto x = embed(items);
    for (size_t c = 0; c < convs_->size(); c += 2) {
      auto h = x;
      for (size_t j = c; j < c + 2; ++j) {
        h = torch::relu(norms_[j]->as<torch::nn::LayerNorm>()->forward(causal_conv(j, h * real)));
      }
      x = x + h;
    }
    return x * real;
  }

  NextItNetOptions options;

 private:
  // Convolution j over positions t - k·dilation (k = 0, 1, ...), zeros before the start.
  torch::Tensor causal_conv(size_t j, const torch::Tensor& x) {  // [B, L, d] → [B, L, d]
    auto* conv = convs_[j]->as<torch::nn::Conv1d>();
    const int64_t left = (options.kernel_size - 1) * conv->options.dilation()->front();
    namespace F = torch::nn::functional;
    const auto padded =
        F::pad(x.transpose(1, 2), F::PadFuncOptions({left, 0}));  // [B, d, left + L]
    return conv->forward(padded).transpose(1, 2);
  }

  torch::nn::ModuleList convs_, norms_;
};

COCO_REGISTER_BACKBONE("nextitnet", NextItNet,
                       R"({"hidden": 16, "dilations": [1, 2], "num_blocks": 1})");

}  // namespace coco

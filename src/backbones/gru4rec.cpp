// GRU4Rec's layers and its forward pass over packed (left-aligned) sequences.
#include "coco/backbones/gru4rec.h"

#include <torch/torch.h>

namespace coco {

GRU4RecOptions GRU4RecOptions::from_config(ConfigNode& node, const BackboneSpec& spec) {
  GRU4RecOptions o;
  o.parse_common(node, spec);
  o.gru_hidden = node.get_int("gru_hidden", o.gru_hidden, 1);
  o.num_layers = node.get_int("num_layers", o.num_layers, 1);
  o.dropout = node.get_double("dropout", o.dropout, 0, 1);
  node.finish();
  return o;
}

GRU4RecImpl::GRU4RecImpl(GRU4RecOptions options_)
    : NextItemBackboneImpl(options_), options(std::move(options_)) {
  emb_drop_ = register_module("emb_drop", FastDropout(options.dropout));
  gru_ = register_module("gru",
                         torch::nn::GRU(torch::nn::GRUOptions(options.hidden, options.gru_hidden)
                                            .num_layers(options.num_layers)
                                            .batch_first(true)));
  dense_ = register_module("dense", torch::nn::Linear(options.gru_hidden, options.hidden));
  init_item_table();  // the GRU and the projection keep libtorch's initialisation
}

torch::Tensor GRU4RecImpl::encode(const torch::Tensor& items) {
  const int64_t l = items.size(1);
  const auto lengths = (items > 0).sum(1).clamp_min(1);  // [B]
  // Left-padded → left-aligned: row b rotates by its length, real items first.
  const auto cols = torch::arange(l, items.options()).unsqueeze(0);  // [1, L]
  const auto to_left = (cols + (l - lengths).unsqueeze(1)) % l;      // [B, L]
  const auto x = emb_drop_(embed(items.gather(1, to_left)));
  namespace rnn = torch::nn::utils::rnn;
  auto packed = rnn::pack_padded_sequence(x, lengths.cpu(), /*batch_first=*/true,
                                          /*enforce_sorted=*/false);
  auto out =
      std::get<0>(rnn::pad_packed_sequence(std::get<0>(gru_->forward_with_packed_input(packed)),
                                           /*batch_first=*/true, 0.0, l));
  const auto to_right = (cols + lengths.unsqueeze(1)) % l;  // inverse rotation
  const auto h = out.gather(1, to_right.unsqueeze(-1).expand({-1, -1, out.size(2)}));
  return dense_(h);
}

}  // namespace coco

// Next-item cross-entropy and sampled binary cross-entropy.
#include "coco/ops/next_item_loss.h"

#include <vector>

#include <ATen/Parallel.h>
#include <torch/torch.h>

namespace coco {

NextItemLossOptions NextItemLossOptions::from_config(ConfigNode& node) {
  NextItemLossOptions o;
  o.kind = node.get_enum("loss", o.kind,
                         {{"ce", NextItemLoss::kFullSoftmax}, {"bce", NextItemLoss::kSampledBce}});
  o.num_negatives = node.get_int("num_negatives", o.num_negatives, 1, 1000);
  return o;
}

namespace {

// Softmax cross-entropy whose gradient is computed during the forward pass, in chunks of
// rows: the [N, V] logits never exist at once, each chunk stays in cache, and the
// log-softmax / NLL backward passes (several sweeps over N×V floats) disappear. The
// loss is the graph's last step, so nothing is lost by differentiating eagerly.
struct ChunkedSoftmaxCE : torch::autograd::Function<ChunkedSoftmaxCE> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx,
                               const torch::Tensor& h,        // [N, d]
                               const torch::Tensor& emb,      // [V, d]
                               const torch::Tensor& bias,     // [V], or [0] for none
                               const torch::Tensor& targets)  // [N] in 0..V-1
  {
    const int64_t n = h.size(0), v = emb.size(0);
    const bool has_bias = bias.numel() > 0;
    const int64_t rows = std::max<int64_t>(1, (int64_t{1} << 20) / v);
    auto grad_h = torch::empty_like(h);
    // Chunks run in parallel, one single-threaded GEMM per thread (OpenBLAS is kept at one
    // thread, see set_compute_threads). Each thread sums its own item gradients and loss;
    // the parts are added in thread order, so a result depends only on the thread count.
    struct Part {
      torch::Tensor grad_e, grad_b, loss;
    };
    std::vector<Part> parts(static_cast<size_t>(at::get_num_threads()));
    const int64_t chunks = (n + rows - 1) / rows;
    at::parallel_for(0, chunks, h.is_cpu() ? 1 : chunks, [&](int64_t begin, int64_t end) {
      torch::NoGradGuard no_grad;  // grad mode is per thread; the workers' is on
      Part& part = parts[static_cast<size_t>(at::get_thread_num())];
      if (!part.grad_e.defined()) {
        part.grad_e = torch::zeros_like(emb);
        part.loss = torch::zeros({}, h.options().dtype(torch::kFloat64));
        if (has_bias) part.grad_b = torch::zeros_like(bias);
      }
      for (int64_t chunk = begin; chunk < end; ++chunk) {
        const int64_t start = chunk * rows, m = std::min(rows, n - start);
        const auto hc = h.narrow(0, start, m);
        const auto tc = targets.narrow(0, start, m).unsqueeze(1);  // [m, 1]
        auto p = torch::mm(hc, emb.t());                           // [m, V] logits
        if (has_bias) p.add_(bias);
        const auto target_logit = p.gather(1, tc);
        const auto max = std::get<0>(p.max(1, /*keepdim=*/true));
        p.sub_(max).exp_();
        const auto sum = p.sum(1, /*keepdim=*/true);
        part.loss += (sum.log() + max - target_logit).sum().to(torch::kFloat64);
        p.div_(sum);                                                    // softmax
        p.scatter_add_(1, tc, torch::full({m, 1}, -1.0, p.options()));  // - one-hot
        grad_h.narrow(0, start, m).copy_(torch::mm(p, emb));
        part.grad_e.addmm_(p.t(), hc);
        if (has_bias) part.grad_b.add_(p.sum(0));
      }
    });
    auto grad_e = torch::zeros_like(emb);
    auto grad_b = has_bias ? torch::zeros_like(bias) : torch::Tensor();
    auto loss = torch::zeros({}, h.options().dtype(torch::kFloat64));
    for (const Part& part : parts) {
      if (!part.grad_e.defined()) continue;
      grad_e += part.grad_e;
      if (has_bias) grad_b += part.grad_b;
      loss += part.loss;
    }
    const double inv_n = 1.0 / static_cast<double>(std::max<int64_t>(1, n));
    ctx->saved_data["grad_h"] = grad_h.mul_(inv_n);
    ctx->saved_data["grad_e"] = grad_e.mul_(inv_n);
    ctx->saved_data["grad_b"] = has_bias ? grad_b.mul_(inv_n) : torch::Tensor();
    return (loss * inv_n).to(h.dtype());
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_out) {
    const auto g = grad_out[0];
    auto grad_b = ctx->saved_data["grad_b"].toTensor();
    return {ctx->saved_data["grad_h"].toTensor() * g, ctx->saved_data["grad_e"].toTensor() * g,
            grad_b.defined() ? grad_b * g : torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor full_softmax_ce(const torch::Tensor& repr, const torch::Tensor& targets,
                              const torch::Tensor& item_emb, const torch::Tensor& bias) {
  // Row 0 (padding) is left out of the softmax: logits cover items 1..V only.
  const int64_t num_items = item_emb.size(0) - 1;
  return ChunkedSoftmaxCE::apply(
      repr, item_emb.narrow(0, 1, num_items),
      bias.defined() ? bias.narrow(0, 1, num_items) : torch::empty({0}, repr.options()),
      targets - 1);
}

torch::Tensor next_item_loss(const torch::Tensor& hidden, const torch::Tensor& inputs,
                             const torch::Tensor& targets, const torch::Tensor& item_emb,
                             const NextItemLossOptions& opt) {
  const auto valid = (inputs > 0) & (targets > 0);  // [B, L]
  const auto h = hidden.index({valid});             // [N, d]
  const auto t = targets.index({valid});            // [N]
  if (t.numel() == 0) return hidden.sum() * 0;      // keeps the graph; no real position
  if (opt.kind == NextItemLoss::kFullSoftmax) return full_softmax_ce(h, t, item_emb);

  const int64_t num_items = item_emb.size(0) - 1;
  auto neg = torch::randint(1, num_items + 1, {t.size(0), opt.num_negatives},
                            torch::TensorOptions().dtype(torch::kInt64).device(t.device()));
  neg = torch::where(neg == t.unsqueeze(1), neg % num_items + 1, neg);  // never the target
  const auto pos_logit = (h * item_emb.index_select(0, t)).sum(-1);     // [N]
  const auto neg_logit = torch::bmm(item_emb.index({neg}), h.unsqueeze(2)).squeeze(2);  // [N, k]
  namespace F = torch::nn::functional;
  return F::binary_cross_entropy_with_logits(pos_logit, torch::ones_like(pos_logit)) +
         F::binary_cross_entropy_with_logits(neg_logit, torch::zeros_like(neg_logit)) *
             opt.num_negatives;
}

}  // namespace coco

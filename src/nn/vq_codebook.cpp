// VQ prompt codebook: nearest-key selection with the VQ-VAE losses, soft and random
// selection, usage statistics and dead-code restart.
#include "coco/nn/vq_codebook.h"

#include <ATen/CPUGeneratorImpl.h>

#include <torch/torch.h>

#include <cmath>
#include <sstream>
#include <string>

#include "coco/common/error.h"
#include "coco/dist/process_group.h"

namespace coco {

VQCodebookOptions VQCodebookOptions::from_config(ConfigNode& node, int64_t hidden,
                                                 int64_t llm_width) {
  VQCodebookOptions o(hidden, llm_width);
  o.num_codes(node.get_int("num_codes", o.num_codes(), 1));
  o.code_dim(node.get_int("code_dim", o.code_dim(), 1));
  o.prompt_len(node.get_int("prompt_len", o.prompt_len(), 1));
  o.commitment_beta(node.get_double("commitment_beta", o.commitment_beta(), 0));
  o.selection(node.get_enum("selection", o.selection(),
                            {{"hard", VQSelection::kHard},
                             {"soft", VQSelection::kSoft},
                             {"random", VQSelection::kRandom}}));
  o.temperature(node.get_double("temperature", o.temperature()));
  if (!(o.temperature() > 0)) {
    std::ostringstream message;
    message << "must be > 0, got " << o.temperature();
    node.fail("temperature", message.str());
  }
  o.restart_after(node.get_int("restart_after", o.restart_after(), 0));
  o.prompt_init_std(node.get_double("prompt_init_std", o.prompt_init_std(), 0));
  node.finish();
  return o;
}

VQCodebookImpl::VQCodebookImpl(VQCodebookOptions options_) : options(std::move(options_)) {
  reset();
}

void VQCodebookImpl::reset() {
  const int64_t k = options.num_codes(), dq = options.code_dim();
  if (k < 1 || dq < 1 || options.prompt_len() < 1 || options.hidden() < 1 ||
      options.llm_width() < 1) {
    throw ConfigError("VQ codebook: K, d_q, P, d and D must be >= 1");
  }
  query_proj_ = register_module("query_proj", torch::nn::Linear(options.hidden(), dq));
  // Keys of unit expected norm, comparable to queries of a freshly initialised W_q.
  keys_ = register_parameter("keys", torch::randn({k, dq}) / std::sqrt(double(dq)));
  prompts_ =
      register_parameter("prompts", torch::randn({k, options.prompt_len(), options.llm_width()}) *
                                        options.prompt_init_std());
  counts_ = register_buffer("usage_counts", torch::zeros({k}, torch::kFloat64));
  idle_ = register_buffer("idle_calls", torch::zeros({k}, torch::kInt64));
}

void VQCodebookImpl::init_prompts(const torch::Tensor& embeddings, double noise_std) {
  TORCH_CHECK(embeddings.sizes() == prompts_.sizes(), "init_prompts: expected ", prompts_.sizes(),
              ", got ", embeddings.sizes());
  torch::NoGradGuard no_grad;
  prompts_.copy_(embeddings);
  if (noise_std > 0) prompts_.add_(torch::randn_like(prompts_) * noise_std);
}

int64_t VQCodebookImpl::restart_dead_codes(const torch::Tensor& queries) {
  const auto dead = (idle_ >= options.restart_after()).nonzero().flatten();  // [n]
  const int64_t n = dead.numel(), b = queries.size(0);
  if (n == 0 || b == 0) return 0;
  const auto long_opts = torch::TensorOptions().dtype(torch::kInt64).device(queries.device());
  const auto rows =
      b >= n ? torch::randperm(b, long_opts).narrow(0, 0, n) : torch::randint(b, {n}, long_opts);
  torch::NoGradGuard no_grad;
  // Through .data() (own version counter): a graph still waiting for backward (gradient
  // accumulation) stays valid. Hard selection reads keys there only by index, and dead
  // codes were not selected, so their new values change nothing in it.
  keys_.data().index_copy_(0, dead, queries.index_select(0, rows).to(keys_.dtype()));
  // Data-parallel: every rank found the same dead codes (the usage is reduced); rank 0's
  // queries restart them everywhere.
  dist::world().broadcast({keys_.data()}, "broadcast of the restarted VQ codes");
  idle_.index_fill_(0, dead, 0);
  return n;
}

VQCodebookOutput VQCodebookImpl::forward(const torch::Tensor& h_rs) {
  TORCH_CHECK(h_rs.dim() == 2 && h_rs.size(1) == options.hidden(),
              "VQ codebook: expected h_rs [B, ", options.hidden(), "], got ", h_rs.sizes());
  const int64_t k = options.num_codes(), b = h_rs.size(0);
  const bool counting = is_training();
  VQCodebookOutput out;
  out.query = query_proj_(h_rs);  // [B, d_q]
  const auto& q = out.query;

  if (options.selection() == VQSelection::kRandom) {
    // Evaluation draws from a fixed stream, so two evaluations of one checkpoint agree.
    out.codes =
        counting
            ? torch::randint(k, {b}, torch::TensorOptions().dtype(torch::kInt64).device(q.device()))
            : torch::randint(k, {b}, at::make_generator<at::CPUGeneratorImpl>(0), torch::kInt64)
                  .to(q.device());
    const auto e = keys_.index_select(0, out.codes);  // [B, d_q]
    out.quantized = q + (e - q).detach();
    out.loss_vq = torch::zeros({}, q.options());
    out.probs = torch::one_hot(out.codes, k).to(q.dtype());
    out.prompts = prompts_.index_select(0, out.codes);
  } else {
    if (counting && options.restart_after() > 0) {
      out.num_restarted = restart_dead_codes(q.detach());
    }
    // ‖q − e‖² = ‖q‖² − 2 q·e + ‖e‖²                                          [B, K]
    const auto dist =
        q.pow(2).sum(1, true) - 2 * torch::mm(q, keys_.t()) + keys_.pow(2).sum(1).unsqueeze(0);
    out.codes = std::get<1>(dist.detach().min(1));    // [B]
    const auto e = keys_.index_select(0, out.codes);  // [B, d_q]
    // VQ-VAE: the codebook term moves keys to queries, the commitment term queries to keys.
    out.loss_vq = (q.detach() - e).pow(2).sum(1).mean() +
                  options.commitment_beta() * (q - e.detach()).pow(2).sum(1).mean();
    if (options.selection() == VQSelection::kSoft) {
      out.probs = torch::softmax(-dist / options.temperature(), 1);  // [B, K]
      out.quantized = torch::mm(out.probs, keys_);
      out.prompts = torch::einsum("bk,kpd->bpd", {out.probs, prompts_});
    } else {
      out.probs = torch::one_hot(out.codes, k).to(q.dtype());
      out.quantized = q + (e - q).detach();  // straight-through: gradient goes to q
      // Selected by index, so the prompt table learns from whatever uses the prompts.
      out.prompts = prompts_.index_select(0, out.codes);
    }
  }

  if (counting) {
    torch::NoGradGuard no_grad;
    auto hist = torch::bincount(out.codes, {}, k);  // [K], over every rank's batch
    dist::world().all_reduce({hist}, dist::ReduceOp::kSum, "all-reduce of the VQ code usage");
    counts_.add_(hist.to(counts_.dtype()));
    idle_.add_(1).masked_fill_(hist > 0, 0);
  }
  return out;
}

torch::Tensor VQCodebookImpl::usage_histogram() const {
  const double total = counts_.sum().item<double>();
  return total > 0 ? counts_ / total : torch::zeros_like(counts_);
}

double VQCodebookImpl::perplexity() const {
  const auto p = usage_histogram();
  if (p.sum().item<double>() == 0) return 0;
  const auto plogp = torch::where(p > 0, p * p.log(), torch::zeros_like(p));  // 0·log 0 = 0
  return std::exp(-plogp.sum().item<double>());
}

// Only the statistics: the idle counters must keep running across epochs, or a code would
// never stay unused for restart_after calls when an epoch has fewer batches than that.
void VQCodebookImpl::reset_usage() {
  torch::NoGradGuard no_grad;
  counts_.zero_();
}

}  // namespace coco

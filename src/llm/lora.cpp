// LoRALinear and the adapter management functions.
#include "coco/llm/lora.h"

#include <cmath>
#include <map>
#include <sstream>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "coco/common/error.h"
#include "coco/config/config.h"
#include "coco/llm/safetensors.h"
#include "coco/ops/dropout.h"

namespace coco::llm {
namespace {

const std::map<std::string, std::string>& short_names() {
  static const std::map<std::string, std::string> m = {
      {"q", "q_proj"},       {"k", "k_proj"},   {"v", "v_proj"},      {"o", "o_proj"},
      {"gate", "gate_proj"}, {"up", "up_proj"}, {"down", "down_proj"}};
  return m;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string resolve_target(const std::string& target) {
  auto it = short_names().find(target);
  if (it != short_names().end()) return it->second;
  if (target.find("_proj") != std::string::npos || target.find('.') != std::string::npos)
    return target;
  throw ConfigError("config error at /lora/targets: unknown target '" + target +
                    "' (expected q, k, v, o, gate, up, down or a module name like q_proj)");
}

// a · b with a's rows split over libtorch's threads, one single-threaded GEMM each:
// OpenBLAS keeps one thread (set_compute_threads), which left the second core idle
// through every projection of the LLM.
torch::Tensor rows_mm(const torch::Tensor& a, const torch::Tensor& b) {  // [N, K] · [K, M]
  const int64_t n = a.size(0), threads = at::get_num_threads();
  if (threads < 2 || n < 64 * threads || !a.device().is_cpu()) return torch::mm(a, b);
  auto out = torch::empty({n, b.size(1)}, a.options());
  at::parallel_for(0, n, (n + threads - 1) / threads, [&](int64_t begin, int64_t end) {
    torch::NoGradGuard no_grad;  // grad mode is per thread; the workers' is on
    auto rows = out.narrow(0, begin, end - begin);
    torch::mm_out(rows, a.narrow(0, begin, end - begin), b);
  });
  return out;
}

// x Wᵀ + b for a frozen W and b on CPU, both products (forward, and dX = dY W) row-split.
struct FrozenLinear : torch::autograd::Function<FrozenLinear> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& weight,  // [O, I]
                               const torch::Tensor& bias) {  // [O], or [0] for none
    auto y = rows_mm(x.reshape({-1, x.size(-1)}), weight.t());
    if (bias.numel() > 0) y += bias;
    ctx->save_for_backward({weight});
    ctx->saved_data["shape"] = x.sizes();
    auto shape = x.sizes().vec();
    shape.back() = weight.size(0);
    return y.view(shape);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grad_out) {
    const auto weight = ctx->get_saved_variables()[0];
    const auto g = grad_out[0].reshape({-1, weight.size(0)}).contiguous();
    return {rows_mm(g, weight).view(ctx->saved_data["shape"].toIntVector()), torch::Tensor(),
            torch::Tensor()};
  }
};

torch::Tensor frozen_linear(const torch::Tensor& x, const torch::Tensor& weight,
                            const torch::Tensor& bias) {
  const bool frozen = !weight.requires_grad() && !(bias.defined() && bias.requires_grad());
  if (!frozen || !x.device().is_cpu() || x.scalar_type() != torch::kFloat32 ||
      weight.scalar_type() != torch::kFloat32) {
    return torch::linear(x, weight, bias);
  }
  return FrozenLinear::apply(x.contiguous(), weight, bias.defined() ? bias : torch::empty({0}));
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

}  // namespace

LoRAOptions LoRAOptions::from_config(ConfigNode& node) {
  LoRAOptions o;
  o.rank(node.get_int("rank", 8, 1, 4096));
  o.alpha(node.get_double("alpha", 16.0, 1e-12));
  o.dropout(node.get_double("dropout", 0.05, 0.0, 0.999));
  o.targets(node.get_string_list("targets", {"q", "v"}));
  for (const auto& t : o.targets()) {
    if (!short_names().count(t) && t.find("_proj") == std::string::npos) {
      node.fail("targets", "unknown target \"" + t + "\" (expected q, k, v, o, gate, up, down)");
    }
  }
  node.finish();
  return o;
}

LoRALinearImpl::LoRALinearImpl(LoRALinearOptions options_) : options(std::move(options_)) {
  reset();
}

void LoRALinearImpl::reset() {
  const auto in = options.in_features(), out = options.out_features();
  bias = torch::Tensor();
  if (const auto& alloc = options.uninitialised()) {
    weight = register_parameter("weight", torch::empty({out, in}, *alloc), false);
    if (options.bias()) bias = register_parameter("bias", torch::empty({out}, *alloc), false);
  } else {
    // Same default init as torch::nn::Linear, so a randomly initialised decoder is sensible.
    weight = register_parameter("weight", torch::empty({out, in}), /*requires_grad=*/false);
    torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    if (options.bias())
      bias = register_parameter("bias", torch::empty({out}).uniform_(-bound, bound), false);
  }
  lora_A = torch::Tensor();
  lora_B = torch::Tensor();
  if (options.rank() > 0) {
    const auto r = options.rank();
    lora_A = register_parameter("lora_A", torch::empty({r, in}, weight.options()));
    torch::NoGradGuard no_grad;
    torch::nn::init::kaiming_uniform_(lora_A, std::sqrt(5.0));
    lora_B = register_parameter("lora_B", torch::zeros({out, r}, weight.options()));
    lora_A.set_requires_grad(true);
    lora_B.set_requires_grad(true);
  }
}

void LoRALinearImpl::attach_adapter(int64_t rank, double alpha, double dropout) {
  TORCH_CHECK(rank > 0, "LoRA rank must be positive, got ", rank);
  if (merged_) {
    // A merged adapter cannot be unregistered; a new one of the same rank reuses its tensors.
    TORCH_CHECK(rank == options.rank(), "a merged LoRA adapter of rank ", options.rank(),
                " can only be replaced by one of the same rank, got ", rank);
    torch::NoGradGuard no_grad;
    torch::nn::init::kaiming_uniform_(lora_A, std::sqrt(5.0));
    lora_B.zero_();
    lora_A.set_requires_grad(true);
    lora_B.set_requires_grad(true);
    options.alpha(alpha).dropout(dropout);
    merged_ = false;
    return;
  }
  if (has_adapter()) return;
  options.rank(rank).alpha(alpha).dropout(dropout);
  const auto in = options.in_features(), out = options.out_features();
  // Adapters stay float32 even on a bfloat16 model: they are what the optimiser updates.
  const auto opts = weight.options().dtype(torch::kFloat32).requires_grad(false);
  auto a = torch::empty({rank, in}, opts);
  torch::nn::init::kaiming_uniform_(a, std::sqrt(5.0));
  lora_A = register_parameter("lora_A", a, true);
  lora_B = register_parameter("lora_B", torch::zeros({out, rank}, opts), true);
}

void LoRALinearImpl::merge_adapter() {
  if (!has_adapter()) return;
  {
    torch::NoGradGuard no_grad;
    weight.add_((torch::matmul(lora_B, lora_A) * scale()).to(weight.scalar_type()));
  }
  // Modules cannot unregister parameters; the merged adapter stays, frozen and unused.
  merged_ = true;
  lora_A.set_requires_grad(false);
  lora_B.set_requires_grad(false);
}

namespace {

// s · B A h with per-example gradient masking for A and B: every row sends gradient to h,
// only rows with m = 1 to A and B (all rows without a mask). The mask is read when
// backward runs, not when forward runs, so a caller may decide it from the forward's own
// output (CoCo's decision matrix). Equal in value and gradients to
// m ⊙ BAh + (1 − m) ⊙ sg(B) sg(A) h, at the cost of one adapter product instead of two.
// The products go through M = s B A [O, I] and G = Σ_n m_n g_n h_nᵀ [O, I]
// (dB = s G Aᵀ, dA = s Bᵀ G): GEMMs of the layer's own widths instead of rank-r-thin
// ones, which OpenBLAS ran about three times slower per FLOP here.
struct MaskedLoRAFunction : torch::autograd::Function<MaskedLoRAFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& h,
                               const torch::Tensor& a, const torch::Tensor& b,
                               const torch::Tensor& mask, double scale) {
    const auto m = torch::mm(b, a) * scale;  // [O, I]
    ctx->save_for_backward({h, a, b, m});
    ctx->saved_data["mask"] = mask;  // deliberately not version-checked: see above
    ctx->saved_data["scale"] = scale;
    auto shape = h.sizes().vec();
    shape.back() = m.size(0);
    return rows_mm(h.reshape({-1, h.size(-1)}), m.t()).view(shape);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &h = saved[0], &a = saved[1], &b = saved[2], &m = saved[3];
    const double scale = ctx->saved_data["scale"].toDouble();
    const auto& g = grads[0];  // [B, ..., O]
    const auto rows = [](const torch::Tensor& t) { return t.reshape({-1, t.size(-1)}); };
    torch::Tensor gh, ga, gb;
    if (ctx->needs_input_grad(0)) gh = rows_mm(rows(g), m).view(h.sizes());
    if (ctx->needs_input_grad(1) || ctx->needs_input_grad(2)) {
      auto gm = g;
      if (const auto mask = ctx->saved_data["mask"].toTensor(); mask.numel() > 0) {
        std::vector<int64_t> view(static_cast<size_t>(g.dim()), 1);
        view[0] = g.size(0);
        gm = g * mask.to(g.scalar_type()).view(view);
      }
      const auto big_g = torch::mm(rows(gm).t(), rows(h));  // [O, I]
      gb = torch::mm(big_g, a.t()) * scale;                 // [O, r]
      ga = torch::mm(b.t(), big_g) * scale;                 // [r, I]
    }
    return {gh, ga, gb, torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor LoRALinearImpl::forward(const torch::Tensor& x, const torch::Tensor& lora_mask) {
  auto y = frozen_linear(x, weight, bias);  // [B, ..., O]
  if (!has_adapter() || merged_) return y;
  const double p = options.dropout();
  const auto xa = x.to(lora_A.scalar_type());
  const auto h = fast_dropout(xa, p, is_training());
  if (lora_mask.defined()) {
    TORCH_CHECK(lora_mask.dim() == 1 && lora_mask.size(0) == x.size(0),
                "lora_mask must be [B] with B = ", x.size(0), ", got ", lora_mask.sizes());
    TORCH_CHECK(!lora_mask.requires_grad(), "lora_mask must not require gradient");
  }
  const auto mask = lora_mask.defined() ? lora_mask : torch::empty({0});  // [0]: every row learns
  return y + MaskedLoRAFunction::apply(h, lora_A, lora_B, mask, scale()).to(y.scalar_type());
}

std::vector<std::string> attach_lora(torch::nn::Module& root, const LoRAOptions& options) {
  std::vector<std::string> adapted;
  for (const auto& target : options.targets()) {
    const std::string suffix = resolve_target(target);
    size_t hits = 0;
    for (const auto& item : root.named_modules("", /*include_self=*/false)) {
      auto* lin = item.value()->as<LoRALinearImpl>();
      if (!lin) continue;
      const std::string& name = item.key();
      if (name != suffix && !ends_with(name, "." + suffix)) continue;
      lin->attach_adapter(options.rank(), options.alpha(), options.dropout());
      adapted.push_back(name);
      ++hits;
    }
    if (hits == 0) {
      throw ConfigError("config error at /lora/targets: target '" + target +
                        "' matches no linear layer of the model");
    }
  }
  return adapted;
}

std::vector<torch::Tensor> lora_parameters(torch::nn::Module& root) {
  std::vector<torch::Tensor> out;
  for (const auto& item : root.named_parameters()) {
    if (ends_with(item.key(), ".lora_A") || ends_with(item.key(), ".lora_B") ||
        item.key() == "lora_A" || item.key() == "lora_B") {
      if (item.value().requires_grad()) out.push_back(item.value());
    }
  }
  return out;
}

void merge_lora(torch::nn::Module& root) {
  for (const auto& m : root.modules(/*include_self=*/true)) {
    if (auto* lin = m->as<LoRALinearImpl>()) lin->merge_adapter();
  }
}

void save_lora(torch::nn::Module& root, const std::string& path, const LoRAOptions& options) {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& item : root.named_parameters()) {
    if (ends_with(item.key(), "lora_A") || ends_with(item.key(), "lora_B")) {
      tensors.emplace_back(item.key(), item.value().detach().to(torch::kFloat32));
    }
  }
  if (tensors.empty()) throw CheckpointError(path + ": the model has no LoRA adapters to save");
  std::ostringstream alpha;
  alpha.precision(17);
  alpha << options.alpha();
  save_safetensors(path, tensors,
                   {{"format", "coco-lora"},
                    {"rank", std::to_string(options.rank())},
                    {"alpha", alpha.str()},
                    {"targets", join(options.targets())}});
}

LoRAOptions load_lora(torch::nn::Module& root, const std::string& path) {
  SafetensorsFile file(path);
  const auto& meta = file.metadata();
  auto meta_at = [&](const char* key) {
    auto it = meta.find(key);
    if (it == meta.end())
      throw CheckpointError(path + ": LoRA file metadata key '" + key + "' is missing");
    return it->second;
  };
  LoRAOptions o;
  try {
    o.rank(std::stoll(meta_at("rank")));
    o.alpha(std::stod(meta_at("alpha")));
  } catch (const std::logic_error&) {
    throw CheckpointError(path + ": LoRA file metadata 'rank'/'alpha' are not numbers");
  }
  std::vector<std::string> targets;
  std::stringstream ss(meta_at("targets"));
  for (std::string t; std::getline(ss, t, ',');) targets.push_back(t);
  if (o.rank() < 1 || !(o.alpha() > 0) || !std::isfinite(o.alpha()) || targets.empty()) {
    throw CheckpointError(path + ": LoRA file metadata: expected rank >= 1, a finite alpha > 0 " +
                          "and at least one target, got rank " + meta_at("rank") + ", alpha " +
                          meta_at("alpha") + ", targets '" + meta_at("targets") + "'");
  }
  o.targets(targets);
  o.dropout(0.0);
  attach_lora(root, o);
  auto params = root.named_parameters();
  for (const auto& [name, entry] : file.entries()) {
    auto* p = params.find(name);
    if (!p)
      throw CheckpointError(path + ": LoRA tensor '" + name +
                            "' has no matching module in the model");
    if (!c10::isFloatingType(entry.dtype))
      throw CheckpointError(path + ": LoRA tensor '" + name + "' is " +
                            std::string(c10::toString(entry.dtype)) + ", expected floating point");
    if (p->sizes().vec() != entry.shape) {
      throw CheckpointError(path + ": LoRA tensor '" + name + "': shape mismatch with the model");
    }
    torch::NoGradGuard no_grad;
    p->copy_(file.load(name));
  }
  return o;
}

}  // namespace coco::llm

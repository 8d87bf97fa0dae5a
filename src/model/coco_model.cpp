// CoCo's training step, fused evaluation with the knowledge cache, and its diagnostics.
#include "coco/model/coco_model.h"

#include <filesystem>
#include <mutex>
#include <numeric>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "coco/data/batches.h"
#include "coco/dist/process_group.h"
#include "coco/llm/llama_loader.h"
#include "coco/ops/contrastive_losses.h"

namespace fs = std::filesystem;

namespace coco {

namespace {

// Short facet prompts the codebook starts from (METHOD.md step 2), cycled to K.
const std::vector<std::string> kDefaultFacets = {
    "Focus on the brand.",       "Focus on the price range.",
    "Focus on the category.",    "Focus on the style.",
    "Focus on the quality.",     "Focus on what the items are used for.",
    "Focus on the newest item.", "Focus on what the items have in common.",
};

uint64_t history_hash(const int64_t* row, int64_t length) {
  uint64_t h = 0x9e3779b97f4a7c15ULL;
  for (int64_t j = 0; j < length; ++j) {
    if (row[j] > 0) h = mix_seed(h, static_cast<uint64_t>(row[j]));
  }
  return h;
}

// Turns off requires_grad of a module's trainable parameters while it lives: what is
// computed meanwhile carries gradient to its other inputs only (autograd records
// requires_grad when an operation runs).
class FrozenParameters {
 public:
  FrozenParameters(torch::nn::Module& module, bool active) {
    if (!active) return;
    for (auto& p : module.parameters()) {
      if (p.requires_grad()) params_.push_back(p.requires_grad_(false));
    }
  }
  ~FrozenParameters() {
    for (auto& p : params_) p.requires_grad_(true);
  }
  FrozenParameters(const FrozenParameters&) = delete;
  FrozenParameters& operator=(const FrozenParameters&) = delete;

 private:
  std::vector<torch::Tensor> params_;
};

// While it lives, the torch CPU RNG runs a stream of its own, seeded from the stream's next
// draw; afterwards the stream continues where it was. The knowledge path's draws (prefixes,
// dropout, code restarts) thus leave the backbone's draws as they are when it trains alone.
// (On CUDA, dropout masks come from the device's generator, which this does not fork.)
class ForkedRng {
 public:
  ForkedRng() : gen_(at::detail::getDefaultCPUGenerator()) {
    std::lock_guard<std::mutex> lock(gen_.mutex());
    saved_ = gen_.get_state();
    const uint64_t draw = at::check_generator<at::CPUGeneratorImpl>(gen_)->random64();
    gen_.set_current_seed(mix_seed(draw, 0x6b6e6f776c656467ULL));
  }
  ~ForkedRng() {
    std::lock_guard<std::mutex> lock(gen_.mutex());
    gen_.set_state(saved_);
  }
  ForkedRng(const ForkedRng&) = delete;
  ForkedRng& operator=(const ForkedRng&) = delete;

 private:
  at::Generator gen_;
  torch::Tensor saved_;
};

}  // namespace

CoCoOptions CoCoOptions::from_config(ConfigNode& node, int64_t hidden,
                                     const std::string& config_dir) {
  CoCoOptions o;
  ConfigNode knowledge = node.child("knowledge");
  o.knowledge = KnowledgeOptions::from_config(knowledge, config_dir);
  const int64_t llm_width = llm::read_llama_config(o.knowledge.llm.path()).hidden_size();
  ConfigNode vq = node.child("vq");
  o.vq = VQCodebookOptions::from_config(vq, hidden, llm_width);
  ConfigNode aligner = node.child("aligner");
  o.aligner = AlignerOptions::from_config(aligner, llm_width, hidden);
  ConfigNode decision = node.child("decision");
  o.decision = DecisionOptions::from_config(decision);
  ConfigNode fusion = node.child("fusion");
  o.fusion = FusionOptions::from_config(fusion, hidden);
  ConfigNode adapt = node.child("adapt");
  o.adapt = AdaptOptions::from_config(adapt);
  o.facets = node.get_string_list("facets", kDefaultFacets);
  if (o.facets.empty()) node.fail("facets", "at least one facet prompt is needed");
  o.prompt_noise = node.get_double("prompt_noise", o.prompt_noise, 0, 10);
  {
    ConfigNode loss = node.child("loss");
    o.lambda_fused = loss.get_double("rec_fused", o.lambda_fused, 0, 1e6);
    o.lambda_nce = loss.get_double("nce", o.lambda_nce, 0, 1e6);
    o.lambda_align = loss.get_double("align", o.lambda_align, 0, 1e6);
    o.lambda_vq = loss.get_double("vq", o.lambda_vq, 0, 1e6);
    o.lambda_ortho = loss.get_double("ortho", o.lambda_ortho, 0, 1e6);
    o.tau_nce = loss.get_double("tau_nce", o.tau_nce, 1e-6, 1e6);
    o.tau_align = loss.get_double("tau_align", o.tau_align, 1e-6, 1e6);
    loss.finish();
  }
  {
    ConfigNode lr = node.child("lr");
    o.lr_knowledge = lr.get_double("knowledge", o.lr_knowledge, 0, 10);
    o.lr_lora = lr.get_double("lora", o.lr_lora, 0, 10);
    lr.finish();
  }
  o.warmup_epochs = node.get_int("warmup_epochs", o.warmup_epochs, 0);
  o.vq_grad_to_backbone = node.get_bool("vq_grad_to_backbone", o.vq_grad_to_backbone);
  o.fusion_grad_to_backbone = node.get_bool("fusion_grad_to_backbone", o.fusion_grad_to_backbone);
  o.prefix = node.get_enum(
      "prefix", o.prefix, {{"last", KnowledgeTarget::kLast}, {"random", KnowledgeTarget::kRandom}});
  node.finish();
  return o;
}

CoCoModelImpl::CoCoModelImpl(Backbone backbone, CoCoOptions options_, const ItemCatalog& catalog)
    : options(std::move(options_)), backbone_(std::move(backbone)) {
  register_module("backbone", backbone_);
  knowledge_ = register_module("knowledge", KnowledgeEncoder(options.knowledge, catalog));
  vq_ = register_module("vq", VQCodebook(options.vq));
  vq_->init_prompts(knowledge_->prompt_embeddings(options.facets, options.vq.num_codes(),
                                                  options.vq.prompt_len()),
                    options.prompt_noise);
  aligner_ = register_module("aligner", Aligner(options.aligner));
  decision_ = register_module("decision", DecisionMatrix(options.decision));
  fusion_ = register_module("fusion", Fusion(options.fusion));
  code_examples_ = torch::zeros({options.vq.num_codes()}, torch::kFloat64);
  code_active_ = torch::zeros_like(code_examples_);
}

CoCoModelImpl::Knowledge CoCoModelImpl::knowledge_of(const torch::Tensor& h_rs,
                                                     const torch::Tensor& history,
                                                     const torch::Tensor& lora_mask) {
  Knowledge k;
  k.vq = vq_(options.vq_grad_to_backbone ? h_rs : h_rs.detach());
  const auto out = knowledge_(k.vq.prompts, history, lora_mask);
  k.h_aligned = aligner_->forward_joint(out.states, out.text_mask).h_aligned;
  return k;
}

LossTerms CoCoModelImpl::loss(const TrainBatch& batch) {
  // The backbone's own step draws what it draws when trained alone: loss() only, unless
  // the knowledge needs h_rs of the whole window (train_step; BERT4Rec's costs a pass).
  const bool last = options.prefix == KnowledgeTarget::kLast && !warming_up();
  BackboneStep step =
      last ? backbone_->train_step(batch) : BackboneStep{backbone_->loss(batch), {}};
  if (warming_up()) return std::move(step.loss);
  ForkedRng own_stream;
  const int64_t b = batch.items.size(0);
  const EvalBatch cut = last ? batch.last_item() : random_prefixes(batch);
  const auto& history = cut.history;  // [B, <= L]
  const auto& target = cut.target;    // [B]
  torch::Tensor h_rs = step.repr;     // [B, d]
  if (!last) {
    torch::AutoGradMode grad(options.fusion_grad_to_backbone);  // else h_rs is a constant anyway
    h_rs = backbone_->user_repr(cut);
  }

  // Filled from the decision matrix below; the LoRA layers read it during backward.
  auto lora_mask = torch::zeros({b}, h_rs.options().requires_grad(false));
  Knowledge k = knowledge_of(h_rs, history, lora_mask);
  const auto h_u =
      fusion_(options.fusion_grad_to_backbone ? h_rs : h_rs.detach(), k.h_aligned);  // [B, d]

  // log p(target) over items 1..V from a representation's scores
  auto logp = [&](const torch::Tensor& scores) {  // [B, V + 1] → [B]
    const auto lse = scores.narrow(1, 1, scores.size(1) - 1).logsumexp(1);
    return scores.gather(1, target.unsqueeze(1)).squeeze(1) - lse;
  };
  // Without fusion_grad_to_backbone the fused losses reach no backbone weight: the item
  // table is read as a constant.
  torch::Tensor fused_scores, target_emb;
  {
    FrozenParameters frozen(*backbone_, !options.fusion_grad_to_backbone);
    fused_scores = score_all(h_u);  // [B, V + 1]
    target_emb = backbone_->item_embeddings().index_select(0, target);
  }
  const auto logp_fused = logp(fused_scores);  // [B]
  const auto l_fused = -logp_fused.mean();     // the output's own objective at the target

  {
    torch::NoGradGuard no_grad;
    decide(k, h_rs, logp_fused.detach(), logp(score_all(h_rs)), lora_mask);
  }

  const auto l_nce = nce_item_loss(h_u, target_emb, options.tau_nce, target);
  const auto l_align = info_nce(k.h_aligned, h_rs.detach(), options.tau_align);
  const auto l_ortho = orthogonality_loss(vq_->prompts());
  LossTerms terms = std::move(step.loss);
  terms.total = terms.total + options.lambda_fused * l_fused + options.lambda_nce * l_nce +
                options.lambda_align * l_align + options.lambda_vq * k.vq.loss_vq +
                options.lambda_ortho * l_ortho;
  terms.parts.emplace_back("rec_fused", l_fused.detach());
  terms.parts.emplace_back("nce", l_nce.detach());
  terms.parts.emplace_back("align", l_align.detach());
  terms.parts.emplace_back("vq", k.vq.loss_vq.detach());
  terms.parts.emplace_back("ortho", l_ortho.detach());
  return terms;
}

void CoCoModelImpl::decide(const Knowledge& k, const torch::Tensor& h_rs,
                           const torch::Tensor& logp_fused, const torch::Tensor& logp_rs,
                           torch::Tensor& lora_mask) {
  const DecisionOutput decision = decision_(k.h_aligned, h_rs, logp_fused, logp_rs);
  lora_mask.copy_(decision.mask);
  const auto per_code =
      DecisionMatrixImpl::per_code_activation(decision.mask, k.vq.codes, options.vq.num_codes());
  code_examples_ += per_code.examples.to(torch::kCPU, torch::kFloat64);
  code_active_ += per_code.active.to(torch::kCPU, torch::kFloat64);
  sum_a_ += decision.a.sum().item<double>();
  sum_delta_ += decision.delta.sum().item<double>();
  sum_mask_ += decision.mask.sum().item<double>();
  examples_ += static_cast<double>(h_rs.size(0));
  restarted_ += k.vq.num_restarted;
}

torch::Tensor CoCoModelImpl::user_repr(const EvalBatch& batch) {
  const auto h_rs = backbone_->user_repr(batch);
  if (warming_up()) return h_rs;
  const auto h_aligned = is_training() || torch::GradMode::is_enabled()
                             ? knowledge_of(h_rs, batch.history, {}).h_aligned
                             : cached_knowledge(h_rs, batch.history);
  const auto h_u = fusion_(h_rs, h_aligned);
  return knowledge_scale == 1.0 ? h_u : h_rs + knowledge_scale * (h_u - h_rs);
}

std::vector<std::pair<const void*, int64_t>> CoCoModelImpl::weights_version() const {
  std::vector<std::pair<const void*, int64_t>> v;
  for (const auto& p : parameters()) v.emplace_back(p.data_ptr(), p._version());
  for (const auto& p : buffers()) v.emplace_back(p.data_ptr(), p._version());
  return v;
}

torch::Tensor CoCoModelImpl::cached_knowledge(const torch::Tensor& h_rs,
                                              const torch::Tensor& history) {
  auto version = weights_version();
  if (version != cache_version_) {  // a weight changed (optimiser step, checkpoint load, move)
    cache_index_.clear();
    cache_rows_.clear();
    cache_version_ = std::move(version);
  }
  const int64_t d = h_rs.size(1), b = h_rs.size(0);
  const auto hist = history.to(torch::kCPU).contiguous();
  std::vector<int64_t> rows(static_cast<size_t>(b)), missing;
  int64_t next = static_cast<int64_t>(cache_index_.size());
  for (int64_t r = 0; r < b; ++r) {
    const uint64_t key = history_hash(hist.data_ptr<int64_t>() + r * hist.size(1), hist.size(1));
    auto [it, added] = cache_index_.emplace(key, next);
    if (added) {
      missing.push_back(r);
      ++next;
    }
    rows[static_cast<size_t>(r)] = it->second;
  }
  if (!missing.empty()) {
    const auto idx = torch::tensor(missing, torch::kInt64).to(h_rs.device());
    const auto fresh = knowledge_of(h_rs.index_select(0, idx), history.index_select(0, idx), {})
                           .h_aligned.to(torch::kCPU, torch::kFloat32)
                           .contiguous();
    cache_rows_.insert(cache_rows_.end(), fresh.data_ptr<float>(),
                       fresh.data_ptr<float>() + fresh.numel());
  }
  auto out = torch::empty({b, d}, torch::kFloat32);
  for (int64_t r = 0; r < b; ++r) {
    std::copy_n(cache_rows_.data() + rows[static_cast<size_t>(r)] * d, d,
                out.data_ptr<float>() + r * d);
  }
  return out.to(h_rs.device(), h_rs.scalar_type());
}

std::vector<ParamGroup> CoCoModelImpl::param_groups() {
  auto trainable = [](const std::vector<torch::Tensor>& ps) {
    std::vector<torch::Tensor> out;
    for (const auto& p : ps) {
      if (p.requires_grad()) out.push_back(p);
    }
    return out;
  };
  std::vector<torch::Tensor> knowledge = trainable(vq_->parameters());
  for (const auto& m : {aligner_->parameters(), fusion_->parameters()}) {
    const auto t = trainable(m);
    knowledge.insert(knowledge.end(), t.begin(), t.end());
  }
  return {{"recommender", trainable(backbone_->parameters()), 0},
          {"knowledge", knowledge, options.lr_knowledge},
          {"lora", llm::lora_parameters(*knowledge_->llm()), options.lr_lora}};
}

Json CoCoModelImpl::epoch_diagnostics() {
  reduce_statistics();
  Json j = {{"knowledge_active", examples_ > 0}};
  if (examples_ > 0) {
    const auto rate = torch::where(code_examples_ > 0, code_active_ / code_examples_.clamp_min(1),
                                   torch::zeros_like(code_examples_));
    const auto hist = vq_->usage_histogram().to(torch::kCPU).contiguous();
    j["codebook_perplexity"] = vq_->perplexity();
    j["code_usage"] =
        std::vector<double>(hist.data_ptr<double>(), hist.data_ptr<double>() + hist.numel());
    j["restarted_codes"] = restarted_;
    j["decision_rate"] = sum_mask_ / examples_;
    j["decision_rate_per_code"] =
        std::vector<double>(rate.data_ptr<double>(), rate.data_ptr<double>() + rate.numel());
    j["mean_alignment_cos"] = sum_a_ / examples_;
    j["mean_utility"] = sum_delta_ / examples_;
    j["examples"] = examples_;
  }
  vq_->reset_usage();
  sum_a_ = sum_delta_ = sum_mask_ = examples_ = 0;
  restarted_ = 0;
  code_examples_.zero_();
  code_active_.zero_();
  return j;
}

// Data-parallel: the decision-matrix statistics over every rank's examples (the VQ usage
// is reduced as it is counted, and restarts happen alike on every rank).
void CoCoModelImpl::reduce_statistics() {
  const dist::Group& world = dist::world();
  if (world.size() == 1) return;
  auto sums = torch::tensor({sum_a_, sum_delta_, sum_mask_, examples_}, torch::kFloat64);
  world.all_reduce({sums, code_examples_, code_active_}, dist::ReduceOp::kSum,
                   "all-reduce of the decision-matrix statistics");
  const double* v = sums.data_ptr<double>();
  sum_a_ = v[0], sum_delta_ = v[1], sum_mask_ = v[2], examples_ = v[3];
}

CoCoRepresentations CoCoModelImpl::representations(const EvalBatch& batch) {
  torch::NoGradGuard no_grad;
  const bool was_training = is_training();
  eval();
  const auto h_rs = backbone_->user_repr(batch);
  Knowledge k = knowledge_of(h_rs, batch.history, {});
  train(was_training);
  return {h_rs, k.h_aligned, k.vq.codes};
}

AdaptResult CoCoModelImpl::adapt_catalogue(uint64_t seed) {
  AdaptResult r = adapt_to_catalogue(*knowledge_, options.adapt, seed);
  if (options.adapt.epochs > 0 && options.adapt.mode == AdaptMode::kFull) {  // the embeddings moved
    vq_->init_prompts(knowledge_->prompt_embeddings(options.facets, options.vq.num_codes(),
                                                    options.vq.prompt_len()),
                      options.prompt_noise);
  }
  return r;
}

namespace {

// h_rs and h_aligned of the first (up to 512) validation users, for the projection plot.
void write_knowledge_snapshot(CoCoModelImpl& model, const RunContext& run,
                              const std::string& file) {
  std::vector<int64_t> users(static_cast<size_t>(std::min<int64_t>(512, run.data.num_users())));
  std::iota(users.begin(), users.end(), 0);
  EvalBatch batch = make_eval_batch(run.data, users, 0, static_cast<int64_t>(users.size()),
                                    Split::kValid, run.max_len);
  batch = {batch.users.to(run.device), batch.history.to(run.device), batch.target.to(run.device)};
  const auto reps = model.representations(batch);
  auto rows = [](const torch::Tensor& t) {
    const auto c = t.to(torch::kCPU, torch::kFloat64).contiguous();
    Json out = Json::array();
    for (int64_t r = 0; r < c.size(0); ++r) {
      out.push_back(
          std::vector<double>(c[r].data_ptr<double>(), c[r].data_ptr<double>() + c.size(1)));
    }
    return out;
  };
  const auto codes = reps.codes.to(torch::kCPU).contiguous();
  write_json_atomic((fs::path(run.output_dir) / file).string(),
                    {{"split", "valid"},
                     {"users", users},
                     {"h_rs", rows(reps.h_rs)},
                     {"h_aligned", rows(reps.h_aligned)},
                     {"codes", std::vector<int64_t>(codes.data_ptr<int64_t>(),
                                                    codes.data_ptr<int64_t>() + codes.numel())}});
}

}  // namespace

// Every data-parallel rank adapts alike (the same seed and texts); rank 0 writes the files.
void CoCoModelImpl::start_run(const RunContext& run) {
  const AdaptResult adapted = adapt_catalogue(run.seed);
  if (!dist::world().is_main()) return;
  if (options.adapt.epochs > 0) {
    write_json_atomic((fs::path(run.output_dir) / "adaptation.json").string(), adapted.to_json());
  }
  write_knowledge_snapshot(*this, run, "knowledge_before.json");
}

void CoCoModelImpl::finish_run(const RunContext& run) {
  if (dist::world().is_main()) write_knowledge_snapshot(*this, run, "knowledge_after.json");
}

}  // namespace coco

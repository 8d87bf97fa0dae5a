// CoCoModel and its knowledge encoder on the real stories260K LLM and Amazon Beauty titles:
// config errors, the user text, LoRA gradient masking inside the model, optimiser groups and
// the evaluation cache. Skipped with a message when ../shared is absent.
#include <gtest/gtest.h>

#include <fstream>

#include <torch/torch.h>

#include "coco/common/error.h"
#include "coco/eval/evaluator.h"
#include "coco/experiment/experiment.h"
#include "coco/llm/lora.h"
#include "coco/model/coco_model.h"
#include "coco/train/trainer.h"
#include "test_util.h"

namespace coco {
namespace {

const std::string kLlm = std::string(COCO_SHARED_DIR) + "/models/stories260K/stories260K.gguf";

// A small CoCo-SASRec on the first 300 Beauty users; `edit` changes the config first.
Json small_config(const std::string& data_dir) {
  return Json::parse(R"({
    "seed": 3, "device": "cpu", "log_level": "warn",
    "data": {"name": "amazon-beauty", "max_len": 20, "max_users": 300},
    "backbone": {"name": "sasrec", "hidden": 32, "dropout": 0.1, "attn_dropout": 0.1},
    "train": {"batch_size": 64},
    "coco": {
      "knowledge": {"llm": {"path": ""}, "max_tokens": 24, "lora": {"dropout": 0.0}},
      "vq": {"num_codes": 8, "prompt_len": 2},
      "aligner": {"attn_width": 32, "num_heads": 2, "mlp_hidden": 32, "dropout": 0.0}
    }})")
      .patch(Json::parse(R"([{"op": "replace", "path": "/coco/knowledge/llm/path", "value": ")" +
                         kLlm + R"("}, {"op": "add", "path": "/data/path", "value": ")" + data_dir +
                         R"("}])"));
}

// `config` trained by the trainer in a temporary run folder; ev is what it validated with.
struct TrainedRun {
  explicit TrainedRun(Json config)
      : ex(Experiment::build(std::move(config), "test.json", ".")),
        ev(ex.make_evaluator()),
        trainer(ex.model, ex.dataset.interactions, ex.train, ev,
                {ex.config, out.path(), ex.run.seed, ex.run.device}) {
    trainer.fit();
  }
  std::vector<Json> epochs() const {  // metrics.jsonl
    std::ifstream log(trainer.log_path());
    std::vector<Json> rows;
    for (std::string line; std::getline(log, line);) rows.push_back(Json::parse(line));
    return rows;
  }
  Experiment ex;
  test::TempDir out;
  Evaluator ev;
  Trainer trainer;
};

class CoCoModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_dir_ = test::shared_dataset("amazon-beauty");
    if (data_dir_.empty() || !std::filesystem::exists(kLlm)) {
      GTEST_SKIP() << "../shared/data/amazon-beauty or ../shared/models/stories260K not present";
    }
  }
  Experiment build(Json config) { return Experiment::build(std::move(config), "test.json", "."); }
  Experiment build() { return build(small_config(data_dir_)); }
  static CoCoModelImpl& coco(Experiment& ex) { return dynamic_cast<CoCoModelImpl&>(*ex.model); }
  static EvalBatch valid_batch_of(const Experiment& ex,
                                  int64_t n) {  // the first n users' validation
    std::vector<int64_t> users(static_cast<size_t>(n));
    std::iota(users.begin(), users.end(), 0);
    return make_eval_batch(ex.dataset.interactions, users, 0, n, Split::kValid,
                           ex.data_options.max_len);
  }
  static TrainBatch batch_of(const Experiment& ex, int64_t n) {
    TrainLoader loader(ex.dataset.interactions, ex.data_options.max_len, n, 1);
    loader.set_epoch(0);
    return loader.batch(0);
  }
  std::string data_dir_;
};

TEST_F(CoCoModelTest, ConfigErrorsNameTheJsonPath) {
  auto with = [&](const std::string& path, const Json& value) {
    Json c = small_config(data_dir_);
    c[Json::json_pointer(path)] = value;
    return test::error_text<ConfigError>([&] { build(c); });
  };
  EXPECT_NE(
      with("/coco/vq/num_codes", 0).find("config error at /coco/vq/num_codes: must be >= 1, got 0"),
      std::string::npos);
  EXPECT_NE(with("/coco/decision/theta", 1.5).find("config error at /coco/decision/theta"),
            std::string::npos);
  EXPECT_NE(
      with("/coco/knowledge/llm/path", "no/such.gguf")
          .find("config error at /coco/knowledge/llm/path: no such file: looked for no/such.gguf"),
      std::string::npos);
  EXPECT_NE(with("/coco/knowledge/fields", Json::array({"price"})).find("unknown field \"price\""),
            std::string::npos);
  EXPECT_NE(with("/coco/knowledge/llm/weights", "fresh")
                .find("config error at /coco/knowledge/llm/weights"),
            std::string::npos);
  EXPECT_NE(with("/coco/loss/nse", 0.1).find("config error at /coco/loss/nse: unknown key"),
            std::string::npos);
}

TEST_F(CoCoModelTest, ItemTextJoinsTheChosenFieldsFeaturesAndDescriptionIncluded) {
  ItemCatalog catalog;
  catalog.resize(2);
  catalog.title = {"Soap", "Comb"};
  catalog.features = {"Vegan | 100 g", ""};
  catalog.description = {"Gentle.", "Wide teeth."};
  Json j = {{"llm", {{"path", kLlm}}}, {"fields", {"description", "title", "features"}}};
  ConfigNode node(j, "knowledge");
  KnowledgeEncoderImpl enc(KnowledgeOptions::from_config(node, "."), catalog);
  EXPECT_EQ(enc.item_text(1), "Gentle., Soap, Vegan | 100 g");
  EXPECT_EQ(enc.item_text(2), "Wide teeth., Comb");  // an empty field is left out
}

TEST_F(CoCoModelTest, UserTextHoldsTheNewestItemsLastAfterBos) {
  Json config = small_config(data_dir_);
  config["coco"]["knowledge"]["max_tokens"] = 100;  // room for the newest title, not for all three
  Experiment ex = build(config);
  auto& enc = *coco(ex).knowledge();
  const int64_t a = 1, b = 2, c = 3;
  const auto text = enc.user_text(torch::tensor(
      {{int64_t{0}, int64_t{0}, a, b, c}, {int64_t{0}, int64_t{0}, int64_t{0}, int64_t{0}, b}}));
  const int64_t t = enc.options.max_tokens;
  ASSERT_EQ(text.input_ids.size(1), t);  // row 0 is cut to T tokens
  EXPECT_EQ(text.input_ids[0][0].item<int64_t>(), enc.tokenizer().bos_id());
  EXPECT_EQ(text.lengths[0], t);
  // The newest item's title closes the text; its tokens are exactly the title's.
  const auto last = enc.tokenizer().encode(enc.item_text(c));
  ASSERT_LT(static_cast<int64_t>(last.size()), t);
  for (size_t i = 0; i < last.size(); ++i) {
    EXPECT_EQ(text.input_ids[0][t - static_cast<int64_t>(last.size() - i)].item<int64_t>(),
              last[i]);
  }
  // A short row is right-padded and masked.
  const auto only_b = enc.tokenizer().encode(enc.item_text(b));
  const auto len = 1 + std::min<int64_t>(t - 1, static_cast<int64_t>(only_b.size()));
  EXPECT_EQ(text.lengths[1], len);
  EXPECT_EQ(text.attention_mask[1].sum().item<int64_t>(), len);
}

TEST_F(CoCoModelTest, ItemTokensKeepTheBeginningOfEachTitle) {
  Json config = small_config(data_dir_);
  config["coco"]["knowledge"]["max_tokens"] = 100;
  config["coco"]["knowledge"]["item_tokens"] = 6;
  Experiment ex = build(config);
  auto& enc = *coco(ex).knowledge();
  const auto& tok = enc.tokenizer();
  std::vector<int64_t> expected{tok.bos_id()};
  for (const int64_t item : {1, 2}) {
    if (item == 2) {
      const auto sep = tok.encode(enc.options.separator);
      expected.insert(expected.end(), sep.begin(), sep.end());
    }
    auto ids = tok.encode(enc.item_text(item));
    ASSERT_GT(ids.size(), 6u);
    expected.insert(expected.end(), ids.begin(), ids.begin() + 6);
  }
  const auto text = enc.user_text(torch::tensor({{int64_t{1}, int64_t{2}}}));
  EXPECT_TRUE(torch::equal(text.input_ids[0], torch::tensor(expected, torch::kInt64)));
}

// The no-pretraining control: each LLM matrix is redrawn at its own scale, the same way on
// every build (evaluation rebuilds the LLM from the file), and the run's random stream is left
// as it was (the LoRA adapters, drawn after it, come out as they do with the pretrained LLM).
TEST_F(CoCoModelTest, RandomLlmWeightsKeepEachMatrixScaleAndAreRebuiltTheSame) {
  Json config = small_config(data_dir_);
  config["coco"]["knowledge"]["llm"]["weights"] = "random";
  Experiment pretrained = build(), random = build(config), again = build(config);
  const auto expected = coco(pretrained).knowledge()->llm()->named_parameters();
  const auto got = coco(random).knowledge()->llm()->named_parameters();
  const auto rebuilt = coco(again).knowledge()->llm()->named_parameters();
  int64_t redrawn = 0;
  for (const auto& item : expected) {
    const auto& p = item.value();
    const auto& q = got[item.key()];
    EXPECT_TRUE(torch::equal(q, rebuilt[item.key()])) << item.key();
    if (item.key().find("lora") != std::string::npos || p.dim() < 2) {
      EXPECT_TRUE(torch::equal(q, p)) << item.key();
      continue;
    }
    ++redrawn;
    EXPECT_LT(torch::cosine_similarity(q.flatten(), p.flatten(), 0).abs().item<double>(), 0.1)
        << item.key();
    EXPECT_NEAR(q.std().item<double>(), p.std().item<double>(), 0.1 * p.std().item<double>())
        << item.key();
  }
  EXPECT_GE(redrawn,
            1 + 7 * coco(pretrained).knowledge()->llm()->config().num_layers());  // embeddings, 7
                                                                                  // per layer
}

// With fusion_grad_to_backbone off, the backbone's gradients from CoCo's whole loss are
// those of its own loss alone; with it on, the fused losses add to them.
TEST_F(CoCoModelTest, WithoutFusionGradientsTheBackboneLearnsOnlyFromItsOwnLoss) {
  for (const bool through : {false, true}) {
    Json c = small_config(data_dir_);
    c["coco"]["fusion_grad_to_backbone"] = through;
    c["coco"]["prefix"] = "random";
    Experiment ex = build(c);
    auto& m = coco(ex);
    m.train();
    const auto batch = batch_of(ex, 32);
    torch::manual_seed(7);
    m.loss(batch).total.backward();
    std::vector<torch::Tensor> joint;
    for (auto& p : m.backbone()->parameters()) {
      joint.push_back(p.grad().clone());
      p.mutable_grad().zero_();
    }
    torch::manual_seed(7);  // the same dropout masks
    m.backbone()->train_step(batch).loss.total.backward();
    bool same = true;
    size_t i = 0;
    for (auto& p : m.backbone()->parameters())
      same = same && torch::allclose(p.grad(), joint[i++], 1e-5, 1e-7);
    EXPECT_EQ(same, !through);
    EXPECT_GT(m.codebook()->prompts().grad().abs().sum().item<double>(),
              0.0);                                                // the knowledge learns
    EXPECT_TRUE(m.backbone()->item_embeddings().requires_grad());  // unfrozen afterwards
  }
}

// Trained by the same trainer for an epoch, a decoupled CoCo's backbone ends with exactly
// the weights of the backbone trained alone: the knowledge path neither sends it gradient
// nor moves its random stream, so a CoCo-vs-backbone table measures the knowledge alone.
TEST_F(CoCoModelTest, DecoupledCoCoTrainsTheBackboneExactlyAsItTrainsAlone) {
  auto train = [&](Json config) {
    config["train"]["epochs"] = 1;
    return TrainedRun(std::move(config)).ex.model;
  };
  for (const std::string name : {"sasrec", "bert4rec"}) {
    Json coco_config = small_config(data_dir_);
    coco_config["backbone"]["name"] = name;
    coco_config["coco"]["prefix"] = "random";
    coco_config["coco"]["fusion_grad_to_backbone"] = false;
    Json alone_config = coco_config;
    alone_config.erase("coco");
    const auto alone = train(alone_config);
    const auto with = train(coco_config);
    const auto& backbone = dynamic_cast<CoCoModelImpl&>(*with).backbone();
    const auto expected = alone->named_parameters();
    for (const auto& p : backbone->named_parameters()) {
      EXPECT_TRUE(torch::equal(p.value(), expected[p.key()])) << name << " " << p.key();
    }
    // The weights moved: the comparison is not between two untrained models.
    EXPECT_FALSE(torch::equal(
        Experiment::build(alone_config, "t.json", ".").model->named_parameters()["item_emb.weight"],
        expected["item_emb.weight"]));
  }
}

// A warm-up epoch trains the backbone alone, so its validation and its checkpoint must
// rank with h_rs alone, not through the untrained knowledge path.
TEST_F(CoCoModelTest, WarmUpEpochsAreEvaluatedAsTheBackboneAlone) {
  Json config = small_config(data_dir_);
  config["train"]["epochs"] = 1;
  config["coco"]["warmup_epochs"] = 1;
  const TrainedRun run(config);
  const auto& ev = run.ev;
  const auto epochs = run.epochs();
  ASSERT_GE(epochs.size(), 1u);
  const double logged = epochs[0]["valid"]["MRR"];

  Experiment fresh = build(config);
  auto& m = coco(fresh);
  m.set_epoch(load_checkpoint(run.trainer.best_path(), m, nullptr, false).state.weights_epoch());
  auto backbone = m.backbone();
  const auto alone =
      ev.evaluate(*backbone, Split::kValid, Protocol::kFull, torch::kCPU).metrics.get("MRR");
  EXPECT_GT(alone, 0);
  EXPECT_EQ(logged, alone);
  EXPECT_EQ(ev.evaluate(m, Split::kValid, Protocol::kFull, torch::kCPU).metrics.get("MRR"), alone);
  m.set_epoch(1);  // after the warm-up the (here untrained) knowledge is fused
  EXPECT_NE(ev.evaluate(m, Split::kValid, Protocol::kFull, torch::kCPU).metrics.get("MRR"), alone);
}

// After the warm-up, each epoch's log also validates CoCo's own backbone: the knowledge's
// contribution on held-out users, paired.
TEST_F(CoCoModelTest, TheLogValidatesTheBackboneBesideCoCoAfterTheWarmUp) {
  Json config = small_config(data_dir_);
  config["train"]["epochs"] = 2;
  config["coco"]["warmup_epochs"] = 1;
  const TrainedRun run(config);
  const auto epochs = run.epochs();
  ASSERT_GE(epochs.size(), 2u);
  EXPECT_FALSE(epochs[0].contains("valid_backbone"));  // the model is the backbone then
  const Json& epoch2 = epochs[1];
  ASSERT_TRUE(epoch2.contains("valid_backbone"));

  Experiment fresh = build(config);
  auto& m = coco(fresh);
  m.set_epoch(load_checkpoint(run.trainer.last_path(), m, nullptr, false).state.weights_epoch());
  const double alone = run.ev.evaluate(*m.backbone(), Split::kValid, Protocol::kFull, torch::kCPU)
                           .metrics.get("MRR");
  EXPECT_EQ(epoch2["valid_backbone"]["MRR"].get<double>(), alone);
  EXPECT_NE(epoch2["valid"]["MRR"].get<double>(), alone);
}

TEST_F(CoCoModelTest, LoraLearnsOnlyFromMaskedInExamplesWhilePromptsAlwaysLearn) {
  for (const std::string rule : {"never", "always"}) {
    Json c = small_config(data_dir_);
    c["coco"]["decision"]["rule"] = rule;
    Experiment ex = build(c);
    auto& m = coco(ex);
    m.train();
    {
      torch::NoGradGuard g;  // non-zero B, so that A receives gradient too
      for (auto& p : llm::lora_parameters(*m.knowledge()->llm())) p.normal_(0, 0.05);
    }
    m.loss(batch_of(ex, 32)).total.backward();
    double lora = 0;
    for (auto& p : llm::lora_parameters(*m.knowledge()->llm())) {
      if (p.grad().defined()) lora += p.grad().abs().sum().item<double>();
    }
    const auto prompts = m.codebook()->prompts().grad();
    ASSERT_TRUE(prompts.defined()) << rule;
    EXPECT_GT(prompts.abs().sum().item<double>(), 0.0) << rule;
    if (rule == "never") {
      EXPECT_EQ(lora, 0.0);
    } else {
      EXPECT_GT(lora, 0.0);
    }
    const Json d = m.epoch_diagnostics();
    EXPECT_DOUBLE_EQ(d["decision_rate"].get<double>(), rule == "always" ? 1.0 : 0.0);
    EXPECT_EQ(d["code_usage"].size(), 8u);
    EXPECT_EQ(d["decision_rate_per_code"].size(), 8u);
    for (const char* key :
         {"codebook_perplexity", "mean_alignment_cos", "mean_utility", "restarted_codes"}) {
      EXPECT_TRUE(d.contains(key)) << key;
    }
  }
}

TEST_F(CoCoModelTest, OptimiserGroupsHoldExactlyTheTrainableParameters) {
  Experiment ex = build();
  auto& m = coco(ex);
  const auto groups = m.param_groups();
  ASSERT_EQ(groups.size(), 3u);
  EXPECT_EQ(groups[0].name, "recommender");
  EXPECT_EQ(groups[1].name, "knowledge");
  EXPECT_EQ(groups[2].name, "lora");
  EXPECT_EQ(groups[2].params.size(), 5u * 2u * 2u);  // 5 layers × {q, v} × {A, B}
  size_t in_groups = 0;
  for (const auto& g : groups) in_groups += g.params.size();
  size_t trainable = 0;
  for (const auto& p : m.parameters()) trainable += p.requires_grad();
  EXPECT_EQ(in_groups, trainable);  // every trainable tensor once; the LLM's own weights in none
}

TEST_F(CoCoModelTest, EvaluationCachesKnowledgeUntilAWeightChanges) {
  Experiment ex = build();
  auto& m = coco(ex);
  const EvalBatch batch = valid_batch_of(ex, 40);
  m.eval();
  torch::Tensor fresh;
  {
    torch::AutoGradMode grad(true);  // bypasses the cache
    fresh = m.user_repr(batch).detach();
  }
  torch::NoGradGuard no_grad;
  const auto first = m.user_repr(batch);
  const int64_t cached = m.cached_users();
  EXPECT_GT(cached, 0);
  EXPECT_TRUE(torch::allclose(first, fresh, 1e-5, 1e-6));
  EXPECT_TRUE(torch::equal(m.user_repr(batch), first));
  EXPECT_EQ(m.cached_users(), cached);  // nothing recomputed
  m.codebook()->prompts().add_(0.5);    // a weight changes: the cache must not be used
  const auto after = m.user_repr(batch);
  EXPECT_FALSE(torch::allclose(after, first));
  {
    torch::AutoGradMode grad(true);
    EXPECT_TRUE(torch::allclose(after, m.user_repr(batch).detach(), 1e-5, 1e-6));
  }
}

// coco-eval --knowledge-scale: the fused representation's residual over h_rs, scaled.
TEST_F(CoCoModelTest, KnowledgeScaleMovesTheRepresentationFromTheBackboneToTheFusedOne) {
  Experiment ex = build();
  auto& m = coco(ex);
  const EvalBatch batch = valid_batch_of(ex, 40);
  m.eval();
  torch::NoGradGuard no_grad;
  const auto fused = m.user_repr(batch), alone = m.backbone()->user_repr(batch);
  ASSERT_GT((fused - alone).norm().item<double>(), 1e-2);
  for (const double scale : {0.0, 0.5, 2.0}) {
    m.knowledge_scale = scale;
    EXPECT_TRUE(torch::allclose(m.user_repr(batch), alone + scale * (fused - alone), 1e-5, 1e-6))
        << scale;
  }
}

// Catalogue adaptation on 80 real Beauty titles: the held-out LM loss falls, and afterwards
// the LLM is frozen with fresh (zero) CoCo adapters on top of changed weights.
TEST_F(CoCoModelTest, CatalogueAdaptationLowersTheLmLossAndLeavesTheLlmFrozen) {
  Experiment ex = build();
  ItemCatalog small;
  for (int64_t i = 0; i < 80; ++i) {
    small.raw_id.push_back(ex.dataset.catalog.raw_id[i]);
    small.title.push_back(ex.dataset.catalog.title[i]);
    small.brand.emplace_back();
    small.categories.emplace_back();
  }
  for (const std::string mode : {"lora", "full"}) {
    torch::manual_seed(1);
    KnowledgeEncoder enc(coco(ex).options.knowledge, small);
    const auto q_before =
        enc->llm()->named_parameters()["layers.0.self_attn.q_proj.weight"].clone();
    AdaptOptions opt;
    opt.epochs = 3;
    opt.mode = mode == "full" ? AdaptMode::kFull : AdaptMode::kLora;
    opt.lr = 1e-2;
    opt.batch_size = 16;
    opt.holdout = 0.2;
    const AdaptResult r = adapt_to_catalogue(*enc, opt, 5);
    EXPECT_EQ(r.texts, 64);
    EXPECT_LT(r.heldout_loss_after, r.heldout_loss_before) << mode;
    EXPECT_FALSE(
        torch::equal(enc->llm()->named_parameters()["layers.0.self_attn.q_proj.weight"], q_before));
    for (const auto& p : enc->llm()->named_parameters()) {
      const bool adapter = p.key().find("lora_") != std::string::npos;
      EXPECT_EQ(p.value().requires_grad(), adapter) << mode << " " << p.key();
      if (p.key().find("lora_B") != std::string::npos) {
        EXPECT_EQ(p.value().abs().sum().item<double>(), 0.0) << mode << " " << p.key();
      }
    }
  }
}

}  // namespace
}  // namespace coco

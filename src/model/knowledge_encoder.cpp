// User text construction and the LLM pass of the knowledge encoder.
#include "coco/model/knowledge_encoder.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

#include "coco/common/error.h"
#include "coco/common/log.h"

namespace fs = std::filesystem;

namespace coco {

KnowledgeOptions KnowledgeOptions::from_config(ConfigNode& node, const std::string& config_dir) {
  KnowledgeOptions o;
  {
    ConfigNode llm = node.child("llm");
    const fs::path path = llm.get_string("path", "");
    if (path.empty()) llm.fail("path", "the LLM file is required (e.g. a .gguf)");
    std::vector<fs::path> candidates = {path};
    if (path.is_relative()) candidates.push_back(fs::path(config_dir) / ".." / path);
    std::string looked;
    for (const auto& c : candidates) {
      if (fs::exists(c)) {
        o.llm.path(fs::absolute(c).lexically_normal().string());
        llm.set("path", o.llm.path());  // the saved config names the file that was used
        break;
      }
      looked += (looked.empty() ? "" : ", ") + c.lexically_normal().string();
    }
    if (o.llm.path().empty()) {
      llm.fail("path",
               "no such file: looked for " + looked +
                   " (the shared models are in ../shared/models; or give the path of your own)");
    }
    o.llm.dtype(llm.get_enum("dtype", torch::kFloat32,
                             {{"float32", torch::kFloat32}, {"bfloat16", torch::kBFloat16}}));
    o.random_llm = llm.get_enum("weights", false, {{"pretrained", false}, {"random", true}});
    o.checkpoint_layers = llm.get_bool("activation_checkpointing", false);
    llm.finish();  // the LLM follows the run's device
  }
  ConfigNode lora = node.child("lora");
  o.lora = llm::LoRAOptions::from_config(lora);
  o.fields.clear();
  const auto fields = node.get_string_list("fields", {"title"});
  static const std::pair<const char*, ItemField> kNames[] = {
      {"title", ItemField::kTitle},
      {"brand", ItemField::kBrand},
      {"categories", ItemField::kCategories},
      {"features", ItemField::kFeatures},
      {"description", ItemField::kDescription}};
  const char* expected = "title, brand, categories, features or description";
  if (fields.empty())
    node.fail("fields", std::string("at least one of ") + expected + " is needed");
  for (const auto& f : fields) {
    const auto* named = std::find_if(std::begin(kNames), std::end(kNames),
                                     [&](const auto& n) { return f == n.first; });
    if (named == std::end(kNames))
      node.fail("fields", "unknown field \"" + f + "\" (expected " + expected + ")");
    o.fields.push_back(named->second);
  }
  o.recent_items = node.get_int("recent_items", o.recent_items, 1, 1000);
  o.max_tokens = node.get_int("max_tokens", o.max_tokens, 2, 4096);
  o.item_tokens = node.get_int("item_tokens", o.item_tokens, 0, 4096);
  o.separator = node.get_string("separator", o.separator);
  o.layers = node.get_int("layers", o.layers, 1, 1000);
  node.finish();
  return o;
}

namespace {

// Every weight matrix redrawn from N(0, σ²), σ its pretrained standard deviation, from a
// generator of its own (fixed seed, so evaluation rebuilds the same LLM; the run's random
// stream is untouched). The norms' gains stay. What is left is the architecture, the
// tokenizer and the scales, without what pretraining taught.
void redraw_weights(llm::LlamaModelImpl& model) {
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
  for (auto& p : model.parameters()) {
    if (p.dim() < 2) continue;
    const double sigma = p.std().item<double>();
    p.copy_(at::randn(p.sizes(), gen, torch::kFloat32) * sigma);
  }
}

}  // namespace

KnowledgeEncoderImpl::KnowledgeEncoderImpl(KnowledgeOptions options_, const ItemCatalog& catalog)
    : options(std::move(options_)),
      catalog_(catalog),
      tokenizer_(llm::Tokenizer::from_file(options.llm.path())) {
  llm_ = register_module("llm", llm::load_llama(options.llm));
  if (options.random_llm) redraw_weights(*llm_);
  if (options.layers > llm_->config().num_layers()) {
    throw ConfigError("config error at /coco/knowledge/layers: the LLM has only " +
                      std::to_string(llm_->config().num_layers()) + " layers, got " +
                      std::to_string(options.layers));
  }
  llm::attach_lora(*llm_, options.lora);
  separator_tokens_ = tokenizer_.encode(options.separator);
  item_tokens_.assign(static_cast<size_t>(catalog.size() + 1), {});
  int64_t with_text = 0, tokens = 0;
  for (int64_t item = 1; item <= catalog.size(); ++item) {
    const std::string text = item_text(item);
    if (text.empty()) continue;
    auto& ids = item_tokens_[static_cast<size_t>(item)];
    ids = tokenizer_.encode(text);
    if (options.item_tokens > 0 && static_cast<int64_t>(ids.size()) > options.item_tokens)
      ids.resize(options.item_tokens);
    ++with_text;
    tokens += static_cast<int64_t>(ids.size());
  }
  if (with_text == 0) {
    throw ConfigError(
        "config error at /coco/knowledge/fields: no item of the catalogue has text in the "
        "chosen fields; CoCo needs item text (items.tsv titles)");
  }
  log().info("[llm] {} of {} items have text; {:.1f} tokens per item on average", with_text,
             catalog.size(), static_cast<double>(tokens) / static_cast<double>(with_text));
}

std::string KnowledgeEncoderImpl::item_text(int64_t item) const {
  const auto i = static_cast<size_t>(item - 1);
  std::string text;
  for (const auto& f : options.fields) {
    static std::vector<std::string> ItemCatalog::*const kColumn[] = {
        &ItemCatalog::title, &ItemCatalog::brand, &ItemCatalog::categories, &ItemCatalog::features,
        &ItemCatalog::description};
    const std::string& v = (catalog_.*kColumn[static_cast<int>(f)])[i];
    if (v.empty()) continue;
    if (!text.empty()) text += ", ";
    text += v;
  }
  return text;
}

llm::TokenBatch KnowledgeEncoderImpl::user_text(const torch::Tensor& history) const {
  const auto hist = history.to(torch::kCPU).contiguous();
  const int64_t b = hist.size(0), l = hist.size(1);
  const auto* h = hist.data_ptr<int64_t>();
  const bool bos = tokenizer_.add_bos();  // Qwen2-style vocabularies have no BOS
  const auto budget = static_cast<size_t>(options.max_tokens - (bos ? 1 : 0));
  std::vector<std::vector<int64_t>> rows(static_cast<size_t>(b));
  int64_t width = 1;
  for (int64_t r = 0; r < b; ++r) {
    // Newest first, then reversed: the newest items survive the cut to T tokens.
    std::vector<int64_t> rev;
    int64_t taken = 0;
    for (int64_t j = l - 1; j >= 0 && taken < options.recent_items && rev.size() < budget; --j) {
      const int64_t item = h[r * l + j];
      if (item <= 0) break;  // left padding
      const auto& ids = item_tokens_[static_cast<size_t>(item)];
      if (ids.empty()) continue;
      if (!rev.empty()) rev.insert(rev.end(), separator_tokens_.rbegin(), separator_tokens_.rend());
      rev.insert(rev.end(), ids.rbegin(), ids.rend());
      ++taken;
    }
    if (rev.size() > budget) rev.resize(budget);  // cuts the oldest item's beginning
    auto& row = rows[static_cast<size_t>(r)];
    if (bos) row.push_back(tokenizer_.bos_id());
    row.insert(row.end(), rev.rbegin(), rev.rend());
    width = std::max(width, static_cast<int64_t>(row.size()));
  }
  // Padding is masked out: any id serves when the vocabulary has neither PAD nor EOS.
  const int64_t pad = tokenizer_.padding_id();
  llm::TokenBatch out;
  out.input_ids = torch::full({b, width}, pad, torch::kInt64);
  out.attention_mask = torch::zeros({b, width}, torch::kInt64);
  auto ids = out.input_ids.accessor<int64_t, 2>();
  auto mask = out.attention_mask.accessor<int64_t, 2>();
  for (int64_t r = 0; r < b; ++r) {
    const auto& row = rows[static_cast<size_t>(r)];
    for (size_t t = 0; t < row.size(); ++t) {
      ids[r][static_cast<int64_t>(t)] = row[t];
      mask[r][static_cast<int64_t>(t)] = 1;
    }
    out.lengths.push_back(static_cast<int64_t>(row.size()));
  }
  return out;
}

KnowledgeOutput KnowledgeEncoderImpl::forward(const torch::Tensor& prompts,
                                              const torch::Tensor& history,
                                              const torch::Tensor& lora_mask) {
  const auto text = user_text(history);
  const auto dev = prompts.device();
  const auto ids = text.input_ids.to(dev);
  const auto text_mask = text.attention_mask.to(dev);  // [B, T]
  const int64_t b = prompts.size(0), p = prompts.size(1);
  const auto embeds =
      torch::cat({prompts.to(llm_->dtype()), llm_->embed_tokens(ids)}, 1);  // [B, P + T, D]
  llm::LlamaInput in;
  in.inputs_embeds = embeds;
  in.attention_mask = torch::cat({torch::ones({b, p}, text_mask.options()), text_mask}, 1);
  in.lora_mask = lora_mask;
  in.output_last_layers = options.layers > 1 ? options.layers : 0;
  in.checkpoint_layers = options.checkpoint_layers;
  const auto out = llm_->run(in);
  return {options.layers > 1 ? out.mean_of_layers() : out.hidden, text_mask.to(torch::kBool)};
}

torch::Tensor KnowledgeEncoderImpl::prompt_embeddings(const std::vector<std::string>& texts,
                                                      int64_t count, int64_t length) {
  TORCH_CHECK(!texts.empty(), "prompt_embeddings needs at least one text");
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> rows;
  for (int64_t k = 0; k < count; ++k) {
    auto ids = tokenizer_.encode(texts[static_cast<size_t>(k) % texts.size()]);
    if (ids.empty()) {  // an empty prompt text: start from BOS, or EOS where there is no BOS
      const int64_t fallback = tokenizer_.bos_id() >= 0 ? tokenizer_.bos_id() : tokenizer_.eos_id();
      if (fallback < 0)
        throw ConfigError(
            "config error at /coco/facets: an empty prompt text, and the "
            "vocabulary has neither BOS nor EOS to stand for it");
      ids.push_back(fallback);
    }
    // The last `length` tokens: facet prompts share their openings ("Focus on the"), and
    // identical prompts would start the codebook collapsed.
    std::vector<int64_t> cycled(static_cast<size_t>(length));
    const size_t n = ids.size(), len = cycled.size();
    for (size_t t = 0; t < len; ++t) cycled[t] = ids[n >= len ? n - len + t : t % n];
    rows.push_back(torch::tensor(cycled, torch::kInt64));
  }
  return llm_->embed_tokens(torch::stack(rows).to(llm_->device())).to(torch::kFloat32);
}

}  // namespace coco

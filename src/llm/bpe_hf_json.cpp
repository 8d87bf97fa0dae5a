// A byte-level BPE from a Hugging Face tokenizer.json (+ tokenizer_config.json beside it for
// the BOS/EOS/PAD names and add_bos_token). Anything that would change the ids and is not
// implemented is an error naming the JSON path; offsets-only fields (trim_offsets) are not read.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bpe_tokenizer.h"
#include "coco/common/error.h"
#include "coco/config/config.h"

namespace coco::llm::bpe {

namespace {

using nlohmann::json;

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}
  const std::string& file() const { return file_; }

  [[noreturn]] void fail(const std::string& path, const std::string& what) const {
    throw ModelError(file_ + ": " + path + ": " + what);
  }
  /// obj[key], or null when absent.
  const json& get(const json& obj, const char* key) const {
    static const json null;
    const auto it = obj.find(key);
    return it == obj.end() ? null : *it;
  }
  const json& object(const json& obj, const char* key, const std::string& path) const {
    const json& v = get(obj, key);
    if (!v.is_object()) fail(path, "expected an object");
    return v;
  }
  const json& array(const json& obj, const char* key, const std::string& path) const {
    const json& v = get(obj, key);
    if (!v.is_array()) fail(path, "expected an array");
    return v;
  }
  bool boolean(const json& obj, const char* key, const std::string& path, bool def) const {
    const json& v = get(obj, key);
    if (v.is_null()) return def;
    if (!v.is_boolean()) fail(path, "expected true or false, got " + v.dump());
    return v.get<bool>();
  }
  std::string string(const json& obj, const char* key, const std::string& path) const {
    const json& v = get(obj, key);
    if (!v.is_string())
      fail(path, "expected a string" + (v.is_null() ? std::string() : ", got " + v.dump()));
    return v.get<std::string>();
  }
  /// A type name checked against `supported` ("unknown <what> 'X' (supported: ...)").
  std::string type(const json& obj, const std::string& path, const char* what,
                   const std::vector<const char*>& supported) const {
    const std::string t = string(obj, "type", path + ".type");
    std::string list;
    for (const char* s : supported) {
      if (t == s) return t;
      list += std::string(list.empty() ? "" : ", ") + s;
    }
    fail(path + ".type", "unknown " + std::string(what) + " '" + t + "' (supported: " + list + ")");
  }

 private:
  std::string file_;
};

json parse_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelError(path + ": cannot open tokenizer file");
  std::stringstream ss;
  ss << in.rdbuf();
  json out;
  std::string error;
  if (!parse_json(ss.str(), out, error)) throw ModelError(path + ":" + error);
  return out;
}

void parse_normalizer(const Reader& r, const json& n, const std::string& path, Normalizer& out) {
  if (n.is_null()) return;
  if (!n.is_object()) r.fail(path, "expected an object or null");
  const std::string t = r.type(n, path, "normalizer", {"NFC", "NFD", "NFKC", "NFKD", "Sequence"});
  if (t == "Sequence") {
    const json& list = r.array(n, "normalizers", path + ".normalizers");
    for (size_t i = 0; i < list.size(); ++i)
      parse_normalizer(r, list[i], path + ".normalizers[" + std::to_string(i) + "]", out);
    return;
  }
  out.add(t == "NFC"    ? Normalizer::Form::kNFC
          : t == "NFD"  ? Normalizer::Form::kNFD
          : t == "NFKC" ? Normalizer::Form::kNFKC
                        : Normalizer::Form::kNFKD);
}

SplitBehavior parse_behavior(const Reader& r, const json& p, const std::string& path) {
  const std::string b = r.string(p, "behavior", path);
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  r.fail(path,
         "unknown split behavior '" + b +
             "' (supported: Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous)");
}

void parse_pre_tokenizer(const Reader& r, const json& p, const std::string& path,
                         PreTokenizer& out) {
  if (p.is_null()) return;
  if (!p.is_object()) r.fail(path, "expected an object or null");
  const std::string t =
      r.type(p, path, "pre-tokenizer", {"Split", "ByteLevel", "Digits", "Sequence"});
  if (t == "Sequence") {
    const json& list = r.array(p, "pretokenizers", path + ".pretokenizers");
    for (size_t i = 0; i < list.size(); ++i)
      parse_pre_tokenizer(r, list[i], path + ".pretokenizers[" + std::to_string(i) + "]", out);
    return;
  }
  PreTokenizeStep step;
  if (t == "ByteLevel") {
    step.kind = PreTokenizeStep::Kind::kByteLevel;
    step.add_prefix_space = r.boolean(p, "add_prefix_space", path + ".add_prefix_space", true);
    step.use_regex = r.boolean(p, "use_regex", path + ".use_regex", true);
  } else if (t == "Digits") {
    // Hugging Face's Digits splits on ASCII digits: each alone, or runs of them.
    const bool each = r.boolean(p, "individual_digits", path + ".individual_digits", false);
    step.regex = std::make_shared<Regex>("[0-9]", false, r.file() + ": " + path);
    step.behavior = each ? SplitBehavior::kIsolated : SplitBehavior::kContiguous;
  } else {
    const json& pattern = r.object(p, "pattern", path + ".pattern");
    const bool is_regex = pattern.contains("Regex");
    if (is_regex == pattern.contains("String") || pattern.size() != 1)
      r.fail(path + ".pattern",
             "expected {\"Regex\": ...} or {\"String\": ...}, got " + pattern.dump());
    const char* key = is_regex ? "Regex" : "String";
    step.regex = std::make_shared<Regex>(r.string(pattern, key, path + ".pattern." + key),
                                         !is_regex, r.file() + ": " + path + ".pattern." + key);
    step.behavior = parse_behavior(r, p, path + ".behavior");
    step.invert = r.boolean(p, "invert", path + ".invert", false);
  }
  out.add(std::move(step));
}

struct Template {
  int64_t bos = -1;  // the special token before $A, if any
};

void parse_post_processor(const Reader& r, const json& p, const std::string& path,
                          int64_t vocab_size, Template& tmpl) {
  if (p.is_null()) return;
  if (!p.is_object()) r.fail(path, "expected an object or null");
  const std::string t =
      r.type(p, path, "post-processor", {"ByteLevel", "TemplateProcessing", "Sequence"});
  if (t == "ByteLevel") return;  // offsets only
  if (t == "Sequence") {
    const json& list = r.array(p, "processors", path + ".processors");
    for (size_t i = 0; i < list.size(); ++i)
      parse_post_processor(r, list[i], path + ".processors[" + std::to_string(i) + "]", vocab_size,
                           tmpl);
    return;
  }
  const json& single = r.array(p, "single", path + ".single");
  const json& specials = r.get(p, "special_tokens");
  bool seen_sequence = false;
  for (size_t i = 0; i < single.size(); ++i) {
    const std::string at = path + ".single[" + std::to_string(i) + "]";
    const json& item = single[i];
    if (item.is_object() && item.contains("Sequence")) {
      if (seen_sequence) r.fail(at, "more than one sequence in the single-text template");
      seen_sequence = true;
      continue;
    }
    if (!item.is_object() || !item.contains("SpecialToken"))
      r.fail(at, "expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
    if (seen_sequence)
      r.fail(at, "special tokens after the text are not supported (only a BOS before it)");
    if (tmpl.bos >= 0) r.fail(at, "more than one special token before the text is not supported");
    const std::string name = r.string(item["SpecialToken"], "id", at + ".SpecialToken.id");
    const json& entry = specials.is_object() ? r.get(specials, name.c_str()) : json();
    const std::string entry_at = path + ".special_tokens." + name;
    if (!entry.is_object()) r.fail(entry_at, "missing (the template names it)");
    const json& ids = r.array(entry, "ids", entry_at + ".ids");
    if (ids.size() != 1 || !ids[0].is_number_integer() || ids[0].get<int64_t>() < 0 ||
        ids[0].get<int64_t>() >= vocab_size)
      r.fail(entry_at + ".ids", "expected exactly one id of the vocabulary, got " + ids.dump());
    tmpl.bos = ids[0].get<int64_t>();
  }
}

// The model's options that would change the ids and are not implemented are errors.
void check_bpe_model(const Reader& r, const json& model) {
  const std::string type = r.string(model, "type", "model.type");
  if (type != "BPE")
    r.fail("model.type", "expected 'BPE' (a byte-level BPE tokenizer), got '" + type + "'");
  if (r.boolean(model, "byte_fallback", "model.byte_fallback", false))
    r.fail("model.byte_fallback",
           "byte fallback is not supported (byte-level BPE covers every byte)");
  if (const json& d = r.get(model, "dropout");
      !d.is_null() && !(d.is_number() && d.get<double>() == 0.0))
    r.fail("model.dropout", "BPE dropout is not supported, got " + d.dump());
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json& v = r.get(model, key);
    if (!v.is_null() && !(v.is_string() && v.get<std::string>().empty()))
      r.fail(std::string("model.") + key, "not supported, got " + v.dump());
  }
  if (r.boolean(model, "fuse_unk", "model.fuse_unk", false))
    r.fail("model.fuse_unk", "fusing unknown tokens is not supported");
}

bool is_token_id(const json& id) {
  return id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() <= INT32_MAX;
}

// One entry of added_tokens (its id already checked).
AddedToken added_token(const Reader& r, const json& a, const std::string& at) {
  AddedToken t;
  t.id = static_cast<int32_t>(a["id"].get<int64_t>());
  t.content = r.string(a, "content", at + ".content");
  if (t.content.empty()) r.fail(at + ".content", "empty");
  t.special = r.boolean(a, "special", at + ".special", false);
  t.normalized = r.boolean(a, "normalized", at + ".normalized", !t.special);
  t.lstrip = r.boolean(a, "lstrip", at + ".lstrip", false);
  t.rstrip = r.boolean(a, "rstrip", at + ".rstrip", false);
  if (r.boolean(a, "single_word", at + ".single_word", false))
    r.fail(at + ".single_word", "single-word added tokens are not supported");
  return t;
}

// model.vocab and added_tokens → spec.tokens, kinds, bpe_vocab and added; the ids of both
// together must run from 0 without gaps, and an id in both must name the same text.
void read_vocabulary(const Reader& r, const json& j, const json& model, BpeSpec& spec) {
  const json& vocab = r.object(model, "vocab", "model.vocab");
  int64_t size = 0;
  for (const auto& [token, id] : vocab.items()) {
    if (!is_token_id(id)) r.fail("model.vocab." + token, "expected a token id, got " + id.dump());
    size = std::max<int64_t>(size, id.get<int64_t>() + 1);
  }
  const json& added = r.array(j, "added_tokens", "added_tokens");
  for (size_t i = 0; i < added.size(); ++i) {
    const json& id = r.get(added[i], "id");
    if (!is_token_id(id))
      r.fail("added_tokens[" + std::to_string(i) + "].id", "expected a token id, got " + id.dump());
    size = std::max<int64_t>(size, id.get<int64_t>() + 1);
  }
  spec.tokens.assign(static_cast<size_t>(size), "");
  spec.kinds.assign(static_cast<size_t>(size), TokenKind::kNormal);
  std::vector<bool> filled(static_cast<size_t>(size), false);
  spec.bpe_vocab.reserve(vocab.size());
  for (const auto& [token, id] : vocab.items()) {
    const auto k = static_cast<size_t>(id.get<int64_t>());
    if (filled[k])
      r.fail("model.vocab." + token,
             "id " + std::to_string(k) + " is also '" + spec.tokens[k] + "'");
    filled[k] = true;
    spec.tokens[k] = token;
    spec.bpe_vocab.emplace(token, static_cast<int32_t>(k));
  }
  for (size_t i = 0; i < added.size(); ++i) {
    const std::string at = "added_tokens[" + std::to_string(i) + "]";
    AddedToken t = added_token(r, added[i], at);
    const auto k = static_cast<size_t>(t.id);
    if (filled[k] && spec.tokens[k] != t.content)
      r.fail(at + ".id", "id " + std::to_string(k) + " is '" + spec.tokens[k] + "' in model.vocab");
    filled[k] = true;
    spec.tokens[k] = t.content;
    spec.kinds[k] = t.special ? TokenKind::kControl : TokenKind::kUserDefined;
    spec.added.push_back(std::move(t));
  }
  for (size_t k = 0; k < filled.size(); ++k) {
    if (!filled[k])
      r.fail("model.vocab",
             "no token has id " + std::to_string(k) + " (ids must run from 0 without gaps)");
  }
}

// model.merges: "left right" strings or [left, right] pairs.
void read_merges(const Reader& r, const json& model, BpeSpec& spec) {
  const json& merges = r.array(model, "merges", "model.merges");
  spec.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        r.fail("model.merges[" + std::to_string(i) + "]", "expected 'left right', got '" + s + "'");
      spec.merges.emplace_back(s.substr(0, sp), s.substr(sp + 1));
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      spec.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
    } else {
      r.fail("model.merges[" + std::to_string(i) + "]",
             "expected 'left right' or [left, right], got " + m.dump());
    }
  }
}

// Normalizer, pre-tokenizer (exactly one ByteLevel step), decoder and post-processor.
Template read_text_pipeline(const Reader& r, const json& j, BpeSpec& spec) {
  parse_normalizer(r, r.get(j, "normalizer"), "normalizer", spec.normalizer);
  parse_pre_tokenizer(r, r.get(j, "pre_tokenizer"), "pre_tokenizer", spec.pre_tokenizer);
  int byte_levels = 0;
  for (const auto& s : spec.pre_tokenizer.steps())
    byte_levels += s.kind == PreTokenizeStep::Kind::kByteLevel;
  if (byte_levels != 1) {
    r.fail(
        "pre_tokenizer",
        "expected exactly one ByteLevel pre-tokenizer (only byte-level BPE is supported), found " +
            std::to_string(byte_levels));
  }
  const json& decoder = r.get(j, "decoder");
  if (!decoder.is_object()) r.fail("decoder", "expected the ByteLevel decoder");
  r.type(decoder, "decoder", "decoder", {"ByteLevel"});
  Template tmpl;
  parse_post_processor(r, r.get(j, "post_processor"), "post_processor",
                       static_cast<int64_t>(spec.tokens.size()), tmpl);
  return tmpl;
}

// The id of a token's text (added tokens first), or -1.
int64_t id_of(const BpeSpec& spec, const std::string& token) {
  for (const auto& a : spec.added)
    if (a.content == token) return a.id;
  const auto it = spec.bpe_vocab.find(token);
  return it == spec.bpe_vocab.end() ? -1 : it->second;
}

// tokenizer_config.json beside `path`, when present: the special tokens by name and
// add_bos_token, which win over the template's BOS.
void read_tokenizer_config(const std::string& path, BpeSpec& spec) {
  namespace fs = std::filesystem;
  const fs::path config_path = fs::path(path).parent_path() / "tokenizer_config.json";
  if (!fs::exists(config_path)) return;
  const Reader c(config_path.string());
  const json cfg = parse_file(config_path.string());
  if (!cfg.is_object()) c.fail("(top level)", "expected an object");
  const auto token = [&](const char* key, int64_t& id) {
    const json& v = c.get(cfg, key);
    if (v.is_null()) return;
    // A plain string, or an AddedToken object with its "content".
    const json& content = v.is_object() ? c.get(v, "content") : v;
    if (!content.is_string()) c.fail(key, "expected a token string, got " + v.dump());
    id = id_of(spec, content.get<std::string>());
    if (id < 0) c.fail(key, "'" + content.get<std::string>() + "' is not a token of " + path);
  };
  token("bos_token", spec.bos);
  token("eos_token", spec.eos);
  token("pad_token", spec.pad);
  if (spec.unk < 0) token("unk_token", spec.unk);
  // Llama-style tokenizers rebuild their template from add_bos_token, so it wins when given.
  spec.add_bos = c.boolean(cfg, "add_bos_token", "add_bos_token", spec.add_bos);
  if (c.boolean(cfg, "add_eos_token", "add_eos_token", false))
    c.fail("add_eos_token", "appending EOS by default is not supported (pass add_eos to encode)");
  if (spec.add_bos && spec.bos < 0) c.fail("add_bos_token", "true, but there is no bos_token");
}

}  // namespace

BpeSpec spec_from_hf_json(const std::string& path) {
  const Reader r(path);
  const json j = parse_file(path);
  if (!j.is_object()) r.fail("(top level)", "expected an object");
  for (const char* key : {"truncation", "padding"}) {
    if (!r.get(j, key).is_null())
      r.fail(key, "not supported (set truncation and padding with BatchEncodeOptions instead)");
  }
  BpeSpec spec;
  spec.source = path;
  spec.merges_place = "model.merges";
  const json& model = r.object(j, "model", "model");
  check_bpe_model(r, model);
  spec.ignore_merges = r.boolean(model, "ignore_merges", "model.ignore_merges", false);
  read_vocabulary(r, j, model, spec);
  read_merges(r, model, spec);
  const Template tmpl = read_text_pipeline(r, j, spec);

  // Special ids: tokenizer_config.json names them; the template's BOS otherwise.
  if (const json& unk = r.get(model, "unk_token"); !unk.is_null()) {
    if (!unk.is_string() || id_of(spec, unk.get<std::string>()) < 0)
      r.fail("model.unk_token", unk.dump() + " is not a token of the vocabulary");
    spec.unk = id_of(spec, unk.get<std::string>());
  }
  if (tmpl.bos >= 0) {
    spec.bos = tmpl.bos;
    spec.add_bos = true;
  }
  read_tokenizer_config(path, spec);
  return spec;
}

}  // namespace coco::llm::bpe

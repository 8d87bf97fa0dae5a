// A byte-level BPE vocabulary from GGUF (tokenizer.ggml.model = "gpt2"). The pre-tokenizer
// is named by tokenizer.ggml.pre; each name maps to the regexes of the model's own
// tokenizer.json, in the forms and order llama.cpp applies them (every regex splits every
// piece, matches isolated), with llama.cpp's per-name defaults for BOS and ignore_merges.

#include <fstream>
#include <nlohmann/json.hpp>

#include "bpe_tokenizer.h"
#include "coco/common/error.h"
#include "coco/common/log.h"
#include "coco/llm/gguf.h"
#include "gguf_vocab.h"

namespace coco::llm::bpe {

namespace {

// GPT-2's regex without its final \s+ (llama.cpp's form; the gap it leaves is kept anyway).
constexpr const char* kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
// Llama 3 (the case-insensitive contractions spelled out), digits in runs of up to three.
constexpr const char* kLlama3 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
// Qwen2: as Llama 3 but every digit alone.
constexpr const char* kQwen2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kPoro = R"( ?[^(\s|.,!?…。，、।۔،)]+)";
// DeepSeek LLM's letter class: Latin, Greek, Cyrillic, Armenian, Georgian, Cherokee, ... letters.
constexpr const char* kDeepseekLetters =
    R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293})"
    R"(\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A})"
    R"(\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556})"
    R"(\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF})"
    R"(\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D})"
    R"(\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D})"
    R"(\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3})"
    R"(\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107})"
    R"(\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D})"
    R"(\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184})"
    R"(\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D})"
    R"(\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF})"
    R"(\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F})"
    R"(\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF})"
    R"(\x{1E900}-\x{1E943}]+)";
constexpr const char* kCjkHangul = R"([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";

struct PreSpec {
  std::vector<const char*> names;
  std::vector<const char*> regexes;
  bool add_bos = false;
  bool ignore_merges = false;
  bool no_bos = false;  // the vocabulary's BOS id is not used (ChatGLM)
};

const std::vector<PreSpec>& pre_specs() {
  static const std::vector<PreSpec> specs = {
      {{"default"}, {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3"}, {kLlama3}, true, true},
      {{"dbrx", "smaug-bpe"}, {kLlama3}},
      {{"chatglm-bpe"}, {kLlama3}, false, false, true},
      {{"deepseek-llm"},
       {"[\r\n]", kDeepseekLetters,
        R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)",
        R"(\s+$)", kCjkHangul, R"(\p{N}+)"}},
      {{"deepseek-v3"},
       {R"(\p{N}{1,3})", R"([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)",
        R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}},
      {{"deepseek-coder"}, {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kCjkHangul, R"(\p{N})"}},
      {{"falcon"}, {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, "[0-9][0-9][0-9]"}},
      {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"},
       {R"(\p{N})", kGpt2}},
      {{"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es",
        "jina-v2-de", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais"},
       {kGpt2}},
      {{"qwen2", "deepseek-r1-qwen", "megrez", "stablelm2"}, {kQwen2}},
      {{"poro-chat", "bloom", "gpt3-finnish"}, {kPoro}},
      {{"viking"}, {kPoro, R"(\p{N})"}},
      {{"tekken"},
       {R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
       true,
       true},
  };
  return specs;
}

const PreSpec& find_pre(const std::string& name, const std::string& where) {
  std::string known;
  for (const auto& s : pre_specs()) {
    for (const char* n : s.names) {
      if (name == n) return s;
      known += std::string(known.empty() ? "" : ", ") + n;
    }
  }
  throw ModelError(where + "'tokenizer.ggml.pre': unknown pre-tokenizer '" + name +
                   "' (supported: " + known + ")");
}

// tokenizer.ggml.pre, or llama.cpp's "default" when the file names none.
std::string pre_tokenizer_name(const GgufFile& f) {
  return f.has("tokenizer.ggml.pre") ? f.get_string("tokenizer.ggml.pre") : "default";
}

// tokenizer.ggml.tokens → spec.tokens and bpe_vocab; every token once.
void read_tokens(const GgufFile& f, const std::string& where, BpeSpec& spec) {
  spec.tokens = gguf_tokens(f);
  spec.bpe_vocab.reserve(spec.tokens.size());
  for (size_t i = 0; i < spec.tokens.size(); ++i) {
    if (!spec.bpe_vocab.emplace(spec.tokens[i], static_cast<int32_t>(i)).second) {
      throw ModelError(where + "'tokenizer.ggml.tokens'[" + std::to_string(i) +
                       "]: duplicate token '" + spec.tokens[i] + "'");
    }
  }
}

// tokenizer.ggml.token_type → spec.kinds (all normal when absent); control, user-defined
// and unknown tokens become added tokens.
void read_token_kinds(const GgufFile& f, const std::string& where, BpeSpec& spec) {
  const size_t n = spec.tokens.size();
  spec.kinds.assign(n, TokenKind::kNormal);
  if (f.has("tokenizer.ggml.token_type")) {
    const auto& types = f.at("tokenizer.ggml.token_type");
    if (!types.is_array() || types.size() != n)
      throw ModelError(where + "'tokenizer.ggml.token_type': expected " + std::to_string(n) +
                       " integers");
    for (size_t i = 0; i < n; ++i) {
      const int t = types[i].is_number_integer() ? types[i].get<int>() : -1;
      if (t < 1 || t > 6) {
        throw ModelError(where + "'tokenizer.ggml.token_type'[" + std::to_string(i) +
                         "]: unknown token type " + types[i].dump() + " (expected 1..6)");
      }
      static constexpr TokenKind kByType[] = {
          TokenKind::kNormal,      TokenKind::kNormal, TokenKind::kUnknown, TokenKind::kControl,
          TokenKind::kUserDefined, TokenKind::kUnused, TokenKind::kByte};
      spec.kinds[i] = kByType[t];
    }
  }
  for (size_t i = 0; i < n; ++i) {
    const TokenKind k = spec.kinds[i];
    if (k != TokenKind::kControl && k != TokenKind::kUserDefined && k != TokenKind::kUnknown)
      continue;
    AddedToken t;
    t.content = spec.tokens[i];
    t.id = static_cast<int32_t>(i);
    t.special =
        k != TokenKind::kUserDefined;  // llama.cpp's parse_special gates control and unknown
    spec.added.push_back(std::move(t));
  }
}

void read_merges(const GgufFile& f, const std::string& where, BpeSpec& spec) {
  if (!f.has("tokenizer.ggml.merges"))
    throw ModelError(where +
                     "'tokenizer.ggml.merges' is missing (a BPE vocabulary needs its merges)");
  const auto& merges = f.at("tokenizer.ggml.merges");
  if (!merges.is_array())
    throw ModelError(where + "'tokenizer.ggml.merges': expected a string array");
  spec.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string m = merges[i].is_string() ? merges[i].get<std::string>() : "";
    // The separator is the first space after the first byte (a token may itself be " ").
    const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
    if (sp == std::string::npos) {
      throw ModelError(where + "'tokenizer.ggml.merges'[" + std::to_string(i) +
                       "]: expected 'left right', got '" + m + "'");
    }
    spec.merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
  }
}

// The named pre-tokenizer's regexes, then the byte-level step; also its ignore_merges.
const PreSpec& add_pre_tokenizer(const GgufFile& f, const std::string& pre,
                                 const std::string& where, BpeSpec& spec) {
  const PreSpec& p = find_pre(pre, where);
  for (size_t i = 0; i < p.regexes.size(); ++i) {
    PreTokenizeStep step;
    step.regex = std::make_shared<Regex>(
        p.regexes[i], false, f.path() + ": pre-tokenizer '" + pre + "' regex " + std::to_string(i));
    spec.pre_tokenizer.add(std::move(step));
  }
  PreTokenizeStep bytes;
  bytes.kind = PreTokenizeStep::Kind::kByteLevel;
  spec.pre_tokenizer.add(std::move(bytes));
  spec.ignore_merges = p.ignore_merges;
  return p;
}

// BOS/EOS/UNK/PAD ids and whether BOS is prepended (the pre-tokenizer's default unless
// tokenizer.ggml.add_bos_token says otherwise).
void read_special_ids(const GgufFile& f, const std::string& where, const PreSpec& p,
                      const std::string& pre, BpeSpec& spec) {
  const size_t n = spec.tokens.size();
  spec.bos = p.no_bos ? -1 : gguf_token_id(f, "tokenizer.ggml.bos_token_id", n, "tokens");
  spec.eos = gguf_token_id(f, "tokenizer.ggml.eos_token_id", n, "tokens");
  spec.unk = gguf_token_id(f, "tokenizer.ggml.unknown_token_id", n, "tokens");
  spec.pad = gguf_token_id(f, "tokenizer.ggml.padding_token_id", n, "tokens");
  spec.add_bos = p.add_bos;
  gguf_read_bool(f, "tokenizer.ggml.add_bos_token", spec.add_bos);
  if (spec.add_bos && spec.bos < 0) {
    throw ModelError(where +
                     "'tokenizer.ggml.bos_token_id': the vocabulary asks for a BOS token "
                     "(tokenizer.ggml.add_bos_token or pre-tokenizer '" +
                     pre + "') but has none");
  }
}

}  // namespace

BpeSpec spec_from_gguf(const GgufFile& f) {
  const std::string where = gguf_key_place(f);
  BpeSpec spec;
  spec.source = f.path();
  spec.merges_place = "GGUF key 'tokenizer.ggml.merges'";
  const std::string model = gguf_tokenizer_model(f);
  if (model != "gpt2")
    throw ModelError(where + "'tokenizer.ggml.model': expected 'gpt2' for a byte-level BPE, got '" +
                     model + "'");
  read_tokens(f, where, spec);
  read_token_kinds(f, where, spec);
  read_merges(f, where, spec);
  if (!f.has("tokenizer.ggml.pre")) {
    log().warn("[llm] {}: no tokenizer.ggml.pre; using llama.cpp's 'default' pre-tokenizer",
               f.path());
  }
  const std::string pre = pre_tokenizer_name(f);
  const PreSpec& p = add_pre_tokenizer(f, pre, where, spec);
  read_special_ids(f, where, p, pre, spec);
  return spec;
}

void write_hf_tokenizer(const GgufFile& f, const std::string& dir) {
  using json = nlohmann::json;
  const BpeSpec spec = spec_from_gguf(f);
  const std::string pre = pre_tokenizer_name(f);
  const PreSpec& p = find_pre(pre, f.path() + ": ");
  // Every token keeps its id in model.vocab (GPT-2's own tokenizer.json lists <|endoftext|>
  // both there and among the added tokens); merges as pairs, since a token may hold a space.
  json vocab = json::object();
  for (size_t i = 0; i < spec.tokens.size(); ++i) vocab[spec.tokens[i]] = i;
  json merges = json::array();
  for (const auto& [left, right] : spec.merges) merges.push_back({left, right});
  json added = json::array();
  for (const auto& t : spec.added) {
    added.push_back({{"id", t.id},
                     {"content", t.content},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", t.special}});
  }
  json steps = json::array();
  for (const char* r : p.regexes) {
    steps.push_back({{"type", "Split"},
                     {"pattern", {{"Regex", r}}},
                     {"behavior", "Isolated"},
                     {"invert", false}});
  }
  const json byte_level = {{"type", "ByteLevel"},
                           {"add_prefix_space", false},
                           {"trim_offsets", false},
                           {"use_regex", false}};
  steps.push_back(byte_level);
  json post = nullptr;
  if (spec.add_bos) {
    const std::string bos = spec.tokens[static_cast<size_t>(spec.bos)];
    post = {{"type", "TemplateProcessing"},
            {"single",
             {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
            {"special_tokens", {{bos, {{"id", bos}, {"ids", {spec.bos}}, {"tokens", {bos}}}}}}};
  }
  const json tokenizer = {{"version", "1.0"},
                          {"truncation", nullptr},
                          {"padding", nullptr},
                          {"added_tokens", added},
                          {"normalizer", nullptr},
                          {"pre_tokenizer", {{"type", "Sequence"}, {"pretokenizers", steps}}},
                          {"post_processor", post},
                          {"decoder", byte_level},
                          {"model",
                           {{"type", "BPE"},
                            {"dropout", nullptr},
                            {"unk_token", nullptr},
                            {"continuing_subword_prefix", nullptr},
                            {"end_of_word_suffix", nullptr},
                            {"fuse_unk", false},
                            {"byte_fallback", false},
                            {"ignore_merges", spec.ignore_merges},
                            {"vocab", vocab},
                            {"merges", merges}}}};
  json config = {{"add_bos_token", spec.add_bos}, {"add_eos_token", false}};
  const auto name = [&](int64_t id) { return json(spec.tokens[static_cast<size_t>(id)]); };
  if (spec.bos >= 0) config["bos_token"] = name(spec.bos);
  if (spec.eos >= 0) config["eos_token"] = name(spec.eos);
  if (spec.unk >= 0) config["unk_token"] = name(spec.unk);
  if (spec.pad >= 0) config["pad_token"] = name(spec.pad);
  for (const auto& [file, j] : {std::pair<std::string, json>{"tokenizer.json", tokenizer},
                                {"tokenizer_config.json", config}}) {
    std::ofstream out(dir + "/" + file);
    out << j.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
    if (!out) throw ModelError(dir + ": cannot write " + file);
  }
}

}  // namespace coco::llm::bpe

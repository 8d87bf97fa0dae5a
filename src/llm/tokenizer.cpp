// The Tokenizer front: files to backends, and the calls shared by both. SentencePiece runs in
// libcoco_spm.so, loaded once per process with dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND)
// (see docs/ENVIRONMENT.md for why; dlmopen under AddressSanitizer); byte-level BPE is
// bpe_tokenizer.h.
#include "coco/llm/tokenizer.h"

#include <dlfcn.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "bpe_tokenizer.h"
#include "coco/common/error.h"
#include "coco/llm/gguf.h"
#include "coco/llm/spm_vocab.h"
#include "gguf_vocab.h"
#include "spm_shim.h"

#ifndef COCO_SPM_SHIM_BUILD_PATH
#define COCO_SPM_SHIM_BUILD_PATH ""
#endif

namespace coco::llm {
namespace fs = std::filesystem;

namespace {

constexpr const char* kShimName = "libcoco_spm.so";

struct Shim {
  decltype(&coco_spm_new) create = nullptr;
  decltype(&coco_spm_delete) destroy = nullptr;
  decltype(&coco_spm_load_file) load_file = nullptr;
  decltype(&coco_spm_load_proto) load_proto = nullptr;
  decltype(&coco_spm_encode) encode = nullptr;
  decltype(&coco_spm_decode) decode = nullptr;
  decltype(&coco_spm_vocab_size) vocab_size = nullptr;
  decltype(&coco_spm_special_id) special_id = nullptr;
  decltype(&coco_spm_id_to_piece) id_to_piece = nullptr;
};

template <typename F>
void bind(void* handle, const char* name, F& fn, const std::string& path) {
  fn = reinterpret_cast<F>(dlsym(handle, name));
  if (!fn) throw ModelError(path + ": symbol " + name + " missing from the sentencepiece shim");
}

// AddressSanitizer cannot run a library loaded with RTLD_DEEPBIND; there the shim gets a link
// namespace of its own instead, which isolates its symbols as well.
#if defined(__SANITIZE_ADDRESS__)
#define COCO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COCO_ASAN 1
#endif
#endif

void* open_isolated(const std::string& path) {
#ifdef COCO_ASAN
  return dlmopen(LM_ID_NEWLM, path.c_str(), RTLD_NOW | RTLD_LOCAL);
#else
  return dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
#endif
}

const Shim& shim() {
  static std::once_flag once;
  static Shim s;
  static std::string error;
  std::call_once(once, [] {
    const std::string path = spm_shim_path();
    void* h = open_isolated(path);
    if (!h) {
      const char* e = dlerror();
      error = "cannot load the sentencepiece shim " + path + " (" + (e ? e : "?") +
              "); set COCO_SPM_LIB to the path of libcoco_spm.so";
      return;
    }
    try {
      bind(h, "coco_spm_new", s.create, path);
      bind(h, "coco_spm_delete", s.destroy, path);
      bind(h, "coco_spm_load_file", s.load_file, path);
      bind(h, "coco_spm_load_proto", s.load_proto, path);
      bind(h, "coco_spm_encode", s.encode, path);
      bind(h, "coco_spm_decode", s.decode, path);
      bind(h, "coco_spm_vocab_size", s.vocab_size, path);
      bind(h, "coco_spm_special_id", s.special_id, path);
      bind(h, "coco_spm_id_to_piece", s.id_to_piece, path);
    } catch (const ModelError& e) {
      error = e.what();
    }
  });
  if (!error.empty()) throw ModelError(error);
  return s;
}

void append_text(void* ctx, const char* data, size_t size) {
  static_cast<std::string*>(ctx)->append(data, size);
}

void append_ids(void* ctx, const int32_t* ids, size_t count) {
  auto* out = static_cast<std::vector<int64_t>*>(ctx);
  out->insert(out->end(), ids, ids + count);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelError(path + ": cannot open tokenizer file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::string spm_shim_path() {
  if (const char* env = std::getenv("COCO_SPM_LIB"); env && *env) return env;
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n > 0) {
    const fs::path beside =
        fs::path(std::string(buf, static_cast<size_t>(n))).parent_path() / kShimName;
    if (fs::exists(beside)) return beside.string();
  }
  return COCO_SPM_SHIM_BUILD_PATH[0] ? COCO_SPM_SHIM_BUILD_PATH : kShimName;
}

struct Tokenizer::Impl {
  std::string source;
  bool add_bos = false;
  // SentencePiece
  void* processor = nullptr;
  std::string proto;  // serialized ModelProto
  // byte-level BPE
  std::unique_ptr<const bpe::BpeTokenizer> bpe;
  ~Impl() {
    if (processor) shim().destroy(processor);
  }
};

Tokenizer Tokenizer::from_model_proto(const std::string& bytes, const std::string& source) {
  const Shim& s = shim();
  Tokenizer t;
  t.impl_ = std::make_shared<Impl>();
  t.impl_->source = source;
  t.impl_->processor = s.create();
  if (!t.impl_->processor) throw ModelError(source + ": cannot create a SentencePiece processor");
  std::string err;
  if (s.load_proto(t.impl_->processor, bytes.data(), bytes.size(), append_text, &err) != 0) {
    throw ModelError(source + ": SentencePiece rejected the vocabulary: " +
                     (err.empty() ? "invalid model" : err));
  }
  t.impl_->proto = bytes;
  t.impl_->add_bos = t.bos_id() >= 0;  // SentencePiece models take BOS by default (llama.cpp)
  return t;
}

Tokenizer Tokenizer::from_vocab(const SpmVocab& vocab, const std::string& source) {
  return from_model_proto(vocab.to_model_proto(), source);
}

Tokenizer Tokenizer::from_file(const std::string& path) {
  const auto from_bpe = [](bpe::BpeSpec spec) {
    Tokenizer t;
    t.impl_ = std::make_shared<Impl>();
    t.impl_->source = spec.source;
    t.impl_->add_bos = spec.add_bos && spec.bos >= 0;
    t.impl_->bpe = std::make_unique<const bpe::BpeTokenizer>(std::move(spec));
    return t;
  };
  const fs::path p(path);
  if (fs::is_directory(p)) {
    for (const char* name : {"tokenizer.model", "tokenizer.json"}) {
      if (fs::exists(p / name)) return from_file((p / name).string());
    }
    throw ModelError(path + ": no tokenizer.model or tokenizer.json in the checkpoint directory");
  }
  if (is_gguf_file(path)) {
    GgufFile file(path);
    const std::string model = gguf_tokenizer_model(file);
    if (model == "gpt2") return from_bpe(bpe::spec_from_gguf(file));
    if (model != "llama") {
      throw ModelError(path + ": GGUF key 'tokenizer.ggml.model': unsupported tokenizer '" + model +
                       "' (supported: llama, the SentencePiece vocabulary; gpt2, byte-level BPE)");
    }
    Tokenizer t = from_vocab(SpmVocab::from_gguf(file), path);
    if (file.has("tokenizer.ggml.add_bos_token")) {
      bool add_bos = false;
      gguf_read_bool(file, "tokenizer.ggml.add_bos_token", add_bos);
      t.impl_->add_bos = add_bos && t.bos_id() >= 0;
    }
    return t;
  }
  if (!fs::exists(p)) throw ModelError(path + ": no such tokenizer file");
  if (p.filename() == "tokenizer.json") return from_bpe(bpe::spec_from_hf_json(path));
  if (p.extension() != ".model") {  // a weights file or an index: the tokenizer beside it
    for (const char* name : {"tokenizer.model", "tokenizer.json"}) {
      const auto sibling = p.parent_path() / name;
      if (fs::exists(sibling)) return from_file(sibling.string());
    }
    if (p.extension() == ".json") return from_bpe(bpe::spec_from_hf_json(path));
  }
  return from_model_proto(read_file(path), path);
}

std::vector<int64_t> Tokenizer::encode(const std::string& text, bool add_bos, bool add_eos,
                                       bool parse_special) const {
  std::vector<int64_t> ids;
  if (add_bos && bos_id() >= 0) ids.push_back(bos_id());
  if (impl_->bpe) {
    const auto body = impl_->bpe->encode(text, parse_special);
    ids.insert(ids.end(), body.begin(), body.end());
  } else {
    if (parse_special) {
      throw ModelError(impl_->source +
                       ": parse_special is not supported for a SentencePiece vocabulary");
    }
    if (shim().encode(impl_->processor, text.data(), text.size(), append_ids, &ids) != 0) {
      throw ModelError("SentencePiece failed to encode a text of " + std::to_string(text.size()) +
                       " bytes");
    }
  }
  if (add_eos) {
    if (eos_id() < 0) throw ModelError(impl_->source + ": add_eos, but the vocabulary has no EOS");
    ids.push_back(eos_id());
  }
  return ids;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids) const {
  if (impl_->bpe) return impl_->bpe->decode(ids);
  std::vector<int32_t> v;
  v.reserve(ids.size());
  const int64_t n = vocab_size();
  for (int64_t id : ids) {
    if (id < 0 || id >= n)
      throw ModelError("cannot decode token id " + std::to_string(id) + " (vocabulary of " +
                       std::to_string(n) + ")");
    v.push_back(static_cast<int32_t>(id));
  }
  std::string out;
  if (shim().decode(impl_->processor, v.data(), v.size(), append_text, &out) != 0) {
    throw ModelError("SentencePiece failed to decode " + std::to_string(ids.size()) + " ids");
  }
  return out;
}

TokenBatch Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                   const BatchEncodeOptions& o) const {
  std::vector<std::vector<int64_t>> seqs;
  seqs.reserve(texts.size());
  int64_t longest = 0;
  const bool bos = o.add_bos && bos_id() >= 0;
  if (o.add_eos && eos_id() < 0)
    throw ModelError(impl_->source + ": add_eos, but the vocabulary has no EOS");
  for (const auto& text : texts) {
    auto ids = encode(text, false, false, o.parse_special);
    const int64_t extra = (bos ? 1 : 0) + (o.add_eos ? 1 : 0);
    if (o.max_length > 0 && static_cast<int64_t>(ids.size()) + extra > o.max_length) {
      const auto keep = static_cast<size_t>(std::max<int64_t>(0, o.max_length - extra));
      if (o.truncate_left) {
        ids.erase(ids.begin(), ids.end() - static_cast<std::ptrdiff_t>(keep));
      } else {
        ids.resize(keep);
      }
    }
    if (bos) ids.insert(ids.begin(), bos_id());
    if (o.add_eos) ids.push_back(eos_id());
    if (o.max_length > 0 && static_cast<int64_t>(ids.size()) > o.max_length)
      ids.resize(static_cast<size_t>(o.max_length));
    longest = std::max<int64_t>(longest, static_cast<int64_t>(ids.size()));
    seqs.push_back(std::move(ids));
  }
  const int64_t t = (o.pad_to_max_length && o.max_length > 0) ? o.max_length : longest;
  const int64_t b = static_cast<int64_t>(seqs.size());
  const int64_t pad = padding_id();
  TokenBatch batch;
  batch.input_ids = torch::full({b, t}, pad, torch::kLong);
  batch.attention_mask = torch::zeros({b, t}, torch::kLong);
  auto ids_a = batch.input_ids.accessor<int64_t, 2>();
  auto mask_a = batch.attention_mask.accessor<int64_t, 2>();
  for (int64_t i = 0; i < b; ++i) {
    const auto& s = seqs[static_cast<size_t>(i)];
    const int64_t n = static_cast<int64_t>(s.size());
    const int64_t start = o.padding == PaddingSide::kLeft ? t - n : 0;
    for (int64_t j = 0; j < n; ++j) {
      ids_a[i][start + j] = s[static_cast<size_t>(j)];
      mask_a[i][start + j] = 1;
    }
    batch.lengths.push_back(n);
  }
  return batch;
}

int64_t Tokenizer::vocab_size() const {
  return impl_->bpe ? impl_->bpe->vocab_size() : shim().vocab_size(impl_->processor);
}
int64_t Tokenizer::unk_id() const {
  return impl_->bpe ? impl_->bpe->spec().unk : shim().special_id(impl_->processor, 0);
}
int64_t Tokenizer::bos_id() const {
  return impl_->bpe ? impl_->bpe->spec().bos : shim().special_id(impl_->processor, 1);
}
int64_t Tokenizer::eos_id() const {
  return impl_->bpe ? impl_->bpe->spec().eos : shim().special_id(impl_->processor, 2);
}
int64_t Tokenizer::pad_id() const {
  return impl_->bpe ? impl_->bpe->spec().pad : shim().special_id(impl_->processor, 3);
}
bool Tokenizer::add_bos() const { return impl_->add_bos; }
bool Tokenizer::is_bpe() const { return impl_->bpe != nullptr; }

std::string Tokenizer::piece(int64_t id) const {
  if (id < 0 || id >= vocab_size()) throw ModelError("no piece with id " + std::to_string(id));
  if (impl_->bpe) return impl_->bpe->spec().tokens[static_cast<size_t>(id)];
  std::string out;
  shim().id_to_piece(impl_->processor, static_cast<int32_t>(id), append_text, &out);
  return out;
}

const std::string& Tokenizer::model_proto() const {
  if (impl_->bpe) {
    throw ModelError(impl_->source +
                     ": a byte-level BPE tokenizer has no SentencePiece model (model_proto)");
  }
  return impl_->proto;
}

}  // namespace coco::llm

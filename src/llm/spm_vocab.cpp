// GGUF vocabulary → SentencePiece ModelProto bytes. Field numbers are those of
// sentencepiece_model.proto: ModelProto{1 pieces, 2 trainer_spec, 3 normalizer_spec},
// SentencePiece{1 piece, 2 score, 3 type}, TrainerSpec{3 model_type, 4 vocab_size,
// 35 byte_fallback, 40 unk_id, 41 bos_id, 42 eos_id, 43 pad_id},
// NormalizerSpec{1 name, 3 add_dummy_prefix, 4 remove_extra_whitespaces, 5 escape_whitespaces}.
#include "coco/llm/spm_vocab.h"

#include <cstring>
#include <set>

#include "coco/common/error.h"
#include "coco/llm/gguf.h"
#include "gguf_vocab.h"

namespace coco::llm {
namespace {

class ProtoWriter {
 public:
  void varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void tag(uint32_t field, uint32_t wire) { varint((uint64_t{field} << 3) | wire); }
  void int_field(uint32_t field, int64_t v) {  // int32/enum/bool: negative as 10-byte varint
    tag(field, 0);
    varint(static_cast<uint64_t>(v));
  }
  void float_field(uint32_t field, float v) {
    tag(field, 5);
    char b[4];
    std::memcpy(b, &v, 4);
    out_.append(b, 4);
  }
  void bytes_field(uint32_t field, const std::string& s) {
    tag(field, 2);
    varint(s.size());
    out_ += s;
  }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
};

// A float array of one entry per piece; empty when the key is absent.
std::vector<float> float_array(const GgufFile& f, const char* key, size_t n) {
  const std::string where = gguf_key_place(f);
  std::vector<float> out;
  if (!f.has(key)) return out;
  const auto& a = f.at(key);
  if (!a.is_array() || a.size() != n) {
    throw ModelError(where + "'" + key + "': expected " + std::to_string(n) + " numbers, got " +
                     std::to_string(a.is_array() ? a.size() : 0));
  }
  for (const auto& x : a) {
    if (!x.is_number()) throw ModelError(where + "'" + key + "': non-numeric entry");
    out.push_back(x.get<float>());
  }
  return out;
}

// tokenizer.ggml.token_type → v.types (all normal when absent) and v.byte_fallback.
void read_piece_types(const GgufFile& f, SpmVocab& v) {
  const size_t n = v.pieces.size();
  const auto types = float_array(f, "tokenizer.ggml.token_type", n);
  for (size_t i = 0; i < n; ++i) {
    const int t = types.empty() ? 1 : static_cast<int>(types[i]);
    if (t < 1 || t > 6) {
      throw ModelError(gguf_key_place(f) + "'tokenizer.ggml.token_type'[" + std::to_string(i) +
                       "]: unknown token type " + std::to_string(t) + " (expected 1..6)");
    }
    v.types.push_back(static_cast<SpmPieceType>(t));
    if (t == 6) v.byte_fallback = true;
  }
}

// A special piece id; a required one must be present and not GGUF's "none".
int32_t special_id(const GgufFile& f, const char* key, size_t n, bool required) {
  const std::string where = gguf_key_place(f);
  if (required && !f.has(key))
    throw ModelError(where + "'" + key + "' is missing (the vocabulary needs it)");
  const int64_t id = gguf_token_id(f, key, n, "pieces");
  if (required && id < 0) throw ModelError(where + "'" + key + "': no such token (id -1)");
  return static_cast<int32_t>(id);
}

// BOS/EOS/UNK/PAD ids, and the piece types sentencepiece requires for them: exactly one
// unknown piece, control pieces for BOS/EOS/PAD.
void read_special_pieces(const GgufFile& f, SpmVocab& v) {
  const size_t n = v.pieces.size();
  v.bos_id = special_id(f, "tokenizer.ggml.bos_token_id", n, true);
  v.eos_id = special_id(f, "tokenizer.ggml.eos_token_id", n, true);
  v.unk_id = special_id(f, "tokenizer.ggml.unknown_token_id", n, false);
  v.pad_id = special_id(f, "tokenizer.ggml.padding_token_id", n, false);
  if (v.unk_id < 0) {
    for (size_t i = 0; i < n; ++i) {
      if (v.types[i] == SpmPieceType::kUnknown) v.unk_id = static_cast<int32_t>(i);
    }
  }
  if (v.unk_id < 0)
    throw ModelError(gguf_key_place(f) +
                     "'tokenizer.ggml.unknown_token_id' is missing and no piece has the unknown "
                     "type");
  for (size_t i = 0; i < n; ++i) {
    if (v.types[i] == SpmPieceType::kUnknown && static_cast<int32_t>(i) != v.unk_id) {
      v.types[i] = SpmPieceType::kControl;
    }
  }
  v.types[static_cast<size_t>(v.unk_id)] = SpmPieceType::kUnknown;
  for (int32_t id : {v.bos_id, v.eos_id, v.pad_id}) {
    if (id >= 0 && id != v.unk_id) v.types[static_cast<size_t>(id)] = SpmPieceType::kControl;
  }
}

}  // namespace

SpmVocab SpmVocab::from_gguf(const GgufFile& f) {
  const std::string where = gguf_key_place(f);
  const std::string model = gguf_tokenizer_model(f);
  if (model != "llama") {
    throw ModelError(where + "'tokenizer.ggml.model': unsupported tokenizer '" + model +
                     "' (supported: llama, the SentencePiece BPE vocabulary)");
  }
  SpmVocab v;
  v.pieces = gguf_tokens(f);
  const size_t n = v.pieces.size();
  v.scores = float_array(f, "tokenizer.ggml.scores", n);
  if (v.scores.empty()) v.scores.assign(n, 0.0f);
  read_piece_types(f, v);
  read_special_pieces(f, v);
  gguf_read_bool(f, "tokenizer.ggml.add_space_prefix", v.add_dummy_prefix);
  std::set<std::string> seen;
  for (size_t i = 0; i < n; ++i) {
    if (!seen.insert(v.pieces[i]).second) {
      throw ModelError(where + "'tokenizer.ggml.tokens'[" + std::to_string(i) +
                       "]: duplicate piece '" + v.pieces[i] + "'");
    }
  }
  return v;
}

std::string SpmVocab::to_model_proto() const {
  ProtoWriter model;
  for (size_t i = 0; i < pieces.size(); ++i) {
    ProtoWriter p;
    p.bytes_field(1, pieces[i]);
    p.float_field(2, scores[i]);
    p.int_field(3, static_cast<int32_t>(types[i]));
    model.bytes_field(1, p.str());
  }
  ProtoWriter trainer;
  trainer.int_field(3, model_type);
  trainer.int_field(4, static_cast<int64_t>(pieces.size()));
  trainer.int_field(35, byte_fallback ? 1 : 0);
  trainer.int_field(40, unk_id);
  trainer.int_field(41, bos_id);
  trainer.int_field(42, eos_id);
  trainer.int_field(43, pad_id);
  model.bytes_field(2, trainer.str());
  ProtoWriter normalizer;
  normalizer.bytes_field(1, "identity");
  normalizer.int_field(3, add_dummy_prefix ? 1 : 0);
  normalizer.int_field(4, 0);  // keep runs of spaces, as llama.cpp does
  normalizer.int_field(5, 1);
  model.bytes_field(3, normalizer.str());
  return model.str();
}

}  // namespace coco::llm

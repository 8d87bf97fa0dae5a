// Tokenizer: one front for two backends. SentencePiece (a .model file or a GGUF "llama"
// vocabulary) runs behind a dlopen-ed shim that keeps sentencepiece's protobuf away from
// libtorch's; byte-level BPE (a GGUF "gpt2" vocabulary or a Hugging Face tokenizer.json, as
// Qwen2, Llama 3, DeepSeek, StarCoder, Falcon use) runs in-process on PCRE2 and ICU. Encode,
// decode and batched encoding with truncation and padding. Not a WordPiece/Unigram tokenizer.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace coco::llm {

struct SpmVocab;

enum class PaddingSide { kRight, kLeft };

struct BatchEncodeOptions {
  bool add_bos = true;  // prepend BOS where the vocabulary has one
  bool add_eos = false;
  int64_t max_length =
      0;  // truncate each sequence to this many tokens (BOS/EOS included); 0 = none
  bool truncate_left = false;  // keep the last max_length tokens (e.g. the newest items)
  PaddingSide padding = PaddingSide::kRight;
  bool pad_to_max_length = false;  // pad to max_length instead of the longest sequence
  bool parse_special = false;      // see Tokenizer::encode
};

/// A padded batch of token ids.
struct TokenBatch {
  torch::Tensor input_ids;       // [B, T] int64, padding = pad id (EOS when there is none)
  torch::Tensor attention_mask;  // [B, T] int64, 1 = token, 0 = padding
  std::vector<int64_t> lengths;  // B real lengths
};

class Tokenizer {
 public:
  /// A .model file, a tokenizer.json (tokenizer_config.json beside it is read too), a .gguf
  /// (its embedded "llama" or "gpt2" vocabulary), or a checkpoint directory holding
  /// tokenizer.model or else tokenizer.json. ModelError, naming the file and the place, for
  /// anything unreadable or unsupported.
  static Tokenizer from_file(const std::string& path);
  static Tokenizer from_vocab(const SpmVocab& vocab, const std::string& source);
  static Tokenizer from_model_proto(const std::string& bytes, const std::string& source);

  /// Token ids of `text` (SentencePiece adds the dummy prefix space itself). `add_bos` adds
  /// BOS only where the vocabulary has one (see add_bos()); `add_eos` without an EOS token is a
  /// ModelError. `parse_special`: match special tokens (GGUF control tokens, special added
  /// tokens of tokenizer.json such as "<|im_start|>") written in the text; otherwise they are
  /// plain text. Non-special added (user-defined) tokens always match. BPE only: SentencePiece
  /// never matches control pieces, so parse_special is a ModelError there.
  std::vector<int64_t> encode(const std::string& text, bool add_bos = false, bool add_eos = false,
                              bool parse_special = false) const;
  /// Text of `ids`; BOS, EOS and other control tokens produce nothing.
  std::string decode(const std::vector<int64_t>& ids) const;
  TokenBatch encode_batch(const std::vector<std::string>& texts,
                          const BatchEncodeOptions& options = {}) const;

  int64_t vocab_size() const;
  int64_t bos_id() const;  // -1 when the vocabulary has none (Qwen2)
  int64_t eos_id() const;  // -1 when the vocabulary has none
  int64_t unk_id() const;  // -1 when the vocabulary has none
  int64_t pad_id() const;  // -1 when the vocabulary has none
  /// The id batches are padded with (the positions are masked out, so any real id serves):
  /// the pad token, else EOS, else 0.
  int64_t padding_id() const { return pad_id() >= 0 ? pad_id() : (eos_id() >= 0 ? eos_id() : 0); }
  /// Whether the model wants BOS prepended to a text (GGUF tokenizer.ggml.add_bos_token;
  /// tokenizer_config.json add_bos_token or the post-processor's template). Never true
  /// without a BOS token.
  bool add_bos() const;
  /// True for byte-level BPE, false for SentencePiece.
  bool is_bpe() const;
  /// The stored text of a token (byte-level form for BPE: "Ġthe"; "▁the" for SentencePiece).
  std::string piece(int64_t id) const;
  /// The serialized ModelProto this tokenizer was built from (writable as tokenizer.model).
  /// SentencePiece only: ModelError for a BPE tokenizer.
  const std::string& model_proto() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

/// Where libcoco_spm.so is looked for: $COCO_SPM_LIB, next to the executable, then the
/// build tree. Exposed for diagnostics.
std::string spm_shim_path();

}  // namespace coco::llm

// Tokenizer: SentencePiece (loaded from a .model file or built from a GGUF vocabulary) behind
// a dlopen-ed shim that keeps sentencepiece's protobuf away from libtorch's. Encode, decode
// and batched encoding with truncation and padding. Not a BPE/WordPiece implementation.
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
  bool add_bos = true;
  bool add_eos = false;
  int64_t max_length =
      0;  // truncate each sequence to this many tokens (BOS/EOS included); 0 = none
  bool truncate_left = false;  // keep the last max_length tokens (e.g. the newest items)
  PaddingSide padding = PaddingSide::kRight;
  bool pad_to_max_length = false;  // pad to max_length instead of the longest sequence
};

/// A padded batch of token ids.
struct TokenBatch {
  torch::Tensor input_ids;       // [B, T] int64, padding = pad id (EOS when there is none)
  torch::Tensor attention_mask;  // [B, T] int64, 1 = token, 0 = padding
  std::vector<int64_t> lengths;  // B real lengths
};

class Tokenizer {
 public:
  /// A .model file, a .gguf (its embedded vocabulary), or a checkpoint directory holding
  /// tokenizer.model. ModelError for anything unreadable.
  static Tokenizer from_file(const std::string& path);
  static Tokenizer from_vocab(const SpmVocab& vocab, const std::string& source);
  static Tokenizer from_model_proto(const std::string& bytes, const std::string& source);

  /// Token ids of `text` (SentencePiece adds the dummy prefix space itself).
  std::vector<int64_t> encode(const std::string& text, bool add_bos = false,
                              bool add_eos = false) const;
  std::string decode(const std::vector<int64_t>& ids) const;
  TokenBatch encode_batch(const std::vector<std::string>& texts,
                          const BatchEncodeOptions& options = {}) const;

  int64_t vocab_size() const;
  int64_t bos_id() const;
  int64_t eos_id() const;
  int64_t unk_id() const;
  int64_t pad_id() const;  // -1 when the vocabulary has none
  std::string piece(int64_t id) const;
  /// The serialized ModelProto this tokenizer was built from (writable as tokenizer.model).
  const std::string& model_proto() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

/// Where libcoco_spm.so is looked for: $COCO_SPM_LIB, next to the executable, then the
/// build tree. Exposed for diagnostics.
std::string spm_shim_path();

}  // namespace coco::llm

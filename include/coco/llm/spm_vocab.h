// A SentencePiece vocabulary (pieces, scores, types, special ids) and its serialisation as a
// sentencepiece ModelProto (protobuf wire format written by hand: the proto is small).
// Not the tokenizer itself: see tokenizer.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace coco::llm {

class GgufFile;

/// Piece types, numbered as in sentencepiece_model.proto and GGUF's token_type.
enum class SpmPieceType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct SpmVocab {
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::vector<SpmPieceType> types;
  int32_t model_type = 2;  // TrainerSpec.ModelType: 1 unigram, 2 BPE
  int32_t unk_id = 0;
  int32_t bos_id = 1;
  int32_t eos_id = 2;
  int32_t pad_id = -1;
  bool add_dummy_prefix = true;
  bool byte_fallback = false;

  /// Reads tokenizer.ggml.* from a GGUF file; ModelError naming the key for a missing or
  /// inconsistent field (e.g. a BOS id that is absent or outside the vocabulary).
  static SpmVocab from_gguf(const GgufFile& file);

  /// The serialized sentencepiece ModelProto (the content of a .model file).
  std::string to_model_proto() const;
};

}  // namespace coco::llm

// Catalogue adaptation of the LLM (optional stage before CoCo training): causal language
// modelling on the item texts, through the LoRA adapters (merged afterwards) or on every
// weight, after which the LLM is frozen again. Not CoCo's own LoRA training.
#pragma once

#include <cstdint>
#include <string>

#include "coco/config/config.h"

namespace coco {

class KnowledgeEncoderImpl;

enum class AdaptMode {
  kLora,  // "lora": the LLM's LoRA adapters, merged into its weights afterwards
  kFull,  // "full": every weight of the LLM
};

struct AdaptOptions {
  int64_t epochs = 0;  // 0: no adaptation
  AdaptMode mode = AdaptMode::kLora;
  double lr = 1e-3;
  int64_t batch_size = 64;
  double holdout = 0.05;  // fraction of item texts kept out to measure the LM loss

  /// Reads the "adapt" object.
  static AdaptOptions from_config(ConfigNode& node);
};

/// Next-token cross-entropy of the LLM on the held-out item texts before and after.
struct AdaptResult {
  double heldout_loss_before = 0;
  double heldout_loss_after = 0;
  double seconds = 0;
  int64_t texts = 0;  // training texts
  Json to_json() const;
};

/// Adapts `encoder`'s LLM to its catalogue's item texts; afterwards the LLM is frozen and
/// the encoder's LoRA adapters are fresh (B = 0). Deterministic given `seed`.
AdaptResult adapt_to_catalogue(KnowledgeEncoderImpl& encoder, const AdaptOptions& options,
                               uint64_t seed);

}  // namespace coco

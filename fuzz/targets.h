// The fuzz targets: one per reader of outside input. Each runs one input through the reader as
// CoCo's tools use it; a coco::Error is the expected answer to bad input and is caught there,
// so anything that escapes (another exception) or a crash, sanitizer report or hang is a
// finding. fuzz/main.cpp makes a libFuzzer binary of each; tests/fuzz/ replays the findings
// kept under tests/fixtures/fuzz/<name>/ in the normal test suite.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace coco::fuzz {

struct Target {
  const char* name;
  void (*run)(std::string_view input);
  /// Writes seed inputs made by CoCo's own writers into a directory; null when the seeds come
  /// from files (scripts/fuzz.sh).
  void (*write_seeds)(const std::string& dir);
};

const std::vector<Target>& targets();

/// The target called `name`, or null.
const Target* find_target(std::string_view name);

// The targets, by the reader they exercise.
void gguf(std::string_view input);            // GGUF header, metadata, tensors, dequantisers
void dequant(std::string_view input);         // every ggml dequantiser on raw blocks
void safetensors(std::string_view input);     // a safetensors file, or an index and its shard
void tokenizer_gguf(std::string_view input);  // SentencePiece and BPE from a GGUF vocabulary
void tokenizer_json(std::string_view input);  // Hugging Face tokenizer.json
void lora(std::string_view input);            // LoRA adapter files
void checkpoint(std::string_view input);      // checkpoints, as --resume loads them
void config(std::string_view input);          // config JSON behind a --set override
void dataset(std::string_view input);         // items.tsv and sequences.txt
void recbole(std::string_view input);         // RecBole atomic files
void amazon(std::string_view input);          // raw Amazon dumps (gzip, JSON, Python literals)

void safetensors_seeds(const std::string& dir);
void lora_seeds(const std::string& dir);
void checkpoint_seeds(const std::string& dir);

}  // namespace coco::fuzz

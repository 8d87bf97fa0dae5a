// The ggml tensor types a GGUF file can hold: name, block size, bytes per block and, for the
// types CoCo can load, a dequantiser to float32. Internal to the GGUF reader; not a quantiser.
#pragma once

#include <cstdint>
#include <string>

namespace coco::llm::ggml {

/// Dequantises `blocks` consecutive blocks at `src` into blocks * block floats at `dst`.
using DequantFn = void (*)(const uint8_t* src, float* dst, int64_t blocks);

struct TypeTraits {
  uint32_t id;           // ggml type number
  const char* name;      // "Q4_K"
  int64_t block;         // elements per block (1 for plain types)
  int64_t bytes;         // bytes per block
  DequantFn dequantize;  // null when CoCo has no dequantiser for the type
};

/// The traits of a ggml type number, or null for a number gguf-py does not list.
const TypeTraits* type_traits(uint32_t id);

/// "F32, F16, BF16, Q4_0, ...": the types with a dequantiser, for error messages.
std::string loadable_type_names();

}  // namespace coco::llm::ggml

// Masked scaled-dot-product attention for short sequences with few, narrow heads — the
// shapes of SASRec/BERT4Rec (L ≤ 200, one or two heads) and of small LLMs (head width 8).
// libtorch 1.13 runs these as one tiny GEMM per (user, head), and the call overhead of
// thousands of GEMMs a batch dominates both models' steps. On CPU with float32 and heads
// up to 256 wide this runs a fused kernel instead (scores, masked softmax, dropout and the
// weighted sum in one sweep per query, parallel over users); elsewhere it composes
// libtorch operations.
// Both paths compute the same function, and the tests hold them to each other.
#pragma once

#include <torch/types.h>

namespace coco {

/// out[b,h,i] = Σ_j p[b,h,i,j] · keep[b,h,i,j] · v[b,g,j] with
/// p = softmax_j(scale · q[b,h,i] · k[b,g,j]) over the keys j that allow[b,0,i,j] permits
/// and g = h / (H / G): query heads share key/value heads in groups (GQA when G < H).
/// A query that may see no key gets a zero output. Differentiable in q, k and v.
torch::Tensor masked_attention(const torch::Tensor& q,           // [B, H, L, D]
                               const torch::Tensor& k,           // [B, G, S, D], G divides H
                               const torch::Tensor& v,           // [B, G, S, D]
                               const torch::Tensor& allow,       // [B, 1, L, S] bool
                               double scale,                     // usually 1/√D
                               const torch::Tensor& keep = {});  // [B, H, L, S] dropout
                                                                 // multipliers, or undefined
                                                                 // → [B, H, L, D]

/// The same function from libtorch operations (matmul, masked softmax): the path for
/// CUDA and non-float32 tensors, and the reference the fused kernel is tested against.
torch::Tensor masked_attention_reference(const torch::Tensor& q, const torch::Tensor& k,
                                         const torch::Tensor& v, const torch::Tensor& allow,
                                         double scale, const torch::Tensor& keep = {});

}  // namespace coco

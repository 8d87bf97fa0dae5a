// The auxiliary losses of CoCo (METHOD.md "Losses"): in-batch InfoNCE for alignment and
// for user→target-item contrast, and the orthogonality penalty that keeps the prompt
// codebook diverse. Not L_rec (the backbones own it) and not the weighting λ.
#pragma once

#include <torch/types.h>

namespace coco {

/// In-batch InfoNCE from a to b: logits_ij = cos(a_i, b_j) / τ, positive j = i, mean
/// cross-entropy over rows. One direction only (a is the anchor).
torch::Tensor info_nce(const torch::Tensor& a,  // [B, d]
                       const torch::Tensor& b,  // [B, d]
                       double tau);             // τ → []

/// ‖N Nᵀ − I_K‖²_F / K², N the L2-normalised flattened prompts: 0 for orthogonal codes,
/// up to (K² − K)/K² when all codes point the same way.
torch::Tensor orthogonality_loss(const torch::Tensor& prompts);  // [K, P, D] → []

/// InfoNCE of user representations against their target items' embeddings, the batch's
/// other targets as negatives. With `target_ids`, other rows with the same target item
/// are not counted as negatives (they would be false negatives).
torch::Tensor nce_item_loss(const torch::Tensor& h_u,               // [B, d]
                            const torch::Tensor& target_emb,        // [B, d]
                            double tau,                             // τ
                            const torch::Tensor& target_ids = {});  // [B] int64, optional → []

}  // namespace coco

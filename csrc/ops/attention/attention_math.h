// SPDX-License-Identifier: Apache-2.0
#pragma once
// The merge of two partial attention results, in float32, shared by the CPU and CUDA
// kernels. Torch-free.

#include <math.h>

#include <cstdint>
#include <limits>

#include "stablekernels/rows.h"

namespace stablekernels::attention {

// [num_tokens, num_heads, head_size] with the last dim contiguous: strides in elements.
struct TokenHeadLayout {
  int64_t token_stride = 0;
  int64_t head_stride = 0;
};

// [num_heads, num_tokens]: strides in elements.
struct LseLayout {
  int64_t head_stride = 0;
  int64_t token_stride = 0;
};

// A validated merge_attn_states call.
struct MergeShape {
  int64_t num_tokens = 0;
  int64_t num_heads = 0;
  int64_t head_size = 0;
  TokenHeadLayout output;
  TokenHeadLayout prefix;
  TokenHeadLayout suffix;
  LseLayout output_lse;  // unused without output_lse
  LseLayout prefix_lse;
  LseLayout suffix_lse;
};

// The weight of each partial result and the merged log-sum-exp of one (token, head).
struct MergeWeights {
  float prefix;
  float suffix;
  float lse;
};

// From the log-sum-exps p (prefix) and s (suffix):
//  - an infinite lse (-inf, or +inf as some attention kernels write for a row with no keys)
//    marks an empty side: weight 0, and the other side's lse is the result;
//  - both sides empty: weights 0 and lse -inf, so the output is 0;
//  - a NaN lse on either side: NaN weights and lse;
//  - else softmax weights exp(p - m) / z and exp(s - m) / z, with m = max(p, s),
//    z = exp(p - m) + exp(s - m), and lse m + log(z).
//
// Written without early returns: both lse values feed the first instructions, so a GPU
// thread needs both loads at once (with a return on a NaN prefix lse first, the compiler
// issued the suffix lse load only after the prefix one had arrived). An empty side enters
// the softmax as -inf, which gives it exp(-inf) = 0 and the other side exactly weight 1
// and lse exactly its own (exp(0) = 1, log(1) = 0); the two remaining cases are selected
// at the end.
STABLEKERNELS_HOST_DEVICE MergeWeights merge_weights(float p, float s) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const bool p_empty = isinf(p);
  const bool s_empty = isinf(s);
  const bool both_empty = p_empty && s_empty;
  const float pm = p_empty ? -kInf : p;
  const float sm = s_empty ? -kInf : s;
  const float m = both_empty ? 0.0f : fmaxf(pm, sm);  // finite unless NaN
  const float ep = expf(pm - m);
  const float es = expf(sm - m);
  const float z = ep + es;  // in [1, 2] unless both sides are empty
  // One division for both weights (z in [1, 2]: no overflow or denormal in 1 / z); each
  // weight is within an ulp of ep / z and es / z.
  const float rz = 1.0f / z;
  MergeWeights w{ep * rz, es * rz, m + logf(z)};
  if (both_empty) {
    w = {0.0f, 0.0f, -kInf};
  }
  if (isnan(p) || isnan(s)) {
    constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
    w = {kNaN, kNaN, kNaN};
  }
  return w;
}

// One merged element. A side of weight 0 is left out rather than multiplied by 0, so
// whatever an empty side holds (even NaN or uninitialized memory) cannot reach the result.
STABLEKERNELS_HOST_DEVICE float merge_value(const MergeWeights& w, float p, float s) {
  return (w.prefix != 0.0f ? w.prefix * p : 0.0f) + (w.suffix != 0.0f ? w.suffix * s : 0.0f);
}

}  // namespace stablekernels::attention

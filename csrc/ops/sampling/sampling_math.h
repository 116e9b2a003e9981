// SPDX-License-Identifier: Apache-2.0
#pragma once
// sampling_math.h: the per-element rules shared by the CPU and CUDA kernels of the sampling
// family, and the problem shapes the checks (sampling.h) hand to them and to the CUDA
// launchers (sampling_launch.h). Torch-free.

#include <cstdint>
#include <cstring>

#include "stablekernels/rows.h"

namespace stablekernels::sampling {

// The largest k of top_k_per_row.
constexpr int64_t kMaxTopK = 2048;

// A [num_seqs, vocab] walk: element strides between the rows of each operand.
struct PenaltyProblem {
  int64_t rows = 0;
  int64_t vocab = 0;
  int64_t logits_stride = 0;
  int64_t prompt_stride = 0;
  int64_t output_stride = 0;
  int64_t penalty_stride = 0;
  bool float_penalties = true;  // float32 penalties; else of the dtype of logits
};

// A [num_rows, cols] walk of top_k_per_row: element strides between the rows of each operand.
struct TopKProblem {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t logits_stride = 0;
  int64_t starts_stride = 0;
  int64_t ends_stride = 0;
  int64_t indices_stride = 0;
  int k = 0;
};

// A logit under a repetition penalty p: positive values are divided by p, the others
// multiplied by it (0 stays 0, NaN stays NaN).
STABLEKERNELS_HOST_DEVICE float penalize(float x, float p) {
  return x > 0.0f ? x / p : x * p;
}

// A uint32 whose unsigned order is the order of top_k_per_row over floats: -inf < ... < -0 ==
// +0 < ... < +inf < NaN. Every NaN maps to the largest key, and -0 to the key of +0, so equal
// values (and all NaNs) are ties.
STABLEKERNELS_HOST_DEVICE uint32_t order_key(float x) {
#if defined(__CUDA_ARCH__)
  const uint32_t u = __float_as_uint(x);
#else
  uint32_t u = 0;
  std::memcpy(&u, &x, sizeof(u));
#endif
  // negative: all bits flipped; non-negative: the sign bit set. Selects, not branches: the
  // sign of a logit is a coin toss, and a branch on it cost the CPU kernel about 4 ns a key.
  const uint32_t flip = static_cast<uint32_t>(static_cast<int32_t>(u) >> 31) | 0x80000000u;
  const uint32_t key = x == 0.0f ? 0x80000000u : u ^ flip;
  return x != x ? 0xFFFFFFFFu : key;
}

// The columns [start, end) of a row of `cols` columns that top_k_per_row looks at: both
// bounds clamped to [0, cols], and an end before the start read as the start (an empty row).
struct ColumnRange {
  int64_t start;
  int64_t end;
};

STABLEKERNELS_HOST_DEVICE ColumnRange clamp_range(int64_t start, int64_t end, int64_t cols) {
  start = start < 0 ? 0 : (start > cols ? cols : start);
  end = end < start ? start : (end > cols ? cols : end);
  return {start, end};
}

}  // namespace stablekernels::sampling

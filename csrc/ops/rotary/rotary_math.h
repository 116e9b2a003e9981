// SPDX-License-Identifier: Apache-2.0
#pragma once
// The rotary embedding problem and its rotation, in float32, shared by the CPU and
// CUDA kernels. Torch-free.

#include <cstdint>

#include "stablekernels/rows.h"

namespace stablekernels::rotary {

// Where the heads of `query` or `key` lie, in elements. num_heads == 0 for no key.
struct HeadLayout {
  int64_t token_stride = 0;
  int64_t head_stride = 0;
  int64_t num_heads = 0;
};

// A validated rotary_embedding call. The cos/sin row of a token is
// cache[positions[token * positions_stride] * cache_stride + (0 .. rot_dim)].
struct RotaryShape {
  int64_t num_tokens = 0;
  int64_t rot_dim = 0;  // even, <= head_size: cos half then sin half
  int64_t max_position = 0;
  int64_t cache_stride = 0;
  int64_t positions_stride = 0;
  HeadLayout query;
  HeadLayout key;
};

// Rotates the pair (x, y) by the angle whose cosine is c and sine is s:
// x' = x c - y s, y' = y c + x s.
STABLEKERNELS_HOST_DEVICE void rotate_pair(float& x, float& y, float c, float s) {
  const float x0 = x;
  x = x0 * c - y * s;
  y = y * c + x0 * s;
}

}  // namespace stablekernels::rotary

// SPDX-License-Identifier: Apache-2.0
// CPU implementation of the rotary family.

#include <torch/csrc/stable/library.h>

#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/cpu_isa.h"
#include "core/cpu_utils.h"
#include "core/dispatch.h"
#include "ops/rotary/rotary.h"
#include "ops/rotary/rotary_math.h"

namespace stablekernels::rotary {
namespace {

// Throws unless every position indexes a row of the cache. Runs before anything is written,
// so a failed call leaves query and key unchanged.
void check_positions_in_range(const char* op, const int64_t* positions, const RotaryShape& s) {
  for (int64_t t = 0; t < s.num_tokens; ++t) {
    const int64_t p = positions[t * s.positions_stride];
    STABLEKERNELS_CHECK(p >= 0 && p < s.max_position, op, "'positions' must be in [0, ",
                        s.max_position, ") (the rows of 'cos_sin_cache'), got ", p, " at index ",
                        t);
  }
}

// The rotation in float32, over the first 2 * half elements of one head: the halves (NeoX)
// or adjacent pairs.
template <bool NEOX>
__attribute__((always_inline)) inline void rotate_floats(float* x, const float* cos,
                                                         const float* sin, int64_t half) {
  for (int64_t i = 0; i < half; ++i) {
    float& a = NEOX ? x[i] : x[2 * i];
    float& b = NEOX ? x[half + i] : x[2 * i + 1];
    rotate_pair(a, b, cos[i], sin[i]);
  }
}

// One head: float32 heads in place; 16-bit heads widened into buf, rotated and rounded back
// (one loop each, so each vectorizes: converted element by element inside the rotation,
// float16 took 663 us on 512 tokens x 6 heads x 128 against eager's 276).
template <bool NEOX, Isa I, typename T>
__attribute__((always_inline)) inline void rotate_head(IsaTag<I> isa, T* x, float* buf,
                                                       const float* cos, const float* sin,
                                                       int64_t half) {
  if constexpr (std::is_same_v<T, float>) {
    rotate_floats<NEOX>(x, cos, sin, half);
  } else {
    widen(isa, buf, x, 2 * half);
    rotate_floats<NEOX>(buf, cos, sin, half);
    narrow(isa, x, buf, 2 * half);
  }
}

// tokens [begin, end): the cache row converted to float once per token, then every head.
// Compiled for the baseline, AVX2 and AVX-512 (core/cpu_isa.h).
template <Isa I, typename Neox, typename T, typename C>
__attribute__((always_inline)) inline void rotary_tokens_body(IsaTag<I> isa, Neox,
                                                              const int64_t* positions, T* query,
                                                              T* key, const C* cache,
                                                              const RotaryShape& s, int64_t begin,
                                                              int64_t end) {
  const int64_t half = s.rot_dim / 2;
  // the token's cos and sin, then the head being rotated (16-bit heads)
  std::vector<float> scratch(static_cast<size_t>(2 * s.rot_dim));
  float* cos_sin = scratch.data();
  float* buf = cos_sin + s.rot_dim;
  const float* cos = cos_sin;
  const float* sin = cos_sin + half;
  for (int64_t t = begin; t < end; ++t) {
    widen(isa, cos_sin, cache + positions[t * s.positions_stride] * s.cache_stride, s.rot_dim);
    for (const auto& [x, l] : {std::pair<T*, const HeadLayout*>{query, &s.query},
                               std::pair<T*, const HeadLayout*>{key, &s.key}}) {
      for (int64_t h = 0; h < l->num_heads; ++h) {
        rotate_head<Neox::value>(isa, x + t * l->token_stride + h * l->head_stride, buf, cos, sin,
                                 half);
      }
    }
  }
}

STABLEKERNELS_ISA_BUILDS(rotary_tokens, rotary_tokens_body)

void rotary_embedding_cpu(const Tensor& positions, const Tensor& query,
                          const std::optional<Tensor>& key, int64_t head_size,
                          const Tensor& cos_sin_cache, bool is_neox) {
  constexpr const char* op = "rotary_embedding";
  const RotaryShape s = check_rotary_embedding(positions, query, key, head_size, cos_sin_cache);
  if (s.num_tokens == 0) {
    return;
  }
  const auto* pos = static_cast<const int64_t*>(positions.data_ptr());
  check_positions_in_range(op, pos, s);
  const int64_t heads = s.query.num_heads + s.key.num_heads;
  const Isa isa = cpu_isa(op);
  dispatch_float_types(query.scalar_type(), op, "query", [&](auto tag) {
    using T = decltype(tag);
    T* q = static_cast<T*>(query.data_ptr());
    T* k = key.has_value() ? static_cast<T*>(key->data_ptr()) : nullptr;
    dispatch_cache_type<T>(cos_sin_cache.scalar_type(), [&](auto cache_tag) {
      using C = decltype(cache_tag);
      const C* cache = static_cast<const C*>(cos_sin_cache.data_ptr());
      dispatch_neox(is_neox, [&](auto neox) {
        parallel_rows(s.num_tokens, heads * s.rot_dim, [&](int64_t b, int64_t e) {
          STABLEKERNELS_BY_ISA(isa, rotary_tokens, neox, pos, q, k, cache, s, b, e);
        });
      });
    });
  });
}

}  // namespace
}  // namespace stablekernels::rotary

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CPU, m) {
  m.impl("rotary_embedding", TORCH_BOX(&stablekernels::rotary::rotary_embedding_cpu));
}

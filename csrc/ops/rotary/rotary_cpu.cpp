// SPDX-License-Identifier: Apache-2.0
// CPU implementation of the rotary family.

#include <torch/csrc/stable/library.h>

#include <optional>
#include <vector>

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

// Rotates the first 2 * half elements of one head: the halves (NeoX) or adjacent pairs.
template <bool NEOX, typename T>
void rotate_head(T* x, const float* cos, const float* sin, int64_t half) {
  for (int64_t i = 0; i < half; ++i) {
    T* a = NEOX ? x + i : x + 2 * i;
    T* b = NEOX ? x + half + i : x + 2 * i + 1;
    float fa = static_cast<float>(*a);
    float fb = static_cast<float>(*b);
    rotate_pair(fa, fb, cos[i], sin[i]);
    *a = static_cast<T>(fa);
    *b = static_cast<T>(fb);
  }
}

template <bool NEOX, typename T>
void rotate_heads(T* x, const HeadLayout& l, int64_t token, const float* cos, const float* sin,
                  int64_t half) {
  for (int64_t h = 0; h < l.num_heads; ++h) {
    rotate_head<NEOX>(x + token * l.token_stride + h * l.head_stride, cos, sin, half);
  }
}

// tokens [begin, end): the cache row converted to float once per token, then every head.
template <bool NEOX, typename T, typename C>
void rotary_tokens(const int64_t* positions, T* query, T* key, const C* cache, const RotaryShape& s,
                   int64_t begin, int64_t end) {
  const int64_t half = s.rot_dim / 2;
  std::vector<float> cos_sin(static_cast<size_t>(s.rot_dim));
  for (int64_t t = begin; t < end; ++t) {
    const C* row = cache + positions[t * s.positions_stride] * s.cache_stride;
    for (int64_t i = 0; i < s.rot_dim; ++i) {
      cos_sin[i] = static_cast<float>(row[i]);
    }
    rotate_heads<NEOX>(query, s.query, t, cos_sin.data(), cos_sin.data() + half, half);
    rotate_heads<NEOX>(key, s.key, t, cos_sin.data(), cos_sin.data() + half, half);
  }
}

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
  dispatch_float_types(query.scalar_type(), op, "query", [&](auto tag) {
    using T = decltype(tag);
    T* q = static_cast<T*>(query.data_ptr());
    T* k = key.has_value() ? static_cast<T*>(key->data_ptr()) : nullptr;
    dispatch_cache_type<T>(cos_sin_cache.scalar_type(), [&](auto cache_tag) {
      using C = decltype(cache_tag);
      const C* cache = static_cast<const C*>(cos_sin_cache.data_ptr());
      dispatch_neox(is_neox, [&](auto neox) {
        parallel_rows(s.num_tokens, heads * s.rot_dim, [&](int64_t b, int64_t e) {
          rotary_tokens<decltype(neox)::value>(pos, q, k, cache, s, b, e);
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

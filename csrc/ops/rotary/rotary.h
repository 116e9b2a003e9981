// SPDX-License-Identifier: Apache-2.0
#pragma once
// Argument checking shared by the CPU and CUDA implementations of the rotary family,
// and the compile-time switches both use.

#include <optional>
#include <type_traits>

#include "core/checks.h"
#include "ops/rotary/rotary_math.h"

namespace stablekernels::rotary {

// query or key: [num_tokens, num_heads * head_size] or [num_tokens, num_heads, head_size],
// last dim contiguous, tokens and heads with any strides.
inline HeadLayout check_heads(const char* op, Arg x, int64_t num_tokens, int64_t head_size) {
  STABLEKERNELS_CHECK(x.t.dim() == 2 || x.t.dim() == 3, op, "'", x.name,
                      "' must have shape [num_tokens, num_heads * head_size] or "
                      "[num_tokens, num_heads, head_size], got shape ",
                      shape_str(x.t));
  check_last_dim_contiguous(op, x);
  STABLEKERNELS_CHECK(x.t.size(0) == num_tokens, op, "'", x.name, "' must have ", num_tokens,
                      " tokens in dim 0 (the length of 'positions'), got shape ", shape_str(x.t));
  const int64_t last = x.t.size(x.t.dim() - 1);
  HeadLayout l;
  l.token_stride = stride_or_zero(x.t, 0);
  if (x.t.dim() == 2) {
    STABLEKERNELS_CHECK(last % head_size == 0, op, "the last dim of '", x.name, "' (", last,
                        ") must be a multiple of 'head_size' (", head_size, "), got shape ",
                        shape_str(x.t));
    l.num_heads = last / head_size;
    l.head_stride = head_size;
  } else {
    STABLEKERNELS_CHECK(last == head_size, op, "the last dim of '", x.name,
                        "' must be 'head_size' (", head_size, "), got shape ", shape_str(x.t));
    l.num_heads = x.t.size(1);
    l.head_stride = stride_or_zero(x.t, 1);
  }
  return l;
}

// positions int64 [num_tokens]; query/key as in check_heads, float, same dtype and device;
// cos_sin_cache [max_position, rot_dim], float32 or the dtype of query, rot_dim even,
// 0 < rot_dim <= head_size. The values of `positions` are not looked at here.
inline RotaryShape check_rotary_embedding(const Tensor& positions, const Tensor& query,
                                          const std::optional<Tensor>& key, int64_t head_size,
                                          const Tensor& cos_sin_cache) {
  constexpr const char* op = "rotary_embedding";
  const Arg q{query, "query"};
  const Arg pos{positions, "positions"};
  const Arg cache{cos_sin_cache, "cos_sin_cache"};
  check_float_dtype(op, q);
  check_same_device(op, pos, q);
  check_dtype(op, pos, ScalarType::Long);
  check_dim(op, pos, 1);
  STABLEKERNELS_CHECK(head_size > 0, op, "'head_size' must be > 0, got ", head_size);
  RotaryShape s;
  s.num_tokens = positions.size(0);
  s.positions_stride = stride_or_zero(positions, 0);
  s.query = check_heads(op, q, s.num_tokens, head_size);
  if (key.has_value()) {
    const Arg k{*key, "key"};
    check_same_device(op, k, q);
    check_same_dtype(op, k, q);
    s.key = check_heads(op, k, s.num_tokens, head_size);
  }
  check_same_device(op, cache, q);
  const ScalarType qt = query.scalar_type();
  const ScalarType ct = cos_sin_cache.scalar_type();
  STABLEKERNELS_CHECK(ct == ScalarType::Float || ct == qt, op,
                      "'cos_sin_cache' must have dtype float32",
                      (qt == ScalarType::Float ? "" : " or " + dtype_name(qt)),
                      " (the dtype of 'query'), got ", dtype_name(ct));
  check_dim(op, cache, 2);
  check_last_dim_contiguous(op, cache);
  s.rot_dim = cos_sin_cache.size(1);
  STABLEKERNELS_CHECK(s.rot_dim > 0 && s.rot_dim % 2 == 0, op,
                      "'cos_sin_cache' must have an even, nonzero number of columns (rot_dim: "
                      "the cos half, then the sin half), got shape ",
                      shape_str(cos_sin_cache));
  STABLEKERNELS_CHECK(s.rot_dim <= head_size, op, "'cos_sin_cache' has ", s.rot_dim,
                      " columns (rot_dim), more than 'head_size' (", head_size, ")");
  s.max_position = cos_sin_cache.size(0);
  s.cache_stride = stride_or_zero(cos_sin_cache, 0);
  return s;
}

// Calls f(c) with a value of the cos_sin_cache element type: float, or T (that of query).
template <typename T, typename F>
void dispatch_cache_type(ScalarType cache_dtype, F&& f) {
  if (cache_dtype == ScalarType::Float) {
    f(float{});
  } else {
    f(T{});
  }
}

// Calls f(std::integral_constant<bool, is_neox>{}).
template <typename F>
void dispatch_neox(bool is_neox, F&& f) {
  if (is_neox) {
    f(std::true_type{});
  } else {
    f(std::false_type{});
  }
}

}  // namespace stablekernels::rotary

// SPDX-License-Identifier: Apache-2.0
#pragma once
// Argument checking shared by the CPU and CUDA implementations of the cache family.

#include <string>
#include <string_view>
#include <vector>

#include "core/checks.h"
#include "ops/cache/cache_math.h"

namespace stablekernels::cache {

inline KvCacheDtype parse_kv_cache_dtype(const char* op, std::string_view s) {
  if (s == "auto") {
    return KvCacheDtype::kAuto;
  }
  if (s == "fp8" || s == "fp8_e4m3") {
    return KvCacheDtype::kFp8E4m3;
  }
  fail(op, "'kv_cache_dtype' must be \"auto\", \"fp8\" or \"fp8_e4m3\", got \"", std::string(s),
       "\"");
}

inline void check_scale(const char* op, Arg scale, Arg ref) {
  check_dtype(op, scale, ScalarType::Float);
  STABLEKERNELS_CHECK(scale.t.numel() == 1, op, "'", scale.name,
                      "' must have exactly one element, got shape ", shape_str(scale.t));
  check_same_device(op, scale, ref);
}

// key [num_tokens_padded, num_heads, head_size] float, tokens and heads with any strides, last
// dim contiguous; value of its shape, dtype and device. key_cache and value_cache
// [num_blocks, block_size, num_heads, head_size] of the same shape, on key's device, any strides
// except in the last dim; dtype: key's ("auto") or float8_e4m3fn / uint8 (fp8). slot_mapping
// int64 [num_tokens] with num_tokens <= num_tokens_padded (the tokens beyond it are padding and
// not written). k_scale and v_scale float32 with one element, on key's device. Slot values are
// checked by the implementations.
inline ReshapeAndCacheShape check_reshape_and_cache_flash(
    const char* op, const Tensor& key, const Tensor& value, const Tensor& key_cache,
    const Tensor& value_cache, const Tensor& slot_mapping, std::string_view kv_cache_dtype,
    const Tensor& k_scale, const Tensor& v_scale) {
  ReshapeAndCacheShape s;
  s.kv_cache_dtype = parse_kv_cache_dtype(op, kv_cache_dtype);
  const Arg k{key, "key"};
  const Arg v{value, "value"};
  const Arg kc{key_cache, "key_cache"};
  const Arg vc{value_cache, "value_cache"};
  const Arg sm{slot_mapping, "slot_mapping"};
  check_float_dtype(op, k);
  check_dim(op, k, 3);
  check_last_dim_contiguous(op, k);
  check_same_device(op, v, k);
  check_same_dtype(op, v, k);
  check_same_shape(op, v, k);
  check_last_dim_contiguous(op, v);
  s.num_heads = key.size(1);
  s.head_size = key.size(2);

  check_same_device(op, kc, k);
  check_dim(op, kc, 4);
  STABLEKERNELS_CHECK(key_cache.size(2) == s.num_heads && key_cache.size(3) == s.head_size, op,
                      "'key_cache' must have shape [num_blocks, block_size, ", s.num_heads, ", ",
                      s.head_size, "] (num_heads and head_size of 'key'), got ",
                      shape_str(key_cache));
  check_last_dim_contiguous(op, kc);
  check_same_device(op, vc, k);
  check_same_shape(op, vc, kc);
  check_last_dim_contiguous(op, vc);
  if (s.kv_cache_dtype == KvCacheDtype::kAuto) {
    STABLEKERNELS_CHECK(key_cache.scalar_type() == key.scalar_type(), op,
                        "'key_cache' must have dtype ", dtype_name(key.scalar_type()),
                        " (the dtype of 'key', as kv_cache_dtype is \"auto\"), got ",
                        dtype_name(key_cache.scalar_type()));
  } else {
    const ScalarType t = key_cache.scalar_type();
    STABLEKERNELS_CHECK(t == ScalarType::Float8_e4m3fn || t == ScalarType::Byte, op,
                        "'key_cache' must have dtype float8_e4m3fn or uint8 (kv_cache_dtype \"",
                        std::string(kv_cache_dtype), "\"), got ", dtype_name(t));
  }
  check_same_dtype(op, vc, kc);

  check_dtype(op, sm, ScalarType::Long);
  check_dim(op, sm, 1);
  check_same_device(op, sm, k);
  s.num_tokens = slot_mapping.size(0);
  STABLEKERNELS_CHECK(s.num_tokens <= key.size(0), op, "'slot_mapping' has ", s.num_tokens,
                      " entries, more than the ", key.size(0), " tokens of 'key'");
  check_scale(op, {k_scale, "k_scale"}, k);
  check_scale(op, {v_scale, "v_scale"}, k);

  STABLEKERNELS_CHECK(key.size(1) * key.size(2) < (int64_t{1} << 31), op,
                      "'key' must have fewer than 2^31 elements per token, got ", key.size(1),
                      " heads of ", key.size(2));
  s.block_size = key_cache.size(1);
  s.num_slots = key_cache.size(0) * key_cache.size(1);
  s.slots_31 = s.num_slots > 0 && s.num_slots < (int64_t{1} << 31);
  if (s.slots_31) {
    s.block_div = FastDivU31(static_cast<uint32_t>(s.block_size));
  }
  s.slot_mapping_stride = stride_or_zero(slot_mapping, 0);
  s.key = {stride_or_zero(key, 0), stride_or_zero(key, 1)};
  s.value = {stride_or_zero(value, 0), stride_or_zero(value, 1)};
  s.key_cache = {stride_or_zero(key_cache, 0), stride_or_zero(key_cache, 1),
                 stride_or_zero(key_cache, 2)};
  s.value_cache = {stride_or_zero(value_cache, 0), stride_or_zero(value_cache, 1),
                   stride_or_zero(value_cache, 2)};
  return s;
}

[[noreturn]] inline void fail_slot(const char* op, int64_t token, int64_t slot, int64_t num_slots) {
  fail(op, "'slot_mapping' holds slot ", slot, " for token ", token, ", beyond the cache of ",
       num_slots, " slots (num_blocks * block_size); slots must be < ", num_slots,
       " (or negative to skip the token)");
}

// block_mapping int64 [n, 2] (any strides).
inline void check_block_mapping(const char* op, const Tensor& block_mapping) {
  const Arg m{block_mapping, "block_mapping"};
  check_dtype(op, m, ScalarType::Long);
  STABLEKERNELS_CHECK(block_mapping.dim() == 2 && block_mapping.size(1) == 2, op,
                      "'block_mapping' must have shape [n, 2] (source block, destination block), "
                      "got ",
                      shape_str(block_mapping));
}

[[noreturn]] inline void fail_block(const char* op, int64_t row, int64_t col, int64_t block,
                                    const char* cache, int64_t num_blocks) {
  fail(op, "'block_mapping' row ", row, " names ", (col == 0 ? "source" : "destination"), " block ",
       block, ", out of range for '", cache, "' of ", num_blocks, " blocks (valid: 0 to ",
       num_blocks - 1, ")");
}

// Checks every entry of a CPU block_mapping against the block counts of the source and
// destination caches. Returns the entries, row-major [n, 2].
inline std::vector<int64_t> read_block_mapping(const char* op, const Tensor& block_mapping,
                                               const char* src_name, int64_t src_blocks,
                                               const char* dst_name, int64_t dst_blocks) {
  const int64_t n = block_mapping.size(0);
  const auto* m = static_cast<const int64_t*>(block_mapping.data_ptr());
  const int64_t s0 = stride_or_zero(block_mapping, 0);
  const int64_t s1 = stride_or_zero(block_mapping, 1);
  std::vector<int64_t> out(static_cast<size_t>(2 * n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t src = m[i * s0];
    const int64_t dst = m[i * s0 + s1];
    if (src < 0 || src >= src_blocks) {
      fail_block(op, i, 0, src, src_name, src_blocks);
    }
    if (dst < 0 || dst >= dst_blocks) {
      fail_block(op, i, 1, dst, dst_name, dst_blocks);
    }
    out[static_cast<size_t>(2 * i)] = src;
    out[static_cast<size_t>(2 * i + 1)] = dst;
  }
  return out;
}

// Bytes of one block (dim 0 entry) of a contiguous cache.
inline int64_t block_bytes(const Tensor& t) {
  int64_t n = static_cast<int64_t>(t.element_size());
  for (int64_t d = 1; d < t.dim(); ++d) {
    n *= t.size(d);
  }
  return n;
}

inline void check_block_tensor(const char* op, Arg a) {
  check_min_dim(op, a, 1);
  STABLEKERNELS_CHECK(a.t.is_contiguous(), op, "'", a.name,
                      "' must be contiguous (blocks are copied as whole runs of bytes)");
}

// src and dst: contiguous, blocks along dim 0, same dtype and the same bytes per block.
inline void check_swap_blocks(const char* op, const Tensor& src, const Tensor& dst,
                              const Tensor& block_mapping) {
  const Arg s{src, "src"};
  const Arg d{dst, "dst"};
  check_block_tensor(op, s);
  check_block_tensor(op, d);
  check_same_dtype(op, d, s);
  STABLEKERNELS_CHECK(block_bytes(src) == block_bytes(dst), op,
                      "'dst' must have blocks of the size of those of 'src' (", block_bytes(src),
                      " bytes: its shape beyond dim 0), got ", block_bytes(dst), " bytes (shape ",
                      shape_str(dst), " vs ", shape_str(src), ")");
  check_block_mapping(op, block_mapping);
  STABLEKERNELS_CHECK(block_mapping.is_cpu(), op, "'block_mapping' must be on the cpu, got ",
                      device_str(block_mapping));
}

// Every key cache like key_caches[0], every value cache like value_caches[0] (shape, dtype,
// device), both on one device, contiguous; lists of equal length. Returns the layer count.
inline int64_t check_copy_blocks(const char* op, const std::vector<Tensor>& key_caches,
                                 const std::vector<Tensor>& value_caches,
                                 const Tensor& block_mapping) {
  STABLEKERNELS_CHECK(key_caches.size() == value_caches.size(), op,
                      "'key_caches' and 'value_caches' must have the same length, got ",
                      key_caches.size(), " and ", value_caches.size());
  check_block_mapping(op, block_mapping);
  if (key_caches.empty()) {
    return 0;
  }
  const Arg k0{key_caches[0], "key_caches[0]"};
  const Arg v0{value_caches[0], "value_caches[0]"};
  check_block_tensor(op, k0);
  check_block_tensor(op, v0);
  check_same_device(op, v0, k0);
  STABLEKERNELS_CHECK(key_caches[0].size(0) == value_caches[0].size(0), op,
                      "'value_caches[0]' must have ", key_caches[0].size(0),
                      " blocks (dim 0 of 'key_caches[0]'), got shape ", shape_str(value_caches[0]));
  for (size_t l = 1; l < key_caches.size(); ++l) {
    const std::string kn = "key_caches[" + std::to_string(l) + "]";
    const std::string vn = "value_caches[" + std::to_string(l) + "]";
    for (const Arg& a : {Arg{key_caches[l], kn.c_str()}, Arg{value_caches[l], vn.c_str()}}) {
      const Arg& ref = &a.t == &key_caches[l] ? k0 : v0;
      check_same_device(op, a, ref);
      check_same_dtype(op, a, ref);
      check_same_shape(op, a, ref);
      check_block_tensor(op, a);
    }
  }
  const bool mapping_ok = block_mapping.is_cpu() ||
                          (block_mapping.is_cuda() && key_caches[0].is_cuda() &&
                           block_mapping.get_device_index() == key_caches[0].get_device_index());
  STABLEKERNELS_CHECK(
      mapping_ok, op, "'block_mapping' must be on the cpu",
      (key_caches[0].is_cpu() ? std::string() : " or on " + device_str(key_caches[0])),
      " (the device of the caches), got ", device_str(block_mapping));
  return static_cast<int64_t>(key_caches.size());
}

}  // namespace stablekernels::cache

// SPDX-License-Identifier: Apache-2.0
// CPU implementation of the cache family.

#include <torch/csrc/stable/library.h>
#include <torch/headeronly/util/Float8_e4m3fn.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/cpu_utils.h"
#include "core/dispatch.h"
#include "ops/cache/cache.h"
#include "ops/cache/cache_math.h"

namespace stablekernels::cache {
namespace {

// Copies (auto) or converts to fp8 (kFp8) the heads of tokens [begin, end) of `src` into `dst`.
template <typename T, bool kFp8>
void cache_tokens(const ReshapeAndCacheShape& s, const TokenLayout& in_layout,
                  const CacheStrides& cache, const int64_t* slots, const T* src, void* dst,
                  float scale, int64_t begin, int64_t end) {
  for (int64_t t = begin; t < end; ++t) {
    const int64_t slot = slots[t * s.slot_mapping_stride];
    if (slot < 0) {
      continue;
    }
    const SlotPosition pos = slot_position(s, slot);
    for (int64_t h = 0; h < s.num_heads; ++h) {
      const T* x = src + t * in_layout.token_stride + h * in_layout.head_stride;
      const int64_t off = cache_offset(cache, pos, h);
      if constexpr (kFp8) {
        uint8_t* y = static_cast<uint8_t*>(dst) + off;
        for (int64_t d = 0; d < s.head_size; ++d) {
          y[d] = torch::headeronly::Float8_e4m3fn(fp8_prescale(static_cast<float>(x[d]), scale)).x;
        }
      } else {
        std::memcpy(static_cast<T*>(dst) + off, x, static_cast<size_t>(s.head_size) * sizeof(T));
      }
    }
  }
}

void reshape_and_cache_flash_cpu(const Tensor& key, const Tensor& value, const Tensor& key_cache,
                                 const Tensor& value_cache, const Tensor& slot_mapping,
                                 const std::string& kv_cache_dtype, const Tensor& k_scale,
                                 const Tensor& v_scale) {
  constexpr const char* op = "reshape_and_cache_flash";
  const ReshapeAndCacheShape s = check_reshape_and_cache_flash(
      op, key, value, key_cache, value_cache, slot_mapping, kv_cache_dtype, k_scale, v_scale);
  if (s.num_tokens == 0 || s.num_heads * s.head_size == 0) {
    return;
  }
  const auto* slots = static_cast<const int64_t*>(slot_mapping.data_ptr());
  // Every slot is checked before anything is written: a bad call leaves the caches as they were.
  for (int64_t t = 0; t < s.num_tokens; ++t) {
    const int64_t slot = slots[t * s.slot_mapping_stride];
    if (slot >= s.num_slots) {
      fail_slot(op, t, slot, s.num_slots);
    }
  }
  const float ks = *static_cast<const float*>(k_scale.data_ptr());
  const float vs = *static_cast<const float*>(v_scale.data_ptr());
  dispatch_float_types(key.scalar_type(), op, "key", [&](auto tag) {
    using T = decltype(tag);
    const T* k = static_cast<const T*>(key.data_ptr());
    const T* v = static_cast<const T*>(value.data_ptr());
    void* kc = key_cache.data_ptr();
    void* vc = value_cache.data_ptr();
    parallel_rows(s.num_tokens, 2 * s.num_heads * s.head_size, [&](int64_t b, int64_t e) {
      if (s.kv_cache_dtype == KvCacheDtype::kFp8E4m3) {
        cache_tokens<T, true>(s, s.key, s.key_cache, slots, k, kc, ks, b, e);
        cache_tokens<T, true>(s, s.value, s.value_cache, slots, v, vc, vs, b, e);
      } else {
        cache_tokens<T, false>(s, s.key, s.key_cache, slots, k, kc, ks, b, e);
        cache_tokens<T, false>(s, s.value, s.value_cache, slots, v, vc, vs, b, e);
      }
    });
  });
}

void swap_blocks_cpu(const Tensor& src, const Tensor& dst, const Tensor& block_mapping) {
  constexpr const char* op = "swap_blocks";
  check_swap_blocks(op, src, dst, block_mapping);
  const std::vector<int64_t> m =
      read_block_mapping(op, block_mapping, "src", src.size(0), "dst", dst.size(0));
  const int64_t n = block_mapping.size(0);
  const int64_t bytes = block_bytes(src);
  if (n == 0 || bytes == 0) {
    return;
  }
  const auto* s = static_cast<const char*>(src.data_ptr());
  auto* d = static_cast<char*>(dst.data_ptr());
  parallel_rows(n, bytes, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      std::memmove(d + m[2 * i + 1] * bytes, s + m[2 * i] * bytes, static_cast<size_t>(bytes));
    }
  });
}

void copy_blocks_cpu(const std::vector<Tensor>& key_caches, const std::vector<Tensor>& value_caches,
                     const Tensor& block_mapping) {
  constexpr const char* op = "copy_blocks";
  const int64_t layers = check_copy_blocks(op, key_caches, value_caches, block_mapping);
  if (layers == 0 || block_mapping.size(0) == 0) {
    return;
  }
  const int64_t num_blocks = key_caches[0].size(0);
  const std::vector<int64_t> m =
      read_block_mapping(op, block_mapping, "key_caches", num_blocks, "key_caches", num_blocks);
  const int64_t n = block_mapping.size(0);
  const int64_t kbytes = block_bytes(key_caches[0]);
  const int64_t vbytes = block_bytes(value_caches[0]);
  // One task per (layer, pair); the pairs of a layer run in order within a task's range.
  parallel_rows(layers * n, kbytes + vbytes, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const int64_t l = r / n;
      const int64_t i = r - l * n;
      auto* k = static_cast<char*>(key_caches[static_cast<size_t>(l)].data_ptr());
      auto* v = static_cast<char*>(value_caches[static_cast<size_t>(l)].data_ptr());
      std::memmove(k + m[2 * i + 1] * kbytes, k + m[2 * i] * kbytes, static_cast<size_t>(kbytes));
      std::memmove(v + m[2 * i + 1] * vbytes, v + m[2 * i] * vbytes, static_cast<size_t>(vbytes));
    }
  });
}

}  // namespace
}  // namespace stablekernels::cache

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CPU, m) {
  m.impl("reshape_and_cache_flash", TORCH_BOX(&stablekernels::cache::reshape_and_cache_flash_cpu));
  m.impl("swap_blocks", TORCH_BOX(&stablekernels::cache::swap_blocks_cpu));
  m.impl("copy_blocks", TORCH_BOX(&stablekernels::cache::copy_blocks_cpu));
}

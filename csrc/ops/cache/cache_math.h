// SPDX-License-Identifier: Apache-2.0
#pragma once
// cache_math.h: the layouts of the cache family, shared by the CPU and CUDA code. Torch-free.

#include <cstdint>

#include "stablekernels/rows.h"

namespace stablekernels::cache {

// Largest finite float8 e4m3fn value: fp8 stores saturate to +-kFp8Max.
constexpr float kFp8Max = 448.0f;

// What the caches hold: the input dtype ("auto") or fp8 e4m3 bits ("fp8", "fp8_e4m3").
enum class KvCacheDtype { kAuto, kFp8E4m3 };

// Element strides of a [num_tokens, num_heads, head_size] input (last dim contiguous).
struct TokenLayout {
  int64_t token_stride = 0;
  int64_t head_stride = 0;
};

// Element strides of a [num_blocks, block_size, num_heads, head_size] cache (last dim
// contiguous).
struct CacheStrides {
  int64_t block_stride = 0;
  int64_t slot_stride = 0;
  int64_t head_stride = 0;
};

struct ReshapeAndCacheShape {
  int64_t num_tokens = 0;  // slot_mapping.size(0): the tokens written
  int64_t num_heads = 0;
  int64_t head_size = 0;
  int64_t block_size = 0;
  int64_t num_slots = 0;  // num_blocks * block_size
  int64_t slot_mapping_stride = 1;
  TokenLayout key;
  TokenLayout value;
  CacheStrides key_cache;
  CacheStrides value_cache;
  KvCacheDtype kv_cache_dtype = KvCacheDtype::kAuto;
  // num_slots < 2^31: slot_position divides by block_div (FastDivU31), not in 64 bits.
  bool slots_31 = false;
  FastDivU31 block_div;
};

// What a CUDA kernel of the family writes of a bad index it meets (a slot beyond the cache,
// a block out of range), into pinned host memory that the host reads without waiting for
// the GPU (cache_cuda.cpp). The first kernel thread of a device to meet one of a kind
// claims the record: it writes the fields, fences, then `set`; the record stays until the
// host has reported it.
enum BadEntryKind : int { kBadSlot = 0, kBadBlock = 1, kBadEntryKinds = 2 };

struct BadEntryRecord {
  int64_t index;  // the token (kBadSlot) or the block_mapping row (kBadBlock)
  int64_t a;      // the slot, or the source block
  int64_t b;      // the destination block (kBadBlock)
  int64_t limit;  // num_slots, or num_blocks
  int32_t set;    // written last; 0 while the record is free
  int32_t reserved;
};

// Where a slot in [0, num_slots) lies: block slot / block_size, and the offset in that block.
struct SlotPosition {
  int64_t block;
  int64_t in_block;
};

STABLEKERNELS_HOST_DEVICE SlotPosition slot_position(const ReshapeAndCacheShape& s, int64_t slot) {
  if (s.slots_31) {
    const auto n = static_cast<uint32_t>(slot);
    const uint32_t q = s.block_div.div(n);
    return {q, n - q * static_cast<uint32_t>(s.block_size)};
  }
  const int64_t block = slot / s.block_size;
  return {block, slot - block * s.block_size};
}

// Element offset of a slot's head in a cache.
STABLEKERNELS_HOST_DEVICE int64_t cache_offset(const CacheStrides& c, SlotPosition p,
                                               int64_t head) {
  return p.block * c.block_stride + p.in_block * c.slot_stride + head * c.head_stride;
}

// x / scale clamped to [-kFp8Max, kFp8Max]; NaN stays NaN (no fminf/fmaxf, which drop it).
STABLEKERNELS_HOST_DEVICE float fp8_prescale(float x, float scale) {
  const float y = x / scale;
  return y > kFp8Max ? kFp8Max : (y < -kFp8Max ? -kFp8Max : y);
}

}  // namespace stablekernels::cache

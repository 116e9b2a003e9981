// SPDX-License-Identifier: Apache-2.0
#pragma once
// The cache family's launchers: plain functions of raw pointers, defined in the
// torch-free cache_cuda.cu (nvcc) and called by cache_cuda.cpp (the torch glue, which
// also does the family's plain CUDA runtime work: copies, the bad-entry records in pinned
// memory and their reports). Torch-free, no CUDA device code.

#include <cuda_runtime_api.h>

#include <cstdint>
#include <vector>

#include "ops/cache/cache_math.h"
#include "stablekernels/dtype.h"

namespace stablekernels::cache {

// reshape_and_cache_flash over the shape `s`: key/value of `dtype` (float32, float16,
// bfloat16), the caches of that dtype or (fp8) bytes, int64 slots, float32 scales; a slot
// beyond the cache is skipped and written to `bad` (may be null; see BadEntryRecord).
// Returns cudaGetLastError().
cudaError_t launch_reshape_and_cache_flash(DType dtype, bool fp8, cudaStream_t stream,
                                           const ReshapeAndCacheShape& s, const void* key,
                                           const void* value, void* key_cache, void* value_cache,
                                           const int64_t* slots, const float* k_scale,
                                           const float* v_scale, BadEntryRecord* bad);

// Frees the record of `kind` (BadEntryKind) for the next bad entry on this device, after the
// host has read it; ordered on `stream`. Returns cudaGetLastError().
cudaError_t launch_reset_bad_entry_claim(int kind, cudaStream_t stream);

// Widest unit (16, 8, 4, 2 or 1 bytes) dividing both block sizes and every cache address.
int64_t copy_unit(int64_t kbytes, int64_t vbytes, const std::vector<int64_t>& ptrs);

// copy_blocks in units of `unit` bytes (copy_unit): `ptrs` the device array of the key
// then value cache addresses, `mapping` [pairs, 2] int64 with strides s0, s1; `bad` (may
// be null) receives a pair naming a block out of range, which is skipped. Returns
// cudaGetLastError().
cudaError_t launch_copy_blocks(int64_t unit, cudaStream_t stream, const int64_t* ptrs,
                               int64_t layers, const int64_t* mapping, int64_t s0, int64_t s1,
                               int64_t pairs, int64_t num_blocks, int64_t kbytes, int64_t vbytes,
                               BadEntryRecord* bad);

}  // namespace stablekernels::cache

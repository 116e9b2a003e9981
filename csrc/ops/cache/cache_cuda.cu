// SPDX-License-Identifier: Apache-2.0
// CUDA launch code of the cache family: access width, copy unit, template instantiation,
// launches. Torch-free (nvcc compiles it; docs/farm.md says why): the checks, tensors,
// device buffers, copies and registration are in cache_cuda.cpp.

#include <algorithm>
#include <vector>

#include "ops/cache/cache_kernels.cuh"
#include "ops/cache/cache_launch.h"
#include "ops/cache/cache_tuning.h"
#include "stablekernels/cuda_dispatch.cuh"
#include "stablekernels/kernel_launch.cuh"
#include "stablekernels/launch.h"

namespace stablekernels::cache {
namespace {

template <typename CT, int N, bool kFp8>
void launch_reshape(cudaStream_t stream, const ReshapeAndCacheShape& s, const CT* k, const CT* v,
                    void* kc, void* vc, const int64_t* slots, const float* ks, const float* vs,
                    BadEntryRecord* bad) {
  const int64_t per_token = s.num_heads * (s.head_size / N);
  const int threads = threads_for(per_token);
  const auto blocks = static_cast<unsigned>(std::min(s.num_tokens, kCachePolicy.max_blocks));
  // one block a token and one thread a (head, chunk) pair: the form without loops
  const bool one_pass = per_token <= threads && s.num_tokens <= kCachePolicy.max_blocks;
  const auto kernel = one_pass ? &cuda::reshape_and_cache_flash_kernel<CT, N, kFp8, true>
                               : &cuda::reshape_and_cache_flash_kernel<CT, N, kFp8, false>;
  launch_kernel(kernel, blocks, threads, 0, stream, k, v, kc, vc, slots, s, ks, vs, bad);
}

template <typename CT, bool kFp8>
void launch_reshape_width(int64_t n, cudaStream_t stream, const ReshapeAndCacheShape& s,
                          const CT* k, const CT* v, void* kc, void* vc, const int64_t* slots,
                          const float* ks, const float* vs, BadEntryRecord* bad) {
  constexpr int kWide = stablekernels::cuda::kVec16<CT>;
  if (n == kWide) {
    launch_reshape<CT, kWide, kFp8>(stream, s, k, v, kc, vc, slots, ks, vs, bad);
  } else if (n == kWide / 2) {
    launch_reshape<CT, kWide / 2, kFp8>(stream, s, k, v, kc, vc, slots, ks, vs, bad);
  } else {
    launch_reshape<CT, 1, kFp8>(stream, s, k, v, kc, vc, slots, ks, vs, bad);
  }
}

template <typename V>
void launch_copy(cudaStream_t stream, const int64_t* ptrs, int64_t layers, const int64_t* mapping,
                 int64_t s0, int64_t s1, int64_t pairs, int64_t num_blocks, int64_t kbytes,
                 int64_t vbytes, BadEntryRecord* bad) {
  const int64_t ku = kbytes / static_cast<int64_t>(sizeof(V));
  const int64_t vu = vbytes / static_cast<int64_t>(sizeof(V));
  const dim3 grid(static_cast<unsigned>(std::min(pairs, kCachePolicy.max_blocks)),
                  static_cast<unsigned>(layers));
  launch_kernel(&cuda::copy_blocks_kernel<V>, grid, threads_for(std::max(ku, vu)), 0, stream, ptrs,
                layers, mapping, s0, s1, pairs, num_blocks, ku, vu, bad);
}

}  // namespace

cudaError_t launch_reshape_and_cache_flash(DType dtype, bool fp8, cudaStream_t stream,
                                           const ReshapeAndCacheShape& s, const void* key,
                                           const void* value, void* kc, void* vc,
                                           const int64_t* slots, const float* ks, const float* vs,
                                           BadEntryRecord* bad) {
  return stablekernels::cuda::dispatch_float(dtype, [&](auto tag) {
    using CT = typename decltype(tag)::type;
    const CT* k = static_cast<const CT*>(key);
    const CT* v = static_cast<const CT*>(value);
    // Strides in elements of each tensor; the caches' are bytes in fp8 mode, where a chunk of
    // N inputs is stored as N bytes, so a multiple of N suits both.
    const int64_t n =
        access_elems(sizeof(CT),
                     {s.head_size, s.key.token_stride, s.key.head_stride, s.value.token_stride,
                      s.value.head_stride, s.key_cache.block_stride, s.key_cache.slot_stride,
                      s.key_cache.head_stride, s.value_cache.block_stride,
                      s.value_cache.slot_stride, s.value_cache.head_stride},
                     {k, v, kc, vc});
    if (fp8) {
      launch_reshape_width<CT, true>(n, stream, s, k, v, kc, vc, slots, ks, vs, bad);
    } else {
      launch_reshape_width<CT, false>(n, stream, s, k, v, kc, vc, slots, ks, vs, bad);
    }
  });
}

cudaError_t launch_reset_bad_entry_claim(int kind, cudaStream_t stream) {
  launch_kernel(&cuda::reset_bad_entry_claim, 1, 1, 0, stream, kind);
  return cudaGetLastError();
}

int64_t copy_unit(int64_t kbytes, int64_t vbytes, const std::vector<int64_t>& ptrs) {
  for (const int64_t w : {16, 8, 4, 2}) {
    bool ok = kbytes % w == 0 && vbytes % w == 0;
    for (const int64_t p : ptrs) {
      ok = ok && p % w == 0;
    }
    if (ok) {
      return w;
    }
  }
  return 1;
}

cudaError_t launch_copy_blocks(int64_t unit, cudaStream_t stream, const int64_t* ptrs,
                               int64_t layers, const int64_t* mapping, int64_t s0, int64_t s1,
                               int64_t pairs, int64_t num_blocks, int64_t kbytes, int64_t vbytes,
                               BadEntryRecord* bad) {
  switch (unit) {
    case 16:
      launch_copy<uint4>(stream, ptrs, layers, mapping, s0, s1, pairs, num_blocks, kbytes, vbytes,
                         bad);
      break;
    case 8:
      launch_copy<uint2>(stream, ptrs, layers, mapping, s0, s1, pairs, num_blocks, kbytes, vbytes,
                         bad);
      break;
    case 4:
      launch_copy<uint32_t>(stream, ptrs, layers, mapping, s0, s1, pairs, num_blocks, kbytes,
                            vbytes, bad);
      break;
    case 2:
      launch_copy<uint16_t>(stream, ptrs, layers, mapping, s0, s1, pairs, num_blocks, kbytes,
                            vbytes, bad);
      break;
    default:
      launch_copy<uint8_t>(stream, ptrs, layers, mapping, s0, s1, pairs, num_blocks, kbytes, vbytes,
                           bad);
  }
  return cudaGetLastError();
}

}  // namespace stablekernels::cache

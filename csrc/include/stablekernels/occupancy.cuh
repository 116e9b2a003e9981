// SPDX-License-Identifier: Apache-2.0
#pragma once
// Host side of persistent launches (grids of resident blocks that loop over rows).
// Torch-free; nvcc only (it takes kernels as template arguments).

#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace stablekernels::cuda {

// Blocks of `kernel` resident on a device of `sms` SMs (the glue's sm_count) at once, with
// `threads` threads and `smem` bytes of dynamic shared memory a block: the grid of a kernel
// whose blocks loop over rows. The blocks per SM depend only on the kernel, its block size
// and its shared memory; callers use one `smem` per kernel and block size, so the answer is
// asked once per kernel (a template argument: instantiations that differ in registers have
// their own cache) and block size (a cheap host call, but launches are hot). 0 when the
// runtime cannot say: its error is then pending, and cudaGetLastError() after the launch
// code returns it to the op, which raises it.
template <auto kernel>
int64_t resident_blocks(int threads, size_t smem, int sms) {
  static std::atomic<int> per_sm_cache[1024 / 32 + 1] = {};
  std::atomic<int>& cached = per_sm_cache[threads / 32];
  int per_sm = cached.load(std::memory_order_relaxed);
  if (per_sm == 0) {
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem) !=
        cudaSuccess) {
      return 0;
    }
    per_sm = per_sm < 1 ? 1 : per_sm;
    cached.store(per_sm, std::memory_order_relaxed);
  }
  return static_cast<int64_t>(per_sm) * (sms < 1 ? 1 : sms);
}

}  // namespace stablekernels::cuda

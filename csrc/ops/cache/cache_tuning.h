// SPDX-License-Identifier: Apache-2.0
#pragma once
// Launch policies of the cache family's CUDA kernels, as data. Torch-free.

#include <algorithm>
#include <cstdint>

namespace stablekernels::cache {

struct CacheLaunchPolicy {
  int max_threads = 256;         // the kernels' __launch_bounds__
  int64_t max_blocks = 1 << 20;  // grid-stride loops beyond this
};
constexpr CacheLaunchPolicy kCachePolicy{};

// Threads for `accesses` accesses per item: a multiple of 32, at most max_threads.
inline int threads_for(int64_t accesses) {
  const int64_t warps = std::max<int64_t>(1, (accesses + 31) / 32);
  return static_cast<int>(std::min<int64_t>(warps * 32, kCachePolicy.max_threads));
}

}  // namespace stablekernels::cache

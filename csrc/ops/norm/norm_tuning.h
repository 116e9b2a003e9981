// SPDX-License-Identifier: Apache-2.0
#pragma once
// Launch policy of the norm kernels, as data.

namespace stablekernels::norm {

struct NormPolicy {
  // Threads per block the register kernels aim for; ITEMS grows to stay under it
  // (and never beyond cuda::kRegisterKernelMaxThreads).
  int target_threads = 512;
  // Largest ITEMS instantiated; longer rows use the generic two-pass kernel.
  int max_items = 8;
  int generic_threads = 1024;
  // Upper bound on the grid; blocks loop over further rows.
  long long max_blocks = 1LL << 30;
};

constexpr NormPolicy kNormPolicy{};

}  // namespace stablekernels::norm

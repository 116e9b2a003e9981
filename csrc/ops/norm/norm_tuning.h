// SPDX-License-Identifier: Apache-2.0
#pragma once
// Launch policy of the norm kernels, as data. Measured on an H200 (bf16, 16384 x 8192):
// what matters is the bytes in flight per SM, i.e. rows in flight x row size.

namespace stablekernels::norm {

struct NormPolicy {
  // Register kernels: ITEMS (vectors per thread) grows in powers of two until a
  // row fits in cuda::kRegisterKernelThreads threads, up to these limits; longer
  // rows use the generic two-pass kernel.
  int rms_norm_max_items = 8;
  // rms_norm on at most this many rows (decode) uses 1 item, i.e. the generic kernel's
  // 1024 threads for rows over 2048 elements: a single row then spreads over more threads.
  // H200, bf16, under CUDA graphs: 1 token x 8192 3.34 us against 3.72 us for the register
  // kernel, 32 tokens x 8192 3.58 against 3.97 us; 4096 and 16384 level.
  long long rms_norm_decode_rows = 64;
  // fused_add_rms_norm holds two slices per item while loading; at 16384 x 8192 bf16
  // the generic kernel (1024 threads) moved 95% of copy bandwidth against 83% for
  // the register kernel with 4 items, so the register kernel stops at 2 items.
  int fused_add_rms_norm_max_items = 2;
  int generic_threads = 1024;
  // Upper bound on the grid; blocks loop over further rows.
  long long max_blocks = 1LL << 30;
};

constexpr NormPolicy kNormPolicy{};

}  // namespace stablekernels::norm

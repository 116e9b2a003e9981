// SPDX-License-Identifier: Apache-2.0
#pragma once
// Launch policy of the norm kernels, as data. Measured on an H200 (bf16, 16384 x 8192):
// what matters is the bytes in flight per SM, i.e. rows in flight x row size.

namespace stablekernels::norm {

struct NormPolicy {
  // rms_norm: the persistent register kernel (norm_kernels.cuh) holds a row, the next row
  // and the weight in registers, ITEMS 16-byte vectors of each per thread, in blocks of up
  // to 1024 threads; rows of more than 1024 * rms_norm_persistent_items vectors use the
  // generic two-pass kernel. On many rows ITEMS is this (fewer for rows under 64 * ITEMS
  // vectors, so a block keeps a warp): small blocks (128 threads for 4096 bf16 elements),
  // a cheap reduction, and at 64 registers a thread about 1024 threads an SM, i.e. about
  // 64 KB of next-row loads in flight per SM whatever the row length.
  int rms_norm_persistent_items = 4;
  // Above this many rows rms_norm uses one block per row (the register kernel with up to
  // rms_norm_max_items vectors a thread, or the generic kernel): with that many blocks the
  // GPU stays full without the persistent loop. H200, bf16, us, persistent / one block per
  // row: 4096 rows x 4096 21.6 / 22.5, x 16384 78.0 / 85.3; 16384 rows x 4096 74.3 / 71.1,
  // x 8192 143.8 / 135.2, x 16384 301.4 / 296.0.
  long long rms_norm_persistent_max_rows = 4096;
  // Except for rows of more than this many vectors (of scalar access: rows of 16-byte
  // vectors take the two-pass kernel below) that the one-block-per-row register
  // kernel holds (256 threads x rms_norm_max_items: rows of 8192 bf16): there the blocks of
  // 4096 rows fill the GPU for about four waves and the persistent loop only adds its
  // tail. H200, bf16, us, persistent / one block per row (torch.compile): 4096 x 8192
  // 39.2 / 37.9 (36.4); 4096 x 4096 21.7 / 22.3 (23.1); 4096 x 16384 (the 1024-thread
  // kernel) 72.7 / 72.3 (70.1), left persistent.
  long long rms_norm_persistent_max_vecs = 512;
  // One block per row: 256-thread blocks up to this many vectors a thread (rows up to
  // 1024 vectors, 8192 bf16), then 1024-thread blocks of rms_norm_wide_items vectors
  // (rows up to 2048 vectors, 16384 bf16), then the generic kernel. The 256 x 8 shape
  // used before for 16384 bf16 took 80 registers (3 blocks, 768 threads an SM) and, in
  // its SASS, waited for the weight one vector at a time after the reduction (8 round
  // trips a row); 1024 x 2 fits 32 registers (2 blocks, 2048 threads an SM, the same
  // 64 KB of row in flight per SM as 256 x 4 at 8192, which reached 94% of copy) and
  // waits for its weight once. H200, bf16, before: 16384 x 16384 295.0 us (86% of copy).
  // (To compare with the old shape, set this to 8: 256 x 8, now 74 registers and the
  // weight in two round trips of four, instantiated for that purpose.)
  int rms_norm_max_items = 4;
  int rms_norm_wide_items = 2;
  // Rows of 16-byte vectors over rms_norm_persistent_max_vecs and up to kTwoPassThreads
  // (512) x this many (rows of 8192 to 16384 bf16 / fp16, 4096 to 8192 fp32) on more than
  // rms_norm_decode_rows rows: the two-pass kernel, before any of the shapes above (which
  // keep the rows of scalar access); rows of up to twice that (16384 fp32, 32768 bf16) the
  // two-pass kernel in blocks of kTwoPassWideThreads (1024) of this many vectors a thread.
  // H200, float32, rows of 16384, us, two rounds, the persistent (4096 rows) or generic
  // kernel / the 1024-thread two-pass kernel (torch.compile): 4096 rows 139.4-139.6 /
  // 126.2-126.4 (127-128), 16384 rows 560.6-560.8 / 499.9-500.1 (497-498); the 512-thread
  // kernel with 8 vectors a thread 145.5 / 577.0-578.2. H200, bf16, us, the kernels above /
  // two-pass (torch.compile), one machine, two rounds: 4096 x 8192 33.5 / 32.7-32.8 (32.4), 4096 x
  // 16384 68.7-69.2 / 64.7-64.8 (65.9-66.0), 16384 x 8192 129.6-129.8 / 124.6-124.8 (124.4),
  // 16384 x 16384 266.1-266.3 / 254.9-255.1 (255.8-256.2). Its 256-thread form, 8-byte
  // vectors (torch.compile's), and loops of one or two loads a thread at a time: level or
  // slower. The register kernel with an L2 priority on its one read of the row: evict-first
  // 1-5% slower; evict-last as fast as this kernel on rows of 8192, but it leaves the
  // input's lines pinned in L2 after the kernel (this kernel's last read demotes them).
  int rms_norm_two_pass_max_items = 4;
  // ... except rows of more than kTwoPassThreads x 2 and up to kTwoPassWideThreads x 2
  // vectors (16384 bf16 / fp16, 8192 fp32) on devices whose memory peaks under this many
  // GB/s per SM (memory_gbps_per_sm): there 1024-thread blocks of 2 vectors a thread
  // instead of 512 x 4. Fewer bytes in flight per thread and twice the warps, which a slower
  // memory (less to keep in flight per SM) turns into speed, a faster one not. us, bf16, two
  // rounds, 512 x 4 / 1024 x 2 (torch.compile): H100 (25.4 GB/s per SM) 16384 x 16384
  // 361.0-361.2 / 350.0-350.1 (350.8), 4096 x 16384 88.9-89.0 / 87.2-87.3 (88.4); H200 (36.5 GB/s
  // per SM, one round) 16384 x 16384 254.2 / 257.5 (255.8-256.2), 4096 x 16384 64.4 / 67.0
  // (65.3-66.0).
  double rms_norm_two_pass_wide_max_gbps_per_sm = 30.0;
  // rms_norm on at most this many rows (decode): one block per row (the decode kernel),
  // one vector a thread up to 1024 threads (more beyond, up to rms_norm_persistent_items),
  // so a single row spreads over many threads and each issues few loads; the weight is
  // loaded with the row, before the reduction (the other kernels read it after, one more
  // L2 round trip on the critical path). (Before the persistent kernel: the 1024-thread
  // generic kernel, 1 token x 8192 under CUDA graphs 3.34 us against 3.72 us for the
  // 256-thread register kernel; the persistent kernel with the weight after the reduction:
  // 1 x 4096 3.05 us, 1 x 8192 3.29 us, torch.compile 2.46 / 2.81 us.)
  long long rms_norm_decode_rows = 64;
  // Threads of a decode block at one vector a thread; longer rows take two (or more)
  // vectors a thread. Rows of 8192 bf16: 512 x 2 instead of 1024 x 1 (half the warps in
  // the block reduction). H200, bf16, us per call in a CUDA graph of 32 calls (1024 /
  // 512 / 256 threads, torch.compile): rms_norm 1 x 8192 2.18 / 2.06 / 2.16 (2.22), 32 x
  // 8192 2.41 / 2.31 / 2.37 (2.45); fused_add_rms_norm 1 x 8192 2.65 / 2.51 / 2.50 (2.21),
  // 32 x 8192 2.80 / 2.73 / 2.74 (3.00); 4096 and 16384 level.
  int decode_threads = 512;
  // fused_add_rms_norm past fused_add_rms_norm_decode_kernel_max_rows rows (below): register
  // kernels with ITEMS (vectors per thread) growing in powers
  // of two until a row fits in cuda::kRegisterKernelThreads threads, up to the limit below;
  // longer rows use the generic two-pass kernel.
  // fused_add_rms_norm holds two slices per item while loading; at 16384 x 8192 bf16
  // the generic kernel (1024 threads) moved 95% of copy bandwidth against 83% for
  // the register kernel with 4 items, so the register kernel stops at 2 items.
  int fused_add_rms_norm_max_items = 2;
  // fused_add_rms_norm on few rows (decode): the decode kernel (input,
  // residual and weight loaded together, one barrier) for rows of up to 1024 x this many
  // vectors. Before: the 256-thread register kernel (4096 bf16) or the generic kernel,
  // which re-reads the residual and reads the weight after the reduction; 1 x 8192 under
  // graphs 3.53 us, 32 x 8192 3.89 us, torch.compile 2.91 / 3.21 us.
  int fused_add_rms_norm_decode_items = 2;
  // ... and on up to this many rows too (rows of up to 1024 x fused_add_rms_norm_decode_items
  // vectors): the decode kernel's one block a row, grid == rows, at one vector a thread up to
  // decode_threads, holds 32 registers at rows of 4096 bf16 (four 512-thread blocks an SM,
  // every warp slot), where the 256 x 2 register kernel takes 62 (four 256-thread blocks:
  // ncu, 46% of the warps active against torch.compile's 92%). H200, bf16, us, two rounds,
  // register or generic kernel / decode kernel: 4096 x 4096 34.9-35.0 / 33.7-33.9 (torch.compile
  // 34.9), 4096 x 8192 67.6 / 66.4-66.5, 4096 x 16384 132.7-133.0 / 132.1-132.4; on 16384 rows
  // and more mixed, hence the bound: 16384 x 4096 132.8 / 132.0, 16384 x 8192 259.7-259.8 /
  // 260.9-261.1, 32768 x 8192 521.2 / 524.7-524.9, 16384 x 16384 522.7-523.3 / 521.5-521.9.
  long long fused_add_rms_norm_decode_kernel_max_rows = 4096;
  int generic_threads = 1024;
  // Upper bound on the grid; blocks loop over further rows.
  long long max_blocks = 1LL << 30;
};

constexpr NormPolicy kNormPolicy{};

}  // namespace stablekernels::norm

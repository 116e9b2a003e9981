// SPDX-License-Identifier: Apache-2.0
#pragma once
// Launch policy of the hadamard kernels, as data. Torch-free.
//
// hadamard_kernel (n < 1024): a row of n = 2^L elements is spread over `tpr` threads (a
// power of two, at most 32: one warp, warp shuffles, no shared memory) holding `ept`
// elements each in registers (n = tpr * ept): 8 elements a thread for short rows, 16 at
// n = 512. From n = 1024 on, hadamard_xpose_kernel (below), for 16-bit rows of n = 16384
// and 32768 hadamard_wide_kernel where the device's shared memory allows it, and for some
// row counts of 16-bit rows hadamard_mma_kernel (n = 1024 to 4096) or the wide kernel (8192).

#include <cstdint>

namespace stablekernels::hadamard {

struct HadamardConfig {
  int ept;  // elements per thread: 1, 2, 4, 8, 16 or 32
  int tpr;  // threads per row: n / ept, a power of two <= 1024
};

constexpr HadamardConfig hadamard_config(int log_n) {
  const int n = 1 << log_n;
  const int ept = log_n <= 3 ? n : (log_n <= 8 ? 8 : (log_n == 9 ? 16 : 32));
  return {ept, n / ept};
}

// hadamard_xpose_kernel (n >= 2^kXposeMinLogN, 16-byte aligned rows): one thread per 32
// elements, the stages in registers between transposes through shared memory. It
// replaces the warp-shuffle stages (5 shuffles and ~3 other instructions per element)
// and the scalar stores of hadamard_kernel, whose run-time index arithmetic made that
// kernel issue-bound at about a third of copy bandwidth for n >= 4096.
constexpr int kXposeMinLogN = 10;
// Rows per block: blocks of at least 128 threads (4 rows of 32 threads at n = 1024, 2
// of 64 at n = 2048), one row from n = 4096 on.
template <int LOG_N>
constexpr int kXposeRowsPerBlock = (1 << (LOG_N - 5)) >= 128 ? 1 : 128 / (1 << (LOG_N - 5));

// The last exchange through shared memory (each thread reading back its part of the row
// to store it as 16-byte vectors) is left out for n from 2048 up to 2^kXposeDirectMaxLogN:
// the third step's threads hold their values in an order that they store directly (as
// 4- to 16-byte vectors, a warp 32 consecutive ones; DirectStore in hadamard_kernels.cuh).
constexpr int kXposeDirectMaxLogN = 14;

// Rows staged in shared memory (hadamard_xpose_kernel<T, LOG_N, true>): for 16-bit rows of
// n >= 2^kXposeStageMinLogN, a grid of resident blocks loops over the rows, and each thread
// copies its part of the block's next row into shared memory by cp.async (no registers
// held) before the exchanges of the current one. Taken where the staging space leaves as
// many blocks resident as without it (the launch asks the occupancy of both; the A100's
// shared memory does not at n = 16384: there rows go one at a time). Not made from
// n = 2^kWideAllRowsLogN on (below). H200, bf16,
// us, before -> staged: 16384 x 8192 158.5 -> 151.6, 4096 x 8192 43.7 -> 41.1, 16384 x
// 16384 334 -> 325, 16384 x 32768 722.7 -> 717.8 (against the next row's loads into 16
// registers, which this replaced; one row at a time measured 888; DirectStore at 32768,
// 2-byte stores, 742). From 2^13 at first (n = 4096 then read 16384 rows 76.2 -> 78.2, 4096
// rows 23.9 -> 22.4); with the reading L2 flush of the benchmark and PDL launches, from
// 2^10, one machine, two rounds, unstaged -> staged: 16384 x 1024 19.7 -> 19.1-19.2, 4096 x
// 1024 8.4-8.5 -> 8.5, 16384 x 2048 38.3-38.4 -> 34.8-34.9, 4096 x 2048 12.9 -> 12.5, 16384
// x 4096 74.0-74.1 -> 72.2-72.4, 4096 x 4096 21.4 -> 19.8-19.9.
constexpr int kXposeStageMinLogN = 10;

// hadamard_wide_kernel: 16-bit rows of n = 2^14 and 2^15 take n / kWideRegs threads of
// kWideRegs = 64 elements each (one row a block: 256 or 512 threads) where the device
// allows the block's shared memory (the float32 row and the staged next row: 96 or 192
// KiB) and as many blocks as the launch bounds plan for (two of n = 16384 or one of 32768
// per SM: the H100 and H200 do, the A100 not). The element bits are 6 + 6 + 3 register
// bits at n = 32768 and 6 + 6 + 2 at 16384 (one register bit carried untransformed in the
// last step), so the row crosses shared memory twice instead of the three times of
// hadamard_xpose_kernel's 5 + 5 + 5 at 32768, and at 16384 (5 + 5 + 4, also twice with
// DirectStore) the last step holds 8 consecutive elements for 16-byte stores instead of
// DirectStore's 2 (4 bytes). The staged hadamard_xpose_kernel would need the same shared
// memory, so it is not made at these sizes: where the wide kernel does not fit (the A100)
// or for float32 rows, they take the unstaged hadamard_xpose_kernel, one row at a time.
// H200, bf16, us, hadamard_xpose_kernel -> wide: 16384 x 32768 720 -> 594-601 (71% -> 86%
// of copy), 4096 x 32768 192 -> 160; 16384 x 16384 326 -> 295 (77% -> 85%), 4096 x 16384
// 88.4 -> 79.2; 1 x 16384 under CUDA graphs 3.96 -> 3.71.
//
// n = 2^13 (128 threads, four blocks per SM, 48 KiB each; 6 + 6 + 1, two register bits
// carried) takes the wide kernel where a call has more rows than the device has SMs, and
// the staged hadamard_xpose_kernel below that (a decode batch: one row's latency is what
// counts there, and the xpose kernel's 256 threads of 32 elements are shorter). H200, bf16,
// us, three rounds, staged xpose -> wide: 4096 x 8192 39.9-40.0 -> 37.0-37.4 (78% -> 84% of
// copy), 16384 x 8192 148.1-148.6 -> 146.3-146.6; under graphs 1 x 8192 2.16 -> 2.19, 64 x
// 8192 2.40 -> 2.40. At n = 4096 (64 threads) it lost: 4096 x 4096 19.9-20.2 -> 20.5-20.6,
// 16384 x 4096 level (73.2-73.4 / 72.8-73.4), 1 x 4096 under graphs 1.57 -> 1.88.
// Tensor cores for its first step (element bits 0-3 by mma from the staged row, as
// hadamard_mma_kernel) took 22% of its instructions away at n = 32768 and no time: 4096 x
// 32768 157.7-158.2 -> 159.3-159.5 us, 16384 x 16384 291.2-292.1 -> 289.0-289.6, 1 x 32768
// under graphs 5.40 -> 5.73 (docs/performance.md, the table of what was tried).
constexpr int kWideMinLogN = 13;
// From this size the wide kernel takes every row count (where it fits the device).
constexpr int kWideAllRowsLogN = 14;
constexpr int kWideMaxLogN = 15;
constexpr int kWideRegs = 64;
// Threads per SM the wide kernel's launch bounds ask for: 128 registers each in the 64K of
// an SM (one block at n = 32768, two at 16384, four at 8192).
constexpr int kWideThreadsPerSm = 512;

// hadamard_mma_kernel (tensor cores for element bits 0-3, one exchange): 16-bit rows of
// n = 2^kMmaMinLogN to 2^kMmaMaxLogN (step 1 holds element bits 0-6, step 2 the rest in its
// 32 registers: at most 12 bits) whose rows have one collapsed dim (8-byte StridedRows
// parameters: against RowIndexer's 104 bytes and its division code, 4096 x 4096 19.5-19.7 ->
// 19.0-19.2 us), taken where a call has more rows than the device has SMs and at most
// kMmaMaxWaves times the rows its resident blocks hold at once. Its row is shorter than
// the staged xpose kernel's, which shows where each block handles a few rows (the first
// row's load and the last one's stores overlap nothing); looping over many rows the xpose
// kernel moved 1-2% more, and one row (decode) took longer. H200, bf16, us, three rounds,
// staged xpose -> mma (waves): 4096 x 4096 19.97-20.13 -> 18.98-19.20 (3.9; 78% -> 81-82% of
// copy), 4096 x 2048 12.48-12.54 -> 11.97-12.29 (1.9), 8192 x 2048 19.74-19.84 ->
// 18.94-19.01 (3.9), 4096 x 1024 8.42-8.54 -> 7.97-8.13 (1.0), 16384 x 1024 19.30-19.49 ->
// 18.80-19.04 (3.9); past 4 waves, 8192 x 4096 35.65-35.94 -> 36.42-37.07 (7.8), 16384 x
// 2048 35.04-35.31 -> 35.81-36.19 (7.8), 16384 x 4096 72.34-73.28 -> 73.47-73.76 (15.5),
// 65536 x 1024 68.94-69.34 -> 69.47-70.11 (15.5); under graphs 1 x 4096 1.58 -> 1.64,
// 1 x 1024 1.41 -> 1.55.
constexpr int kMmaMinLogN = 10;
constexpr int kMmaMaxLogN = 12;
constexpr int kMmaMaxWaves = 4;

struct HadamardPolicy {
  // Blocks hold at least this many threads: several short rows per block.
  int min_block_threads = 128;
  // Threads of the fallback kernel (rows whose pointers or strides forbid vector access).
  int generic_threads = 256;
  // Upper bound on the grid; blocks loop over further rows.
  long long max_blocks = 1LL << 30;
};

constexpr HadamardPolicy kHadamardPolicy{};

}  // namespace stablekernels::hadamard

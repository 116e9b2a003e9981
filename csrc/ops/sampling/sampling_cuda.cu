// SPDX-License-Identifier: Apache-2.0
// CUDA launch code of the sampling family: launch policy, template instantiation, launches.
// Torch-free (nvcc compiles it; docs/farm.md says why): the checks, tensors, SM count and
// registration are in sampling_cuda.cpp.

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "ops/sampling/sampling_kernels.cuh"
#include "ops/sampling/sampling_launch.h"
#include "stablekernels/cuda_dispatch.cuh"
#include "stablekernels/kernel_launch.cuh"

namespace stablekernels::sampling {
namespace {

// Launch policy, as data.
struct SamplingPolicy {
  // repetition_penalty_kernel (the rows that repetition_penalty_rows_kernel cannot take):
  // tiles of cuda::kPenaltyUnroll vectors a thread while the grid would still hold at least
  // this many tiles per SM; below, tiles of 1 vector a thread (a row of 128256 bfloat16 is 16
  // tiles of 4, 63 of 1).
  int64_t penalty_min_tiles_per_sm = 1;
  // Rows whose every row start is vector-aligned take repetition_penalty_rows_kernel (blocks
  // of 128 threads, every load issued with the penalty's): one vector a thread below this
  // many rows, two from it. H200, bf16, 128256 logits a row, us, one / two vectors a thread
  // (torch.compile): 64 rows 14.0-14.1 / 14.4-14.5 (14.1-14.3), 128 rows 24.2-24.4 / 24.4-24.5
  // (24.4), 256 rows 46.0-46.1 / 45.6-45.9 (45.4-45.5), 512 rows 90.6-90.9 / 90.1-90.5
  // (90.0-90.5). Blocks of 256 threads: 256 rows 46.3-46.4 / 46.0-46.3. The tile kernel
  // these rows took before: 47.6-47.8 at 256 rows, 92.4-92.7 at 512.
  //
  // A row of penalty 1 is read (not written): loading a row only after its penalty is known
  // cost 3-5% where every row counts (256 rows: 47.1-48.1), a block walking 2 / 4 / 8 rows with
  // the next row's penalty loaded ahead 46.8-46.9 / 48.8 / 49.7. With every other row at
  // penalty 1, 256 rows take 39.5 us (torch.compile 45.5; the tile kernel, which skips those
  // rows unread, 26.1-26.4).
  int64_t penalty_two_vector_rows = 256;
  // The grid's y extent (rows) of repetition_penalty_rows_kernel; more rows take
  // repetition_penalty_kernel.
  int64_t max_grid_y = 65535;
  // Top-k: 1024-thread blocks while there are at most this many rows per SM, else 512.
  int64_t top_k_large_block_rows_per_sm = 1;
  int64_t max_grid_x = (int64_t{1} << 31) - 1;
};
constexpr SamplingPolicy kSamplingPolicy{};

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

template <typename CT, int VEC, int UNROLL, typename PT>
void launch_penalty_tiles(cudaStream_t stream, const PenaltyProblem& p, CT* logits,
                          const uint8_t* prompt, const uint8_t* output, const PT* penalties) {
  constexpr int64_t kTileVecs = int64_t{cuda::kPenaltyThreads} * UNROLL;
  // Tiles of kTileVecs vectors (or kTileVecs * VEC elements, for the rows that go element by
  // element) cover a row.
  const int64_t tiles_per_row = ceil_div(ceil_div(p.vocab, VEC), kTileVecs);
  const int64_t tiles = p.rows * tiles_per_row;
  // A block per tile. One wave of resident blocks walking the tiles measured slower: H200,
  // bf16, 256 x 128256, 55.3 us one wave (4 or 8 blocks per SM alike), 52.5 us a block per
  // tile (torch.compile 51.4).
  const int64_t grid = std::min(tiles, kSamplingPolicy.max_grid_x);
  // Tiles of one vector a thread (decode: fewer tiles than SMs): latency-bound, the loads go
  // out along with the penalty's (repetition_penalty_kernel, SPECULATIVE). Else a row of
  // penalty 1 is not read: the same time where every row counts (256 x 128256: 52.6 us,
  // 52.5 speculative), less where some rows do not.
  if (UNROLL == 1 && grid >= tiles) {
    launch_kernel(&cuda::repetition_penalty_kernel<CT, VEC, UNROLL, true, PT>,
                  static_cast<unsigned>(grid), cuda::kPenaltyThreads, 0, stream, logits,
                  p.logits_stride, prompt, p.prompt_stride, output, p.output_stride, penalties,
                  p.penalty_stride, p.rows, p.vocab, tiles_per_row);
  } else {
    launch_kernel(&cuda::repetition_penalty_kernel<CT, VEC, UNROLL, false, PT>,
                  static_cast<unsigned>(grid), cuda::kPenaltyThreads, 0, stream, logits,
                  p.logits_stride, prompt, p.prompt_stride, output, p.output_stride, penalties,
                  p.penalty_stride, p.rows, p.vocab, tiles_per_row);
  }
}

// Whether every row of logits (16-byte vectors of VEC elements) and of both masks (VEC
// bytes) starts on a vector boundary and holds whole vectors.
template <int VEC>
bool rows_vector_aligned(const PenaltyProblem& p, const void* logits, const uint8_t* prompt,
                         const uint8_t* output) {
  const auto aligned = [](const void* ptr, int64_t bytes) {
    return reinterpret_cast<uintptr_t>(ptr) % static_cast<uintptr_t>(bytes) == 0;
  };
  return p.vocab % VEC == 0 && p.logits_stride % VEC == 0 && p.prompt_stride % VEC == 0 &&
         p.output_stride % VEC == 0 && aligned(logits, 16) && aligned(prompt, VEC) &&
         aligned(output, VEC) && p.vocab / VEC < (int64_t{1} << 31) - 2 * cuda::kPenaltyRowThreads;
}

template <typename CT, int VEC, int VPT, typename PT>
void launch_penalty_rows(cudaStream_t stream, const PenaltyProblem& p, CT* logits,
                         const uint8_t* prompt, const uint8_t* output, const PT* penalties) {
  const int64_t nvec = p.vocab / VEC;
  const dim3 grid(static_cast<unsigned>(ceil_div(nvec, int64_t{cuda::kPenaltyRowThreads} * VPT)),
                  static_cast<unsigned>(p.rows));
  launch_kernel(&cuda::repetition_penalty_rows_kernel<CT, VEC, VPT, PT>, grid,
                cuda::kPenaltyRowThreads, 0, stream, logits, p.logits_stride, prompt,
                p.prompt_stride, output, p.output_stride, penalties, p.penalty_stride,
                static_cast<int>(nvec));
}

template <typename CT, int VEC, typename PT>
void launch_penalties(cudaStream_t stream, const PenaltyProblem& p, int sms, CT* logits,
                      const uint8_t* prompt, const uint8_t* output, const PT* penalties) {
  if (p.rows <= kSamplingPolicy.max_grid_y && rows_vector_aligned<VEC>(p, logits, prompt, output)) {
    if (p.rows < kSamplingPolicy.penalty_two_vector_rows) {
      launch_penalty_rows<CT, VEC, 1>(stream, p, logits, prompt, output, penalties);
    } else {
      launch_penalty_rows<CT, VEC, 2>(stream, p, logits, prompt, output, penalties);
    }
    return;
  }
  constexpr int64_t kTileVecs = int64_t{cuda::kPenaltyThreads} * cuda::kPenaltyUnroll;
  const int64_t tiles = p.rows * ceil_div(ceil_div(p.vocab, VEC), kTileVecs);
  if (tiles >= static_cast<int64_t>(sms) * kSamplingPolicy.penalty_min_tiles_per_sm) {
    launch_penalty_tiles<CT, VEC, cuda::kPenaltyUnroll>(stream, p, logits, prompt, output,
                                                        penalties);
  } else {
    launch_penalty_tiles<CT, VEC, 1>(stream, p, logits, prompt, output, penalties);
  }
}

}  // namespace

cudaError_t launch_apply_repetition_penalties(DType dtype, cudaStream_t stream,
                                              const PenaltyProblem& p, int sms, void* logits,
                                              const uint8_t* prompt, const uint8_t* output,
                                              const void* penalties) {
  return stablekernels::cuda::dispatch_float(dtype, [&](auto tag) {
    using CT = typename decltype(tag)::type;  // float, __half or __nv_bfloat16
    constexpr int kVec = stablekernels::cuda::kVec16<CT>;
    // The kernel decides per row between 16-byte and one-element accesses.
    if (p.float_penalties) {
      launch_penalties<CT, kVec>(stream, p, sms, static_cast<CT*>(logits), prompt, output,
                                 static_cast<const float*>(penalties));
    } else if constexpr (!std::is_same_v<CT, float>) {
      launch_penalties<CT, kVec>(stream, p, sms, static_cast<CT*>(logits), prompt, output,
                                 static_cast<const CT*>(penalties));
    }
  });
}

cudaError_t launch_top_k_per_row(cudaStream_t stream, const TopKProblem& p, int sms, const float* x,
                                 const int32_t* starts, const int32_t* ends, int32_t* out) {
  const auto blocks = static_cast<unsigned>(std::min(p.rows, kSamplingPolicy.max_grid_x));
  // One block per row: with few rows, larger blocks keep more of each row in flight.
  if (p.rows <= static_cast<int64_t>(sms) * kSamplingPolicy.top_k_large_block_rows_per_sm) {
    constexpr int kThreads = cuda::kTopKThreadsLarge;
    launch_kernel(&cuda::top_k_per_row_kernel<kThreads>, blocks, kThreads, 0, stream, x,
                  p.logits_stride, p.cols, starts, p.starts_stride, ends, p.ends_stride, out,
                  p.indices_stride, p.rows, p.k);
  } else {
    constexpr int kThreads = cuda::kTopKThreadsSmall;
    launch_kernel(&cuda::top_k_per_row_kernel<kThreads>, blocks, kThreads, 0, stream, x,
                  p.logits_stride, p.cols, starts, p.starts_stride, ends, p.ends_stride, out,
                  p.indices_stride, p.rows, p.k);
  }
  return cudaGetLastError();
}

}  // namespace stablekernels::sampling

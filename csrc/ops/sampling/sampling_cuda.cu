// SPDX-License-Identifier: Apache-2.0
// CUDA implementation of the sampling family: checks, launch policy, registration.

#include <torch/csrc/stable/library.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "core/cuda_utils.h"
#include "core/dispatch.h"
#include "ops/sampling/sampling.h"
#include "ops/sampling/sampling_kernels.cuh"

namespace stablekernels::sampling {
namespace {

// Launch policy, as data.
struct SamplingPolicy {
  // Penalties: blocks of cuda::kPenaltyThreads aimed for per SM; a row is cut into chunks
  // until the grid holds about that many blocks (fewer rows, more chunks per row).
  int penalty_blocks_per_sm = 8;
  // Top-k: 1024-thread blocks while there are at most this many rows per SM, else 512.
  int64_t top_k_large_block_rows_per_sm = 1;
  int64_t max_grid_x = (int64_t{1} << 31) - 1;
  int64_t max_grid_y = 65535;
};
constexpr SamplingPolicy kSamplingPolicy{};

int sm_count(int32_t device, const char* op) {
  int sms = 0;
  STABLEKERNELS_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device),
                           op);
  return std::max(sms, 1);
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

template <typename CT, int VEC, typename PT>
void launch_penalties(cudaStream_t stream, const PenaltyProblem& p, int sms, CT* logits,
                      const uint8_t* prompt, const uint8_t* output, const PT* penalties) {
  constexpr int64_t kThreads = cuda::kPenaltyThreads;
  const int64_t nvec = ceil_div(p.vocab, VEC);
  const int64_t target = static_cast<int64_t>(sms) * kSamplingPolicy.penalty_blocks_per_sm;
  const int64_t per_row =
      std::clamp<int64_t>(ceil_div(target, p.rows), 1, std::max<int64_t>(1, nvec / kThreads));
  const int64_t chunk_vecs = ceil_div(nvec, per_row);
  const int64_t chunks = ceil_div(nvec, chunk_vecs);
  const dim3 grid(static_cast<unsigned>(std::min(p.rows, kSamplingPolicy.max_grid_x)),
                  static_cast<unsigned>(std::min(chunks, kSamplingPolicy.max_grid_y)));
  cuda::repetition_penalty_kernel<CT, VEC, PT><<<grid, cuda::kPenaltyThreads, 0, stream>>>(
      logits, p.logits_stride, prompt, p.prompt_stride, output, p.output_stride, penalties,
      p.penalty_stride, p.rows, p.vocab, chunk_vecs * VEC, chunks);
}

void apply_repetition_penalties_cuda(const Tensor& logits, const Tensor& prompt_mask,
                                     const Tensor& output_mask,
                                     const Tensor& repetition_penalties) {
  constexpr const char* op = "apply_repetition_penalties_";
  const PenaltyProblem p =
      check_apply_repetition_penalties(logits, prompt_mask, output_mask, repetition_penalties);
  if (p.rows == 0 || p.vocab == 0) {
    return;
  }
  CudaLaunchContext ctx(logits, op);
  const int sms = sm_count(logits.get_device_index(), op);
  const auto* prompt = static_cast<const uint8_t*>(prompt_mask.data_ptr());
  const auto* output = static_cast<const uint8_t*>(output_mask.data_ptr());
  dispatch_float_types(logits.scalar_type(), op, "logits", [&](auto tag) {
    using CT = cuda_type_t<decltype(tag)>;
    constexpr int kVec = stablekernels::cuda::kVec16<CT>;
    // The kernel decides per row between 16-byte and one-element accesses.
    if (p.float_penalties) {
      launch_penalties<CT, kVec>(ctx.stream, p, sms, cuda_ptr<CT>(logits), prompt, output,
                                 cuda_ptr<float>(repetition_penalties));
    } else if constexpr (!std::is_same_v<CT, float>) {
      launch_penalties<CT, kVec>(ctx.stream, p, sms, cuda_ptr<CT>(logits), prompt, output,
                                 cuda_ptr<CT>(repetition_penalties));
    }
  });
  STABLEKERNELS_KERNEL_LAUNCH_CHECK(op);
}

void top_k_per_row_cuda(const Tensor& logits, const Tensor& row_starts, const Tensor& row_ends,
                        const Tensor& indices, int64_t k) {
  constexpr const char* op = "top_k_per_row";
  const TopKProblem p = check_top_k_per_row(logits, row_starts, row_ends, indices, k);
  if (p.rows == 0) {
    return;
  }
  CudaLaunchContext ctx(logits, op);
  const int sms = sm_count(logits.get_device_index(), op);
  const auto blocks = static_cast<unsigned>(std::min(p.rows, kSamplingPolicy.max_grid_x));
  const auto* x = static_cast<const float*>(logits.data_ptr());
  const auto* starts = static_cast<const int32_t*>(row_starts.data_ptr());
  const auto* ends = static_cast<const int32_t*>(row_ends.data_ptr());
  auto* out = static_cast<int32_t*>(indices.data_ptr());
  // One block per row: with few rows, larger blocks keep more of each row in flight.
  if (p.rows <= static_cast<int64_t>(sms) * kSamplingPolicy.top_k_large_block_rows_per_sm) {
    constexpr int kThreads = cuda::kTopKThreadsLarge;
    cuda::top_k_per_row_kernel<kThreads><<<blocks, kThreads, 0, ctx.stream>>>(
        x, p.logits_stride, p.cols, starts, p.starts_stride, ends, p.ends_stride, out,
        p.indices_stride, p.rows, p.k);
  } else {
    constexpr int kThreads = cuda::kTopKThreadsSmall;
    cuda::top_k_per_row_kernel<kThreads><<<blocks, kThreads, 0, ctx.stream>>>(
        x, p.logits_stride, p.cols, starts, p.starts_stride, ends, p.ends_stride, out,
        p.indices_stride, p.rows, p.k);
  }
  STABLEKERNELS_KERNEL_LAUNCH_CHECK(op);
}

}  // namespace
}  // namespace stablekernels::sampling

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CUDA, m) {
  m.impl("apply_repetition_penalties_",
         TORCH_BOX(&stablekernels::sampling::apply_repetition_penalties_cuda));
  m.impl("top_k_per_row", TORCH_BOX(&stablekernels::sampling::top_k_per_row_cuda));
}

// SPDX-License-Identifier: Apache-2.0
// CUDA launch code of the hadamard family: launch policy, the shared-memory attribute,
// template instantiation, launches. Torch-free (nvcc compiles it; docs/farm.md says why):
// the checks, tensors and registration are in hadamard_cuda.cpp.

#include <algorithm>
#include <cstdint>

#include "ops/hadamard/hadamard_kernels.cuh"
#include "ops/hadamard/hadamard_launch.h"
#include "ops/hadamard/hadamard_math.h"
#include "ops/hadamard/hadamard_tuning.h"
#include "stablekernels/cuda_dispatch.cuh"
#include "stablekernels/kernel_launch.cuh"
#include "stablekernels/launch.h"
#include "stablekernels/occupancy.cuh"

namespace stablekernels::hadamard {
namespace {

// Allows `bytes` of dynamic shared memory for `kernel` on the current device, whose limit
// per block is `optin` bytes; reports (smem_bytes) when the device offers less.
template <typename Kernel>
HadamardLaunchStatus allow_shared_memory(Kernel kernel, int64_t bytes, int optin) {
  constexpr int64_t kDefaultLimit = 48 * 1024;
  HadamardLaunchStatus s;
  if (bytes <= kDefaultLimit) {
    return s;
  }
  if (bytes > optin) {
    s.smem_bytes = bytes;
    return s;
  }
  s.err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                               static_cast<int>(bytes));
  if (s.err != cudaSuccess) {
    s.call =
        "cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, "
        "static_cast<int>(bytes))";
  }
  return s;
}

template <typename CT, int EPT>
HadamardLaunchStatus launch_fast(cudaStream_t stream, CT* out, const RowIndexer& orows,
                                 const CT* in, const RowIndexer& irows, int64_t rows, int log_n,
                                 float scale) {
  const HadamardConfig c = hadamard_config(log_n);
  const int log_tpr = cuda::ilog2(c.tpr);
  const int threads = std::max(c.tpr, kHadamardPolicy.min_block_threads);
  static_assert(kHadamardPolicy.min_block_threads <= cuda::kMaxBlockThreads);
  const int rows_per_block = threads / c.tpr;
  const int64_t blocks =
      std::min<int64_t>((rows + rows_per_block - 1) / rows_per_block, kHadamardPolicy.max_blocks);
  launch_kernel(&cuda::hadamard_kernel<CT, EPT>, static_cast<unsigned>(blocks), threads, 0, stream,
                out, orows, in, irows, rows, log_n, log_tpr, scale);
  return HadamardLaunchStatus{};
}

// The status of a failed occupancy query (its error is pending).
HadamardLaunchStatus occupancy_failed() {
  HadamardLaunchStatus failed;
  failed.err = cudaGetLastError();
  failed.call = "cudaOccupancyMaxActiveBlocksPerMultiprocessor";
  return failed;
}

// 16-bit rows of n = 2^LOG_N (kWide) through hadamard_wide_kernel, where its shared memory
// (the float32 row and the staged next row) fits the device's limit per block and as many
// blocks are resident as the launch bounds plan for (one per SM at n = 32768, two at 16384,
// four at 8192, 128 registers a thread); the grid is the resident blocks. false: it does
// not fit (the A100, whose shared memory holds one block of 16384, none of 32768 and three
// of 8192), the caller launches hadamard_xpose_kernel.
template <typename CT, int LOG_N>
bool launch_wide(HadamardLaunchStatus& s, cudaStream_t stream, CT* out, const RowIndexer& orows,
                 const CT* in, const RowIndexer& irows, int64_t rows, float scale, int optin,
                 int sms) {
  using W = cuda::WideShape<LOG_N>;
  constexpr int64_t kSmem = W::kSmem;
  constexpr auto kernel = &cuda::hadamard_wide_kernel<CT, LOG_N>;
  if (kSmem > optin) {
    return false;
  }
  s = allow_shared_memory(kernel, kSmem, optin);
  if (!s.ok()) {
    return true;
  }
  const int64_t resident =
      stablekernels::cuda::resident_blocks<kernel>(W::kThreads, static_cast<size_t>(kSmem), sms);
  if (resident == 0) {
    s = occupancy_failed();
    return true;
  }
  if (resident < W::kMinBlocks * int64_t{sms}) {
    return false;  // fewer threads per SM than the launch bounds plan for
  }
  const int64_t blocks = std::min(rows, resident);
  launch_kernel(kernel, static_cast<unsigned>(blocks), W::kThreads, static_cast<size_t>(kSmem),
                stream, out, orows, in, irows, rows, scale);
  return true;
}

template <typename CT, int LOG_N>
HadamardLaunchStatus launch_xpose(cudaStream_t stream, CT* out, const RowIndexer& orows,
                                  const CT* in, const RowIndexer& irows, int64_t rows, float scale,
                                  int optin, int sms) {
  constexpr int kRows = kXposeRowsPerBlock<LOG_N>;
  constexpr int kThreads = (1 << (LOG_N - 5)) * kRows;
  constexpr int64_t kSmem = int64_t{kRows} << LOG_N << 2;  // kRows rows of float32
  constexpr auto kernel = &cuda::hadamard_xpose_kernel<CT, LOG_N, false>;
  if constexpr (cuda::kWide<CT, LOG_N>) {
    if (LOG_N >= kWideAllRowsLogN || rows > sms) {
      HadamardLaunchStatus ws;
      if (launch_wide<CT, LOG_N>(ws, stream, out, orows, in, irows, rows, scale, optin, sms)) {
        return ws;
      }
    }
  }
  // Past one row an SM and up to kMmaMaxWaves times the rows of the resident blocks, rows
  // of one collapsed dim (the common layouts): the tensor-core kernel (hadamard_tuning.h).
  if constexpr (cuda::kMma<CT, LOG_N>) {
    if (rows > sms && orows.ndim == 1 && irows.ndim == 1) {
      using M = cuda::MmaShape<LOG_N>;
      constexpr auto mma = &cuda::hadamard_mma_kernel<CT, LOG_N>;
      const int64_t resident = stablekernels::cuda::resident_blocks<mma>(
          M::kThreads, static_cast<size_t>(M::kSmem), sms);
      if (resident == 0) {
        return occupancy_failed();
      }
      if (rows <= kMmaMaxWaves * resident * M::kRows) {
        const int64_t blocks = std::min((rows + M::kRows - 1) / M::kRows, resident);
        launch_kernel(mma, static_cast<unsigned>(blocks), M::kThreads,
                      static_cast<size_t>(M::kSmem), stream, out, StridedRows{orows.strides[0]}, in,
                      StridedRows{irows.strides[0]}, rows, scale);
        return HadamardLaunchStatus{};
      }
    }
  }
  const HadamardLaunchStatus s = allow_shared_memory(kernel, kSmem, optin);
  if (!s.ok()) {
    return s;
  }
  const int64_t needed = (rows + kRows - 1) / kRows;
  // Staged rows where the device's shared memory keeps as many blocks resident with the
  // staging space as without it (the H100 and H200 do from n = 1024 to 8192).
  if constexpr (cuda::kXposeStaged<CT, LOG_N>) {
    constexpr int64_t kStagedSmem = kSmem + (int64_t{kRows} << LOG_N) * int64_t{sizeof(CT)};
    constexpr auto staged = &cuda::hadamard_xpose_kernel<CT, LOG_N, true>;
    if (kStagedSmem <= optin) {
      const HadamardLaunchStatus st = allow_shared_memory(staged, kStagedSmem, optin);
      if (!st.ok()) {
        return st;
      }
      const int64_t staged_blocks = stablekernels::cuda::resident_blocks<staged>(
          kThreads, static_cast<size_t>(kStagedSmem), sms);
      const int64_t plain_blocks =
          stablekernels::cuda::resident_blocks<kernel>(kThreads, static_cast<size_t>(kSmem), sms);
      if (staged_blocks == 0 || plain_blocks == 0) {
        return occupancy_failed();
      }
      if (staged_blocks >= plain_blocks) {
        const int64_t blocks = std::min(needed, staged_blocks);
        launch_kernel(staged, static_cast<unsigned>(blocks), kThreads,
                      static_cast<size_t>(kStagedSmem), stream, out, orows, in, irows, rows, scale);
        return st;
      }
    }
  }
  const int64_t blocks = std::min<int64_t>(needed, kHadamardPolicy.max_blocks);
  launch_kernel(kernel, static_cast<unsigned>(blocks), kThreads, static_cast<size_t>(kSmem), stream,
                out, orows, in, irows, rows, scale);
  return s;
}

template <typename CT>
HadamardLaunchStatus launch(cudaStream_t stream, CT* out, const RowIndexer& orows, const CT* in,
                            const RowIndexer& irows, int64_t rows, int log_n, int optin, int sms) {
  const int64_t n = int64_t{1} << log_n;
  const float scale = normalization(n);
  const HadamardConfig c = hadamard_config(log_n);
  const int vec = std::min<int>(c.ept, stablekernels::cuda::kVec16<CT>);
  const int size = static_cast<int>(sizeof(CT));
  if (log_n >= kXposeMinLogN && can_use_vec16<CT>(n, {out, in}, {&orows, &irows})) {
    static_assert(kXposeMinLogN == 10 && kMaxLogN == 15, "one case per size below");
    switch (log_n) {
      case 10: return launch_xpose<CT, 10>(stream, out, orows, in, irows, rows, scale, optin, sms);
      case 11: return launch_xpose<CT, 11>(stream, out, orows, in, irows, rows, scale, optin, sms);
      case 12: return launch_xpose<CT, 12>(stream, out, orows, in, irows, rows, scale, optin, sms);
      case 13: return launch_xpose<CT, 13>(stream, out, orows, in, irows, rows, scale, optin, sms);
      case 14: return launch_xpose<CT, 14>(stream, out, orows, in, irows, rows, scale, optin, sms);
      default: return launch_xpose<CT, 15>(stream, out, orows, in, irows, rows, scale, optin, sms);
    }
  }
  // Below 1024 elements a row fits one warp (hadamard_kernel); rows of 1024 and more that
  // do not allow 16-byte access take the generic kernel.
  if (log_n < kXposeMinLogN && can_use_vec(vec, size, n, {out, in}, {&orows, &irows})) {
    static_assert(hadamard_config(kXposeMinLogN - 1).tpr <= 32,
                  "a row of hadamard_kernel is a warp");
    switch (c.ept) {
      case 1: return launch_fast<CT, 1>(stream, out, orows, in, irows, rows, log_n, scale);
      case 2: return launch_fast<CT, 2>(stream, out, orows, in, irows, rows, log_n, scale);
      case 4: return launch_fast<CT, 4>(stream, out, orows, in, irows, rows, log_n, scale);
      case 8: return launch_fast<CT, 8>(stream, out, orows, in, irows, rows, log_n, scale);
      case 16: return launch_fast<CT, 16>(stream, out, orows, in, irows, rows, log_n, scale);
      default: {
        HadamardLaunchStatus s;
        s.missing_ept = c.ept;
        return s;
      }
    }
  }
  const int64_t smem = n * static_cast<int64_t>(sizeof(float));
  auto kernel = &cuda::hadamard_generic_kernel<CT>;
  const HadamardLaunchStatus s = allow_shared_memory(kernel, smem, optin);
  if (!s.ok()) {
    return s;
  }
  const int threads =
      static_cast<int>(std::clamp<int64_t>(n / 2, 32, kHadamardPolicy.generic_threads));
  const int64_t blocks = std::min<int64_t>(rows, kHadamardPolicy.max_blocks);
  launch_kernel(kernel, static_cast<unsigned>(blocks), threads, static_cast<size_t>(smem), stream,
                out, orows, in, irows, rows, log_n, scale);
  return s;
}

}  // namespace

HadamardLaunchStatus launch_hadacore_transform(DType dtype, cudaStream_t stream, void* out,
                                               const RowIndexer& orows, const void* in,
                                               const RowIndexer& irows, int64_t rows, int log_n,
                                               int smem_optin, int sms) {
  HadamardLaunchStatus s;
  const cudaError_t err = stablekernels::cuda::dispatch_float(dtype, [&](auto tag) {
    using CT = typename decltype(tag)::type;  // float, __half or __nv_bfloat16
    s = launch<CT>(stream, static_cast<CT*>(out), orows, static_cast<const CT*>(in), irows, rows,
                   log_n, smem_optin, sms);
  });
  if (s.ok() && err != cudaSuccess) {
    s.err = err;
    s.call = "cudaGetLastError()";
  }
  return s;
}

}  // namespace stablekernels::hadamard

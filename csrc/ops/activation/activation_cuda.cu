// SPDX-License-Identifier: Apache-2.0
// CUDA launch code of the activation family: launch policy, template instantiation,
// launches. Torch-free (nvcc compiles it; docs/farm.md says why): the checks, tensors
// and registration are in activation_cuda.cpp.

#include <algorithm>

#include "ops/activation/activation_kernels.cuh"
#include "ops/activation/activation_launch.h"
#include "ops/activation/activation_math.h"
#include "stablekernels/cuda_dispatch.cuh"
#include "stablekernels/kernel_launch.cuh"
#include "stablekernels/launch.h"

namespace stablekernels::activation {
namespace {

// Launch policy, as data. Measured on an H200 (bf16, 16384 x 2*8192): 128 threads x 2
// vectors per thread moved 93% of copy bandwidth for silu_and_mul, against 82-89% for
// 256 threads or 1 or 4 vectors. Decode-sized inputs (<= decode_rows rows) take 1 vector
// per thread, twice the blocks: silu_and_mul 1 x 8192 under CUDA graphs 2.52-2.96 us
// (two runs) against 3.21 us with 2 (32 x 8192: 2.93-3.19 against 3.49 us); 64-thread
// blocks measured no better. And 8-byte vectors instead of 16 there: a small launch
// waits for its threads' critical paths, which half the elements a thread shortens.
// H200, bf16, us per call in a CUDA graph of 32 calls, 16-byte / 8-byte / 4-byte vectors
// (torch.compile): 1 x 8192 silu 1.35 / 1.31 / 1.32 (1.22), gelu 1.44 / 1.33 / 1.34
// (1.24), gelu_tanh 1.36 / 1.31 / 1.32 (1.23); 32 x 14336 gelu 2.00 / 1.96 / 2.32
// (2.02), silu 1.81 / 1.80 / 2.27 (1.76). Rows at one stride (any contiguous input) take
// act_and_mul_strided_kernel, whose grid puts a row's chunks on x (consecutive blocks on
// consecutive memory); other row layouts act_and_mul_kernel (rows on x, a RowIndexer).
struct ActPolicy {
  int threads = 128;
  // Up to this many rows, 1 vector per thread per chunk (the kernel's UNROLL); 2 above.
  int64_t decode_rows = 64;
  // ... and 8-byte vectors up to this many bytes of output (above). Larger decode outputs
  // (float32 rows of 14336) keep 16-byte vectors. H200, float32, us per call in a CUDA graph
  // of 32 calls, 8-byte / 16-byte vectors (torch.compile), two rounds: 32 x 14336 silu
  // 2.49 / 1.95-1.97 (1.79-1.81), gelu 2.48 / 1.90-1.91 (2.01-2.02); 32 x 8192 (1 MiB of
  // output) gelu 1.54-1.55 / 1.64-1.65 (1.66-1.67). bf16 32 x 14336 (0.9 MiB) keeps 8 bytes:
  // silu 1.39 / 1.55 (1.76).
  int64_t half_vec_max_bytes = int64_t{1} << 20;
  int64_t max_blocks_x = (int64_t{1} << 31) - 1;
  int64_t max_blocks_y = 65535;
  // act_and_mul_strided_kernel indexes a row's vectors in 32 bits: rows of fewer vectors.
  int64_t max_strided_vecs = int64_t{1} << 30;
};
constexpr ActPolicy kActPolicy{};

template <typename Act, typename CT, int VEC, int UNROLL>
void launch_unrolled(cudaStream_t s, int threads, CT* out, const RowIndexer& orows, const CT* in,
                     const RowIndexer& irows, int64_t rows, int64_t d) {
  const int64_t nvec = d / VEC;
  const int64_t chunk = static_cast<int64_t>(threads) * UNROLL;
  const dim3 grid(
      static_cast<unsigned>(std::min(rows, kActPolicy.max_blocks_x)),
      static_cast<unsigned>(std::min((nvec + chunk - 1) / chunk, kActPolicy.max_blocks_y)));
  launch_kernel(&cuda::act_and_mul_kernel<Act, CT, VEC, UNROLL>, grid, threads, 0, s, out, orows,
                in, irows, rows, d);
}

// Rows at one stride each (ndim 1): act_and_mul_strided_kernel, chunks of a row on grid.x.
template <typename Act, typename CT, int VEC, int UNROLL>
void launch_strided(cudaStream_t s, int threads, CT* out, int64_t ostride, const CT* in,
                    int64_t istride, int64_t rows, int64_t nvec) {
  const int64_t chunk = static_cast<int64_t>(threads) * UNROLL;
  const dim3 grid(static_cast<unsigned>((nvec + chunk - 1) / chunk),
                  static_cast<unsigned>(std::min(rows, kActPolicy.max_blocks_y)));
  launch_kernel(&cuda::act_and_mul_strided_kernel<Act, CT, VEC, UNROLL>, grid, threads, 0, s, out,
                ostride, in, istride, rows, static_cast<int32_t>(nvec));
}

template <typename Act, typename CT, int VEC>
void launch(cudaStream_t s, CT* out, const RowIndexer& orows, const CT* in, const RowIndexer& irows,
            int64_t rows, int64_t d) {
  const bool decode = rows <= kActPolicy.decode_rows;
  // Decode rows of 16-byte vectors, up to half_vec_max_bytes of output, go 8 bytes a thread
  // (twice the threads, half the instructions a thread): kActPolicy.
  if constexpr (VEC > 1 && VEC * sizeof(CT) == 16) {
    if (decode && rows * d * static_cast<int64_t>(sizeof(CT)) <= kActPolicy.half_vec_max_bytes) {
      launch<Act, CT, VEC / 2>(s, out, orows, in, irows, rows, d);
      return;
    }
  }
  const int64_t nvec = d / VEC;
  const int threads = static_cast<int>(
      std::min<int64_t>(kActPolicy.threads, std::max<int64_t>(32, (nvec + 31) / 32 * 32)));
  if (orows.ndim == 1 && irows.ndim == 1 && nvec < kActPolicy.max_strided_vecs) {
    if (decode) {
      launch_strided<Act, CT, VEC, 1>(s, threads, out, orows.strides[0], in, irows.strides[0], rows,
                                      nvec);
    } else {
      launch_strided<Act, CT, VEC, 2>(s, threads, out, orows.strides[0], in, irows.strides[0], rows,
                                      nvec);
    }
  } else if (decode) {
    launch_unrolled<Act, CT, VEC, 1>(s, threads, out, orows, in, irows, rows, d);
  } else {
    launch_unrolled<Act, CT, VEC, 2>(s, threads, out, orows, in, irows, rows, d);
  }
}

template <typename Act>
cudaError_t act_and_mul(DType dtype, cudaStream_t stream, void* out_ptr, const RowIndexer& orows,
                        const void* in_ptr, const RowIndexer& irows, int64_t rows, int64_t d) {
  return stablekernels::cuda::dispatch_float(dtype, [&](auto tag) {
    using CT = typename decltype(tag)::type;
    constexpr int kVec = stablekernels::cuda::kVec16<CT>;
    CT* out = static_cast<CT*>(out_ptr);
    const CT* in = static_cast<const CT*>(in_ptr);
    if (can_use_vec16<CT>(d, {out, in}, {&orows, &irows})) {
      launch<Act, CT, kVec>(stream, out, orows, in, irows, rows, d);
    } else {
      launch<Act, CT, 1>(stream, out, orows, in, irows, rows, d);
    }
  });
}

}  // namespace

cudaError_t launch_act_and_mul(ActKind act, DType dtype, cudaStream_t stream, void* out,
                               const RowIndexer& orows, const void* in, const RowIndexer& irows,
                               int64_t rows, int64_t d) {
  switch (act) {
    case ActKind::kSilu: return act_and_mul<Silu>(dtype, stream, out, orows, in, irows, rows, d);
    case ActKind::kGelu: return act_and_mul<Gelu>(dtype, stream, out, orows, in, irows, rows, d);
    case ActKind::kGeluTanh:
      return act_and_mul<GeluTanh>(dtype, stream, out, orows, in, irows, rows, d);
  }
  return cudaErrorInvalidValue;
}

}  // namespace stablekernels::activation

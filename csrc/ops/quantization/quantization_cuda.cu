// SPDX-License-Identifier: Apache-2.0
// CUDA launch code of the quantization family: launch policy, template instantiation,
// launches. Torch-free (nvcc compiles it; docs/farm.md says why): the checks, tensors,
// SM count and registration are in quantization_cuda.cpp.

#include <algorithm>

#include "ops/quantization/quantization_kernels.cuh"
#include "ops/quantization/quantization_launch.h"
#include "stablekernels/cuda_dispatch.cuh"
#include "stablekernels/launch.h"

namespace stablekernels::quantization {
namespace {

// Launch policy, as data.
struct QuantPolicy {
  // Per tensor: blocks per SM of the grid-stride kernels. 8 x 256 threads fill an SM, but
  // four times that (later blocks take the place of those that finish first) measured
  // better, and more blocks than vectors (one vector a thread, no loop) worse; the amax adds
  // one atomic a block. H200, bf16, us, 8 / 16 / 32 / one vector a thread: static 16384 x
  // 8192 108.7 / 106.5 / 102.0 / 126.3, 16384 x 4096 57.4 / 56.4 / 53.9 / 66.4; dynamic
  // 16384 x 8192 182.5 / 174.3 / 167.3 / 232.3; 4096 x 4096 level (18.2-18.4 static).
  int flat_blocks_per_sm = 32;
  // Per token: vectors per thread in the register kernel grow in powers of two up to this
  // many until a row fits in cuda::kRowKernelThreads threads; longer rows use the generic
  // two-pass kernel.
  int per_token_max_items = 8;
  // dynamic_scaled_fp8_quant in one kernel (dynamic_quant_one_block_kernel) for dense inputs
  // of at most cuda::kOneBlockThreads x cuda::kOneBlockMaxItems 16-byte vectors (64K 16-bit
  // elements): one SM reads that in about the time the two-kernel path spends on its extra
  // launch and the scale zeroing (~2-3 us in decode). Vectors per thread grow in powers of
  // two while a block would need more than this many threads, then threads grow.
  int one_block_threads = 256;
  // Dense walks of at most this many elements (64 tokens of 16384) take
  // quantize_decode_kernel: one vector of kDecodeVec elements a thread (8 bytes of 16-bit
  // input), no loop. H200, bf16, us per call in a CUDA graph of 32 calls, static, the
  // grid-stride kernel with 16-byte vectors / with 8-byte vectors (torch.compile): 1 x 4096
  // 1.60 / 1.53 (1.18), 1 x 8192 1.61 / 1.57 (1.19), 32 x 8192 1.88 / 1.83 (1.45).
  long long decode_max_elems = 1LL << 20;
  long long max_blocks = 1LL << 30;
};
constexpr QuantPolicy kQuantPolicy{};

template <typename CT>
int flat_vec(const FlatWalk& w, const void* out, const void* in) {
  const bool ok = out != nullptr ? can_use_vec16<CT>(w.hidden, {out, in}, {&w.out_rows, &w.in_rows})
                                 : can_use_vec16<CT>(w.hidden, {in}, {&w.in_rows});
  return ok ? stablekernels::cuda::kVec16<CT> : 1;
}

// Dense walks: one vector per thread while that fits under the cap; past it, threads loop
// (kFlatUnroll vectors per iteration). Row walks: one tile of a row per block iteration.
unsigned flat_blocks(const FlatWalk& w, int64_t nvec, int sms) {
  constexpr int64_t kThreads = cuda::kFlatThreads;
  const int64_t needed =
      w.rows == 1 ? (nvec + kThreads - 1) / kThreads : w.rows * ((nvec + kThreads - 1) / kThreads);
  const int64_t cap = static_cast<int64_t>(sms) * kQuantPolicy.flat_blocks_per_sm;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(needed, cap)));
}

template <typename CT, int VEC>
void launch_quantize(cudaStream_t s, const FlatWalk& w, uint8_t* out, const CT* in,
                     const float* scale, int sms, bool backward) {
  const int64_t nvec = w.hidden / VEC;
  const unsigned blocks = flat_blocks(w, nvec, sms);
  if (w.rows == 1) {
    cuda::quantize_kernel<CT, VEC, true><<<blocks, cuda::kFlatThreads, 0, s>>>(
        out, w.out_rows, in, w.in_rows, scale, w.rows, nvec, backward);
  } else {
    cuda::quantize_kernel<CT, VEC, false><<<blocks, cuda::kFlatThreads, 0, s>>>(
        out, w.out_rows, in, w.in_rows, scale, w.rows, nvec, backward);
  }
}

template <typename CT, int VEC>
void launch_amax(cudaStream_t s, const FlatWalk& w, float* scale, const CT* in, int sms) {
  const int64_t nvec = w.hidden / VEC;
  const unsigned blocks = flat_blocks(w, nvec, sms);
  if (w.rows == 1) {
    cuda::tensor_amax_kernel<CT, VEC, true>
        <<<blocks, cuda::kFlatThreads, 0, s>>>(scale, in, w.in_rows, w.rows, nvec);
  } else {
    cuda::tensor_amax_kernel<CT, VEC, false>
        <<<blocks, cuda::kFlatThreads, 0, s>>>(scale, in, w.in_rows, w.rows, nvec);
  }
}

template <typename CT, int VEC>
void launch_per_token(cudaStream_t st, int items, int threads, unsigned blocks, uint8_t* out,
                      const RowIndexer& orows, const CT* in, const RowIndexer& irows, float* scale,
                      int64_t scale_stride, const float* ub, int64_t rows, int hidden) {
  switch (items) {
    case 1:
      cuda::per_token_kernel<CT, VEC, 1><<<blocks, threads, 0, st>>>(
          out, orows, in, irows, scale, scale_stride, ub, rows, hidden);
      break;
    case 2:
      cuda::per_token_kernel<CT, VEC, 2><<<blocks, threads, 0, st>>>(
          out, orows, in, irows, scale, scale_stride, ub, rows, hidden);
      break;
    case 4:
      cuda::per_token_kernel<CT, VEC, 4><<<blocks, threads, 0, st>>>(
          out, orows, in, irows, scale, scale_stride, ub, rows, hidden);
      break;
    case 8:
      cuda::per_token_kernel<CT, VEC, 8><<<blocks, threads, 0, st>>>(
          out, orows, in, irows, scale, scale_stride, ub, rows, hidden);
      break;
    default:
      cuda::per_token_generic_kernel<CT, VEC><<<blocks, threads, 0, st>>>(
          out, orows, in, irows, scale, scale_stride, ub, rows, hidden);
  }
}

// Vectors per thread and threads of dynamic_quant_one_block_kernel for nvec vectors, or
// items == 0 when the input is too large for one block.
struct OneBlockShape {
  int items = 0;
  int threads = 0;
};

OneBlockShape one_block_shape(int64_t nvec) {
  OneBlockShape b;
  int items = 1;
  while (items < cuda::kOneBlockMaxItems &&
         (nvec + items - 1) / items > kQuantPolicy.one_block_threads) {
    items *= 2;
  }
  const int64_t threads = std::max<int64_t>(32, ((nvec + items - 1) / items + 31) / 32 * 32);
  if (threads <= cuda::kOneBlockThreads) {
    b.items = items;
    b.threads = static_cast<int>(threads);
  }
  return b;
}

template <typename CT, int VEC>
void launch_one_block(cudaStream_t s, OneBlockShape b, uint8_t* out, float* scale, const CT* in,
                      int64_t nvec) {
  switch (b.items) {
    case 1:
      cuda::dynamic_quant_one_block_kernel<CT, VEC, 1>
          <<<1, b.threads, 0, s>>>(out, scale, in, nvec);
      break;
    case 2:
      cuda::dynamic_quant_one_block_kernel<CT, VEC, 2>
          <<<1, b.threads, 0, s>>>(out, scale, in, nvec);
      break;
    case 4:
      cuda::dynamic_quant_one_block_kernel<CT, VEC, 4>
          <<<1, b.threads, 0, s>>>(out, scale, in, nvec);
      break;
    default:
      static_assert(cuda::kOneBlockMaxItems == 8, "one case per power of two");
      cuda::dynamic_quant_one_block_kernel<CT, VEC, 8>
          <<<1, b.threads, 0, s>>>(out, scale, in, nvec);
  }
}

}  // namespace

bool dynamic_quant_fits_one_block(DType dtype, const FlatWalk& w, const void* out, const void* in) {
  const auto fits = [&](auto tag) {
    using CT = typename decltype(tag)::type;
    constexpr int kVec = stablekernels::cuda::kVec16<CT>;
    return w.rows == 1 && w.hidden > 0 && flat_vec<CT>(w, out, in) == kVec &&
           one_block_shape(w.hidden / kVec).items > 0;
  };
  using stablekernels::cuda::TypeTag;
  switch (dtype) {
    case DType::kFloat32: return fits(TypeTag<float>{});
    case DType::kFloat16: return fits(TypeTag<__half>{});
    case DType::kBFloat16: return fits(TypeTag<__nv_bfloat16>{});
    default: return false;
  }
}

cudaError_t launch_dynamic_quant_one_block(DType dtype, cudaStream_t stream, const FlatWalk& w,
                                           uint8_t* out, float* scale, const void* in_ptr) {
  return stablekernels::cuda::dispatch_float(dtype, [&](auto tag) {
    using CT = typename decltype(tag)::type;
    constexpr int kVec = stablekernels::cuda::kVec16<CT>;
    const int64_t nvec = w.hidden / kVec;
    launch_one_block<CT, kVec>(stream, one_block_shape(nvec), out, scale,
                               static_cast<const CT*>(in_ptr), nvec);
  });
}

cudaError_t launch_quantize_tensor(DType dtype, cudaStream_t stream, const FlatWalk& w,
                                   uint8_t* out, const void* in_ptr, const float* scale, int sms,
                                   bool backward) {
  return stablekernels::cuda::dispatch_float(dtype, [&](auto tag) {
    using CT = typename decltype(tag)::type;
    const CT* in = static_cast<const CT*>(in_ptr);
    constexpr int kDecodeVec = 4;  // elements
    const int vec = flat_vec<CT>(w, out, in);
    if (w.rows == 1 && w.hidden <= kQuantPolicy.decode_max_elems && vec > 1) {
      constexpr int kThreads = cuda::kFlatThreads;
      const int64_t nvec = w.hidden / kDecodeVec;
      cuda::quantize_decode_kernel<CT, kDecodeVec>
          <<<static_cast<unsigned>((nvec + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
              out, in, scale, static_cast<int>(nvec));
      return;
    }
    if (vec == 1) {
      launch_quantize<CT, 1>(stream, w, out, in, scale, sms, backward);
    } else {
      launch_quantize<CT, stablekernels::cuda::kVec16<CT>>(stream, w, out, in, scale, sms,
                                                           backward);
    }
  });
}

cudaError_t launch_tensor_amax(DType dtype, cudaStream_t stream, const FlatWalk& w, float* scale,
                               const void* in_ptr, int sms) {
  return stablekernels::cuda::dispatch_float(dtype, [&](auto tag) {
    using CT = typename decltype(tag)::type;
    const CT* in = static_cast<const CT*>(in_ptr);
    if (flat_vec<CT>(w, nullptr, in) == 1) {
      launch_amax<CT, 1>(stream, w, scale, in, sms);
    } else {
      launch_amax<CT, stablekernels::cuda::kVec16<CT>>(stream, w, scale, in, sms);
    }
  });
}

cudaError_t launch_per_token_quant(DType dtype, cudaStream_t stream, uint8_t* out,
                                   const RowIndexer& orows, const void* in_ptr,
                                   const RowIndexer& irows, float* s, int64_t scale_stride,
                                   const float* ub, int64_t rows, int64_t hidden_len) {
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(rows, kQuantPolicy.max_blocks));
  const int hidden = static_cast<int>(hidden_len);
  return stablekernels::cuda::dispatch_float(dtype, [&](auto tag) {
    using CT = typename decltype(tag)::type;
    const CT* in = static_cast<const CT*>(in_ptr);
    const int vec = can_use_vec16<CT>(hidden_len, {out, in}, {&orows, &irows})
                        ? stablekernels::cuda::kVec16<CT>
                        : 1;
    const int64_t nvec = hidden_len / vec;
    constexpr int64_t kThreads = cuda::kRowKernelThreads;
    int items = 1;
    while (items < kQuantPolicy.per_token_max_items && (nvec + items - 1) / items > kThreads) {
      items *= 2;
    }
    const int64_t per_thread = (nvec + items - 1) / items;
    int threads = static_cast<int>(std::max<int64_t>(32, (per_thread + 31) / 32 * 32));
    if (per_thread > kThreads) {
      items = 0;
      threads = cuda::kGenericThreads;
    }
    if (vec == 1) {
      launch_per_token<CT, 1>(stream, items, threads, blocks, out, orows, in, irows, s,
                              scale_stride, ub, rows, hidden);
    } else {
      launch_per_token<CT, stablekernels::cuda::kVec16<CT>>(
          stream, items, threads, blocks, out, orows, in, irows, s, scale_stride, ub, rows, hidden);
    }
  });
}

}  // namespace stablekernels::quantization

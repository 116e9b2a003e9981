// SPDX-License-Identifier: Apache-2.0
// CUDA implementation of the quantization family: checks, launch policy, registration.

#include <torch/csrc/stable/library.h>

#include <algorithm>
#include <optional>

#include "core/cuda_utils.h"
#include "core/dispatch.h"
#include "ops/quantization/quantization.h"
#include "ops/quantization/quantization_kernels.cuh"

namespace stablekernels::quantization {
namespace {

// Launch policy, as data.
struct QuantPolicy {
  // Per tensor: resident blocks per SM of the grid-stride kernels (8 x 256 threads fills an
  // SM; more blocks would only add atomics to the amax).
  int flat_blocks_per_sm = 8;
  // Per token: vectors per thread in the register kernel grow in powers of two up to this
  // many until a row fits in cuda::kRowKernelThreads threads; longer rows use the generic
  // two-pass kernel.
  int per_token_max_items = 8;
  long long max_blocks = 1LL << 30;
};
constexpr QuantPolicy kQuantPolicy{};

int sm_count(int32_t device, const char* op) {
  int sms = 0;
  STABLEKERNELS_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device),
                           op);
  return std::max(sms, 1);
}

// A [rows, hidden] walk for the per-tensor kernels: rows that lie back to back in both
// tensors become one row.
struct FlatWalk {
  int64_t rows;
  int64_t hidden;
  RowIndexer out_rows;
  RowIndexer in_rows;
};

bool rows_are_dense(const RowIndexer& r, int64_t rows, int64_t hidden) {
  return rows == 1 || (r.ndim == 1 && r.strides[0] == hidden);
}

FlatWalk flat_walk(const char* op, const Tensor* result, const Tensor& input, QuantProblem p) {
  FlatWalk w{p.rows, p.hidden, RowIndexer{}, row_indexer(op, {input, "input"})};
  bool dense = rows_are_dense(w.in_rows, p.rows, p.hidden);
  if (result != nullptr) {
    w.out_rows = row_indexer(op, {*result, "result"});
    dense = dense && rows_are_dense(w.out_rows, p.rows, p.hidden);
  }
  if (dense) {
    w.rows = 1;
    w.hidden = p.rows * p.hidden;
    w.in_rows = RowIndexer{};
    w.out_rows = RowIndexer{};
  }
  return w;
}

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
                     const float* scale, int sms) {
  const int64_t nvec = w.hidden / VEC;
  const unsigned blocks = flat_blocks(w, nvec, sms);
  if (w.rows == 1) {
    cuda::quantize_kernel<CT, VEC, true>
        <<<blocks, cuda::kFlatThreads, 0, s>>>(out, w.out_rows, in, w.in_rows, scale, w.rows, nvec);
  } else {
    cuda::quantize_kernel<CT, VEC, false>
        <<<blocks, cuda::kFlatThreads, 0, s>>>(out, w.out_rows, in, w.in_rows, scale, w.rows, nvec);
  }
}

template <typename CT, int VEC>
void launch_tensor_amax(cudaStream_t s, const FlatWalk& w, float* scale, const CT* in, int sms) {
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

// out <- fp8(input / *scale) with the scale already on the device.
void quantize_tensor(const char* op, cudaStream_t stream, int32_t device, const Tensor& result,
                     const Tensor& input, QuantProblem p, const float* scale) {
  const FlatWalk w = flat_walk(op, &result, input, p);
  const int sms = sm_count(device, op);
  dispatch_float_types(input.scalar_type(), op, "input", [&](auto tag) {
    using CT = cuda_type_t<decltype(tag)>;
    auto* out = static_cast<uint8_t*>(result.data_ptr());
    const CT* in = cuda_ptr<CT>(input);
    if (flat_vec<CT>(w, out, in) == 1) {
      launch_quantize<CT, 1>(stream, w, out, in, scale, sms);
    } else {
      launch_quantize<CT, stablekernels::cuda::kVec16<CT>>(stream, w, out, in, scale, sms);
    }
  });
  STABLEKERNELS_KERNEL_LAUNCH_CHECK(op);
}

void static_scaled_fp8_quant_cuda(const Tensor& result, const Tensor& input, const Tensor& scale) {
  constexpr const char* op = "static_scaled_fp8_quant";
  const QuantProblem p = check_static_scaled_fp8_quant(result, input, scale);
  if (p.rows == 0 || p.hidden == 0) {
    return;
  }
  CudaLaunchContext ctx(input, op);
  quantize_tensor(op, ctx.stream, input.get_device_index(), result, input, p,
                  static_cast<const float*>(scale.data_ptr()));
}

void dynamic_scaled_fp8_quant_cuda(const Tensor& result, const Tensor& input, const Tensor& scale) {
  constexpr const char* op = "dynamic_scaled_fp8_quant";
  const QuantProblem p = check_dynamic_scaled_fp8_quant(result, input, scale);
  CudaLaunchContext ctx(input, op);
  auto* s = static_cast<float*>(scale.data_ptr());
  STABLEKERNELS_CUDA_CHECK(cudaMemsetAsync(s, 0, sizeof(float), ctx.stream), op);
  const int sms = sm_count(input.get_device_index(), op);
  // Launched even for an empty input (one block, no elements): it writes kMinScale.
  const bool empty = p.rows == 0 || p.hidden == 0;
  const FlatWalk w =
      empty ? FlatWalk{1, 0, RowIndexer{}, RowIndexer{}} : flat_walk(op, nullptr, input, p);
  dispatch_float_types(input.scalar_type(), op, "input", [&](auto tag) {
    using CT = cuda_type_t<decltype(tag)>;
    const CT* in = cuda_ptr<CT>(input);
    if (flat_vec<CT>(w, nullptr, in) == 1) {
      launch_tensor_amax<CT, 1>(ctx.stream, w, s, in, sms);
    } else {
      launch_tensor_amax<CT, stablekernels::cuda::kVec16<CT>>(ctx.stream, w, s, in, sms);
    }
  });
  STABLEKERNELS_KERNEL_LAUNCH_CHECK(op);
  if (empty) {
    return;
  }
  quantize_tensor(op, ctx.stream, input.get_device_index(), result, input, p, s);
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

void dynamic_per_token_scaled_fp8_quant_cuda(const Tensor& result, const Tensor& input,
                                             const Tensor& scale,
                                             const std::optional<Tensor>& scale_ub) {
  constexpr const char* op = "dynamic_per_token_scaled_fp8_quant";
  int64_t scale_stride = 0;
  const QuantProblem p =
      check_dynamic_per_token_scaled_fp8_quant(result, input, scale, scale_ub, scale_stride);
  STABLEKERNELS_CHECK(p.hidden <= (int64_t{1} << 30), op, "the last dimension (", p.hidden,
                      ") is larger than the CUDA kernels support (2^30)");
  if (p.rows == 0) {
    return;
  }
  CudaLaunchContext ctx(input, op);
  const RowIndexer orows = row_indexer(op, {result, "result"});
  const RowIndexer irows = row_indexer(op, {input, "input"});
  auto* out = static_cast<uint8_t*>(result.data_ptr());
  auto* s = static_cast<float*>(scale.data_ptr());
  const float* ub =
      scale_ub.has_value() ? static_cast<const float*>(scale_ub->data_ptr()) : nullptr;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(p.rows, kQuantPolicy.max_blocks));
  const int hidden = static_cast<int>(p.hidden);
  dispatch_float_types(input.scalar_type(), op, "input", [&](auto tag) {
    using CT = cuda_type_t<decltype(tag)>;
    const CT* in = cuda_ptr<CT>(input);
    const int vec = can_use_vec16<CT>(p.hidden, {out, in}, {&orows, &irows})
                        ? stablekernels::cuda::kVec16<CT>
                        : 1;
    const int64_t nvec = p.hidden / vec;
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
      launch_per_token<CT, 1>(ctx.stream, items, threads, blocks, out, orows, in, irows, s,
                              scale_stride, ub, p.rows, hidden);
    } else {
      launch_per_token<CT, stablekernels::cuda::kVec16<CT>>(ctx.stream, items, threads, blocks, out,
                                                            orows, in, irows, s, scale_stride, ub,
                                                            p.rows, hidden);
    }
  });
  STABLEKERNELS_KERNEL_LAUNCH_CHECK(op);
}

}  // namespace
}  // namespace stablekernels::quantization

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CUDA, m) {
  m.impl("static_scaled_fp8_quant",
         TORCH_BOX(&stablekernels::quantization::static_scaled_fp8_quant_cuda));
  m.impl("dynamic_scaled_fp8_quant",
         TORCH_BOX(&stablekernels::quantization::dynamic_scaled_fp8_quant_cuda));
  m.impl("dynamic_per_token_scaled_fp8_quant",
         TORCH_BOX(&stablekernels::quantization::dynamic_per_token_scaled_fp8_quant_cuda));
}

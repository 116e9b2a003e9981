// SPDX-License-Identifier: Apache-2.0
// CUDA ops of the quantization family, torch-facing glue (host compiler): checks, tensors
// -> pointers and row walks, dtype -> DType, SM count, stream and arch guard,
// registration. The launches are in the torch-free quantization_cuda.cu
// (quantization_launch.h).

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>

#include <optional>

#include "core/cuda_utils.h"
#include "ops/quantization/quantization.h"
#include "ops/quantization/quantization_launch.h"

namespace stablekernels::quantization {
namespace {

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

// out <- fp8(input / *scale) with the scale already on the device; `two_pass` as in
// launch_quantize_tensor (right after the amax pass).
void quantize_tensor(const char* op, cudaStream_t stream, int32_t device, const Tensor& result,
                     const Tensor& input, QuantProblem p, const float* scale,
                     const TwoPass* two_pass) {
  const FlatWalk w = flat_walk(op, &result, input, p);
  const int sms = sm_count(device, op);
  const DType dtype = float_dtype(input.scalar_type(), op, "input");
  check_launch(launch_quantize_tensor(dtype, stream, w, data_ptr<uint8_t>(result), input.data_ptr(),
                                      scale, sms, two_pass),
               op);
}

void static_scaled_fp8_quant_cuda(const Tensor& result, const Tensor& input, const Tensor& scale) {
  constexpr const char* op = "static_scaled_fp8_quant";
  const QuantProblem p = check_static_scaled_fp8_quant(result, input, scale);
  if (p.rows == 0 || p.hidden == 0) {
    return;
  }
  CudaLaunchContext ctx(input, op);
  quantize_tensor(op, ctx.stream, input.get_device_index(), result, input, p,
                  data_ptr<const float>(scale), /*two_pass=*/nullptr);
}

void dynamic_scaled_fp8_quant_cuda(const Tensor& result, const Tensor& input, const Tensor& scale) {
  constexpr const char* op = "dynamic_scaled_fp8_quant";
  const QuantProblem p = check_dynamic_scaled_fp8_quant(result, input, scale);
  CudaLaunchContext ctx(input, op);
  auto* s = data_ptr<float>(scale);
  const DType dtype = float_dtype(input.scalar_type(), op, "input");
  if (p.rows != 0 && p.hidden != 0) {
    const FlatWalk w = flat_walk(op, &result, input, p);
    cudaError_t err = cudaSuccess;
    const bool launched = launch_dynamic_quant_fused(
        dtype, ctx.stream, w, data_ptr<uint8_t>(result), s, input.data_ptr(), err);
    check_launch(err, op);
    if (launched) {
      return;
    }
  }
  const int sms = sm_count(input.get_device_index(), op);
  const TwoPass two_pass{l2_cache_bytes(input.get_device_index(), op)};
  if (p.rows != 0 && p.hidden != 0) {
    const FlatWalk w = flat_walk(op, &result, input, p);
    if (dynamic_quant_grid_takes(dtype, w, result.data_ptr(), input.data_ptr(), sms,
                                 two_pass.l2_bytes)) {
      const Tensor sync =
          torch::stable::new_empty(input, {dynamic_quant_grid_sync_bytes()}, ScalarType::Byte);
      const cudaError_t err =
          launch_dynamic_quant_grid(dtype, ctx.stream, w, data_ptr<uint8_t>(result), s,
                                    sync.data_ptr(), input.data_ptr(), sms, two_pass.l2_bytes);
      // Where the device cannot have every block resident now (another process's share of
      // it under MPS), the two kernels below, which need no such thing.
      if (err != cudaErrorCooperativeLaunchTooLarge) {
        check_launch(err, op);
        return;
      }
    }
  }
  STABLEKERNELS_CUDA_CHECK(cudaMemsetAsync(s, 0, sizeof(float), ctx.stream), op);
  // Launched even for an empty input (one block, no elements): it writes kMinScale.
  const bool empty = p.rows == 0 || p.hidden == 0;
  const FlatWalk w =
      empty ? FlatWalk{1, 0, RowIndexer{}, RowIndexer{}} : flat_walk(op, nullptr, input, p);
  check_launch(launch_tensor_amax(dtype, ctx.stream, w, s, input.data_ptr(), sms, two_pass), op);
  if (empty) {
    return;
  }
  quantize_tensor(op, ctx.stream, input.get_device_index(), result, input, p, s, &two_pass);
}

void dynamic_per_token_scaled_fp8_quant_cuda(const Tensor& result, const Tensor& input,
                                             const Tensor& scale,
                                             const std::optional<Tensor>& scale_ub) {
  constexpr const char* op = "dynamic_per_token_scaled_fp8_quant";
  int64_t scale_stride = 0;
  const QuantProblem p =
      check_dynamic_per_token_scaled_fp8_quant(result, input, scale, scale_ub, scale_stride);
  check_cuda_row_length(op, p.hidden);
  if (p.rows == 0) {
    return;
  }
  CudaLaunchContext ctx(input, op);
  const RowIndexer orows = row_indexer(op, {result, "result"});
  const RowIndexer irows = row_indexer(op, {input, "input"});
  const float* ub = scale_ub.has_value() ? data_ptr<const float>(*scale_ub) : nullptr;
  const DType dtype = float_dtype(input.scalar_type(), op, "input");
  check_launch(
      launch_per_token_quant(dtype, ctx.stream, data_ptr<uint8_t>(result), orows, input.data_ptr(),
                             irows, data_ptr<float>(scale), scale_stride, ub, p.rows, p.hidden),
      op);
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

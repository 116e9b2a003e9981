// SPDX-License-Identifier: Apache-2.0
// CUDA implementations of the norm family: checks, launch policy, registration.

#include <torch/csrc/stable/library.h>

#include <algorithm>

#include "core/cuda_utils.h"
#include "core/dispatch.h"
#include "ops/norm/norm.h"
#include "ops/norm/norm_kernels.cuh"
#include "ops/norm/norm_tuning.h"

namespace stablekernels::norm {
namespace {

struct Launch {
  int vec;    // elements per access: 16 bytes' worth, or 1
  int items;  // vectors per thread in the register kernels; 0 = generic kernel
  int threads;
  unsigned blocks;
};

// Picks the access width and kernel shape for one call. `ptrs` are every base
// pointer the kernel touches, `rows` every RowIndexer.
template <typename CT>
Launch plan(int64_t rows, int64_t hidden, int max_items, std::initializer_list<const void*> ptrs,
            std::initializer_list<const RowIndexer*> row_layouts) {
  Launch l{};
  l.vec = can_use_vec16<CT>(hidden, ptrs, row_layouts) ? stablekernels::cuda::kVec16<CT> : 1;
  const int64_t nvec = hidden / l.vec;
  constexpr int64_t kThreads = cuda::kRegisterKernelThreads;
  int items = 1;
  while (items < max_items && (nvec + items - 1) / items > kThreads) {
    items *= 2;
  }
  const int64_t per_thread = (nvec + items - 1) / items;
  if (per_thread > kThreads) {
    l.items = 0;
    l.threads = kNormPolicy.generic_threads;
  } else {
    l.items = items;
    l.threads = static_cast<int>(std::max<int64_t>(32, (per_thread + 31) / 32 * 32));
  }
  l.blocks = static_cast<unsigned>(std::min<int64_t>(rows, kNormPolicy.max_blocks));
  return l;
}

template <typename CT, int VEC>
void launch_rms_norm(const Launch& l, cudaStream_t s, CT* out, const RowIndexer& orows,
                     const CT* in, const RowIndexer& irows, const CT* w, int64_t rows, int hidden,
                     float eps) {
  switch (l.items) {
    case 1:
      cuda::rms_norm_kernel<CT, VEC, 1>
          <<<l.blocks, l.threads, 0, s>>>(out, orows, in, irows, w, rows, hidden, eps);
      break;
    case 2:
      cuda::rms_norm_kernel<CT, VEC, 2>
          <<<l.blocks, l.threads, 0, s>>>(out, orows, in, irows, w, rows, hidden, eps);
      break;
    case 4:
      cuda::rms_norm_kernel<CT, VEC, 4>
          <<<l.blocks, l.threads, 0, s>>>(out, orows, in, irows, w, rows, hidden, eps);
      break;
    case 8:
      cuda::rms_norm_kernel<CT, VEC, 8>
          <<<l.blocks, l.threads, 0, s>>>(out, orows, in, irows, w, rows, hidden, eps);
      break;
    default:
      cuda::rms_norm_generic_kernel<CT, VEC>
          <<<l.blocks, l.threads, 0, s>>>(out, orows, in, irows, w, rows, hidden, eps);
  }
}

template <typename CT, int VEC>
void launch_fused_add_rms_norm(const Launch& l, cudaStream_t s, CT* in, const RowIndexer& irows,
                               CT* res, const RowIndexer& rrows, const CT* w, int64_t rows,
                               int hidden, float eps) {
  switch (l.items) {
    case 1:
      cuda::fused_add_rms_norm_kernel<CT, VEC, 1>
          <<<l.blocks, l.threads, 0, s>>>(in, irows, res, rrows, w, rows, hidden, eps);
      break;
    case 2:
      cuda::fused_add_rms_norm_kernel<CT, VEC, 2>
          <<<l.blocks, l.threads, 0, s>>>(in, irows, res, rrows, w, rows, hidden, eps);
      break;
    case 4:
      cuda::fused_add_rms_norm_kernel<CT, VEC, 4>
          <<<l.blocks, l.threads, 0, s>>>(in, irows, res, rrows, w, rows, hidden, eps);
      break;
    default:
      cuda::fused_add_rms_norm_generic_kernel<CT, VEC>
          <<<l.blocks, l.threads, 0, s>>>(in, irows, res, rrows, w, rows, hidden, eps);
  }
}

void check_hidden_fits(const char* op, int64_t hidden) {
  STABLEKERNELS_CHECK(hidden <= (int64_t{1} << 30), op, "the last dimension (", hidden,
                      ") is larger than the CUDA kernels support (2^30)");
}

void rms_norm_cuda(const Tensor& result, const Tensor& input, const Tensor& weight,
                   double epsilon) {
  constexpr const char* op = "rms_norm";
  const NormProblem p = check_rms_norm(result, input, weight, epsilon);
  check_hidden_fits(op, p.hidden);
  if (p.rows == 0 || p.hidden == 0) {
    return;
  }
  CudaLaunchContext ctx(input, op);
  const RowIndexer orows = row_indexer(op, {result, "result"});
  const RowIndexer irows = row_indexer(op, {input, "input"});
  dispatch_float_types(input.scalar_type(), op, "input", [&](auto tag) {
    using CT = cuda_type_t<decltype(tag)>;
    CT* out = cuda_ptr<CT>(result);
    const CT* in = cuda_ptr<CT>(input);
    const CT* w = cuda_ptr<CT>(weight);
    const Launch l =
        plan<CT>(p.rows, p.hidden, kNormPolicy.rms_norm_max_items, {out, in, w}, {&orows, &irows});
    const int hidden = static_cast<int>(p.hidden);
    const float eps = static_cast<float>(epsilon);
    if (l.vec == 1) {
      launch_rms_norm<CT, 1>(l, ctx.stream, out, orows, in, irows, w, p.rows, hidden, eps);
    } else {
      launch_rms_norm<CT, stablekernels::cuda::kVec16<CT>>(l, ctx.stream, out, orows, in, irows, w,
                                                           p.rows, hidden, eps);
    }
  });
  STABLEKERNELS_KERNEL_LAUNCH_CHECK(op);
}

void fused_add_rms_norm_cuda(const Tensor& input, const Tensor& residual, const Tensor& weight,
                             double epsilon) {
  constexpr const char* op = "fused_add_rms_norm";
  const NormProblem p = check_fused_add_rms_norm(input, residual, weight, epsilon);
  check_hidden_fits(op, p.hidden);
  if (p.rows == 0 || p.hidden == 0) {
    return;
  }
  CudaLaunchContext ctx(input, op);
  const RowIndexer irows = row_indexer(op, {input, "input"});
  const RowIndexer rrows = row_indexer(op, {residual, "residual"});
  dispatch_float_types(input.scalar_type(), op, "input", [&](auto tag) {
    using CT = cuda_type_t<decltype(tag)>;
    CT* in = cuda_ptr<CT>(input);
    CT* res = cuda_ptr<CT>(residual);
    const CT* w = cuda_ptr<CT>(weight);
    const Launch l = plan<CT>(p.rows, p.hidden, kNormPolicy.fused_add_rms_norm_max_items,
                              {in, res, w}, {&irows, &rrows});
    const int hidden = static_cast<int>(p.hidden);
    const float eps = static_cast<float>(epsilon);
    if (l.vec == 1) {
      launch_fused_add_rms_norm<CT, 1>(l, ctx.stream, in, irows, res, rrows, w, p.rows, hidden,
                                       eps);
    } else {
      launch_fused_add_rms_norm<CT, stablekernels::cuda::kVec16<CT>>(l, ctx.stream, in, irows, res,
                                                                     rrows, w, p.rows, hidden, eps);
    }
  });
  STABLEKERNELS_KERNEL_LAUNCH_CHECK(op);
}

}  // namespace
}  // namespace stablekernels::norm

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CUDA, m) {
  m.impl("rms_norm", TORCH_BOX(&stablekernels::norm::rms_norm_cuda));
  m.impl("fused_add_rms_norm", TORCH_BOX(&stablekernels::norm::fused_add_rms_norm_cuda));
}

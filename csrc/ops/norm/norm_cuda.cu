// SPDX-License-Identifier: Apache-2.0
// CUDA launch code of the norm family: launch policy, template instantiation, launches.
// Torch-free (nvcc compiles it; docs/farm.md says why): the checks, tensors and
// registration are in norm_cuda.cpp.

#include <algorithm>
#include <type_traits>

#include "ops/norm/norm_kernels.cuh"
#include "ops/norm/norm_launch.h"
#include "ops/norm/norm_tuning.h"
#include "stablekernels/cuda_dispatch.cuh"
#include "stablekernels/kernel_launch.cuh"
#include "stablekernels/launch.h"
#include "stablekernels/occupancy.cuh"

namespace stablekernels::norm {
namespace {

struct Launch {
  int vec;    // elements per access: 16 bytes' worth, or 1
  int items;  // vectors per thread in the register kernels; 0 = generic kernel
  int threads;
  unsigned blocks;
  // rms_norm: which register kernel runs when items > 0 (fused_add_rms_norm: kRow or
  // kDecode).
  enum class Kind { kRow, kWideRow, kPersistent, kDecode, kTwoPass } kind = Kind::kRow;
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

// Few rows (decode): one block per row of as many threads as the row needs at one
// vector a thread, up to kNormPolicy.decode_threads (more vectors a thread beyond, in
// blocks of up to 1024), for the decode kernels. Returns false where a row needs more than
// max_items vectors a thread.
bool plan_decode(Launch& l, int64_t rows, int64_t nvec, int max_items) {
  int items = 1;
  while (items < max_items && nvec > int64_t{kNormPolicy.decode_threads} * items) {
    items *= 2;
  }
  if (nvec > int64_t{1024} * items) {
    return false;
  }
  l.kind = Launch::Kind::kDecode;
  l.items = items;
  l.threads = static_cast<int>(std::max<int64_t>(32, ((nvec + items - 1) / items + 31) / 32 * 32));
  l.blocks = static_cast<unsigned>(rows);
  return true;
}

// rms_norm's launch. Few rows: the decode kernel. Rows of 16-byte vectors, more than
// rms_norm_persistent_max_vecs of them and up to kTwoPassWideThreads x
// rms_norm_two_pass_max_items: the two-pass kernel (kTwoPassThreads a block up to
// kTwoPassThreads x rms_norm_two_pass_max_items vectors, kTwoPassWideThreads past that, and
// kTwoPassWideThreads x 2 past kTwoPassThreads x 2 on a device of `mem_gbps_per_sm` under
// rms_norm_two_pass_wide_max_gbps_per_sm). Up to
// rms_norm_persistent_max_rows rows: the persistent register kernel while a row fits in 1024
// threads of kNormPolicy.rms_norm_persistent_items vectors (except rows of more than
// rms_norm_persistent_max_vecs that the 256-thread kernel holds). Else one block per row, the
// register kernel in 256-thread blocks up to rms_norm_max_items vectors a thread, then in
// 1024-thread blocks of rms_norm_wide_items vectors. Else the generic kernel.
template <typename CT>
Launch plan_rms_norm(int64_t rows, int64_t hidden, std::initializer_list<const void*> ptrs,
                     std::initializer_list<const RowIndexer*> row_layouts, double mem_gbps_per_sm) {
  Launch l{};
  l.vec = can_use_vec16<CT>(hidden, ptrs, row_layouts) ? stablekernels::cuda::kVec16<CT> : 1;
  const int64_t nvec = hidden / l.vec;
  if (rows <= kNormPolicy.rms_norm_decode_rows &&
      plan_decode(l, rows, nvec, kNormPolicy.rms_norm_persistent_items)) {
    return l;
  }
  constexpr int64_t kTwoPassMaxItems = kNormPolicy.rms_norm_two_pass_max_items;
  if (l.vec > 1 && nvec > kNormPolicy.rms_norm_persistent_max_vecs &&
      nvec <= int64_t{cuda::kTwoPassWideThreads} * kTwoPassMaxItems &&
      rows <= kNormPolicy.max_blocks) {
    l.kind = Launch::Kind::kTwoPass;
    l.items = 2;
    while (l.items < kTwoPassMaxItems && nvec > int64_t{cuda::kTwoPassThreads} * l.items) {
      l.items *= 2;
    }
    l.threads = nvec > int64_t{cuda::kTwoPassThreads} * kTwoPassMaxItems ? cuda::kTwoPassWideThreads
                                                                         : cuda::kTwoPassThreads;
    if (nvec > int64_t{cuda::kTwoPassThreads} * 2 &&
        nvec <= int64_t{cuda::kTwoPassWideThreads} * 2 && mem_gbps_per_sm > 0 &&
        mem_gbps_per_sm < kNormPolicy.rms_norm_two_pass_wide_max_gbps_per_sm) {
      l.items = 2;
      l.threads = cuda::kTwoPassWideThreads;
    }
    l.blocks = static_cast<unsigned>(rows);  // one block per row, no loop
    return l;
  }
  const bool register_row = nvec > kNormPolicy.rms_norm_persistent_max_vecs &&
                            nvec <= cuda::kRegisterKernelThreads * kNormPolicy.rms_norm_max_items;
  if (rows > kNormPolicy.rms_norm_persistent_max_rows || register_row) {
    constexpr int64_t kThreads = cuda::kRegisterKernelThreads;
    if (nvec > kThreads * kNormPolicy.rms_norm_max_items &&
        nvec <= int64_t{1024} * kNormPolicy.rms_norm_wide_items) {
      l.kind = Launch::Kind::kWideRow;
      l.items = kNormPolicy.rms_norm_wide_items;
      l.threads = static_cast<int>(((nvec + l.items - 1) / l.items + 31) / 32 * 32);
      l.blocks = static_cast<unsigned>(std::min<int64_t>(rows, kNormPolicy.max_blocks));
      return l;
    }
    return plan<CT>(rows, hidden, kNormPolicy.rms_norm_max_items, ptrs, row_layouts);
  }
  const int max_items = kNormPolicy.rms_norm_persistent_items;
  if (nvec > int64_t{1024} * max_items) {
    l.items = 0;
    l.threads = kNormPolicy.generic_threads;
    l.blocks = static_cast<unsigned>(std::min<int64_t>(rows, kNormPolicy.max_blocks));
    return l;
  }
  // Many rows: the most items that still leave a warp's worth of vectors.
  int items = 1;
  while (items < max_items && nvec >= int64_t{64} * items) {
    items *= 2;
  }
  l.kind = Launch::Kind::kPersistent;
  l.items = items;
  l.threads = static_cast<int>(std::max<int64_t>(32, ((nvec + items - 1) / items + 31) / 32 * 32));
  l.blocks = static_cast<unsigned>(std::min<int64_t>(rows, kNormPolicy.max_blocks));
  return l;
}

template <typename CT, int VEC, int ITEMS>
void rms_norm_persistent(const Launch& l, cudaStream_t s, CT* out, const RowIndexer& orows,
                         const CT* in, const RowIndexer& irows, const CT* w, int64_t rows,
                         int hidden, float eps, int sms) {
  constexpr auto kernel = cuda::rms_norm_persistent_kernel<CT, VEC, ITEMS>;
  const int64_t resident = stablekernels::cuda::resident_blocks<kernel>(l.threads, 0, sms);
  if (resident == 0) {
    return;
  }
  const auto blocks = static_cast<unsigned>(std::min<int64_t>(l.blocks, resident));
  launch_kernel(kernel, blocks, l.threads, 0, s, out, orows, in, irows, w, rows, hidden, eps);
}

template <typename CT, int VEC>
void rms_norm_kernels(const Launch& l, cudaStream_t s, CT* out, const RowIndexer& orows,
                      const CT* in, const RowIndexer& irows, const CT* w, int64_t rows, int hidden,
                      float eps, int sms) {
  if (l.items == 0) {
    launch_kernel(&cuda::rms_norm_generic_kernel<CT, VEC>, l.blocks, l.threads, 0, s, out, orows,
                  in, irows, w, rows, hidden, eps);
    return;
  }
  switch (l.kind) {
    case Launch::Kind::kDecode:
      visit_rows(orows, irows, [&](const auto& o, const auto& i) {
        using Rows = std::decay_t<decltype(o)>;
        switch (l.items) {
          case 1:
            launch_kernel(&cuda::rms_norm_decode_kernel<CT, VEC, 1, Rows>, l.blocks, l.threads, 0,
                          s, out, o, in, i, w, hidden, eps);
            return;
          case 2:
            launch_kernel(&cuda::rms_norm_decode_kernel<CT, VEC, 2, Rows>, l.blocks, l.threads, 0,
                          s, out, o, in, i, w, hidden, eps);
            return;
          default:
            launch_kernel(&cuda::rms_norm_decode_kernel<CT, VEC, 4, Rows>, l.blocks, l.threads, 0,
                          s, out, o, in, i, w, hidden, eps);
            return;
        }
      });
      return;
    case Launch::Kind::kTwoPass:
      if constexpr (VEC == stablekernels::cuda::kVec16<CT>) {
        static_assert(kNormPolicy.rms_norm_two_pass_max_items == 4, "instantiated for 2 and 4");
        const bool exact = hidden == l.items * l.threads * VEC;
        visit_rows(orows, irows, [&](const auto& o, const auto& i) {
          using Rows = std::decay_t<decltype(o)>;
          const auto launch = [&](auto kernel) {
            launch_kernel(kernel, l.blocks, l.threads, 0, s, out, o, in, i, w, hidden, eps);
          };
          constexpr int kWide = cuda::kTwoPassWideThreads;
          if (l.threads == kWide && l.items == 2) {
            exact ? launch(cuda::rms_norm_two_pass_kernel<CT, 2, true, Rows, kWide>)
                  : launch(cuda::rms_norm_two_pass_kernel<CT, 2, false, Rows, kWide>);
          } else if (l.threads == kWide) {
            exact ? launch(cuda::rms_norm_two_pass_kernel<CT, 4, true, Rows, kWide>)
                  : launch(cuda::rms_norm_two_pass_kernel<CT, 4, false, Rows, kWide>);
          } else if (l.items == 2) {
            exact ? launch(cuda::rms_norm_two_pass_kernel<CT, 2, true, Rows>)
                  : launch(cuda::rms_norm_two_pass_kernel<CT, 2, false, Rows>);
          } else {
            exact ? launch(cuda::rms_norm_two_pass_kernel<CT, 4, true, Rows>)
                  : launch(cuda::rms_norm_two_pass_kernel<CT, 4, false, Rows>);
          }
        });
      }
      return;
    case Launch::Kind::kWideRow:
      static_assert(kNormPolicy.rms_norm_wide_items == 2, "instantiated for 2 items");
      launch_kernel(&cuda::rms_norm_kernel<CT, VEC, 2, 1024>, l.blocks, l.threads, 0, s, out, orows,
                    in, irows, w, rows, hidden, eps);
      return;
    case Launch::Kind::kPersistent:
      switch (l.items) {
        case 1:
          rms_norm_persistent<CT, VEC, 1>(l, s, out, orows, in, irows, w, rows, hidden, eps, sms);
          return;
        case 2:
          rms_norm_persistent<CT, VEC, 2>(l, s, out, orows, in, irows, w, rows, hidden, eps, sms);
          return;
        default:
          rms_norm_persistent<CT, VEC, 4>(l, s, out, orows, in, irows, w, rows, hidden, eps, sms);
          return;
      }
    default:
      static_assert(kNormPolicy.rms_norm_max_items <= 8, "instantiated up to 8 items");
      switch (l.items) {
        case 1:
          launch_kernel(&cuda::rms_norm_kernel<CT, VEC, 1>, l.blocks, l.threads, 0, s, out, orows,
                        in, irows, w, rows, hidden, eps);
          return;
        case 2:
          launch_kernel(&cuda::rms_norm_kernel<CT, VEC, 2>, l.blocks, l.threads, 0, s, out, orows,
                        in, irows, w, rows, hidden, eps);
          return;
        case 4:
          launch_kernel(&cuda::rms_norm_kernel<CT, VEC, 4>, l.blocks, l.threads, 0, s, out, orows,
                        in, irows, w, rows, hidden, eps);
          return;
        default:  // only with rms_norm_max_items = 8 (norm_tuning.h)
          launch_kernel(&cuda::rms_norm_kernel<CT, VEC, 8>, l.blocks, l.threads, 0, s, out, orows,
                        in, irows, w, rows, hidden, eps);
          return;
      }
  }
}

template <typename CT, int VEC>
void fused_add_rms_norm_kernels(const Launch& l, cudaStream_t s, CT* in, const RowIndexer& irows,
                                CT* res, const RowIndexer& rrows, const CT* w, int64_t rows,
                                int hidden, float eps) {
  if (l.kind == Launch::Kind::kDecode) {
    visit_rows(irows, rrows, [&](const auto& i, const auto& r) {
      using Rows = std::decay_t<decltype(i)>;
      if (l.items == 1) {
        launch_kernel(&cuda::fused_add_rms_norm_decode_kernel<CT, VEC, 1, Rows>, l.blocks,
                      l.threads, 0, s, in, i, res, r, w, hidden, eps);
      } else {
        launch_kernel(&cuda::fused_add_rms_norm_decode_kernel<CT, VEC, 2, Rows>, l.blocks,
                      l.threads, 0, s, in, i, res, r, w, hidden, eps);
      }
    });
    return;
  }
  switch (l.items) {
    case 1:
      launch_kernel(&cuda::fused_add_rms_norm_kernel<CT, VEC, 1>, l.blocks, l.threads, 0, s, in,
                    irows, res, rrows, w, rows, hidden, eps);
      break;
    case 2:
      launch_kernel(&cuda::fused_add_rms_norm_kernel<CT, VEC, 2>, l.blocks, l.threads, 0, s, in,
                    irows, res, rrows, w, rows, hidden, eps);
      break;
    case 4:
      launch_kernel(&cuda::fused_add_rms_norm_kernel<CT, VEC, 4>, l.blocks, l.threads, 0, s, in,
                    irows, res, rrows, w, rows, hidden, eps);
      break;
    default:
      launch_kernel(&cuda::fused_add_rms_norm_generic_kernel<CT, VEC>, l.blocks, l.threads, 0, s,
                    in, irows, res, rrows, w, rows, hidden, eps);
  }
}

}  // namespace

cudaError_t launch_rms_norm(DType dtype, cudaStream_t stream, void* out_ptr,
                            const RowIndexer& orows, const void* in_ptr, const RowIndexer& irows,
                            const void* w_ptr, int64_t rows, int64_t hidden_len, float eps, int sms,
                            double mem_gbps_per_sm) {
  return stablekernels::cuda::dispatch_float(dtype, [&](auto tag) {
    using CT = typename decltype(tag)::type;
    CT* out = static_cast<CT*>(out_ptr);
    const CT* in = static_cast<const CT*>(in_ptr);
    const CT* w = static_cast<const CT*>(w_ptr);
    const Launch l =
        plan_rms_norm<CT>(rows, hidden_len, {out, in, w}, {&orows, &irows}, mem_gbps_per_sm);
    const int hidden = static_cast<int>(hidden_len);
    if (l.vec == 1) {
      rms_norm_kernels<CT, 1>(l, stream, out, orows, in, irows, w, rows, hidden, eps, sms);
    } else {
      rms_norm_kernels<CT, stablekernels::cuda::kVec16<CT>>(l, stream, out, orows, in, irows, w,
                                                            rows, hidden, eps, sms);
    }
  });
}

cudaError_t launch_fused_add_rms_norm(DType dtype, cudaStream_t stream, void* in_ptr,
                                      const RowIndexer& irows, void* res_ptr,
                                      const RowIndexer& rrows, const void* w_ptr, int64_t rows,
                                      int64_t hidden_len, float eps) {
  return stablekernels::cuda::dispatch_float(dtype, [&](auto tag) {
    using CT = typename decltype(tag)::type;
    CT* in = static_cast<CT*>(in_ptr);
    CT* res = static_cast<CT*>(res_ptr);
    const CT* w = static_cast<const CT*>(w_ptr);
    Launch l = plan<CT>(rows, hidden_len, kNormPolicy.fused_add_rms_norm_max_items, {in, res, w},
                        {&irows, &rrows});
    if (rows <= kNormPolicy.fused_add_rms_norm_decode_kernel_max_rows) {
      (void)plan_decode(l, rows, hidden_len / l.vec, kNormPolicy.fused_add_rms_norm_decode_items);
    }
    const int hidden = static_cast<int>(hidden_len);
    if (l.vec == 1) {
      fused_add_rms_norm_kernels<CT, 1>(l, stream, in, irows, res, rrows, w, rows, hidden, eps);
    } else {
      fused_add_rms_norm_kernels<CT, stablekernels::cuda::kVec16<CT>>(l, stream, in, irows, res,
                                                                      rrows, w, rows, hidden, eps);
    }
  });
}

}  // namespace stablekernels::norm

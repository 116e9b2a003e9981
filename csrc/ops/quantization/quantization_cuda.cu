// SPDX-License-Identifier: Apache-2.0
// CUDA launch code of the quantization family: launch policy, template instantiation,
// launches. Torch-free (nvcc compiles it; docs/farm.md says why): the checks, tensors,
// SM count and registration are in quantization_cuda.cpp.

#include <algorithm>
#include <type_traits>

#include "ops/quantization/quantization_kernels.cuh"
#include "ops/quantization/quantization_launch.h"
#include "stablekernels/cuda_dispatch.cuh"
#include "stablekernels/kernel_launch.cuh"
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
  // dynamic_scaled_fp8_quant's two kernels on inputs of at most twice the L2 size: this many
  // blocks per SM instead. H200 (60 MiB of L2), bf16, us, 32 / 16 with the conversion
  // launched programmatically: 4096 x 4096 25.0 / 24.0, 4096 x 8192 42.4 / 42.0, 16384 x
  // 4096 (4x L2) 79.0 / 78.7, 16384 x 8192 157.0 / 159.8.
  int two_pass_blocks_per_sm = 16;
  // ... and the share of the L2 size (in percent) that the amax pass's loads at the end of
  // the input mark evict-last, the rest evict-first (cuda::L2Keep). H200, bf16, us, with
  // the programmatic launch, no priorities / 50% / 75%: 16384 x 8192 158.1 / 154.5 / 154.6,
  // 16384 x 4096 79.2 / 78.5 / 78.3; before it, none / 75%: 4096 x 4096 27.2 / 26.9.
  int two_pass_l2_keep_percent = 75;
  // float32 inputs of at least wide_flat_min_bytes (not the two-pass sizes above): this many
  // blocks per SM instead of flat_blocks_per_sm. Chosen for both per-tensor ops; since
  // conversion_one_trip (below) the dense conversions grow past it, so it sizes the amax
  // pass and the row walks. H200, float32, us, two
  // rounds, 32 / 64: static 16384 x 4096 (256 MiB) 82.2-82.3 / 79.8-80.0, 16384 x 8192 163.0-163.2
  // / 158.0-158.1, 32768 x 8192 328.8 / 315.2-315.3; dynamic 16384 x 4096 139.4-139.6 /
  // 137.8-137.9, 16384 x 8192 279.1-279.3 / 271.8, 32768 x 8192 558.5-558.8 / 543.7-544.0. Smaller
  // inputs keep 32: static 4096 x 4096 22.3 / 23.6, dynamic 4096 x 8192 71.7 / 72.8
  // (static 41.6-42.0 / 40.6-40.8).
  int wide_flat_blocks_per_sm = 64;
  int64_t wide_flat_min_bytes = int64_t{256} << 20;
  // The conversion's dense walks (static_scaled_fp8_quant, and dynamic_scaled_fp8_quant's
  // second kernel past the two-pass sizes above): blocks past the floor above
  // (flat_blocks_per_sm, or wide_flat_blocks_per_sm) until each thread makes a single trip
  // of kFlatUnroll vectors, so the grid does not loop (inputs of more than the floor x 1024
  // 16-byte vectors a SM: 66 MiB on 132 SMs). Fewer vectors a thread measured slower (one
  // vector a thread, 256 blocks a SM at 16384 x 4096 bf16: 67.6 us); more is the loop this
  // replaces. The amax pass keeps its cap: its blocks end in one atomic each on the one
  // scale (both dynamic kernels at 64 to 256 blocks a SM: 16384 x 4096 bf16 78.2 -> 80.0-128.4
  // us). Before / after, us, two rounds, bf16 (float16 alike) / float32:
  //   static, H200: 16384 x 8192 96.8-97.0 / 93.0-93.3, 159.3 / 155.5-155.6; 32768 x 8192
  //   193.6 / 184.4, 318.2-318.4 / 308.0-308.2; 16384 x 4096 47.9-48.1 / 47.7-47.9, 80.2 /
  //   79.1-79.3; float32 4096 x 8192 42.0-42.1 / 41.0-41.4.
  //   static, H100: 16384 x 8192 133.1 / 129.3-129.5, 221.2 / 216.5-216.6; 32768 x 8192
  //   271.4-271.7 / 260.8-261.0 (torch.compile 258.2), 445.8-445.9 / 431.7; 16384 x 4096
  //   64.7-64.9 / 63.9-64.0; float32 4096 x 8192 56.5-56.6 / 55.9.
  //   Under the floor (bf16 4096 x 4096 and 4096 x 8192, float32 4096 x 4096): level on both.
  //   dynamic, H200: 32768 x 8192 313.7 / 304.3-304.5, 550.8 / 541.2-541.5; 16384 x 8192
  //   154.6-154.7 / 154.5, 274.9 / 272.2-272.8; 16384 x 4096 level. H100: 32768 x 8192
  //   442.9-443.5 / 432.2, 783.5-783.6 / 770.7; 16384 x 8192 215.6-215.8 / 214.3, 387.7 /
  //   384.4-384.6.
  bool conversion_one_trip = true;
  // Per token: vectors per thread in the register kernel grow in powers of two up to this
  // many until a row fits in per_token_threads threads, then threads grow up to
  // cuda::kRowKernelThreads; longer rows use the generic two-pass kernel.
  int per_token_max_items = 8;
  // Rows of 4096 16-bit elements go 128 x 4, of 8192 128 x 8 (more, smaller blocks resident
  // per SM). H200, bf16, us, 256 / 128 / 512 / 64 threads at first: 4096 x 4096 16.4 / 15.2
  // / 21.5 / 16.0, 4096 x 8192 26.6 / 25.9 / 31.6 / 51.3 (the generic kernel), 16384 x 4096
  // 55.7 / 48.3 / 75.5 / 48.2, 16384 x 8192 95.3 / 93.8 / 117.1 / 191.8.
  int per_token_threads = 128;
  // ... and on at most per_token_decode_rows rows, from per_token_decode_items vectors a
  // thread and up to per_token_decode_threads threads (rows of 4096 16-bit elements: 256 x
  // 2, of 8192: 512 x 2). H200, bf16, us per call in a CUDA graph of 32 calls, 256 x 2 / 512
  // x 1 at 4096 and 256 x 4 / 512 x 2 at 8192: 1 x 4096 1.83 / 1.87, 32 x 4096 1.95 / 1.97,
  // 1 x 8192 2.16 / 2.07, 32 x 8192 2.37 / 2.25 (torch.compile 1.82, 2.00, 2.34, 2.51).
  long long per_token_decode_rows = 64;
  int per_token_decode_items = 2;
  int per_token_decode_threads = 512;
  // dynamic_scaled_fp8_quant in one kernel (dynamic_quant_fused_kernel) for dense inputs
  // of at most cuda::kOneBlockThreads x cuda::kOneBlockMaxItems 16-byte vectors (64K 16-bit
  // elements): one SM reads that in about the time the two-kernel path spends on its extra
  // launch and the scale zeroing (~2-3 us in decode). Vectors per thread grow in powers of
  // two while a block would need more than this many threads, then threads grow.
  int one_block_threads = 256;
  // On devices with thread block clusters (sm_90 and newer): one block of up to
  // single_block_threads threads of up to single_block_items vectors, and past that one
  // cluster of up to cluster_max_blocks blocks (16 where the device schedules that, else the
  // portable 8) of cluster_threads threads holding cluster_min_items vectors each, then
  // twice that (up to 16 x 256 x 8 16-bit vectors: 32 tokens of 8192); the blocks exchange
  // their maxima through distributed shared memory. Larger inputs take the two kernels.
  // H200, bf16, us per call in a CUDA graph of 32 calls, two kernels / this (torch.compile):
  // 1 x 4096 4.8 / 1.70 (1.82), 1 x 8192 4.7 / 1.99 (2.34), 8 x 8192 4.9 / 2.97 (4.23),
  // 32 x 4096 5.1 / 3.46 (4.38), 32 x 8192 5.2 / 4.32 (4.51); 64 x 8192 in 16 blocks of
  // 1024 threads 6.8 against 5.5 for the two kernels. Blocks of 512 or 1024 threads with
  // fewer vectors each were 0.2-1.1 us slower from 8 tokens of 8192 on; a cluster of two
  // blocks costs about 0.5 us more than one block.
  int single_block_threads = 512;
  int single_block_items = 2;
  int cluster_max_blocks = 16;
  int cluster_threads = 256;
  int cluster_min_items = 4;
  // Dense walks of at most this many elements (64 tokens of 16384) take
  // quantize_decode_kernel: one vector of kDecodeVec elements a thread (8 bytes of 16-bit
  // input), no loop. H200, bf16, us per call in a CUDA graph of 32 calls, static, the
  // grid-stride kernel with 16-byte vectors / with 8-byte vectors (torch.compile): 1 x 4096
  // 1.60 / 1.53 (1.18), 1 x 8192 1.61 / 1.57 (1.19), 32 x 8192 1.88 / 1.83 (1.45).
  long long decode_max_elems = 1LL << 20;
  // dynamic_scaled_fp8_quant of dense inputs past one cluster and up to what registers and
  // shared memory hold plus grid_max_l2_multiple times the L2 size: one cooperative kernel
  // (dynamic_quant_grid_kernel), the input read from memory once where the chip holds it;
  // kGridRegItems vectors a thread in registers, up to grid_held_items in shared memory.
  // Two kernels / this, bf16, us: H200 4096 x 4096 23.5 / 20.6, 4096 x 8192 42.0 / 36.0,
  // 16384 x 4096 78.6 / 75.8; H100 28.0 / 23.4, 52.4 / 43.2, 104.8 / 100.0. At 16384 x 8192
  // and 32768 x 8192 (4 and 8 times the L2 size) it was 3-9% slower before this bound,
  // which keeps them on the two kernels. Nothing held in shared memory (the rest read twice
  // through L2): H200 4096 x 8192 34.4 -> 35.1 us, 16384 x 4096 73 -> 75.6 (its reads go
  // faster, its conversion slower); the shared-memory part copied by one bulk copy (TMA) a
  // slab per block instead of cp.async: level (H100 4096 x 8192 40.4 / 41.3); loaded with
  // the rest, 4 vectors at a time, and stored by the thread: bf16 slower (4096 x 8192 35.8 ->
  // 36.5, 16384 x 4096 76.0 -> 78.5), float32 faster (4096 x 4096 34.7 -> 33.0, 4096 x 8192
  // 66.1 -> 64.4), which float32 inputs therefore take.
  int grid_held_items = 14;
  int grid_max_l2_multiple = 2;
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
// (kFlatUnroll vectors per iteration), except in the conversion (`converts`) outside the
// two-pass sizes, whose grid grows past the cap to one trip a thread
// (QuantPolicy::conversion_one_trip). Row walks: one tile of a row per block iteration.
// `two_pass`: a kernel of dynamic_scaled_fp8_quant's two (kQuantPolicy), sized by the input's
// bytes (CT elements).
template <typename CT>
unsigned flat_blocks(const FlatWalk& w, int64_t nvec, int sms, const TwoPass* two_pass,
                     bool converts) {
  constexpr QuantPolicy p = kQuantPolicy;
  const int64_t bytes = w.rows * w.hidden * static_cast<int64_t>(sizeof(CT));
  constexpr int64_t kThreads = cuda::kFlatThreads;
  const int64_t needed =
      w.rows == 1 ? (nvec + kThreads - 1) / kThreads : w.rows * ((nvec + kThreads - 1) / kThreads);
  const bool small = two_pass != nullptr && bytes <= 2 * two_pass->l2_bytes;
  const bool wide = sizeof(CT) == 4 && bytes >= p.wide_flat_min_bytes;
  const int per_sm =
      small ? p.two_pass_blocks_per_sm : (wide ? p.wide_flat_blocks_per_sm : p.flat_blocks_per_sm);
  int64_t blocks = std::min(needed, static_cast<int64_t>(sms) * per_sm);
  if (p.conversion_one_trip && converts && !small && w.rows == 1) {
    constexpr int64_t kTrip = kThreads * cuda::kFlatUnroll;
    blocks = std::max(blocks, std::min<int64_t>((nvec + kTrip - 1) / kTrip, p.max_blocks));
  }
  return static_cast<unsigned>(std::max<int64_t>(1, blocks));
}

// The conversion pass after the amax pass, on a dense walk: quantize_kernel's PDL form, whose
// first loads may go before the amax kernel ends (launched with PDL where the device allows).
template <typename CT, int VEC>
void launch_quantize_after_amax(cudaStream_t s, unsigned blocks, uint8_t* out, const CT* in,
                                const float* scale, int64_t nvec) {
  launch_kernel(&cuda::quantize_kernel<CT, VEC, true, true>, blocks, cuda::kFlatThreads, 0, s, out,
                RowIndexer{}, in, RowIndexer{}, scale, int64_t{1}, nvec, true);
}

template <typename CT, int VEC>
void launch_quantize(cudaStream_t s, const FlatWalk& w, uint8_t* out, const CT* in,
                     const float* scale, int sms, const TwoPass* two_pass) {
  const int64_t nvec = w.hidden / VEC;
  const unsigned blocks = flat_blocks<CT>(w, nvec, sms, two_pass, true);
  const bool backward = two_pass != nullptr;
  if (w.rows == 1 && two_pass != nullptr) {
    launch_quantize_after_amax<CT, VEC>(s, blocks, out, in, scale, nvec);
  } else if (w.rows == 1) {
    launch_kernel(&cuda::quantize_kernel<CT, VEC, true>, blocks, cuda::kFlatThreads, 0, s, out,
                  w.out_rows, in, w.in_rows, scale, w.rows, nvec, backward);
  } else {
    launch_kernel(&cuda::quantize_kernel<CT, VEC, false>, blocks, cuda::kFlatThreads, 0, s, out,
                  w.out_rows, in, w.in_rows, scale, w.rows, nvec, backward);
  }
}

template <typename CT, int VEC>
void launch_amax(cudaStream_t s, const FlatWalk& w, float* scale, const CT* in, int sms,
                 const TwoPass& two_pass) {
  const int64_t nvec = w.hidden / VEC;
  const unsigned blocks = flat_blocks<CT>(w, nvec, sms, &two_pass, false);
  const cuda::L2Keep none{0};
  if (w.rows != 1) {
    launch_kernel(&cuda::tensor_amax_kernel<CT, VEC, false, false>, blocks, cuda::kFlatThreads, 0,
                  s, scale, in, w.in_rows, w.rows, nvec, none);
  } else if constexpr (sizeof(CT) * VEC == 16) {
    const int64_t keep_vec = two_pass.l2_bytes * kQuantPolicy.two_pass_l2_keep_percent / 100 / 16;
    const cuda::L2Keep keep{std::max<int64_t>(0, nvec - keep_vec)};
    launch_kernel(&cuda::tensor_amax_kernel<CT, VEC, true, true>, blocks, cuda::kFlatThreads, 0, s,
                  scale, in, w.in_rows, w.rows, nvec, keep);
  } else {
    launch_kernel(&cuda::tensor_amax_kernel<CT, VEC, true, false>, blocks, cuda::kFlatThreads, 0, s,
                  scale, in, w.in_rows, w.rows, nvec, none);
  }
}

template <typename CT, int VEC, typename Rows, bool EXACT>
void launch_per_token_rows(cudaStream_t st, int items, int threads, unsigned blocks, uint8_t* out,
                           const Rows& orows, const CT* in, const Rows& irows, float* scale,
                           int64_t scale_stride, const float* ub, int64_t rows, int hidden) {
  switch (items) {
    case 1:
      launch_kernel(&cuda::per_token_kernel<CT, VEC, 1, Rows, EXACT>, blocks, threads, 0, st, out,
                    orows, in, irows, scale, scale_stride, ub, rows, hidden);
      break;
    case 2:
      launch_kernel(&cuda::per_token_kernel<CT, VEC, 2, Rows, EXACT>, blocks, threads, 0, st, out,
                    orows, in, irows, scale, scale_stride, ub, rows, hidden);
      break;
    case 4:
      launch_kernel(&cuda::per_token_kernel<CT, VEC, 4, Rows, EXACT>, blocks, threads, 0, st, out,
                    orows, in, irows, scale, scale_stride, ub, rows, hidden);
      break;
    default:
      launch_kernel(&cuda::per_token_kernel<CT, VEC, 8, Rows, EXACT>, blocks, threads, 0, st, out,
                    orows, in, irows, scale, scale_stride, ub, rows, hidden);
  }
}

template <typename CT, int VEC>
void launch_per_token(cudaStream_t st, int items, int threads, unsigned blocks, uint8_t* out,
                      const RowIndexer& orows, const CT* in, const RowIndexer& irows, float* scale,
                      int64_t scale_stride, const float* ub, int64_t rows, int hidden) {
  if (items == 0) {
    launch_kernel(&cuda::per_token_generic_kernel<CT, VEC>, blocks, threads, 0, st, out, orows, in,
                  irows, scale, scale_stride, ub, rows, hidden);
    return;
  }
  // rows of exactly items x threads 16-byte vectors, one block each, as one stride: the
  // kernel without bounds or row loop (the rows of the benchmark's shapes, 4096 to 16384
  // 16-bit elements)
  const bool exact = static_cast<int64_t>(items) * threads * VEC == hidden && blocks == rows;
  visit_rows(orows, irows, [&](const auto& o, const auto& i) {
    using Rows = std::decay_t<decltype(o)>;
    if constexpr (VEC > 1 && std::is_same_v<Rows, StridedRows>) {
      if (exact) {
        launch_per_token_rows<CT, VEC, Rows, true>(st, items, threads, blocks, out, o, in, i, scale,
                                                   scale_stride, ub, rows, hidden);
        return;
      }
    }
    launch_per_token_rows<CT, VEC, Rows, false>(st, items, threads, blocks, out, o, in, i, scale,
                                                scale_stride, ub, rows, hidden);
  });
}

// Vectors per thread, threads and blocks of dynamic_quant_fused_kernel for nvec vectors, or
// items == 0 when the input is too large for the limits.
struct FusedShape {
  int items = 0;
  int threads = 0;
  int blocks = 0;
};

// The shape under limits: vectors per thread grow in powers of two (up to max_items) while
// a block would need more than `want` threads, then blocks (up to max_blocks), then threads
// (up to max_threads).
struct FusedLimits {
  int max_blocks;
  int want;
  int max_items;
  int max_threads;
};

FusedShape fused_shape(int64_t nvec, FusedLimits lim) {
  FusedShape b;
  int items = 1;
  while (items < lim.max_items && (nvec + items - 1) / items > lim.want) {
    items *= 2;
  }
  const int64_t per_items = (nvec + items - 1) / items;
  const int64_t blocks = std::min<int64_t>(lim.max_blocks, (per_items + lim.want - 1) / lim.want);
  const int64_t threads = std::max<int64_t>(32, ((per_items + blocks - 1) / blocks + 31) / 32 * 32);
  if (threads <= lim.max_threads) {
    b.items = items;
    b.threads = static_cast<int>(threads);
    b.blocks = static_cast<int>(blocks);
  }
  return b;
}

// A kernel of clusters larger than the portable 8 blocks must say so before its launch.
template <auto kKernel>
void allow_large_clusters() {
  static const cudaError_t err =
      cudaFuncSetAttribute(kKernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
  (void)err;  // where it fails, so does the launch, whose error is reported
}

// How many dynamic_quant_fused_kernel blocks one cluster of the current device may hold:
// 0 where there are no clusters (runs_sm90_code), else kQuantPolicy.cluster_max_blocks where
// the device schedules that many, else the portable 8. Asked once per device.
int fused_cluster_cap() {
  return once_per_device(
      [](int) {
        constexpr auto kernel =
            &cuda::dynamic_quant_fused_kernel<__nv_bfloat16, 8, cuda::kOneBlockMaxItems, true>;
        if (!runs_sm90_code(reinterpret_cast<const void*>(kernel))) {
          return 0;
        }
        allow_large_clusters<kernel>();
        const int want = kQuantPolicy.cluster_max_blocks;
        cudaLaunchAttribute attr[1];
        attr[0].id = cudaLaunchAttributeClusterDimension;
        attr[0].val.clusterDim = {static_cast<unsigned>(want), 1, 1};
        cudaLaunchConfig_t config = {};
        config.gridDim = dim3(static_cast<unsigned>(want));
        config.blockDim = dim3(static_cast<unsigned>(kQuantPolicy.cluster_threads));
        config.attrs = attr;
        config.numAttrs = 1;
        int clusters = 0;
        const bool asked =
            cudaOccupancyMaxActiveClusters(&clusters, kernel, &config) == cudaSuccess;
        return asked && clusters > 0 ? want : 8;
      },
      0);
}

// The fused kernel's shape on the current device (kQuantPolicy), or items == 0 where the
// input is too large for it.
FusedShape dynamic_fused_shape(int64_t nvec) {
  constexpr QuantPolicy p = kQuantPolicy;
  const int cluster_cap = fused_cluster_cap();
  if (cluster_cap == 0) {
    return fused_shape(nvec,
                       {1, p.one_block_threads, cuda::kOneBlockMaxItems, cuda::kOneBlockThreads});
  }
  FusedShape b =
      fused_shape(nvec, {1, p.single_block_threads, p.single_block_items, p.single_block_threads});
  for (int items = p.cluster_min_items; b.items == 0 && items <= cuda::kOneBlockMaxItems;
       items *= 2) {
    b = fused_shape(nvec, {cluster_cap, p.cluster_threads, items, p.cluster_threads});
  }
  return b;
}

template <typename CT, int VEC, int ITEMS>
void launch_fused_items(cudaStream_t s, FusedShape b, uint8_t* out, float* scale, const CT* in,
                        int64_t nvec) {
  if (b.blocks == 1) {
    launch_kernel(&cuda::dynamic_quant_fused_kernel<CT, VEC, ITEMS, false>, 1, b.threads, 0, s, out,
                  scale, in, nvec);
    return;
  }
  constexpr auto kernel = &cuda::dynamic_quant_fused_kernel<CT, VEC, ITEMS, true>;
  if (b.blocks > 8) {
    allow_large_clusters<kernel>();
  }
  cudaLaunchAttribute cluster;
  cluster.id = cudaLaunchAttributeClusterDimension;
  cluster.val.clusterDim = {static_cast<unsigned>(b.blocks), 1, 1};
  launch_kernel_with(kernel, static_cast<unsigned>(b.blocks), static_cast<unsigned>(b.threads), 0,
                     s, &cluster, out, scale, in, nvec);
}

template <typename CT, int VEC>
void launch_fused(cudaStream_t s, FusedShape b, uint8_t* out, float* scale, const CT* in,
                  int64_t nvec) {
  switch (b.items) {
    case 1: launch_fused_items<CT, VEC, 1>(s, b, out, scale, in, nvec); break;
    case 2: launch_fused_items<CT, VEC, 2>(s, b, out, scale, in, nvec); break;
    case 4: launch_fused_items<CT, VEC, 4>(s, b, out, scale, in, nvec); break;
    default:
      static_assert(cuda::kOneBlockMaxItems == 8, "one case per power of two");
      launch_fused_items<CT, VEC, 8>(s, b, out, scale, in, nvec);
  }
}

// The shape of dynamic_quant_grid_kernel on the current device: the vectors a thread may
// hold in shared memory (0: the kernel is not taken on this device: no cooperative launch,
// or one block of kGridThreads with that memory is not resident on every SM). Asked once
// per device.
int grid_held_cap() {
  return once_per_device(
      [](int device) {
        constexpr auto kernel = &cuda::dynamic_quant_grid_kernel<__nv_bfloat16, 8>;
        int coop = 0;
        int optin = 0;
        if (cudaDeviceGetAttribute(&coop, cudaDevAttrCooperativeLaunch, device) != cudaSuccess ||
            coop == 0 ||
            cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device) !=
                cudaSuccess) {
          return 0;
        }
        constexpr int64_t kItemBytes = int64_t{16} * cuda::kGridThreads;
        constexpr int64_t kStatic = 1024;  // block_max's partials and the block's scale
        int held = static_cast<int>(
            std::min<int64_t>(kQuantPolicy.grid_held_items, (optin - kStatic) / kItemBytes));
        for (; held >= 0; --held) {
          if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   static_cast<int>(held * kItemBytes)) != cudaSuccess) {
            cudaGetLastError();
            continue;
          }
          int per_sm = 0;
          if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(
                  &per_sm, kernel, cuda::kGridThreads, static_cast<size_t>(held * kItemBytes)) ==
                  cudaSuccess &&
              per_sm >= 1) {
            return held + 1;
          }
          cudaGetLastError();
        }
        return 0;
      },
      0);
}

// The slabs a thread of the grid kernel holds in shared memory for nvec vectors on `sms`
// SMs, or -1 where the kernel does not take them.
int grid_held(int64_t nvec, int sms, int64_t l2_bytes) {
  const int cap = grid_held_cap() - 1;
  if (cap < 0 || sms <= 0) {
    return -1;
  }
  const int64_t slab = int64_t{sms} * cuda::kGridThreads;
  const int64_t slabs = (nvec + slab - 1) / slab;
  const int64_t bytes = nvec * 16;
  // 32-bit vector indices in the kernel, past the last slab too
  if (nvec + slab > (int64_t{1} << 31) - 1) {
    return -1;
  }
  const int64_t chip =
      (cuda::kGridRegItems + cap) * slab * 16 + kQuantPolicy.grid_max_l2_multiple * l2_bytes;
  if (bytes > chip) {
    return -1;
  }
  return static_cast<int>(std::clamp<int64_t>(slabs - cuda::kGridRegItems, 0, cap));
}

template <typename CT, int VEC>
cudaError_t launch_grid(cudaStream_t s, int held, uint8_t* out, float* scale, void* sync,
                        const CT* in, int64_t nvec, int sms, int64_t l2_bytes) {
  constexpr auto kernel = &cuda::dynamic_quant_grid_kernel<CT, VEC>;
  const size_t smem = static_cast<size_t>(held) * 16 * cuda::kGridThreads;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(smem));
  if (err != cudaSuccess) {
    return err;
  }
  err = cudaMemsetAsync(sync, 0, sizeof(cuda::GridSync), s);
  if (err != cudaSuccess) {
    return err;
  }
  const int64_t keep_vec = l2_bytes * kQuantPolicy.two_pass_l2_keep_percent / 100 / 16;
  const int keep_from = static_cast<int>(std::max<int64_t>(0, nvec - keep_vec));
  // Cooperative (every block resident at once, or an error), and not through launch_kernel:
  // what precedes it in the stream is the memset, no kernel, so a programmatic launch would
  // overlap nothing.
  cudaLaunchAttribute coop[1];
  coop[0].id = cudaLaunchAttributeCooperative;
  coop[0].val.cooperative = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(sms));
  config.blockDim = dim3(cuda::kGridThreads);
  config.dynamicSmemBytes = smem;
  config.stream = s;
  config.attrs = coop;
  config.numAttrs = 1;
  return cudaLaunchKernelEx(&config, kernel, out, scale, static_cast<cuda::GridSync*>(sync), in,
                            static_cast<int>(nvec), held, keep_from);
}

}  // namespace

int64_t dynamic_quant_grid_sync_bytes() {
  return sizeof(cuda::GridSync);
}

bool dynamic_quant_grid_takes(DType dtype, const FlatWalk& w, const void* out, const void* in,
                              int sms, int64_t l2_bytes) {
  bool takes = false;
  const cudaError_t err = stablekernels::cuda::dispatch_float(dtype, [&](auto tag) {
    using CT = typename decltype(tag)::type;
    constexpr int kVec = stablekernels::cuda::kVec16<CT>;
    if (w.rows != 1 || w.hidden <= 0 || flat_vec<CT>(w, out, in) != kVec) {
      return;
    }
    takes = grid_held(w.hidden / kVec, sms, l2_bytes) >= 0;
  });
  return takes && err == cudaSuccess;
}

cudaError_t launch_dynamic_quant_grid(DType dtype, cudaStream_t stream, const FlatWalk& w,
                                      uint8_t* out, float* scale, void* sync, const void* in_ptr,
                                      int sms, int64_t l2_bytes) {
  cudaError_t launch_err = cudaSuccess;
  const cudaError_t err = stablekernels::cuda::dispatch_float(dtype, [&](auto tag) {
    using CT = typename decltype(tag)::type;
    constexpr int kVec = stablekernels::cuda::kVec16<CT>;
    const int64_t nvec = w.hidden / kVec;
    const int held = grid_held(nvec, sms, l2_bytes);
    launch_err = held < 0
                     ? cudaErrorInvalidValue  // not a walk dynamic_quant_grid_takes
                     : launch_grid<CT, kVec>(stream, held, out, scale, sync,
                                             static_cast<const CT*>(in_ptr), nvec, sms, l2_bytes);
  });
  return launch_err != cudaSuccess ? launch_err : err;
}

bool launch_dynamic_quant_fused(DType dtype, cudaStream_t stream, const FlatWalk& w, uint8_t* out,
                                float* scale, const void* in_ptr, cudaError_t& err) {
  bool launched = false;
  err = stablekernels::cuda::dispatch_float(dtype, [&](auto tag) {
    using CT = typename decltype(tag)::type;
    constexpr int kVec = stablekernels::cuda::kVec16<CT>;
    if (w.rows != 1 || w.hidden <= 0 || flat_vec<CT>(w, out, in_ptr) != kVec) {
      return;
    }
    const int64_t nvec = w.hidden / kVec;
    const FusedShape b = dynamic_fused_shape(nvec);
    if (b.items > 0) {
      launch_fused<CT, kVec>(stream, b, out, scale, static_cast<const CT*>(in_ptr), nvec);
      launched = true;
    }
  });
  return launched;
}

cudaError_t launch_quantize_tensor(DType dtype, cudaStream_t stream, const FlatWalk& w,
                                   uint8_t* out, const void* in_ptr, const float* scale, int sms,
                                   const TwoPass* two_pass) {
  return stablekernels::cuda::dispatch_float(dtype, [&](auto tag) {
    using CT = typename decltype(tag)::type;
    const CT* in = static_cast<const CT*>(in_ptr);
    constexpr int kDecodeVec = 4;  // elements
    const int vec = flat_vec<CT>(w, out, in);
    if (w.rows == 1 && w.hidden <= kQuantPolicy.decode_max_elems && vec > 1) {
      constexpr int kThreads = cuda::kFlatThreads;
      const int64_t nvec = w.hidden / kDecodeVec;
      launch_kernel(&cuda::quantize_decode_kernel<CT, kDecodeVec>,
                    static_cast<unsigned>((nvec + kThreads - 1) / kThreads), kThreads, 0, stream,
                    out, in, scale, static_cast<int>(nvec));
      return;
    }
    if (vec == 1) {
      launch_quantize<CT, 1>(stream, w, out, in, scale, sms, two_pass);
    } else {
      launch_quantize<CT, stablekernels::cuda::kVec16<CT>>(stream, w, out, in, scale, sms,
                                                           two_pass);
    }
  });
}

cudaError_t launch_tensor_amax(DType dtype, cudaStream_t stream, const FlatWalk& w, float* scale,
                               const void* in_ptr, int sms, const TwoPass& two_pass) {
  return stablekernels::cuda::dispatch_float(dtype, [&](auto tag) {
    using CT = typename decltype(tag)::type;
    const CT* in = static_cast<const CT*>(in_ptr);
    if (flat_vec<CT>(w, nullptr, in) == 1) {
      launch_amax<CT, 1>(stream, w, scale, in, sms, two_pass);
    } else {
      launch_amax<CT, stablekernels::cuda::kVec16<CT>>(stream, w, scale, in, sms, two_pass);
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
    const bool decode = rows <= kQuantPolicy.per_token_decode_rows;
    // vectors a thread grow while a row needs more than `want` threads; then threads grow
    // up to `most`
    const int64_t want =
        decode ? kQuantPolicy.per_token_decode_threads : kQuantPolicy.per_token_threads;
    const int64_t most = decode ? kQuantPolicy.per_token_decode_threads : cuda::kRowKernelThreads;
    static_assert(kQuantPolicy.per_token_decode_threads <= cuda::kRowKernelMaxThreads);
    static_assert(kQuantPolicy.per_token_threads <= cuda::kRowKernelThreads);
    int items = decode ? kQuantPolicy.per_token_decode_items : 1;
    while (items < kQuantPolicy.per_token_max_items && (nvec + items - 1) / items > want) {
      items *= 2;
    }
    const int64_t per_thread = (nvec + items - 1) / items;
    int threads = static_cast<int>(std::max<int64_t>(32, (per_thread + 31) / 32 * 32));
    if (per_thread > most) {
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

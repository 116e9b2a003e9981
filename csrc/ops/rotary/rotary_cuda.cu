// SPDX-License-Identifier: Apache-2.0
// CUDA launch code of the rotary family: access width, template instantiation, launch.
// Torch-free (nvcc compiles it; docs/farm.md says why): the checks, tensors and
// registration are in rotary_cuda.cpp.

#include <algorithm>
#include <type_traits>

#include "ops/rotary/rotary_kernels.cuh"
#include "ops/rotary/rotary_launch.h"
#include "ops/rotary/rotary_tuning.h"
#include "stablekernels/cuda_dispatch.cuh"
#include "stablekernels/kernel_launch.cuh"
#include "stablekernels/launch.h"

namespace stablekernels::rotary {
namespace {

// Bytes of one cos/sin access of load_angles for chunks of K pairs (up to 16), or 0 when
// the cache's base, row stride or half row is not a multiple of it (one by one then).
template <typename C, int K>
bool cache_vectorizable(const RotaryShape& s, const C* cache) {
  const int64_t bytes = std::min<int64_t>(16, K * static_cast<int64_t>(sizeof(C)));
  const int64_t elems = bytes / static_cast<int64_t>(sizeof(C));
  return elems > 1 && access_elems(sizeof(C), {s.cache_stride, s.rot_dim / 2}, {cache}) >= elems;
}

template <typename T, typename C, bool NEOX, int N, bool VECTOR>
void launch(cudaStream_t stream, const RotaryShape& s, const int64_t* positions, T* query, T* key,
            const C* cache) {
  const int64_t chunks = (NEOX ? s.rot_dim / 2 : s.rot_dim) / N;
  const RotaryLaunch l = plan_rotary(s.num_tokens, s.query.num_heads + s.key.num_heads, chunks);
  const dim3 grid(static_cast<unsigned>(l.blocks_x), static_cast<unsigned>(l.blocks_y));
  const dim3 block(static_cast<unsigned>(l.threads_x), static_cast<unsigned>(l.threads_y),
                   static_cast<unsigned>(l.threads_z));
  const bool cache_vec = cache_vectorizable < C, NEOX ? N : N / 2 > (s, cache);
  constexpr int kHpt = kRotaryPolicy.heads_per_thread;
  // the one-pass kernel for vector access only (element access keeps the loops: fewer
  // instantiations for the layouts that are slow anyway)
  if constexpr (VECTOR) {
    if (rotary_one_pass(l, s, chunks)) {
      launch_kernel(&cuda::rotary_embedding_kernel<T, C, NEOX, N, VECTOR, kHpt, true>, grid, block,
                    0, stream, positions, query, key, cache, s, cache_vec);
      return;
    }
  }
  launch_kernel(&cuda::rotary_embedding_kernel<T, C, NEOX, N, VECTOR, kHpt, false>, grid, block, 0,
                stream, positions, query, key, cache, s, cache_vec);
}

// Calls f(TypeTag<float>) for a float32 cache, else f(TypeTag<CT>) (the query's type):
// dispatch_cache_type of rotary.h, on DType.
template <typename CT, typename F>
void dispatch_cache(DType cache_dtype, F&& f) {
  if (cache_dtype == DType::kFloat32) {
    f(stablekernels::cuda::TypeTag<float>{});
  } else {
    f(stablekernels::cuda::TypeTag<CT>{});
  }
}

// Calls f(std::integral_constant<bool, is_neox>{}) (dispatch_neox of rotary.h).
template <typename F>
void dispatch_neox_flag(bool is_neox, F&& f) {
  if (is_neox) {
    f(std::true_type{});
  } else {
    f(std::false_type{});
  }
}

}  // namespace

cudaError_t launch_rotary_embedding(DType dtype, DType cache_dtype, bool is_neox,
                                    cudaStream_t stream, const RotaryShape& s, const int64_t* pos,
                                    void* query, void* key, const void* cos_sin_cache) {
  return stablekernels::cuda::dispatch_float(dtype, [&](auto tag) {
    using CT = typename decltype(tag)::type;
    CT* q = static_cast<CT*>(query);
    CT* k = static_cast<CT*>(key);
    // A chunk is a run of the rotated part (a half of it for NeoX): the run and every token
    // and head stride must be multiples of the access, and the base pointers aligned to it.
    const int64_t run = is_neox ? s.rot_dim / 2 : s.rot_dim;
    const int64_t n = access_elems(
        sizeof(CT),
        {run, s.query.token_stride, s.query.head_stride, s.key.token_stride, s.key.head_stride},
        {q, k});
    dispatch_cache<CT>(cache_dtype, [&](auto cache_tag) {
      using CC = typename decltype(cache_tag)::type;
      const CC* cache = static_cast<const CC*>(cos_sin_cache);
      dispatch_neox_flag(is_neox, [&](auto neox) {
        constexpr bool kNeox = decltype(neox)::value;
        constexpr int kWide = stablekernels::cuda::kVec16<CT>;
        if (n == kWide) {
          launch<CT, CC, kNeox, kWide, true>(stream, s, pos, q, k, cache);
        } else if (n == kWide / 2) {
          launch<CT, CC, kNeox, kWide / 2, true>(stream, s, pos, q, k, cache);
        } else {
          // element by element: one element (NeoX) or one pair of two loads (interleaved)
          launch<CT, CC, kNeox, kNeox ? 1 : 2, kNeox>(stream, s, pos, q, k, cache);
        }
      });
    });
  });
}

}  // namespace stablekernels::rotary

// SPDX-License-Identifier: Apache-2.0
// CUDA implementation of the rotary family: checks, access width, launch, registration.

#include <torch/csrc/stable/library.h>

#include <optional>

#include "core/cuda_utils.h"
#include "core/dispatch.h"
#include "ops/rotary/rotary.h"
#include "ops/rotary/rotary_kernels.cuh"
#include "ops/rotary/rotary_tuning.h"
#include "stablekernels/launch.h"

namespace stablekernels::rotary {
namespace {

template <typename T, typename C, bool NEOX, int N, bool VECTOR>
void launch(cudaStream_t stream, const RotaryShape& s, const int64_t* positions, T* query, T* key,
            const C* cache) {
  const int64_t chunks = (NEOX ? s.rot_dim / 2 : s.rot_dim) / N;
  const RotaryLaunch l = plan_rotary(s.num_tokens, s.query.num_heads + s.key.num_heads, chunks);
  const dim3 grid(static_cast<unsigned>(l.blocks_x), static_cast<unsigned>(l.blocks_y));
  const dim3 block(static_cast<unsigned>(l.tile.threads_x),
                   static_cast<unsigned>(l.tile.threads_y));
  cuda::rotary_embedding_kernel<T, C, NEOX, N, VECTOR, kRotaryPolicy.heads_per_thread>
      <<<grid, block, 0, stream>>>(positions, query, key, cache, s);
}

void rotary_embedding_cuda(const Tensor& positions, const Tensor& query,
                           const std::optional<Tensor>& key, int64_t head_size,
                           const Tensor& cos_sin_cache, bool is_neox) {
  constexpr const char* op = "rotary_embedding";
  const RotaryShape s = check_rotary_embedding(positions, query, key, head_size, cos_sin_cache);
  if (s.num_tokens == 0 || s.query.num_heads + s.key.num_heads == 0) {
    return;
  }
  CudaLaunchContext ctx(query, op);
  const auto* pos = static_cast<const int64_t*>(positions.data_ptr());
  dispatch_float_types(query.scalar_type(), op, "query", [&](auto tag) {
    using T = decltype(tag);
    using CT = cuda_type_t<T>;
    CT* q = cuda_ptr<CT>(query);
    CT* k = key.has_value() ? cuda_ptr<CT>(*key) : nullptr;
    // A chunk is a run of the rotated part (a half of it for NeoX): the run and every token
    // and head stride must be multiples of the access, and the base pointers aligned to it.
    const int64_t run = is_neox ? s.rot_dim / 2 : s.rot_dim;
    const int64_t n = access_elems(
        sizeof(CT),
        {run, s.query.token_stride, s.query.head_stride, s.key.token_stride, s.key.head_stride},
        {q, k});
    dispatch_cache_type<T>(cos_sin_cache.scalar_type(), [&](auto cache_tag) {
      using CC = cuda_type_t<decltype(cache_tag)>;
      const CC* cache = cuda_ptr<CC>(cos_sin_cache);
      dispatch_neox(is_neox, [&](auto neox) {
        constexpr bool kNeox = decltype(neox)::value;
        constexpr int kWide = stablekernels::cuda::kVec16<CT>;
        if (n == kWide) {
          launch<CT, CC, kNeox, kWide, true>(ctx.stream, s, pos, q, k, cache);
        } else if (n == kWide / 2) {
          launch<CT, CC, kNeox, kWide / 2, true>(ctx.stream, s, pos, q, k, cache);
        } else {
          // element by element: one element (NeoX) or one pair of two loads (interleaved)
          launch<CT, CC, kNeox, kNeox ? 1 : 2, kNeox>(ctx.stream, s, pos, q, k, cache);
        }
      });
    });
  });
  STABLEKERNELS_KERNEL_LAUNCH_CHECK(op);
}

}  // namespace
}  // namespace stablekernels::rotary

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CUDA, m) {
  m.impl("rotary_embedding", TORCH_BOX(&stablekernels::rotary::rotary_embedding_cuda));
}

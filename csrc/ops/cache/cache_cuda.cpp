// SPDX-License-Identifier: Apache-2.0
// CUDA ops of the cache family, torch-facing glue (host compiler): checks, tensors ->
// pointers, dtype -> DType, stream and arch guard, the device buffers, the plain CUDA
// runtime work (block copies, the bad-entry word and reading it back), registration. The
// kernel launches are in the torch-free cache_cuda.cu (cache_launch.h).

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>

#include <optional>
#include <string>
#include <vector>

#include "core/cuda_utils.h"
#include "ops/cache/cache.h"
#include "ops/cache/cache_launch.h"

namespace stablekernels::cache {
namespace {

bool is_capturing(cudaStream_t stream, const char* op) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  STABLEKERNELS_CUDA_CHECK(cudaStreamIsCapturing(stream, &status), op);
  return status != cudaStreamCaptureStatusNone;
}

// A device word the kernels lower to the first bad index they meet (none: kNoBadEntry). Not
// used while the stream is being captured into a CUDA graph: reading it back needs a sync.
struct BadEntryFlag {
  Tensor buffer;
  unsigned long long* ptr = nullptr;

  BadEntryFlag(const Tensor& like, cudaStream_t stream, const char* op)
      : buffer(torch::stable::new_empty(like, {1}, ScalarType::Long)) {
    if (is_capturing(stream, op)) {
      return;
    }
    ptr = static_cast<unsigned long long*>(buffer.data_ptr());
    STABLEKERNELS_CUDA_CHECK(cudaMemsetAsync(ptr, 0xff, sizeof(*ptr), stream), op);
  }

  // Waits for the stream; the first bad index, or kNoBadEntry (also when not checked).
  unsigned long long read(cudaStream_t stream, const char* op) const {
    unsigned long long host = kNoBadEntry;
    if (ptr != nullptr) {
      STABLEKERNELS_CUDA_CHECK(
          cudaMemcpyAsync(&host, ptr, sizeof(host), cudaMemcpyDeviceToHost, stream), op);
      STABLEKERNELS_CUDA_CHECK(cudaStreamSynchronize(stream), op);
    }
    return host;
  }
};

int64_t read_device_int64(const int64_t* p, cudaStream_t stream, const char* op) {
  int64_t host = 0;
  STABLEKERNELS_CUDA_CHECK(cudaMemcpyAsync(&host, p, sizeof(host), cudaMemcpyDeviceToHost, stream),
                           op);
  STABLEKERNELS_CUDA_CHECK(cudaStreamSynchronize(stream), op);
  return host;
}

void reshape_and_cache_flash_cuda(const Tensor& key, const Tensor& value, const Tensor& key_cache,
                                  const Tensor& value_cache, const Tensor& slot_mapping,
                                  const std::string& kv_cache_dtype, const Tensor& k_scale,
                                  const Tensor& v_scale) {
  constexpr const char* op = "reshape_and_cache_flash";
  const ReshapeAndCacheShape s = check_reshape_and_cache_flash(
      op, key, value, key_cache, value_cache, slot_mapping, kv_cache_dtype, k_scale, v_scale);
  if (s.num_tokens == 0 || s.num_heads * s.head_size == 0) {
    return;
  }
  CudaLaunchContext ctx(key, op);
  const BadEntryFlag bad(slot_mapping, ctx.stream, op);
  const bool fp8 = s.kv_cache_dtype == KvCacheDtype::kFp8E4m3;
  const auto* slots = data_ptr<const int64_t>(slot_mapping);
  const float* ks = data_ptr<const float>(k_scale);
  const float* vs = data_ptr<const float>(v_scale);
  void* kc = key_cache.data_ptr();
  void* vc = value_cache.data_ptr();
  const DType dtype = float_dtype(key.scalar_type(), op, "key");
  check_launch(launch_reshape_and_cache_flash(dtype, fp8, ctx.stream, s, key.data_ptr(),
                                              value.data_ptr(), kc, vc, slots, ks, vs, bad.ptr),
               op);
  const unsigned long long t = bad.read(ctx.stream, op);
  if (t != kNoBadEntry) {
    const auto token = static_cast<int64_t>(t);
    fail_slot(op, token, read_device_int64(slots + token * s.slot_mapping_stride, ctx.stream, op),
              s.num_slots);
  }
}

void swap_blocks_cuda(const Tensor& src, const Tensor& dst, const Tensor& block_mapping) {
  constexpr const char* op = "swap_blocks";
  check_swap_blocks(op, src, dst, block_mapping);
  STABLEKERNELS_CHECK(src.is_cuda() || dst.is_cuda(), op,
                      "'src' or 'dst' must be on a CUDA device, got ", device_str(src), " and ",
                      device_str(dst));
  STABLEKERNELS_CHECK(src.is_cuda() || src.is_cpu(), op,
                      "'src' must be on the cpu or a CUDA "
                      "device, got ",
                      device_str(src));
  STABLEKERNELS_CHECK(dst.is_cuda() || dst.is_cpu(), op,
                      "'dst' must be on the cpu or a CUDA "
                      "device, got ",
                      device_str(dst));
  if (src.is_cuda() && dst.is_cuda()) {
    check_same_device(op, {dst, "dst"}, {src, "src"});
  }
  const std::vector<int64_t> m =
      read_block_mapping(op, block_mapping, "src", src.size(0), "dst", dst.size(0));
  const int64_t n = block_mapping.size(0);
  const int64_t bytes = block_bytes(src);
  if (n == 0 || bytes == 0) {
    return;
  }
  CudaLaunchContext ctx(src.is_cuda() ? src : dst, op);
  const cudaMemcpyKind kind =
      src.is_cuda() ? (dst.is_cuda() ? cudaMemcpyDeviceToDevice : cudaMemcpyDeviceToHost)
                    : cudaMemcpyHostToDevice;
  const auto* s = static_cast<const char*>(src.data_ptr());
  auto* d = static_cast<char*>(dst.data_ptr());
  for (int64_t i = 0; i < n; ++i) {
    STABLEKERNELS_CUDA_CHECK(cudaMemcpyAsync(d + m[2 * i + 1] * bytes, s + m[2 * i] * bytes,
                                             static_cast<size_t>(bytes), kind, ctx.stream),
                             op);
  }
}

void copy_blocks_cuda(const std::vector<Tensor>& key_caches,
                      const std::vector<Tensor>& value_caches, const Tensor& block_mapping) {
  constexpr const char* op = "copy_blocks";
  const int64_t layers = check_copy_blocks(op, key_caches, value_caches, block_mapping);
  if (layers == 0) {
    return;
  }
  STABLEKERNELS_CHECK(
      key_caches[0].is_cuda(), op, "'key_caches' must be on a CUDA device or all on the cpu, got ",
      device_str(key_caches[0]), " with 'block_mapping' on ", device_str(block_mapping));
  STABLEKERNELS_CHECK(layers <= 65535, op, "at most 65535 layers per call, got ", layers);
  const int64_t pairs = block_mapping.size(0);
  const int64_t num_blocks = key_caches[0].size(0);
  const int64_t kbytes = block_bytes(key_caches[0]);
  const int64_t vbytes = block_bytes(value_caches[0]);
  if (pairs == 0 || kbytes + vbytes == 0) {
    return;
  }
  // Host words for the device: the key cache addresses, the value cache addresses, then (for
  // a CPU block_mapping, checked here) the mapping. One copy to a small device buffer.
  std::vector<int64_t> words;
  words.reserve(static_cast<size_t>(2 * layers));
  for (const Tensor& t : key_caches) {
    words.push_back(reinterpret_cast<int64_t>(t.data_ptr()));
  }
  for (const Tensor& t : value_caches) {
    words.push_back(reinterpret_cast<int64_t>(t.data_ptr()));
  }
  const int64_t unit = copy_unit(kbytes, vbytes, words);
  const bool host_mapping = block_mapping.is_cpu();
  if (host_mapping) {
    const std::vector<int64_t> m =
        read_block_mapping(op, block_mapping, "key_caches", num_blocks, "key_caches", num_blocks);
    words.insert(words.end(), m.begin(), m.end());
  }
  CudaLaunchContext ctx(key_caches[0], op);
  const Tensor buffer = torch::stable::new_empty(
      key_caches[0], {static_cast<int64_t>(words.size())}, ScalarType::Long);
  auto* dev_words = static_cast<int64_t*>(buffer.data_ptr());
  // From pageable memory: the driver has taken the words when the call returns.
  STABLEKERNELS_CUDA_CHECK(cudaMemcpyAsync(dev_words, words.data(), words.size() * sizeof(int64_t),
                                           cudaMemcpyHostToDevice, ctx.stream),
                           op);
  const int64_t* mapping =
      host_mapping ? dev_words + 2 * layers : static_cast<const int64_t*>(block_mapping.data_ptr());
  const int64_t s0 = host_mapping ? 2 : stride_or_zero(block_mapping, 0);
  const int64_t s1 = host_mapping ? 1 : stride_or_zero(block_mapping, 1);
  // A device block_mapping is checked by the kernel (a CPU one was checked above).
  std::optional<BadEntryFlag> bad;
  if (!host_mapping) {
    bad.emplace(key_caches[0], ctx.stream, op);
  }
  unsigned long long* bad_ptr = bad ? bad->ptr : nullptr;
  check_launch(launch_copy_blocks(unit, ctx.stream, dev_words, layers, mapping, s0, s1, pairs,
                                  num_blocks, kbytes, vbytes, bad_ptr),
               op);
  if (bad_ptr != nullptr) {
    const unsigned long long row = bad->read(ctx.stream, op);
    if (row != kNoBadEntry) {
      const auto i = static_cast<int64_t>(row);
      const int64_t src = read_device_int64(mapping + i * s0, ctx.stream, op);
      const int64_t dst = read_device_int64(mapping + i * s0 + s1, ctx.stream, op);
      const bool src_bad = src < 0 || src >= num_blocks;
      fail_block(op, i, src_bad ? 0 : 1, src_bad ? src : dst, "key_caches", num_blocks);
    }
  }
}

}  // namespace
}  // namespace stablekernels::cache

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CUDA, m) {
  m.impl("reshape_and_cache_flash", TORCH_BOX(&stablekernels::cache::reshape_and_cache_flash_cuda));
  m.impl("swap_blocks", TORCH_BOX(&stablekernels::cache::swap_blocks_cuda));
  m.impl("copy_blocks", TORCH_BOX(&stablekernels::cache::copy_blocks_cuda));
}

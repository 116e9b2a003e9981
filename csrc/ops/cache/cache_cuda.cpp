// SPDX-License-Identifier: Apache-2.0
// CUDA ops of the cache family, torch-facing glue (host compiler): checks, tensors ->
// pointers, dtype -> DType, stream and arch guard, the device buffers, the plain CUDA
// runtime work (block copies, the bad-entry records and their reports), registration. The
// kernel launches are in the torch-free cache_cuda.cu (cache_launch.h).

#include <torch/csrc/stable/library.h>
#include <torch/csrc/stable/ops.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
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

// Bad indices held in device tensors (slot_mapping; a CUDA block_mapping) are checked by the
// kernels, which skip them (no access out of bounds) and write one to a BadEntryRecord in
// pinned host memory. Waiting for the kernel to read that back would make every call a
// stream synchronization (about 20 us a call, and the host no longer runs ahead of the
// GPU), so by default the host looks at the records at the start of each call of the
// family's CUDA ops, without waiting, and raises what an earlier call left there.
// STABLEKERNELS_SYNC_CHECKS=1 makes each call wait for its kernel and raise its own bad
// entry, as CUDA_LAUNCH_BLOCKING=1 does for CUDA's errors. Nothing is waited for or
// reported while the stream is being captured into a CUDA graph; what the replays record is
// reported by the next call outside a capture.
bool sync_checks(const char* op) {
  const char* v = std::getenv("STABLEKERNELS_SYNC_CHECKS");
  const std::string s = v == nullptr ? "" : v;
  STABLEKERNELS_CHECK(s.empty() || s == "0" || s == "1", op, "STABLEKERNELS_SYNC_CHECKS='", s,
                      "': expected 0 or 1 (or unset)");
  return s == "1";
}

// The records, kBadEntryKinds per device, allocated (zeroed) on the first call and kept for
// the life of the process. Mapped and portable: kernels of every device write them through
// the same address (unified addressing).
BadEntryRecord* bad_entry_records(const char* op) {
  static std::atomic<BadEntryRecord*> ready{nullptr};
  if (BadEntryRecord* r = ready.load(std::memory_order_acquire)) {
    return r;  // every call after the first: no lock
  }
  static std::mutex mutex;
  static BadEntryRecord* records = nullptr;
  const std::lock_guard<std::mutex> lock(mutex);
  if (records == nullptr) {
    int devices = 0;
    STABLEKERNELS_CUDA_CHECK(cudaGetDeviceCount(&devices), op);
    const size_t bytes = sizeof(BadEntryRecord) * kBadEntryKinds * static_cast<size_t>(devices);
    // An allocation is not a stream operation; a first call inside a capture may make it.
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    STABLEKERNELS_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode), op);
    void* host = nullptr;
    const cudaError_t alloc =
        cudaHostAlloc(&host, bytes, cudaHostAllocMapped | cudaHostAllocPortable);
    STABLEKERNELS_CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode), op);
    STABLEKERNELS_CUDA_CHECK(alloc, op);
    std::memset(host, 0, bytes);
    records = static_cast<BadEntryRecord*>(host);
    ready.store(records, std::memory_order_release);
  }
  return records;
}

BadEntryRecord* bad_entry_record(int device, BadEntryKind kind, const char* op) {
  return bad_entry_records(op) + device * kBadEntryKinds + kind;
}

[[noreturn]] void fail_recorded(const BadEntryRecord& r, BadEntryKind kind, bool this_call,
                                int device) {
  if (kind == kBadSlot) {
    constexpr const char* op = "reshape_and_cache_flash";
    if (this_call) {
      fail_slot(op, r.index, r.a, r.limit);
    }
    fail(op, "'slot_mapping' held slot ", r.a, " for token ", r.index,
         " in an earlier call on cuda:", device, ", beyond the cache of ", r.limit,
         " slots (num_blocks * block_size); that token was skipped. Slots are checked on the GPU "
         "and a bad one is raised by the next call of a cache op on the device (set "
         "STABLEKERNELS_SYNC_CHECKS=1 to have each call wait for its own check)");
  }
  constexpr const char* op = "copy_blocks";
  const bool src_bad = r.a < 0 || r.a >= r.limit;
  if (this_call) {
    fail_block(op, r.index, src_bad ? 0 : 1, src_bad ? r.a : r.b, "key_caches", r.limit);
  }
  fail(op, "'block_mapping' row ", r.index, " named ", (src_bad ? "source" : "destination"),
       " block ", src_bad ? r.a : r.b, " in an earlier call on cuda:", device,
       ", out of range for 'key_caches' of ", r.limit, " blocks (valid: 0 to ", r.limit - 1,
       "); that row was skipped. A CUDA block_mapping is checked on the GPU and a bad row is "
       "raised by the next call of a cache op on the device (set STABLEKERNELS_SYNC_CHECKS=1 to "
       "have each call wait for its own check)");
}

// Raises a bad entry recorded on `device` and frees its record (the claim is reset on
// `stream`). `own`: the kind this call's kernel may have recorded, after a synchronization
// (reported as this call's error); kBadEntryKinds for none.
void report_bad_entries(int device, cudaStream_t stream, BadEntryKind own, const char* op) {
  static std::mutex mutex;
  for (int k = 0; k < kBadEntryKinds; ++k) {
    const auto kind = static_cast<BadEntryKind>(k);
    BadEntryRecord* rec = bad_entry_record(device, kind, op);
    if (__atomic_load_n(&rec->set, __ATOMIC_ACQUIRE) == 0) {
      continue;
    }
    BadEntryRecord copy{};
    {
      const std::lock_guard<std::mutex> lock(mutex);
      if (__atomic_load_n(&rec->set, __ATOMIC_ACQUIRE) == 0) {
        continue;  // another thread reported it
      }
      copy = *rec;
      __atomic_store_n(&rec->set, 0, __ATOMIC_RELEASE);
      STABLEKERNELS_CUDA_CHECK(launch_reset_bad_entry_claim(k, stream), op);
    }
    fail_recorded(copy, kind, kind == own, device);
  }
}

// Around a kernel that may record bad entries of `kind`: reports earlier ones before it, and
// with STABLEKERNELS_SYNC_CHECKS=1 waits for it and reports its own after it.
class BadEntryCheck {
 public:
  BadEntryCheck(const CudaLaunchContext& ctx, int device, BadEntryKind kind, const char* op)
      : stream_(ctx.stream),
        device_(device),
        kind_(kind),
        op_(op),
        sync_(sync_checks(op)),
        capturing_(is_capturing(ctx.stream, op)),
        record_(bad_entry_record(device, kind, op)) {
    if (!capturing_) {
      report_bad_entries(device_, stream_, kBadEntryKinds, op_);
    }
  }

  BadEntryRecord* record() const { return record_; }

  void after_launch() const {
    if (sync_ && !capturing_) {
      STABLEKERNELS_CUDA_CHECK(cudaStreamSynchronize(stream_), op_);
      report_bad_entries(device_, stream_, kind_, op_);
    }
  }

 private:
  cudaStream_t stream_;
  int device_;
  BadEntryKind kind_;
  const char* op_;
  bool sync_;
  bool capturing_;
  BadEntryRecord* record_;
};

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
  const BadEntryCheck check(ctx, key.get_device_index(), kBadSlot, op);
  const bool fp8 = s.kv_cache_dtype == KvCacheDtype::kFp8E4m3;
  const auto* slots = data_ptr<const int64_t>(slot_mapping);
  const float* ks = data_ptr<const float>(k_scale);
  const float* vs = data_ptr<const float>(v_scale);
  void* kc = key_cache.data_ptr();
  void* vc = value_cache.data_ptr();
  const DType dtype = float_dtype(key.scalar_type(), op, "key");
  check_launch(
      launch_reshape_and_cache_flash(dtype, fp8, ctx.stream, s, key.data_ptr(), value.data_ptr(),
                                     kc, vc, slots, ks, vs, check.record()),
      op);
  check.after_launch();
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
  // A device block_mapping is checked by the kernel (a CPU one was checked above).
  const BadEntryCheck check(ctx, key_caches[0].get_device_index(), kBadBlock, op);
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
  check_launch(
      launch_copy_blocks(unit, ctx.stream, dev_words, layers, mapping, s0, s1, pairs, num_blocks,
                         kbytes, vbytes, host_mapping ? nullptr : check.record()),
      op);
  if (!host_mapping) {
    check.after_launch();
  }
}

}  // namespace
}  // namespace stablekernels::cache

STABLE_TORCH_LIBRARY_IMPL(stablekernels, CUDA, m) {
  m.impl("reshape_and_cache_flash", TORCH_BOX(&stablekernels::cache::reshape_and_cache_flash_cuda));
  m.impl("swap_blocks", TORCH_BOX(&stablekernels::cache::swap_blocks_cuda));
  m.impl("copy_blocks", TORCH_BOX(&stablekernels::cache::copy_blocks_cuda));
}

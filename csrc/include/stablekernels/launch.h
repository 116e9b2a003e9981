// SPDX-License-Identifier: Apache-2.0
#pragma once
// Launch-shape helpers shared by the CUDA launch code (the <family>_cuda.cu files).
// Torch-free.

#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "stablekernels/rows.h"

namespace stablekernels {

// Whether every row of every operand can be accessed `vec` elements of `elem_size` bytes
// at a time: the row length and every row start are multiples of `vec` elements and every
// base pointer is aligned to vec * elem_size bytes.
inline bool can_use_vec(int vec, int elem_size, int64_t row_len,
                        std::initializer_list<const void*> ptrs,
                        std::initializer_list<const RowIndexer*> row_layouts) {
  const auto bytes = static_cast<std::uintptr_t>(vec) * static_cast<std::uintptr_t>(elem_size);
  bool ok = row_len % vec == 0;
  for (const void* p : ptrs) {
    ok = ok && reinterpret_cast<std::uintptr_t>(p) % bytes == 0;
  }
  for (const RowIndexer* r : row_layouts) {
    ok = ok && r->strides_multiple_of(vec);
  }
  return ok;
}

// can_use_vec for 16-byte accesses of CT elements. Otherwise kernels fall back to one
// element per access.
template <typename CT>
bool can_use_vec16(int64_t row_len, std::initializer_list<const void*> ptrs,
                   std::initializer_list<const RowIndexer*> row_layouts) {
  return can_use_vec(static_cast<int>(16 / sizeof(CT)), static_cast<int>(sizeof(CT)), row_len, ptrs,
                     row_layouts);
}

// Access width of a kernel that moves runs of elements: the widest of 16 bytes, 8 bytes
// and one element that every run and pointer allows. For elements of `elem_size` bytes:
// 16 / elem_size when every value of `multiples` (run lengths and element strides, in
// elements) is a multiple of it and every non-null pointer of `ptrs` is 16-byte aligned;
// else the same test for 8 bytes; else 1.
inline int64_t access_elems(int64_t elem_size, std::initializer_list<int64_t> multiples,
                            std::initializer_list<const void*> ptrs) {
  for (const int64_t bytes : {int64_t{16}, int64_t{8}}) {
    const int64_t n = bytes / elem_size;
    if (n < 2) {
      continue;
    }
    bool ok = true;
    for (const int64_t m : multiples) {
      ok = ok && m % n == 0;
    }
    for (const void* p : ptrs) {
      ok = ok && (p == nullptr || reinterpret_cast<std::uintptr_t>(p) % bytes == 0);
    }
    if (ok) {
      return n;
    }
  }
  return 1;
}

// The largest block plan_tiles gives; kernels launched with it are bounded by it
// (__launch_bounds__). A bound of 1024 would cap them at 64 registers a thread, and the
// ones that hold several 16-byte chunks per thread would spill.
constexpr int kTileMaxThreads = 256;

// A block of threads_x x threads_y threads over a tile of `items` (heads, rows, ...) of
// `accesses` accesses each: threadIdx.x walks the accesses of an item, threadIdx.y the
// items of the tile, and each thread takes `items_per_thread` items, so a tile holds
// threads_y * items_per_thread items. About `threads` threads (at most kTileMaxThreads):
// fewer when there are few items, and no more than the tiles need once the items are
// spread evenly over them. `tiles` tiles cover the items.
struct TileLaunch {
  int threads_x = 1;
  int threads_y = 1;
  int64_t tiles = 0;
};

inline TileLaunch plan_tiles(int64_t items, int64_t accesses, int threads, int items_per_thread) {
  const auto ceil_div = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
  TileLaunch l;
  threads = std::min(threads, kTileMaxThreads);
  l.threads_x = static_cast<int>(std::clamp<int64_t>(accesses, 1, threads));
  const int64_t groups = ceil_div(items, items_per_thread);
  l.threads_y =
      static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(threads / l.threads_x, groups)));
  l.tiles = ceil_div(groups, l.threads_y);
  if (l.tiles == 0) {
    return l;  // no items
  }
  // Spread the items evenly over the tiles: 40 items in tiles of 32 become two tiles of 20.
  l.threads_y = static_cast<int>(ceil_div(groups, l.tiles));
  return l;
}

}  // namespace stablekernels

// SPDX-License-Identifier: Apache-2.0
#pragma once
// Access width of a kernel that moves runs of elements: the widest of 16 bytes,
// 8 bytes and one element that every run and pointer allows. Torch-free.

#include <cstdint>
#include <initializer_list>

namespace stablekernels {

// Elements per access for elements of `elem_size` bytes: 16 / elem_size when every
// value of `multiples` (run lengths and element strides, in elements) is a multiple
// of it and every non-null pointer of `ptrs` is 16-byte aligned; else the same test
// for 8 bytes; else 1.
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

}  // namespace stablekernels

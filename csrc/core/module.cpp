// SPDX-License-Identifier: Apache-2.0
// The Python module stub of each compiled library (_C and _C_cuda). Importing
// it runs the static registrations of the ops; it exports nothing else. Written
// against the limited API (Py_LIMITED_API), so the module is abi3.

#include <Python.h>

#include <torch/csrc/stable/library.h>

#define STABLEKERNELS_CONCAT2(a, b) a##b
#define STABLEKERNELS_CONCAT(a, b) STABLEKERNELS_CONCAT2(a, b)
#define STABLEKERNELS_STR2(x) #x
#define STABLEKERNELS_STR(x) STABLEKERNELS_STR2(x)

#ifndef USE_CUDA
// The namespace torch.ops.stablekernels is owned by _C. Op families add their
// schemas with STABLE_TORCH_LIBRARY_FRAGMENT in csrc/ops/<family>/<family>_def.cpp.
STABLE_TORCH_LIBRARY(stablekernels, m) {}
#endif

extern "C" PyMODINIT_FUNC STABLEKERNELS_CONCAT(PyInit_, STABLEKERNELS_MODULE_NAME)(void) {
  static PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT,
      STABLEKERNELS_STR(STABLEKERNELS_MODULE_NAME),
      "stablekernels compiled ops; use them through torch.ops.stablekernels",
      -1,
      nullptr,
      nullptr,
      nullptr,
      nullptr,
      nullptr,
  };
  return PyModule_Create(&module_def);
}

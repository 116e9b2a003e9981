# SPDX-License-Identifier: Apache-2.0
stablekernels_add_op_family(cache
  CPU_SOURCES  cache_def.cpp cache_cpu.cpp
  CUDA_SOURCES cache_cuda.cu cache_cuda.cpp)

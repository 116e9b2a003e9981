# SPDX-License-Identifier: Apache-2.0
stablekernels_add_op_family(norm
  CPU_SOURCES  norm_def.cpp norm_cpu.cpp
  CUDA_SOURCES norm_cuda.cu norm_cuda.cpp)

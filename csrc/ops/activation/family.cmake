# SPDX-License-Identifier: Apache-2.0
stablekernels_add_op_family(activation
  CPU_SOURCES  activation_def.cpp activation_cpu.cpp
  CUDA_SOURCES activation_cuda.cu activation_cuda.cpp)

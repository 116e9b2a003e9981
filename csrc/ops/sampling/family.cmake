# SPDX-License-Identifier: Apache-2.0
stablekernels_add_op_family(sampling
  CPU_SOURCES  sampling_def.cpp sampling_cpu.cpp
  CUDA_SOURCES sampling_cuda.cu sampling_cuda.cpp)

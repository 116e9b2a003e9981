# SPDX-License-Identifier: Apache-2.0
stablekernels_add_op_family(activation
  CPU_SOURCES  activation_def.cpp activation_cpu.cpp
  CUDA_SOURCES activation_cuda.cu activation_cuda.cpp)
# The CPU kernels' activation loops are branch-free float32 arithmetic with selects; GCC
# vectorizes them only when a comparison may not trap (nothing here reads FP exception flags).
set_source_files_properties("${CMAKE_CURRENT_LIST_DIR}/activation_cpu.cpp"
  PROPERTIES COMPILE_OPTIONS "-fno-trapping-math")

# SPDX-License-Identifier: Apache-2.0
stablekernels_add_op_family(sampling
  CPU_SOURCES  sampling_def.cpp sampling_cpu.cpp
  CUDA_SOURCES sampling_cuda.cu sampling_cuda.cpp)
# The CPU penalty loop is branch-free (both x / p and x * p computed, then selected); GCC
# vectorizes it only when a comparison may not trap (nothing here reads FP exception flags,
# and the results are the same: only the rounding of each operation matters).
set_source_files_properties("${CMAKE_CURRENT_LIST_DIR}/sampling_cpu.cpp"
  PROPERTIES COMPILE_OPTIONS "-fno-trapping-math")

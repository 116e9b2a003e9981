# SPDX-License-Identifier: Apache-2.0
# CUDA for stablekernels: find nvcc (or take a pinned CUDA toolchain from PyPI),
# turn STABLEKERNELS_CUDA_ARCHS into CMAKE_CUDA_ARCHITECTURES, name the variant.

# The CUDA toolkit taken from PyPI when no nvcc is on the machine: every package
# pinned to one minor (an unpinned nvidia-nvvm drifts to a newer minor).
set(STABLEKERNELS_PYPI_CUDA "13.0" CACHE STRING "CUDA minor fetched from PyPI when no nvcc is found")
# auto: nvcc from CUDACXX / PATH / /usr/local/cuda, else PyPI; system: fail without one;
# pypi: always the pinned PyPI toolchain (reproducible, ignores the machine's nvcc).
set(STABLEKERNELS_CUDA_TOOLCHAIN "auto" CACHE STRING "where nvcc comes from: auto, system or pypi")
# nvcc --compress-mode of the embedded fatbin (CUDA 12.8+): size, speed, balance, none,
# or default (nvcc's choice). "size" gives the smallest library and wheel (docs/farm.md).
set(STABLEKERNELS_CUDA_COMPRESS "size" CACHE STRING "nvcc --compress-mode: size, speed, balance, none or default")
# 0 (default): every .cu file is one nvcc call. N >= 2: the .cu files are compiled N at a
# time, each batch one nvcc call over a generated file that includes them. A compiler
# cache pays a fixed cost per nvcc call even on a hit (docs/farm.md), so a cached CI
# build wants few calls; a developer editing one kernel wants one file per call.
set(STABLEKERNELS_CUDA_UNITY "0" CACHE STRING "CUDA files per nvcc call (0: one each)")

# Arch presets. An entry NN is SASS for sm_NN; NN+PTX adds PTX for compute_NN,
# which newer GPUs JIT-compile. "default" is the release arch set.
set(STABLEKERNELS_CUDA_ARCH_PRESET_default "80;90;100+PTX")
set(STABLEKERNELS_CUDA_ARCH_PRESET_sm80 "80")
set(STABLEKERNELS_CUDA_ARCH_PRESET_sm90 "90")
set(STABLEKERNELS_CUDA_ARCH_PRESET_sm100 "100")
set(STABLEKERNELS_CUDA_ARCH_PRESET_hopper-ptx "90+PTX")
set(STABLEKERNELS_CUDA_ARCH_PRESET_datacenter "80;90;100;103+PTX")

# stablekernels_parse_cuda_archs(<spec> <cmake-archs-var> <sass-var> <ptx-var>)
#   "80;9.0;100+PTX" -> CMAKE_CUDA_ARCHITECTURES "80-real;90-real;100-real;100-virtual",
#   SASS "80;90;100", PTX "100". Accepts a preset name, ';', ',' or ' ' separators,
#   "8.0" or "80" spellings, and arch suffixes (90a).
function(stablekernels_parse_cuda_archs spec out_cmake out_sass out_ptx)
  if(DEFINED STABLEKERNELS_CUDA_ARCH_PRESET_${spec})
    set(spec "${STABLEKERNELS_CUDA_ARCH_PRESET_${spec}}")
  endif()
  string(REGEX REPLACE "[ ,]+" ";" spec "${spec}")
  set(_cmake "")
  set(_sass "")
  set(_ptx "")
  foreach(_a IN LISTS spec)
    if(_a STREQUAL "")
      continue()
    endif()
    if(NOT _a MATCHES "^([0-9]+)\\.?([0-9])([af]?)(\\+PTX)?$")
      message(FATAL_ERROR "STABLEKERNELS_CUDA_ARCHS: '${_a}' is neither a preset nor an arch like 90 or 100+PTX")
    endif()
    set(_n "${CMAKE_MATCH_1}${CMAKE_MATCH_2}${CMAKE_MATCH_3}")
    list(APPEND _cmake "${_n}-real")
    list(APPEND _sass "${_n}")
    if(CMAKE_MATCH_4)
      list(APPEND _cmake "${_n}-virtual")
      list(APPEND _ptx "${_n}")
    endif()
  endforeach()
  if(NOT _sass)
    message(FATAL_ERROR "STABLEKERNELS_CUDA_ARCHS is empty; for a CPU-only wheel set STABLEKERNELS_CUDA=OFF")
  endif()
  set(${out_cmake} "${_cmake}" PARENT_SCOPE)
  set(${out_sass} "${_sass}" PARENT_SCOPE)
  set(${out_ptx} "${_ptx}" PARENT_SCOPE)
endfunction()

# stablekernels_enable_cuda()
#   Enables the CUDA language with nvcc from CUDACXX / CMAKE_CUDA_COMPILER / PATH /
#   /usr/local/cuda, or else with the pinned PyPI toolchain (installed into the
#   build tree by cmake/fetch_cuda_toolchain.py). Sets STABLEKERNELS_CMAKE_CUDA_ARCHS,
#   STABLEKERNELS_SASS_ARCHS, STABLEKERNELS_PTX_ARCHS, STABLEKERNELS_CUDA_VERSION,
#   STABLEKERNELS_CUDA_VARIANT_NAME and STABLEKERNELS_CUDA_SOURCE in the caller.
macro(stablekernels_enable_cuda)
  if(NOT STABLEKERNELS_TORCH_HAS_CUDA)
    message(FATAL_ERROR "the torch used for headers (${STABLEKERNELS_TORCH_DIR}) has no libtorch_cuda.so; "
                        "install a CUDA build of torch to build the CUDA library, or set STABLEKERNELS_CUDA=OFF")
  endif()
  set(STABLEKERNELS_CUDA_SOURCE "system")
  if(CMAKE_CUDA_COMPILER AND NOT EXISTS "${CMAKE_CUDA_COMPILER}")
    message(FATAL_ERROR "this build tree (${CMAKE_BINARY_DIR}) was configured with nvcc "
                        "${CMAKE_CUDA_COMPILER}, which no longer exists; delete the build tree")
  endif()
  if(NOT STABLEKERNELS_CUDA_TOOLCHAIN MATCHES "^(auto|system|pypi)$")
    message(FATAL_ERROR "STABLEKERNELS_CUDA_TOOLCHAIN must be auto, system or pypi, got '${STABLEKERNELS_CUDA_TOOLCHAIN}'")
  endif()
  if(STABLEKERNELS_CUDA_TOOLCHAIN STREQUAL "pypi"
     OR (NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX}))
    unset(_sk_nvcc)
    if(NOT STABLEKERNELS_CUDA_TOOLCHAIN STREQUAL "pypi")
      find_program(_sk_nvcc nvcc PATHS /usr/local/cuda/bin NO_CACHE)
    endif()
    if(NOT _sk_nvcc AND STABLEKERNELS_CUDA_TOOLCHAIN STREQUAL "system")
      message(FATAL_ERROR "no nvcc found (STABLEKERNELS_CUDA_TOOLCHAIN=system): put nvcc on PATH or set CUDACXX")
    endif()
    if(NOT _sk_nvcc)
      message(STATUS "stablekernels: taking the CUDA ${STABLEKERNELS_PYPI_CUDA} toolchain from PyPI "
                     "(STABLEKERNELS_CUDA_TOOLCHAIN=${STABLEKERNELS_CUDA_TOOLCHAIN})")
      execute_process(
        COMMAND "${Python_EXECUTABLE}" "${PROJECT_SOURCE_DIR}/cmake/fetch_cuda_toolchain.py"
                --cuda "${STABLEKERNELS_PYPI_CUDA}" --dest "${CMAKE_BINARY_DIR}/pypi-cuda"
        OUTPUT_VARIABLE _sk_nvcc OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _rc)
      if(NOT _rc EQUAL 0 OR NOT EXISTS "${_sk_nvcc}")
        message(FATAL_ERROR "could not fetch the CUDA toolchain from PyPI (see above)")
      endif()
      set(STABLEKERNELS_CUDA_SOURCE "pypi")
    endif()
    set(CMAKE_CUDA_COMPILER "${_sk_nvcc}" CACHE FILEPATH "nvcc" FORCE)
  endif()
  stablekernels_parse_cuda_archs("${STABLEKERNELS_CUDA_ARCHS}"
    STABLEKERNELS_CMAKE_CUDA_ARCHS STABLEKERNELS_SASS_ARCHS STABLEKERNELS_PTX_ARCHS)
  set(CMAKE_CUDA_ARCHITECTURES "${STABLEKERNELS_CMAKE_CUDA_ARCHS}")
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  set(CMAKE_CUDA_RUNTIME_LIBRARY Static)
  enable_language(CUDA)
  string(REGEX MATCH "^([0-9]+)\\.([0-9]+)" _v "${CMAKE_CUDA_COMPILER_VERSION}")
  set(STABLEKERNELS_CUDA_VERSION "${CMAKE_MATCH_1}.${CMAKE_MATCH_2}")
  if(STABLEKERNELS_CUDA_VARIANT)
    set(STABLEKERNELS_CUDA_VARIANT_NAME "${STABLEKERNELS_CUDA_VARIANT}")
  else()
    set(STABLEKERNELS_CUDA_VARIANT_NAME "cu${CMAKE_MATCH_1}${CMAKE_MATCH_2}")
  endif()
  if(NOT STABLEKERNELS_CUDA_COMPRESS MATCHES "^(size|speed|balance|none|default)$")
    message(FATAL_ERROR "STABLEKERNELS_CUDA_COMPRESS must be size, speed, balance, none or default, "
                        "got '${STABLEKERNELS_CUDA_COMPRESS}'")
  endif()
  set(_sk_compress "")
  if(CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 12.8)
    set(_sk_compress "${STABLEKERNELS_CUDA_COMPRESS}")
    add_compile_options("$<$<COMPILE_LANGUAGE:CUDA>:--compress-mode=${_sk_compress}>")
  endif()
  message(STATUS "stablekernels: CUDA ${STABLEKERNELS_CUDA_VERSION} (${STABLEKERNELS_CUDA_SOURCE}, "
                 "${CMAKE_CUDA_COMPILER}), variant ${STABLEKERNELS_CUDA_VARIANT_NAME}, "
                 "archs ${STABLEKERNELS_CMAKE_CUDA_ARCHS}, fatbin compression ${_sk_compress}")
endmacro()

# stablekernels_cuda_unity(<sources-var>)
#   With STABLEKERNELS_CUDA_UNITY = N >= 2, replaces the .cu files of the list by
#   ceil(count / N) generated files <build>/cuda_unity/unity_<i>.cu, each including N of
#   them in list order (by their path under csrc/, so the generated text does not depend
#   on where the checkout lies). Other sources are kept. The files are rewritten only when
#   their text changes; nvcc's depfile makes every included .cu a dependency.
function(stablekernels_cuda_unity sources_var)
  if(NOT STABLEKERNELS_CUDA_UNITY MATCHES "^[0-9]+$")
    message(FATAL_ERROR "STABLEKERNELS_CUDA_UNITY must be a whole number (0: off, N: CUDA "
                        "files per nvcc call), got '${STABLEKERNELS_CUDA_UNITY}'")
  endif()
  if(STABLEKERNELS_CUDA_UNITY LESS 2)
    return()
  endif()
  set(_cu "")
  set(_out "")
  foreach(_s IN LISTS ${sources_var})
    if(_s MATCHES "\\.cu$")
      list(APPEND _cu "${_s}")
    else()
      list(APPEND _out "${_s}")
    endif()
  endforeach()
  list(LENGTH _cu _n)
  set(_i 0)
  set(_batch 0)
  while(_i LESS _n)
    set(_text "// Generated by CMake: STABLEKERNELS_CUDA_UNITY=${STABLEKERNELS_CUDA_UNITY}.\n")
    math(EXPR _end "${_i} + ${STABLEKERNELS_CUDA_UNITY}")
    while(_i LESS _n AND _i LESS _end)
      list(GET _cu ${_i} _s)
      cmake_path(IS_PREFIX PROJECT_SOURCE_DIR "${_s}" NORMALIZE _in_tree)
      if(_in_tree)
        cmake_path(RELATIVE_PATH _s BASE_DIRECTORY "${PROJECT_SOURCE_DIR}/csrc")
      endif()
      string(APPEND _text "#include \"${_s}\"\n")
      math(EXPR _i "${_i} + 1")
    endwhile()
    set(_file "${CMAKE_CURRENT_BINARY_DIR}/cuda_unity/unity_${_batch}.cu")
    file(CONFIGURE OUTPUT "${_file}" CONTENT "${_text}" @ONLY)
    list(APPEND _out "${_file}")
    math(EXPR _batch "${_batch} + 1")
  endwhile()
  message(STATUS "stablekernels: ${_n} CUDA files in ${_batch} nvcc calls "
                 "(STABLEKERNELS_CUDA_UNITY=${STABLEKERNELS_CUDA_UNITY})")
  set(${sources_var} "${_out}" PARENT_SCOPE)
endfunction()

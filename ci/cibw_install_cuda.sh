#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# cibuildwheel before-all (Linux): install one variant's CUDA toolkit into the
# manylinux_2_28 build container (AlmaLinux 8) from NVIDIA's rhel8 repository,
# x86_64 or sbsa (aarch64). Which toolkit and which packages come from
# ci/variants.toml, for the variant in $STABLEKERNELS_VARIANT (passed in from the
# host by cibuildwheel's environment-pass; default: the default variant).
#
#   STABLEKERNELS_VARIANT=cu129 bash ci/cibw_install_cuda.sh
#   STABLEKERNELS_CUDA_INSTALL_DRY_RUN=1 ...   print the commands instead of running them
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
platform="${AUDITWHEEL_ARCH:-$(uname -m)}"
dry_run="${STABLEKERNELS_CUDA_INSTALL_DRY_RUN:-}"

# A Python with tomllib: the image's own CPythons, else the machine's.
py=""
for candidate in /opt/python/cp312-cp312/bin/python /opt/python/cp311-cp311/bin/python python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "import tomllib" 2>/dev/null; then
    py="$candidate"
    break
  fi
done
if [[ -z "$py" ]]; then
  echo "cibw_install_cuda: no Python >= 3.11 to read ci/variants.toml" >&2
  exit 1
fi

variant="${STABLEKERNELS_VARIANT:-$("$py" "$here/variants.py" --default)}"
# SK_VARIANT, SK_CUDA_VERSION, SK_CUDA_ARCHS, SK_CUDA_REPO, SK_CUDA_PACKAGES
eval "$("$py" "$here/variants.py" --shell "$variant" "$platform")"
echo "cibw_install_cuda: variant $SK_VARIANT on $platform: CUDA $SK_CUDA_VERSION from $SK_CUDA_REPO"

run() {
  if [[ -n "$dry_run" ]]; then
    echo "+ $*"
  else
    "$@"
  fi
}

read -r -a packages <<<"$SK_CUDA_PACKAGES"
run dnf install -y dnf-plugins-core
run dnf config-manager --add-repo "$SK_CUDA_REPO"
run dnf install -y --setopt=install_weak_deps=False "${packages[@]}"
run ln -sfn "/usr/local/cuda-$SK_CUDA_VERSION" /usr/local/cuda
run dnf clean all

if [[ -z "$dry_run" ]]; then
  found="$(/usr/local/cuda/bin/nvcc --version | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p')"
  if [[ "$found" != "$SK_CUDA_VERSION" ]]; then
    echo "cibw_install_cuda: /usr/local/cuda/bin/nvcc is CUDA $found, expected $SK_CUDA_VERSION" >&2
    exit 1
  fi
  echo "cibw_install_cuda: nvcc $found at /usr/local/cuda/bin/nvcc"
fi

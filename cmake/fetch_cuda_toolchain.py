# SPDX-License-Identifier: Apache-2.0
"""Install a pinned CUDA toolchain from PyPI into a folder and print its nvcc path.

Called by cmake/stablekernels_cuda.cmake when the machine has no nvcc. Every
package is pinned to the same CUDA minor: an unpinned nvidia-nvvm drifts newer
and then fails to pair with nvcc. Uses uv when it is on PATH, else pip.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGES = (
    "nvidia-cuda-nvcc",
    "nvidia-cuda-runtime",
    "nvidia-cuda-cccl",
    "nvidia-cuda-crt",
    "nvidia-nvvm",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cuda", required=True, help="CUDA minor, e.g. 13.0")
    parser.add_argument("--dest", required=True, type=Path)
    args = parser.parse_args()
    major = args.cuda.split(".")[0]
    nvcc = args.dest / "nvidia" / f"cu{major}" / "bin" / "nvcc"
    if not nvcc.exists():
        reqs = [f"{name}=={args.cuda}.*" for name in PACKAGES]
        uv = shutil.which("uv")
        if uv:
            cmd = [
                uv,
                "pip",
                "install",
                "--python",
                sys.executable,
                "--target",
                str(args.dest),
                *reqs,
            ]
        else:
            cmd = [sys.executable, "-m", "pip", "install", "--target", str(args.dest), *reqs]
        print("fetching CUDA toolchain: " + " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True, stdout=sys.stderr)
    if not nvcc.exists():
        print(f"no nvcc at {nvcc} after installing {', '.join(PACKAGES)}", file=sys.stderr)
        return 1
    # The wheels put the libraries in lib/, while nvcc.profile links from lib64/
    # (and lib64/stubs) on 64-bit hosts: give it the directory it looks for.
    root = nvcc.parent.parent
    lib64 = root / "lib64"
    if not lib64.exists():
        lib64.symlink_to("lib", target_is_directory=True)
    print(nvcc)
    return 0


if __name__ == "__main__":
    sys.exit(main())

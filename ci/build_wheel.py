# SPDX-License-Identifier: Apache-2.0
"""Build the stablekernels wheel into dist/ (called by `nox -s build`).

Runs in the nox session's environment: installs the torch whose headers the
wheel compiles against (without its CUDA dependencies: nothing imports it),
then runs scikit-build-core through `uv build --no-build-isolation`, and prints
what came out: name, size, sha256, the libraries inside.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import time
import zipfile
from pathlib import Path

from _common import (
    DIST,
    ROOT,
    find_wheels,
    git_revision,
    log,
    run,
    sha256,
    uv,
    uv_pip_install,
    wheel_info,
)
from versions import TORCH_HEADERS


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--archs",
        default=os.environ.get("STABLEKERNELS_CUDA_ARCHS", "default"),
        help="CUDA arch preset (default, sm80, sm90, sm100, hopper-ptx, datacenter) "
        "or list such as '80;90;100+PTX' (default: %(default)s)",
    )
    p.add_argument(
        "--variant",
        default=os.environ.get("STABLEKERNELS_CUDA_VARIANT", ""),
        help="CUDA variant label recorded in the wheel (default: cu<XY> of nvcc)",
    )
    p.add_argument("--cpu-only", action="store_true", help="build the explicit CPU-only wheel")
    p.add_argument(
        "--cuda-toolchain",
        choices=["auto", "system", "pypi"],
        default=os.environ.get("STABLEKERNELS_CUDA_TOOLCHAIN", "auto"),
        help="nvcc from the machine (auto falls back to PyPI) or the pinned PyPI toolchain",
    )
    p.add_argument(
        "--ops",
        default=os.environ.get("STABLEKERNELS_OPS", ""),
        help="';'-separated op families to build (default: all)",
    )
    p.add_argument(
        "--torch-headers",
        default=TORCH_HEADERS,
        help="torch release whose headers to compile against (default: %(default)s)",
    )
    p.add_argument("--out", type=Path, default=DIST, help="output folder (default: dist/)")
    p.add_argument(
        "--keep-old",
        action="store_true",
        help="keep other stablekernels wheels in the output folder",
    )
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    uv_pip_install("--no-deps", f"torch=={args.torch_headers}")
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.keep_old:
        for old in find_wheels(args.out):
            log(f"removing old wheel {old.name}")
            old.unlink()
    env = dict(os.environ)
    env.update(
        STABLEKERNELS_CUDA="OFF" if args.cpu_only else "ON",
        STABLEKERNELS_CUDA_ARCHS=args.archs,
        STABLEKERNELS_CUDA_VARIANT=args.variant,
        STABLEKERNELS_CUDA_TOOLCHAIN=args.cuda_toolchain,
        STABLEKERNELS_OPS=args.ops,
        STABLEKERNELS_GIT_REVISION=git_revision(),
    )
    # one build tree per configuration, so switching options never reuses a stale
    # CMake cache (e.g. an nvcc chosen under another --cuda-toolchain)
    toolchain = args.cuda_toolchain
    if toolchain != "pypi":  # the nvcc CMake will find decides the tree too
        nvcc = env.get("CUDACXX") or shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc"
        nvcc = os.path.realpath(nvcc) if os.path.exists(nvcc) else "none"
        toolchain += "-" + hashlib.sha1(nvcc.encode()).hexdigest()[:8]
    key = "cpu" if args.cpu_only else f"{args.archs}-{toolchain}-{args.variant or 'auto'}"
    key = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{key}-{args.ops or 'all'}-torch{args.torch_headers}")
    env["SKBUILD_BUILD_DIR"] = str(ROOT / "build" / key)
    # parallel compile jobs bounded by cores and by memory (nvcc takes ~2 GiB a job)
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    env.setdefault(
        "CMAKE_BUILD_PARALLEL_LEVEL", str(max(1, min(os.cpu_count() or 1, int(mem_gib // 2))))
    )
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")  # this venv's cmake/ninja/uv first
    start = time.monotonic()
    run(
        [
            uv(),
            "build",
            "--wheel",
            "--no-build-isolation",
            "--python",
            sys.executable,
            "--out-dir",
            args.out,
            ROOT,
        ],
        env=env,
    )
    wheels = find_wheels(args.out)
    if len(wheels) != 1:
        sys.exit(f"expected one wheel in {args.out}, found {[w.name for w in wheels]}")
    wheel = wheels[0]
    if not wheel.name.endswith(".whl") or "-cp310-abi3-" not in wheel.name:
        sys.exit(f"{wheel.name} is not a cp310-abi3 wheel")
    log(
        f"built {wheel.relative_to(ROOT) if wheel.is_relative_to(ROOT) else wheel} "
        f"in {time.monotonic() - start:.0f} s"
    )
    log(f"  size   {wheel.stat().st_size / 2**20:.2f} MiB")
    log(f"  sha256 {sha256(wheel)}")
    info = wheel_info(wheel)
    manifest = args.out / "build-manifest.json"
    manifest.write_text(json.dumps(info, indent=2) + "\n")
    log(f"  recorded in {manifest}")
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            if info.filename.endswith(".so"):
                log(f"  {info.filename}  {info.file_size / 2**20:.2f} MiB")
            if info.filename.endswith("_build_info.py"):
                text = zf.read(info).decode()
                for line in text.splitlines():
                    if line and not line.startswith(("#", '"""')) and "=" in line:
                        log(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

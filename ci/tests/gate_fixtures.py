# SPDX-License-Identifier: Apache-2.0
"""Helpers of the wheel gate's tests: find (or build) the real wheel, copy a wheel with
files put in or edited, compile tiny fixture libraries with g++ and nvcc."""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Callable
from pathlib import Path

CI = Path(__file__).resolve().parent.parent
ROOT = CI.parent

# The arch set the real (default) wheel declares: 80;90;100+PTX.
ALL_DECLARED = (
    "-gencode=arch=compute_80,code=sm_80",
    "-gencode=arch=compute_90,code=sm_90",
    "-gencode=arch=compute_100,code=sm_100",
    "-gencode=arch=compute_100,code=compute_100",
)


def _run(cmd: list, **kwargs) -> None:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout}{proc.stderr}"


def find_real_wheel() -> Path:
    """STABLEKERNELS_WHEEL, else the wheel in dist/, else build one with `nox -s build`."""
    env = os.environ.get("STABLEKERNELS_WHEEL")
    if env:
        path = Path(env)
        assert path.is_file(), f"STABLEKERNELS_WHEEL={env} is not a file"
        return path
    wheels = sorted((ROOT / "dist").glob("stablekernels-*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        nox = shutil.which("nox")
        _run(
            [*([nox] if nox else [sys.executable, "-m", "nox"]), "-s", "build"],
            cwd=ROOT,
            timeout=3000,
        )
        wheels = sorted((ROOT / "dist").glob("stablekernels-*.whl"))
    assert wheels, "no stablekernels wheel in dist/ after `nox -s build`"
    return wheels[-1]


def rewrite_wheel(
    src: Path,
    dest: Path,
    *,
    put: dict[str, Path | bytes] | None = None,
    edit: dict[str, Callable[[str], str]] | None = None,
) -> Path:
    """A copy of the wheel `src` at `dest` with files added or replaced (`put`) or
    rewritten (`edit`: arcname -> text function, or "*WHEEL"/"*METADATA" for the
    dist-info file), and a RECORD that matches the new contents."""
    with zipfile.ZipFile(src) as zin:
        infos = [i for i in zin.infolist() if not i.is_dir()]
        entries = {i.filename: (i, zin.read(i)) for i in infos}
    record = next(name for name in entries if name.endswith(".dist-info/RECORD"))
    dist_info = record.rsplit("/", 1)[0]
    for arcname, value in (put or {}).items():
        data = value.read_bytes() if isinstance(value, Path) else value
        info = entries[arcname][0] if arcname in entries else zipfile.ZipInfo(arcname)
        info.external_attr = 0o755 << 16
        entries[arcname] = (info, data)
    for arcname, fn in (edit or {}).items():
        if arcname.startswith("*"):
            arcname = f"{dist_info}/{arcname[1:]}"
        info, data = entries[arcname]
        entries[arcname] = (info, fn(data.decode()).encode())
    # dist-info last, RECORD at the very end, as wheels are laid out
    order = sorted(entries, key=lambda n: (n.startswith(dist_info), n == record))
    lines = []
    for name in order:
        if name != record:
            data = entries[name][1]
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            lines.append(f"{name},sha256={digest.decode()},{len(data)}")
    lines.append(f"{record},,")
    entries[record] = (entries[record][0], ("\n".join(lines) + "\n").encode())
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in order:
            info, data = entries[name]
            info.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(info, data)
    return dest


def _find_nvcc() -> str:
    """The machine's nvcc, else the PyPI toolchain a build already fetched, else fetch it."""
    for candidate in (
        os.environ.get("CUDACXX"),
        shutil.which("nvcc"),
        "/usr/local/cuda/bin/nvcc",
        *sorted(str(p) for p in (ROOT / "build").glob("*/pypi-cuda/nvidia/cu*/bin/nvcc")),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    proc = subprocess.run(
        [
            sys.executable,
            ROOT / "cmake" / "fetch_cuda_toolchain.py",
            "--cuda",
            "13.0",
            "--dest",
            ROOT / "build" / "gate-tests-cuda",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout.strip().splitlines()[-1]


class Builder:
    """Compiles the tiny fixture libraries into one session folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.gxx = shutil.which("g++") or "g++"
        # a stand-in libtorch_cpu.so to link against, so fixtures carry its DT_NEEDED
        stub = root / "stub"
        stub.mkdir()
        (stub / "stub.cpp").write_text('extern "C" void stablekernels_fixture_stub() {}\n')
        _run(
            [
                self.gxx,
                "-shared",
                "-fPIC",
                "-Wl,-soname,libtorch_cpu.so",
                stub / "stub.cpp",
                "-o",
                stub / "libtorch_cpu.so",
            ]
        )
        self.stub = stub

    def module(
        self, name: str, *, decls: str = "", body: str = "", limited: bool = True, link=()
    ) -> Path:
        """A Python extension module `<name>.abi3.so` (limited API unless told) whose
        never-called function references the symbols in `body`; linked to libtorch_cpu."""
        src = self.root / f"{name}.cpp"
        src.write_text(
            "#include <Python.h>\n"
            f"{decls}\n"
            'extern "C" __attribute__((visibility("default"))) void fixture_touch() {\n'
            f"  {body}\n"
            "}\n"
            f'static PyModuleDef module_def = {{PyModuleDef_HEAD_INIT, "{name}", nullptr, -1,'
            " nullptr};\n"
            f'extern "C" __attribute__((visibility("default"))) PyObject* PyInit_{name}() {{\n'
            "  return PyModule_Create(&module_def);\n"
            "}\n"
        )
        out = self.root / f"{name}.abi3.so"
        _run(
            [
                self.gxx,
                "-shared",
                "-fPIC",
                "-O0",
                *(["-DPy_LIMITED_API=0x030a0000"] if limited else []),
                f"-I{sysconfig.get_paths()['include']}",
                src,
                "-o",
                out,
                "-Wl,--no-as-needed",
                f"-L{self.stub}",
                "-l:libtorch_cpu.so",
                *link,
            ]
        )
        return out

    def cuda_library(self, name: str, *gencodes: str, cudart: str = "static") -> Path:
        """A one-kernel CUDA library compiled for exactly the given -gencode flags."""
        src = self.root / f"{name}.cu"
        src.write_text(
            "__global__ void fixture_kernel(float* x) { x[threadIdx.x] *= 2.0f; }\n"
            'extern "C" void fixture_launch(float* x) { fixture_kernel<<<1, 32>>>(x); }\n'
        )
        out = self.root / f"{name}.so"
        _run(
            [
                _find_nvcc(),
                "-shared",
                "-Xcompiler",
                "-fPIC",
                f"-cudart={cudart}",
                *gencodes,
                src,
                "-o",
                out,
            ]
        )
        return out

# SPDX-License-Identifier: Apache-2.0
"""The installed package keeps its promises: torch floor, stable ABI only, static cudart,
the environment report, the arch rules."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import stablekernels
import torch
from stablekernels import _info, _loader, build_info

PKG_DIR = Path(stablekernels.__file__).parent
LIBS = sorted(PKG_DIR.glob("_C*.so"))


def test_libraries_present() -> None:
    names = {p.name for p in LIBS}
    assert "_C.abi3.so" in names
    assert ("_C_cuda.abi3.so" in names) == build_info.WITH_CUDA


def test_requires_dist_matches_floor() -> None:
    reqs = importlib.metadata.requires("stablekernels") or []
    torch_reqs = [r for r in reqs if re.match(r"^torch\b", r)]
    assert torch_reqs == [f"torch>={build_info.TORCH_MIN}"], torch_reqs  # a floor, no upper bound


def test_target_version_encodes_floor() -> None:
    major, minor = _loader.parse_torch_version(build_info.TORCH_MIN)
    assert f"0x{major:02x}{minor:02x}000000000000ULL" == build_info.TORCH_TARGET_VERSION


@pytest.mark.parametrize("version", ["2.9.0", "2.9.1+cu128", "1.13.1", "2.8.0a0+git123"])
def test_floor_refuses_older_torch(version: str) -> None:
    with pytest.raises(
        ImportError,
        match=rf"needs torch>={re.escape(build_info.TORCH_MIN)}.*but torch {re.escape(version)} is installed",
    ):
        _loader.check_torch_floor(version)


@pytest.mark.parametrize(
    "version", ["2.10.0", "2.10.0+cu128", "2.11.0a0+git1", "2.15.0+cu132", "3.0.0"]
)
def test_floor_accepts_newer_torch(version: str) -> None:
    _loader.check_torch_floor(version, floor="2.10")


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} (binutils) is needed to inspect the compiled libraries"
    return path


def _undefined_symbols(lib: Path) -> list[str]:
    out = subprocess.run(
        [_tool("nm"), "-D", "--undefined-only", "--demangle", str(lib)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line.strip().split(None, 1)[1] for line in out.splitlines() if line.strip()]


@pytest.mark.parametrize("lib", LIBS, ids=lambda p: p.name)
def test_only_stable_abi_symbols(lib: Path) -> None:
    symbols = _undefined_symbols(lib)
    unstable = [
        s
        for s in symbols
        if re.search(r"\b(at|c10|torch)::", s)
        and not re.search(r"\btorch::(stable|headeronly)::", s)
    ]
    assert not unstable, f"{lib.name} imports unstable torch C++ symbols: {unstable[:10]}"
    shims = [s for s in symbols if re.match(r"^(aoti_torch_|torch_)", s)]
    assert shims, f"{lib.name} imports no stable C shim at all"


@pytest.mark.parametrize("lib", LIBS, ids=lambda p: p.name)
def test_exports_and_needed(lib: Path) -> None:
    out = subprocess.run(
        [_tool("nm"), "-D", "--defined-only", str(lib)], check=True, capture_output=True, text=True
    ).stdout
    exported = [line.split()[-1] for line in out.splitlines() if line.strip()]
    assert exported == [f"PyInit_{lib.name.split('.')[0]}"], exported
    dyn = subprocess.run(
        [_tool("readelf"), "-d", str(lib)], check=True, capture_output=True, text=True
    ).stdout
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dyn))
    allowed = {
        "libtorch_cpu.so",
        "libtorch_cuda.so",
        "libstdc++.so.6",
        "libgcc_s.so.1",
        "libc.so.6",
        "libm.so.6",
        "ld-linux-x86-64.so.2",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
    }
    assert needed <= allowed, f"{lib.name} needs {sorted(needed - allowed)}"
    assert not any(n.startswith("libcudart") for n in needed), "cudart must be linked statically"
    assert "libtorch_cpu.so" in needed
    assert ("libtorch_cuda.so" in needed) == lib.name.startswith("_C_cuda")


def test_python_m_report() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "stablekernels"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert f"stablekernels {build_info.VERSION}" in out
    assert f"torch floor       {build_info.TORCH_MIN}" in out
    assert f"torch             {torch.__version__}" in out
    assert (
        "verdict: CPU and CUDA ops can run here" in out
        or "verdict: CPU ops can run here; CUDA ops cannot" in out
    )
    if build_info.WITH_CUDA:
        assert f"CUDA variant      {build_info.CUDA_VARIANT}" in out


@pytest.mark.parametrize(
    ("capability", "sass", "ptx", "ok", "how"),
    [
        ((9, 0), ("80", "90", "100"), ("100",), True, "SASS for sm_90"),
        ((8, 6), ("80", "90"), (), True, "SASS for sm_80"),
        ((8, 0), ("86",), (), False, "no SASS for sm_80"),
        ((12, 0), ("80", "90", "100"), ("100",), True, "PTX for compute_100"),
        ((9, 0), ("80",), ("100",), False, "no SASS for sm_90 and no PTX at or below it"),
        ((7, 5), ("80", "90", "100"), ("100",), False, "no SASS for sm_75"),
        ((9, 0), ("90a",), (), True, "SASS for sm_90a"),
        ((10, 0), ("90a",), (), False, "no SASS for sm_100"),
    ],
)
def test_gpu_arch_rules(capability, sass, ptx, ok, how) -> None:
    got_ok, got_how = _info.gpu_runs_wheel(capability, sass, ptx)
    assert got_ok == ok
    assert how in got_how


def test_cuda_library_loaded_matches_torch() -> None:
    expected = build_info.WITH_CUDA and _loader.torch_has_cuda()
    assert stablekernels.cuda_library_loaded() == expected


@pytest.mark.cuda
def test_cuda_verdict_on_this_gpu() -> None:
    v = _info.verdict()
    assert v.cpu_ok and v.cuda_ok, v.reasons


@pytest.mark.cuda
def test_current_stream_is_used() -> None:
    x = torch.randn(64, 4096, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(4096, device="cuda", dtype=torch.bfloat16)
    expected = stablekernels.rms_norm(x, w)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        got = stablekernels.rms_norm(x, w)
        got_act = stablekernels.silu_and_mul(x)
    stream.synchronize()
    torch.testing.assert_close(got, expected, atol=0, rtol=0)
    torch.testing.assert_close(got_act, stablekernels.silu_and_mul(x), atol=0, rtol=0)

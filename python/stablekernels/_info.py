# SPDX-License-Identifier: Apache-2.0
"""The environment report printed by ``python -m stablekernels``."""

from __future__ import annotations

import dataclasses
import platform
import re

from . import _build_info as bi
from ._loader import check_torch_floor, torch_has_cuda


@dataclasses.dataclass
class Verdict:
    cpu_ok: bool
    cuda_ok: bool
    reasons: list[str]


def _arch_parts(arch: str) -> tuple[int, int, str]:
    """``"90a"`` -> ``(9, 0, "a")``; ``"100"`` -> ``(10, 0, "")``."""
    m = re.fullmatch(r"(\d+)(\d)([af]?)", arch)
    if not m:
        raise ValueError(f"bad arch {arch!r}")
    return int(m.group(1)), int(m.group(2)), m.group(3)


def gpu_runs_wheel(
    capability: tuple[int, int],
    sass: tuple[str, ...] = bi.SASS_ARCHS,
    ptx: tuple[str, ...] = bi.PTX_ARCHS,
) -> tuple[bool, str]:
    """Whether a GPU of ``capability`` can run code built with these archs, and how."""
    major, minor = capability
    for arch in sass:
        a_major, a_minor, suffix = _arch_parts(arch)
        # SASS runs on the same major at an equal or newer minor; arch-specific
        # ("a") code runs only on that exact arch.
        if a_major == major and (a_minor == minor or (not suffix and a_minor < minor)):
            return True, f"SASS for sm_{arch}"
    for arch in ptx:
        a_major, a_minor, _ = _arch_parts(arch)
        if (a_major, a_minor) <= (major, minor):
            return True, f"PTX for compute_{arch}, JIT-compiled by the driver"
    return False, (
        f"no SASS for sm_{major}{minor} and no PTX at or below it "
        f"(built: SASS {', '.join('sm_' + a for a in sass) or 'none'}; "
        f"PTX {', '.join('compute_' + a for a in ptx) or 'none'})"
    )


def verdict() -> Verdict:
    import torch

    reasons: list[str] = []
    try:
        check_torch_floor(torch.__version__)
    except ImportError as err:
        return Verdict(False, False, [str(err)])
    reasons.append(f"torch {torch.__version__} is at or above the floor {bi.TORCH_MIN}")
    cuda_ok = False
    if not bi.WITH_CUDA:
        reasons.append("this is a CPU-only wheel: CUDA ops are not available")
    elif not torch_has_cuda():
        reasons.append("torch is a CPU-only build: the CUDA library is not loaded, CPU ops only")
    elif not torch.cuda.is_available():
        reasons.append("no CUDA GPU is visible to torch: CPU ops only")
    else:
        cuda_ok = True
        for i in range(torch.cuda.device_count()):
            cap = torch.cuda.get_device_capability(i)
            ok, how = gpu_runs_wheel(cap)
            name = torch.cuda.get_device_name(i)
            if ok:
                reasons.append(f"GPU {i} ({name}, sm_{cap[0]}{cap[1]}) runs this wheel: {how}")
            else:
                cuda_ok = False
                reasons.append(
                    f"GPU {i} ({name}, sm_{cap[0]}{cap[1]}) cannot run this wheel: {how}"
                )
    return Verdict(True, cuda_ok, reasons)


def report() -> str:
    import torch

    lines = [f"stablekernels {bi.VERSION} (git {bi.GIT_REVISION})"]
    lines.append("built with")
    lines.append(f"  op families       {', '.join(bi.FAMILIES)}")
    lines.append(
        f"  torch floor       {bi.TORCH_MIN} (TORCH_TARGET_VERSION {bi.TORCH_TARGET_VERSION})"
    )
    lines.append(f"  torch headers     {bi.TORCH_HEADER_VERSION}")
    if bi.WITH_CUDA:
        lines.append(
            f"  CUDA variant      {bi.CUDA_VARIANT} (CUDA {bi.CUDA_VERSION}, nvcc from {bi.CUDA_TOOLCHAIN})"
        )
        lines.append(f"  SASS archs        {', '.join('sm_' + a for a in bi.SASS_ARCHS)}")
        lines.append(
            f"  PTX archs         {', '.join('compute_' + a for a in bi.PTX_ARCHS) or 'none'}"
        )
    else:
        lines.append("  CUDA              none (CPU-only wheel)")
    lines.append("running")
    lines.append(f"  Python            {platform.python_version()} ({platform.machine()})")
    lines.append(f"  torch             {torch.__version__} (CUDA {torch.version.cuda or 'none'})")
    if torch_has_cuda() and torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            cap = torch.cuda.get_device_capability(i)
            lines.append(f"  GPU {i:<13} {torch.cuda.get_device_name(i)} (sm_{cap[0]}{cap[1]})")
    else:
        lines.append("  GPU               none visible")
    v = verdict()
    if not v.cpu_ok:
        lines.append("verdict: this wheel cannot run here")
    elif v.cuda_ok:
        lines.append("verdict: CPU and CUDA ops can run here")
    else:
        lines.append("verdict: CPU ops can run here; CUDA ops cannot")
    lines.extend(f"  - {r}" for r in v.reasons)
    return "\n".join(lines)


def main() -> int:
    print(report())
    return 0 if verdict().cpu_ok else 1

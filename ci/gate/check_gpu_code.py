# SPDX-License-Identifier: Apache-2.0
"""Check 4, GPU code: each library with device code carries SASS for exactly the
declared archs (_build_info.SASS_ARCHS) and PTX for exactly the declared PTX archs
(_build_info.PTX_ARCHS), read with cuobjdump. A CPU-only wheel carries none."""

from __future__ import annotations

from .context import Context
from .model import FAIL, PASS, Row, listing


def _compare(kind: str, prefix: str, declared: list[str], found: set[str]) -> list[str]:
    missing = [a for a in declared if a not in found]
    extra = sorted(found - set(declared))
    problems = []
    if missing:
        problems.append(f"no {kind} for declared {listing(prefix + a for a in missing)}")
    if extra:
        problems.append(f"{kind} for undeclared {listing(prefix + a for a in extra)}")
    return problems


def check(ctx: Context) -> list[Row]:
    info = ctx.wheel.build_info
    if not info:
        return [Row("gpu-code.archs", FAIL, "the wheel has no _build_info.py to declare its archs")]
    with_cuda = bool(info.get("WITH_CUDA"))
    sass = [str(a) for a in info.get("SASS_ARCHS") or ()]
    ptx = [str(a) for a in info.get("PTX_ARCHS") or ()]
    device_libs = [lib for lib in ctx.wheel.libraries if lib.has_device_code]
    rows: list[Row] = []
    if not with_cuda:
        if device_libs:
            names = listing(lib.name for lib in device_libs)
            return [Row("gpu-code.archs", FAIL, f"CPU-only wheel, yet {names} carry device code")]
        return [Row("gpu-code.archs", PASS, "CPU-only wheel: no library carries device code")]
    if not device_libs:
        return [
            Row(
                "gpu-code.archs",
                FAIL,
                f"the wheel declares CUDA (SASS {listing(sass)}) but no library carries "
                "device code",
            )
        ]
    for lib in device_libs:
        blobs = ctx.device_code(lib)
        found_sass = {b.arch for b in blobs if b.kind == "sass"}
        found_ptx = {b.arch for b in blobs if b.kind == "ptx"}
        data = {
            "library": lib.arcname,
            "declared_sass": sass,
            "declared_ptx": ptx,
            "found_sass": sorted(found_sass),
            "found_ptx": sorted(found_ptx),
        }
        for check, kind, prefix, declared, found in (
            ("gpu-code.sass", "SASS", "sm_", sass, found_sass),
            ("gpu-code.ptx", "PTX", "compute_", ptx, found_ptx),
        ):
            problems = _compare(kind, prefix, declared, found)
            if problems:
                rows.append(Row(check, FAIL, f"{lib.name}: {'; '.join(problems)}", data))
            elif declared:
                archs = " ".join(prefix + a for a in declared)
                rows.append(Row(check, PASS, f"{lib.name}: {kind} for {archs}, as declared", data))
            else:
                rows.append(Row(check, PASS, f"{lib.name}: no {kind}, none declared", data))
    return rows

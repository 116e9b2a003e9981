# SPDX-License-Identifier: Apache-2.0
"""Check 1, torch ABI: every compiled library imports torch only through the stable
C shims, and the newest shim it imports is not newer than the declared torch floor.

The symbol classification and the shim -> torch-version tables are torch-abi-audit's
(its Python API, `inspect_extension`); this module only applies the gate's policy.
"""

from __future__ import annotations

from packaging.version import Version
from torch_abi_audit import inspect_extension

from .context import Context
from .model import FAIL, PASS, WARN, Row, listing


def _release(text: str) -> tuple[int, int, int]:
    parts = [*Version(text).release, 0, 0, 0]
    return (parts[0], parts[1], parts[2])


def check(ctx: Context) -> list[Row]:
    wheel = ctx.wheel
    floor = wheel.torch_floor()
    floor_text = f"torch>={floor}" if floor else "no torch>= floor"
    rows: list[Row] = []
    for lib in wheel.libraries:
        report = inspect_extension(lib.path)
        if report.error:
            rows.append(Row("torch-abi.symbols", FAIL, f"{lib.name}: {report.error}"))
            continue
        v = report.torch
        data = {
            "library": lib.arcname,
            "stable_shims": v.stable_shim_count,
            "unstable_symbols": list(v.unstable_symbols),
        }
        if v.unstable_symbols:
            rows.append(
                Row(
                    "torch-abi.symbols",
                    FAIL,
                    f"{lib.name}: imports {len(v.unstable_symbols)} unstable torch/ATen/c10 "
                    f"symbol(s): {listing(v.unstable_symbols, 3)}",
                    data,
                )
            )
        elif not v.uses_torch:
            rows.append(Row("torch-abi.symbols", PASS, f"{lib.name}: no torch symbols", data))
        else:
            rows.append(
                Row(
                    "torch-abi.symbols",
                    PASS,
                    f"{lib.name}: {v.stable_shim_count} stable C shims, 0 unstable "
                    "torch/ATen/c10 symbols",
                    data,
                )
            )
        if not v.stable_shim_count:
            continue
        needs = v.min_torch_version
        floor_data = {
            "library": lib.arcname,
            "declared_floor": str(floor) if floor else None,
            "min_torch": needs,
            "defining_shims": list(v.version_defining_symbols),
            "undated_shims": list(v.unknown_shim_symbols),
        }
        pinned_by = listing(v.version_defining_symbols, 4) or "the 2.9 baseline shims"
        if floor is None:
            rows.append(
                Row(
                    "torch-abi.floor",
                    FAIL,
                    f"{lib.name}: imports torch shims but the wheel declares no torch>= "
                    "floor (Requires-Dist)",
                    floor_data,
                )
            )
        elif needs and _release(needs) > _release(str(floor)):
            rows.append(
                Row(
                    "torch-abi.floor",
                    FAIL,
                    f"{lib.name}: imports {pinned_by} from torch {needs}, newer than the "
                    f"declared floor {floor_text}",
                    floor_data,
                )
            )
        else:
            rows.append(
                Row(
                    "torch-abi.floor",
                    PASS,
                    f"{lib.name}: newest shim from torch {needs} ({pinned_by}), "
                    f"within {floor_text}",
                    floor_data,
                )
            )
        if v.unknown_shim_symbols:
            policy = ctx.config["torch_abi"]["unmapped_shims"]
            rows.append(
                Row(
                    "torch-abi.undated",
                    FAIL if policy == "fail" else WARN,
                    f"{lib.name}: {len(v.unknown_shim_symbols)} shim(s) in neither "
                    "torch-abi-audit's 2.9 baseline nor its 2.10+ manifest, so not compared "
                    f"with the floor: {listing(v.unknown_shim_symbols, 4)}",
                    floor_data,
                )
            )
    if not rows:
        rows.append(Row("torch-abi.symbols", PASS, "no compiled libraries in the wheel"))
    return rows

# SPDX-License-Identifier: Apache-2.0
"""Check 5, size: the wheel file fits the budget of its arch set ([size.budget_mib]
in ci/gate.toml), and the report shows what each arch's SASS and PTX contribute."""

from __future__ import annotations

from collections import defaultdict

from .context import Context
from .model import FAIL, INFO, PASS, Row, mib


def budget_for(config: dict, arch_set: str | None) -> tuple[str, float]:
    """(the budget's key, MiB) for an arch set; 'other' when it has no entry."""
    budgets = config["size"]["budget_mib"]
    if arch_set and arch_set in budgets:
        return arch_set, float(budgets[arch_set])
    return "other", float(budgets["other"])


def check(ctx: Context) -> list[Row]:
    wheel = ctx.wheel
    arch_set = wheel.summary()["arch_set"]
    key, budget = budget_for(ctx.config, arch_set)
    limit = int(budget * 2**20)
    share = 100.0 * wheel.size / limit if limit else float("inf")
    named = f"arch set '{arch_set}'" if key == arch_set else f"arch set '{arch_set}' (as 'other')"
    data = {
        "size_bytes": wheel.size,
        "budget_bytes": limit,
        "budget_key": key,
        "arch_set": arch_set,
    }
    rows = []
    if wheel.size > limit:
        rows.append(
            Row(
                "size.budget",
                FAIL,
                f"{wheel.path.name} is {mib(wheel.size)}, over the {budget:.2f} MiB budget of "
                f"{named} by {mib(wheel.size - limit)}",
                data,
            )
        )
    else:
        rows.append(
            Row(
                "size.budget",
                PASS,
                f"{mib(wheel.size)} of the {budget:.2f} MiB budget of {named} ({share:.0f}%)",
                data,
            )
        )
    # What each arch adds: its blobs as extracted, and deflated (about what they take
    # in the zip). The rest of the wheel is host code, Python files and metadata.
    per_arch: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for lib in wheel.libraries:
        if lib.has_device_code:
            for blob in ctx.device_code(lib):
                kind = "SASS" if blob.kind == "sass" else "PTX"
                entry = per_arch[f"{blob.label} {kind}"]
                entry[0] += blob.size
                entry[1] += blob.deflated
    device_total = 0
    for label, (raw, deflated) in sorted(per_arch.items(), key=lambda kv: _arch_key(kv[0])):
        device_total += deflated
        rows.append(
            Row(
                "size.arch",
                INFO,
                f"{label}: {mib(raw)} as extracted, ~{mib(deflated)} of the wheel",
                {"arch": label, "raw_bytes": raw, "wheel_bytes_estimate": deflated},
            )
        )
    if per_arch:
        rest = max(0, wheel.size - device_total)
        rows.append(
            Row(
                "size.arch",
                INFO,
                f"host code, Python files, metadata: ~{mib(rest)} of the wheel",
                {"arch": "host", "wheel_bytes_estimate": rest},
            )
        )
    return rows


def _arch_key(label: str) -> tuple[int, int, str]:
    """sm_80 SASS, sm_90 SASS, sm_90a SASS, sm_100 SASS, compute_100 PTX, ..."""
    name, kind = label.split(" ")
    digits = "".join(c for c in name.split("_", 1)[1] if c.isdigit())
    return (int(digits or 0), 0 if kind == "SASS" else 1, name)

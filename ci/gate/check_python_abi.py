# SPDX-License-Identifier: Apache-2.0
"""Check 2, Python ABI: the wheel is tagged <python_tag>-<abi_tag> (cp310-abi3), and
`abi3audit --strict` finds every compiled library within the limited API of that
Python; extension modules carry the .abi3 infix in their file name."""

from __future__ import annotations

import json

from . import tools
from .context import Context
from .model import FAIL, PASS, Row, listing


def _tag_row(ctx: Context) -> Row:
    cfg = ctx.config["python_abi"]
    want = f"{cfg['python_tag']}-{cfg['abi_tag']}"
    tags = sorted(str(t) for t in ctx.wheel.filename_tags)
    bad = [
        t
        for t in ctx.wheel.filename_tags
        if (t.interpreter, t.abi) != (cfg["python_tag"], cfg["abi_tag"])
    ]
    declared = sorted(ctx.wheel.wheel_file_tags)
    data = {"filename_tags": tags, "wheel_file_tags": declared, "expected": want}
    if bad:
        return Row(
            "python-abi.tag",
            FAIL,
            f"wheel tag {listing(sorted(map(str, bad)))} is not {want}-<platform>",
            data,
        )
    if declared != tags:
        return Row(
            "python-abi.tag",
            FAIL,
            f"the WHEEL file's tags ({listing(declared) or 'none'}) differ from the "
            f"file name's ({listing(tags)})",
            data,
        )
    return Row("python-abi.tag", PASS, f"wheel tag {listing(tags)}", data)


def check(ctx: Context) -> list[Row]:
    rows = [_tag_row(ctx)]
    libs = ctx.wheel.libraries
    if not libs:
        return rows
    python_tag = ctx.config["python_abi"]["python_tag"]  # cp310 -> 3.10
    minimum = f"{python_tag[2]}.{python_tag[3:]}"
    proc = tools.run(
        [
            tools.which("abi3audit"),
            "--strict",
            "--report",
            "--assume-minimum-abi3",
            minimum,
            *(lib.path for lib in libs),
        ]
    )
    try:
        specs = json.loads(proc.stdout)["specs"]
    except (ValueError, KeyError):
        return [
            *rows,
            Row("python-abi.abi3audit", FAIL, f"abi3audit gave no report: {tools.tail(proc)}"),
        ]
    for lib in libs:
        spec = specs.get(str(lib.path), {})
        result = (spec.get("object") or {}).get("result")
        if result is None:
            rows.append(Row("python-abi.abi3audit", FAIL, f"{lib.name}: not in abi3audit's report"))
            continue
        problems = []
        if not result["is_abi3"] or result["non_abi3_symbols"]:
            problems.append(
                "uses symbols outside the limited API: "
                + listing(sorted(result["non_abi3_symbols"]), 4)
            )
        if result["future_abi3_objects"] or not result["is_abi3_baseline_compatible"]:
            newer = sorted(result["future_abi3_objects"])
            problems.append(
                f"needs Python {result['computed']} > {minimum}"
                + (f" ({listing(newer, 4)})" if newer else "")
            )
        if lib.is_extension_module and ".abi3." not in lib.name:
            problems.append("extension module without the .abi3 infix in its name")
        data = {"library": lib.arcname, "extension_module": lib.is_extension_module, **result}
        what = "extension module" if lib.is_extension_module else "library"
        if problems:
            rows.append(
                Row("python-abi.abi3audit", FAIL, f"{lib.name}: {'; '.join(problems)}", data)
            )
        else:
            rows.append(
                Row(
                    "python-abi.abi3audit",
                    PASS,
                    f"{lib.name}: abi3 {what}, needs Python {result['computed']} (<= {minimum})",
                    data,
                )
            )
    if proc.returncode != 0 and all(r.result == PASS for r in rows):
        rows.append(
            Row("python-abi.abi3audit", FAIL, f"abi3audit --strict failed: {tools.tail(proc)}")
        )
    return rows

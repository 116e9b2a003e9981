# SPDX-License-Identifier: Apache-2.0
"""Check 6, metadata: `twine check --strict` and check-wheel-contents pass; the wheel
requires torch>=<floor> with no upper bound and the floor matches _build_info; the
version and the license are present and consistent."""

from __future__ import annotations

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from . import tools
from .context import Context
from .model import FAIL, PASS, Row, listing

# Operators that put a ceiling (or a pin) on torch, which the stable ABI makes needless.
_CEILINGS = ("<", "<=", "==", "===", "~=", "!=")


def _tool_row(check: str, label: str, cmd: list) -> Row:
    proc = tools.run(cmd)
    if proc.returncode == 0:
        return Row(check, PASS, f"{label}: passed")
    return Row(check, FAIL, f"{label} failed: {tools.tail(proc, 4)}", {"output": proc.stdout})


def _torch_row(ctx: Context) -> Row:
    wheel = ctx.wheel
    torch_lines = [
        (line, req)
        for line, req in wheel.requirements()
        if req is None or canonicalize_name(req.name) == "torch"
    ]
    build_min = wheel.build_info.get("TORCH_MIN")
    data = {"requires_torch": [line for line, _ in torch_lines], "build_info_torch_min": build_min}
    if len(torch_lines) != 1 or torch_lines[0][1] is None:
        return Row(
            "metadata.torch",
            FAIL,
            f"expected one Requires-Dist: torch>=X.Y, found {listing(data['requires_torch']) or 'none'}",
            data,
        )
    line, req = torch_lines[0]
    ceilings = sorted(str(s) for s in req.specifier if s.operator in _CEILINGS)
    floors = [s for s in req.specifier if s.operator == ">="]
    if ceilings:
        return Row(
            "metadata.torch",
            FAIL,
            f"Requires-Dist: {line} has an upper bound or pin ({listing(ceilings)}); "
            "a stable-ABI wheel declares only its floor",
            data,
        )
    if not floors or req.marker:
        return Row("metadata.torch", FAIL, f"Requires-Dist: {line} declares no plain floor", data)
    floor = floors[0].version
    if build_min is None or Version(str(build_min)) != Version(floor):
        return Row(
            "metadata.torch",
            FAIL,
            f"Requires-Dist: {line} but _build_info.TORCH_MIN is {build_min!r}: the floor "
            "the code was compiled for and the one declared differ",
            data,
        )
    return Row(
        "metadata.torch",
        PASS,
        f"Requires-Dist: {line}, no upper bound, matches _build_info.TORCH_MIN",
        data,
    )


def _version_row(ctx: Context) -> Row:
    wheel = ctx.wheel
    declared = wheel.metadata.get("Version")
    built = wheel.build_info.get("VERSION")
    data = {"metadata": declared, "filename": str(wheel.version), "build_info": built}
    try:
        same = declared is not None and Version(declared) == wheel.version
        same = same and (built is None or Version(built) == wheel.version)
    except InvalidVersion:
        same = False
    if not same:
        return Row(
            "metadata.version",
            FAIL,
            f"versions disagree or are missing: METADATA {declared!r}, file name "
            f"{wheel.version}, _build_info {built!r}",
            data,
        )
    return Row(
        "metadata.version", PASS, f"version {declared} (METADATA, file name, _build_info)", data
    )


def _license_row(ctx: Context) -> Row:
    meta = ctx.wheel.metadata
    expression = meta.get("License-Expression") or meta.get("License")
    files = meta.get_all("License-File") or []
    dist_info = next(
        (f.rsplit("/", 1)[0] for f in ctx.wheel.files if f.endswith(".dist-info/METADATA")), ""
    )
    missing = [f for f in files if f"{dist_info}/licenses/{f}" not in ctx.wheel.files]
    data = {"license": expression, "license_files": files, "missing_files": missing}
    if not expression:
        return Row("metadata.license", FAIL, "no License-Expression (or License) in METADATA", data)
    if not files or missing:
        return Row(
            "metadata.license",
            FAIL,
            f"license {expression}, but license file(s) {listing(missing) or '(none declared)'} "
            "not in the wheel",
            data,
        )
    return Row("metadata.license", PASS, f"license {expression}, {listing(files)} included", data)


def check(ctx: Context) -> list[Row]:
    path = ctx.wheel.path
    cwc_args = ctx.config["metadata"]["check_wheel_contents_args"]
    return [
        _tool_row(
            "metadata.twine",
            "twine check --strict",
            [tools.which("twine"), "check", "--strict", path],
        ),
        _tool_row(
            "metadata.contents",
            "check-wheel-contents",
            [tools.which("check-wheel-contents"), "--no-config", *cwc_args, path],
        ),
        _torch_row(ctx),
        _version_row(ctx),
        _license_row(ctx),
    ]

# SPDX-License-Identifier: Apache-2.0
"""Check 3, platform: `auditwheel repair`, with torch's and CUDA's libraries excluded,
vendors nothing and reaches the required manylinux policy; each library's DT_NEEDED
entries are on the allowlist; the CUDA runtime is linked statically."""

from __future__ import annotations

import re
import zipfile
from fnmatch import fnmatch

from packaging.utils import parse_wheel_filename

from . import tools
from .context import Context
from .model import FAIL, PASS, Row, listing

_POLICY_RE = re.compile(r"^manylinux_(\d+)_(\d+)(?:_|$)")
_CUDART_RE = re.compile(r"^libcudart")
_VENDORED_RE = re.compile(r"^(?P<stem>.+)-[0-9a-f]{8}(?P<suffix>\.so.*)$")
# A CUDA library registers its fat binary with the runtime through this call: it is
# defined inside a library that carries cudart statically, imported otherwise.
_CUDART_ENTRY = "__cudaRegisterFatBinary"


def _glibc(policy: str) -> tuple[int, int] | None:
    m = _POLICY_RE.match(policy)
    return (int(m[1]), int(m[2])) if m else None


def _needed_by(ctx: Context, vendored: list[str]) -> list[str]:
    """The wheel's libraries that need what auditwheel vendored (it renames
    libfoo.so.1 to <pkg>.libs/libfoo-<hash>.so.1)."""
    sonames = set()
    for path in vendored:
        m = _VENDORED_RE.match(path.rsplit("/", 1)[-1])
        if m:
            sonames.add(m["stem"] + m["suffix"])
    return [lib.name for lib in ctx.wheel.libraries if sonames & set(lib.needed)]


def _repair_rows(ctx: Context) -> list[Row]:
    cfg = ctx.config["platform"]
    out = ctx.workdir / "repaired"
    cmd = [tools.which("auditwheel"), "repair", "--wheel-dir", out]
    for pattern in cfg["auditwheel_exclude"]:
        cmd += ["--exclude", pattern]
    proc = tools.run([*cmd, ctx.wheel.path])
    repaired = sorted(out.glob("*.whl")) if out.exists() else []
    if proc.returncode != 0 or len(repaired) != 1:
        return [
            Row(
                "platform.repair",
                FAIL,
                f"auditwheel repair failed (exit {proc.returncode}): {tools.tail(proc, 3)}",
            )
        ]
    with zipfile.ZipFile(repaired[0]) as zf:
        after = {i.filename for i in zf.infolist() if not i.is_dir()}
    before = set(ctx.wheel.files)
    vendored = sorted(f for f in after - before if not f.endswith((".dist-info/RECORD", "/WHEEL")))
    excluded = sorted(set(re.findall(r"Excluding (\S+)", proc.stdout + proc.stderr)))
    policies = sorted({t.platform for t in parse_wheel_filename(repaired[0].name)[3]})
    data = {
        "excluded": excluded,
        "vendored": vendored,
        "policies": policies,
        "exclude_patterns": cfg["auditwheel_exclude"],
    }
    rows = []
    if vendored:
        culprits = _needed_by(ctx, vendored)
        data["needed_by"] = culprits
        rows.append(
            Row(
                "platform.repair",
                FAIL,
                f"auditwheel repair would vendor {listing(vendored, 4)}"
                + (f", needed by {listing(culprits)}" if culprits else "")
                + " (not torch/CUDA, so not excluded)",
                data,
            )
        )
    else:
        rows.append(
            Row(
                "platform.repair",
                PASS,
                "auditwheel repair vendors nothing"
                + (f" (excluded: {listing(excluded)})" if excluded else ""),
                data,
            )
        )
    required = cfg["required_policy"]
    if required and not _glibc(required):
        raise ValueError(f"[platform] required_policy {required!r} is not manylinux_X_Y")
    reached = [p for p in policies if _glibc(p)]
    policy_data = {"reached": policies, "required": required}
    if not reached:
        rows.append(
            Row(
                "platform.policy",
                FAIL,
                f"reaches no manylinux policy ({listing(policies)})",
                policy_data,
            )
        )
    else:
        best = min(reached, key=_glibc)
        if required and _glibc(best) > _glibc(required):
            rows.append(
                Row(
                    "platform.policy",
                    FAIL,
                    f"reaches {best}, newer than the required {required} "
                    "(the libraries use newer glibc/libstdc++ symbol versions)",
                    policy_data,
                )
            )
        else:
            rows.append(
                Row(
                    "platform.policy",
                    PASS,
                    f"reaches {best}" + (f" (required: {required} or older)" if required else ""),
                    policy_data,
                )
            )
    return rows


def _library_rows(ctx: Context) -> list[Row]:
    cfg = ctx.config["platform"]
    providers = ctx.config["torch_abi"]["shim_providers"]
    rows = []
    for lib in ctx.wheel.libraries:
        off = [n for n in lib.needed if not any(fnmatch(n, p) for p in cfg["needed_allowlist"])]
        imports_shims = any(s.startswith(("aoti_torch_", "torch_")) for s in lib.imports)
        problems = []
        if off:
            problems.append(f"NEEDED {listing(off)} not on the allowlist")
        if imports_shims and not set(lib.needed) & set(providers):
            problems.append(
                f"imports torch shims without a NEEDED on {' or '.join(providers)} "
                "(it would not load: torch loads its libraries RTLD_LOCAL)"
            )
        data = {"library": lib.arcname, "needed": lib.needed, "not_allowed": off}
        if problems:
            rows.append(Row("platform.needed", FAIL, f"{lib.name}: {'; '.join(problems)}", data))
        else:
            rows.append(
                Row("platform.needed", PASS, f"{lib.name}: NEEDED {' '.join(lib.needed)}", data)
            )
        if lib.has_device_code or any(_CUDART_RE.match(n) for n in lib.needed):
            shared = [n for n in lib.needed if _CUDART_RE.match(n)]
            imported = _CUDART_ENTRY in lib.imports
            cdata = {"library": lib.arcname, "cudart_needed": shared, "imports_entry": imported}
            if shared or imported:
                why = f"NEEDED {listing(shared)}" if shared else f"imports {_CUDART_ENTRY}"
                rows.append(
                    Row(
                        "platform.cudart",
                        FAIL,
                        f"{lib.name}: CUDA runtime linked dynamically ({why}); link cudart "
                        "statically",
                        cdata,
                    )
                )
            else:
                rows.append(
                    Row(
                        "platform.cudart",
                        PASS,
                        f"{lib.name}: CUDA runtime static (no libcudart NEEDED, "
                        f"{_CUDART_ENTRY} not imported)",
                        cdata,
                    )
                )
    return rows


def check(ctx: Context) -> list[Row]:
    return [*_repair_rows(ctx), *_library_rows(ctx)]

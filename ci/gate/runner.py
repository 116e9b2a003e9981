# SPDX-License-Identifier: Apache-2.0
"""Run every check group on one wheel and collect the report."""

from __future__ import annotations

import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import (
    check_gpu_code,
    check_metadata,
    check_platform,
    check_python_abi,
    check_size,
    check_torch_abi,
    tools,
)
from .config import load_config
from .context import Context
from .model import FAIL, Report, Row
from .wheel import Wheel

CHECK_GROUPS: dict[str, Callable[[Context], list[Row]]] = {
    "torch-abi": check_torch_abi.check,
    "python-abi": check_python_abi.check,
    "platform": check_platform.check,
    "gpu-code": check_gpu_code.check,
    "size": check_size.check,
    "metadata": check_metadata.check,
}


def run_audit(wheel_path: Path | str, config: dict[str, Any] | None = None) -> Report:
    """Audit one wheel. Never raises for a bad wheel: problems become FAIL rows."""
    wheel_path = Path(wheel_path).resolve()
    config = config if config is not None else load_config()
    with tempfile.TemporaryDirectory(prefix="stablekernels-gate-") as tmp:
        workdir = Path(tmp)
        try:
            wheel = Wheel.open(wheel_path, workdir)
        except Exception as exc:  # not a wheel at all: one row says why
            return Report(
                wheel=wheel_path.name,
                path=str(wheel_path),
                size=wheel_path.stat().st_size if wheel_path.exists() else 0,
                sha256="",
                summary={},
                tools=tools.versions(),
                config=config.get("_source", "(in memory)"),
                rows=[Row("wheel.open", FAIL, f"cannot read {wheel_path.name}: {exc}")],
            )
        ctx = Context(wheel=wheel, config=config, workdir=workdir)
        rows: list[Row] = []
        for group, check in CHECK_GROUPS.items():
            try:
                rows.extend(check(ctx))
            except tools.ToolMissing as exc:
                rows.append(Row(f"{group}.tools", FAIL, str(exc)))
            except Exception as exc:
                rows.append(
                    Row(
                        f"{group}.error",
                        FAIL,
                        f"the check itself failed: {type(exc).__name__}: {exc}",
                        {"traceback": traceback.format_exc()},
                    )
                )
        return Report(
            wheel=wheel_path.name,
            path=str(wheel_path),
            size=wheel.size,
            sha256=wheel.sha256,
            summary=wheel.summary(),
            tools=tools.versions(),
            config=config.get("_source", "(in memory)"),
            rows=rows,
        )

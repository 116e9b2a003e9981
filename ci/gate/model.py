# SPDX-License-Identifier: Apache-2.0
"""Report rows, the per-wheel report, its text table and its JSON form."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

PASS = "PASS"
FAIL = "FAIL"
WARN = "WARN"  # passes the gate, but the report says what could not be proven
INFO = "INFO"  # a measurement (e.g. the size an arch contributes), never fails

TABLE_WIDTH = 120
MAX_LISTED = 6  # items named in a detail line before "+N more"


@dataclass
class Row:
    check: str  # "<group>.<item>", e.g. "torch-abi.floor"
    result: str  # PASS / FAIL / WARN / INFO
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def group(self) -> str:
        return self.check.split(".", 1)[0]

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "result": self.result,
            "detail": self.detail,
            "data": self.data,
        }


def listing(items, limit: int = MAX_LISTED) -> str:
    """'a, b, c' or 'a, b, c, +4 more'."""
    items = list(items)
    shown = ", ".join(str(i) for i in items[:limit])
    return shown + (f", +{len(items) - limit} more" if len(items) > limit else "")


def mib(n: float) -> str:
    return f"{n / 2**20:.2f} MiB"


@dataclass
class Report:
    wheel: str
    path: str
    size: int
    sha256: str
    summary: dict[str, Any]  # what the wheel declares: floor, archs, variant, ...
    tools: dict[str, str]
    config: str
    rows: list[Row] = field(default_factory=list)

    @property
    def failures(self) -> list[Row]:
        return [r for r in self.rows if r.result == FAIL]

    @property
    def passed(self) -> bool:
        return not self.failures

    def rows_of(self, check: str) -> list[Row]:
        """Rows of one check ("platform.needed") or of a whole group ("platform")."""
        return [r for r in self.rows if r.check == check or r.group == check]

    def failed_checks(self) -> set[str]:
        return {r.check for r in self.failures}

    def failed_groups(self) -> set[str]:
        return {r.group for r in self.failures}

    def as_dict(self) -> dict[str, Any]:
        counts = {k: sum(r.result == k for r in self.rows) for k in (PASS, FAIL, WARN, INFO)}
        return {
            "wheel": self.wheel,
            "path": self.path,
            "size_bytes": self.size,
            "sha256": self.sha256,
            "passed": self.passed,
            "counts": counts,
            "declared": self.summary,
            "tools": self.tools,
            "config": self.config,
            "checks": [r.as_dict() for r in self.rows],
        }

    def table(self, width: int = TABLE_WIDTH) -> str:
        """The report as aligned columns: check | result | detail."""
        cw = max([len("check"), *(len(r.check) for r in self.rows)])
        rw = max(len("result"), *(len(r.result) for r in self.rows)) if self.rows else 6
        dw = max(40, width - cw - rw - 4)
        s = self.summary
        archs = (
            f"SASS {' '.join(s.get('sass_archs') or ()) or '-'}, "
            f"PTX {' '.join(s.get('ptx_archs') or ()) or '-'}"
        )
        lines = [
            f"== {self.wheel}",
            f"   {mib(self.size)}, sha256 {self.sha256[:16]}..., torch floor "
            f"{s.get('torch_floor') or '?'}, variant {s.get('cuda_variant') or '?'}, "
            f"arch set {s.get('arch_set') or '?'} ({archs})",
            "",
            f"{'check':<{cw}}  {'result':<{rw}}  detail",
            f"{'-' * cw}  {'-' * rw}  {'-' * dw}",
        ]
        for r in self.rows:
            wrapped = textwrap.wrap(
                r.detail, dw, break_long_words=False, break_on_hyphens=False
            ) or [""]
            lines.append(f"{r.check:<{cw}}  {r.result:<{rw}}  {wrapped[0]}")
            lines.extend(f"{'':<{cw}}  {'':<{rw}}  {more}" for more in wrapped[1:])
        counts = self.as_dict()["counts"]
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(f"{'-' * cw}  {'-' * rw}  {'-' * dw}")
        lines.append(
            f"{verdict}: {counts[PASS]} passed, {counts[FAIL]} failed, {counts[WARN]} warnings, "
            f"{counts[INFO]} measurements"
        )
        if self.failures:
            lines.append("failed: " + ", ".join(sorted(self.failed_checks())))
        return "\n".join(lines)

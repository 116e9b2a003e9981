# SPDX-License-Identifier: Apache-2.0
"""The wheel gate (called by `nox -s audit` and at the end of `nox -s build`).

Audits every stablekernels wheel in dist/, or the wheels given, against ci/gate.toml:
torch ABI, Python ABI, platform, GPU code, size and metadata. Prints one table per
wheel (check | result | detail), writes reports/audit-<wheel>.json, and exits 1 when
any check fails. docs/wheel-gate.md explains the checks and the report.

    python ci/audit.py                        every wheel in dist/
    python ci/audit.py path/to/x.whl ...      these wheels
    python ci/audit.py --after-build [BUILD OPTIONS]
                                              the wheel ci/build_wheel.py just built with
                                              these options (read for --out)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from _common import DIST, ROOT, find_wheels, log
from gate import DEFAULT_CONFIG, load_config, run_audit

REPORTS = ROOT / "reports"


def _after_build(build_argv: list[str]) -> list[Path] | None:
    """The wheel the build with these options wrote: the newest one in its --out folder."""
    if {"-h", "--help"} & set(build_argv):
        return None  # the build only printed its help
    import build_wheel

    out = build_wheel.parse_args(build_argv).out
    wheels = find_wheels(out)
    return [max(wheels, key=lambda p: p.stat().st_mtime)] if wheels else []


def report_path(reports: Path, wheel: Path) -> Path:
    return reports / f"audit-{wheel.name.removesuffix('.whl')}.json"


def main(argv: list[str]) -> int:
    if argv[:1] == ["--after-build"]:
        wheels = _after_build(argv[1:])
        if wheels is None:
            return 0
        args = argparse.Namespace(config=DEFAULT_CONFIG, reports=REPORTS)
    else:
        p = argparse.ArgumentParser(
            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        p.add_argument("wheels", nargs="*", type=Path, help="wheels to audit (default: dist/*.whl)")
        p.add_argument(
            "--config", type=Path, default=DEFAULT_CONFIG, help="gate policy (default: %(default)s)"
        )
        p.add_argument(
            "--reports",
            type=Path,
            default=REPORTS,
            help="folder for the JSON reports (default: %(default)s)",
        )
        args = p.parse_args(argv)
        wheels = args.wheels or find_wheels(DIST)
    if not wheels:
        log(f"no wheel to audit: none given and none in {DIST} (run `nox -s build`)")
        return 2
    missing = [w for w in wheels if not w.is_file()]
    if missing:
        log(f"no such wheel: {', '.join(map(str, missing))}")
        return 2
    config = load_config(args.config)
    args.reports.mkdir(parents=True, exist_ok=True)
    failed = []
    for wheel in wheels:
        report = run_audit(wheel, config)
        out = report_path(args.reports, wheel)
        out.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
        print(report.table(), flush=True)
        print(f"report: {out}\n", flush=True)
        if not report.passed:
            failed.append(wheel.name)
    if failed:
        log(f"wheel gate FAILED for {', '.join(failed)}")
        return 1
    log(f"wheel gate passed for {len(wheels)} wheel(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

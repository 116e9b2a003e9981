# SPDX-License-Identifier: Apache-2.0
"""The wheel gate passes the real wheel and fails each deliberate breakage in the
check meant to catch it, with a detail naming the symbol, arch or file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from gate import CHECK_GROUPS, FAIL, INFO, PASS, WARN, run_audit
from gate.config import edited
from gate_fixtures import ALL_DECLARED, CI, rewrite_wheel

PKG = "stablekernels"


def failing(report) -> dict[str, list[str]]:
    """{check: [details]} of the FAIL rows."""
    out: dict[str, list[str]] = {}
    for row in report.failures:
        out.setdefault(row.check, []).append(row.detail)
    return out


def only_failure(report, check: str) -> str:
    """Asserts that `check` is the one failing check; returns its (joined) details."""
    fails = failing(report)
    assert set(fails) == {check}, f"expected only {check} to fail, got:\n{report.table()}"
    return " | ".join(fails[check])


# --- the real wheel ---------------------------------------------------------------------


def test_real_wheel_passes(real_report) -> None:
    assert real_report.passed, real_report.table()
    assert {r.group for r in real_report.rows} == set(CHECK_GROUPS)
    assert all(r.result in (PASS, INFO) for r in real_report.rows), real_report.table()


def test_real_wheel_facts(real_report) -> None:
    declared = real_report.summary
    assert declared["torch_floor"] == "2.10"
    assert declared["tags"] == ["cp310-abi3-linux_x86_64"]
    libs = {r.data["library"]: r for r in real_report.rows if r.check == "torch-abi.floor"}
    assert set(libs) == {f"{PKG}/_C.abi3.so", f"{PKG}/_C_cuda.abi3.so"}
    assert all(r.data["min_torch"] == "2.10.0" for r in libs.values())
    (sass,) = real_report.rows_of("gpu-code.sass")
    assert sass.data["found_sass"] == sorted(declared["sass_archs"]) == ["100", "80", "90"]
    (ptx,) = real_report.rows_of("gpu-code.ptx")
    assert ptx.data["found_ptx"] == declared["ptx_archs"] == ["100"]
    arch_rows = [r.data["arch"] for r in real_report.rows_of("size.arch")]
    assert arch_rows == ["sm_80 SASS", "sm_90 SASS", "sm_100 SASS", "compute_100 PTX", "host"]
    (cudart,) = real_report.rows_of("platform.cudart")
    assert cudart.data["cudart_needed"] == [] and not cudart.data["imports_entry"]


def test_cli_prints_table_and_writes_json(real_wheel: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, CI / "audit.py", real_wheel, "--reports", tmp_path],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("check "))
    result_col = lines[header].index("result")
    detail_col = lines[header].index("detail")
    body = [
        line for line in lines[header + 2 :] if line and not line.startswith(("-", " ", "PASSED"))
    ]
    body = body[: body.index(next(line for line in body if line.startswith("report:")))]
    assert body, proc.stdout
    for line in body:  # aligned columns
        assert line[result_col:].split()[0] in (PASS, FAIL, WARN, INFO), line
        assert line[detail_col - 2 : detail_col] == "  ", line
    report = json.loads((tmp_path / f"audit-{real_wheel.stem}.json").read_text())
    assert report["passed"] is True
    assert report["counts"]["FAIL"] == 0
    assert {c["check"].split(".")[0] for c in report["checks"]} == set(CHECK_GROUPS)


def test_cli_fails_on_bad_wheel(real_wheel: Path, build, tmp_path: Path) -> None:
    lib = build.module(
        "_cli_c10",
        decls="namespace c10 { void fixture_unstable(int); }",
        body="c10::fixture_unstable(1);",
    )
    bad = rewrite_wheel(
        real_wheel, tmp_path / real_wheel.name, put={f"{PKG}/_cli_c10.abi3.so": lib}
    )
    proc = subprocess.run(
        [sys.executable, CI / "audit.py", bad, "--reports", tmp_path / "reports"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"^torch-abi\.symbols\s+FAIL\s+_cli_c10\.abi3\.so", proc.stdout, re.M)
    assert "FAILED:" in proc.stdout
    report = json.loads((tmp_path / "reports" / f"audit-{bad.stem}.json").read_text())
    assert report["passed"] is False


# --- 1. torch ABI -------------------------------------------------------------------------


def test_unstable_c10_symbol_fails(real_wheel, build, gate_config, tmp_path) -> None:
    lib = build.module(
        "_fx_c10",
        decls=(
            "namespace c10 { namespace detail { [[noreturn]] void torchCheckFail("
            "const char*, const char*, unsigned int, const char*); } }\n"
            'extern "C" int aoti_torch_get_numel(void*, long*);'
        ),
        body='long n; aoti_torch_get_numel(nullptr, &n); c10::detail::torchCheckFail("f", "x", 1u, "m");',
    )
    bad = rewrite_wheel(real_wheel, tmp_path / real_wheel.name, put={f"{PKG}/_fx_c10.abi3.so": lib})
    detail = only_failure(run_audit(bad, gate_config), "torch-abi.symbols")
    assert "_fx_c10.abi3.so" in detail
    assert "c10::detail::torchCheckFail" in detail


def test_shim_newer_than_floor_fails(real_wheel, build, gate_config, tmp_path) -> None:
    lib = build.module(
        "_fx_newshim",
        decls='extern "C" int torch_has_storage(void*, bool*);',
        body="bool b; torch_has_storage(nullptr, &b);",
    )
    bad = rewrite_wheel(
        real_wheel, tmp_path / real_wheel.name, put={f"{PKG}/_fx_newshim.abi3.so": lib}
    )
    report = run_audit(bad, gate_config)
    detail = only_failure(report, "torch-abi.floor")
    assert "_fx_newshim.abi3.so" in detail
    assert "torch_has_storage" in detail and "2.14.0" in detail and "torch>=2.10" in detail


def test_undated_shim_is_reported_not_guessed(real_wheel, build, gate_config, tmp_path) -> None:
    lib = build.module(
        "_fx_undated",
        decls='extern "C" int aoti_torch_fixture_unreleased(void);',
        body="aoti_torch_fixture_unreleased();",
    )
    bad = rewrite_wheel(
        real_wheel, tmp_path / real_wheel.name, put={f"{PKG}/_fx_undated.abi3.so": lib}
    )
    report = run_audit(bad, gate_config)  # default policy: warn
    assert report.passed, report.table()
    (warn,) = [r for r in report.rows if r.result == WARN]
    assert warn.check == "torch-abi.undated"
    assert "aoti_torch_fixture_unreleased" in warn.detail and "_fx_undated" in warn.detail
    strict = edited(gate_config, torch_abi={"unmapped_shims": "fail"})
    detail = only_failure(run_audit(bad, strict), "torch-abi.undated")
    assert "aoti_torch_fixture_unreleased" in detail


# --- 2. Python ABI ------------------------------------------------------------------------


def test_non_abi3_module_fails(real_wheel, build, gate_config, tmp_path) -> None:
    lib = build.module(
        "_fx_fullapi",
        limited=False,
        decls='extern "C" int aoti_torch_get_numel(void*, long*);',
        body=(
            'long n; aoti_torch_get_numel(nullptr, &n); PyObject* s = PyUnicode_FromString("x");'
            " (void)PyUnicode_AsUTF8(s);"
        ),
    )
    bad = rewrite_wheel(
        real_wheel, tmp_path / real_wheel.name, put={f"{PKG}/_fx_fullapi.abi3.so": lib}
    )
    detail = only_failure(run_audit(bad, gate_config), "python-abi.abi3audit")
    assert "_fx_fullapi.abi3.so" in detail and "PyUnicode_AsUTF8" in detail


def test_wrong_wheel_tag_fails(real_wheel, gate_config, tmp_path) -> None:
    name = real_wheel.name.replace("-cp310-abi3-", "-cp311-cp311-")
    bad = rewrite_wheel(
        real_wheel,
        tmp_path / name,
        edit={"*WHEEL": lambda t: t.replace("Tag: cp310-abi3-", "Tag: cp311-cp311-")},
    )
    detail = only_failure(run_audit(bad, gate_config), "python-abi.tag")
    assert "cp311-cp311-linux_x86_64" in detail and "cp310-abi3" in detail


# --- 3. platform --------------------------------------------------------------------------


def test_needed_off_allowlist_fails(real_wheel, build, gate_config, tmp_path) -> None:
    libz = subprocess.run(
        ["g++", "-print-file-name=libz.so.1"], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert Path(libz).is_file(), "zlib (libz.so.1) is part of every Linux base system"
    lib = build.module(
        "_fx_libz",
        decls='extern "C" const char* zlibVersion(void);\nextern "C" int aoti_torch_get_numel(void*, long*);',
        body="long n; aoti_torch_get_numel(nullptr, &n); (void)zlibVersion();",
        link=[libz],
    )
    bad = rewrite_wheel(
        real_wheel, tmp_path / real_wheel.name, put={f"{PKG}/_fx_libz.abi3.so": lib}
    )
    # auditwheel's manylinux policies list libz.so.1 as a system library, so only the
    # gate's own allowlist catches it
    detail = only_failure(run_audit(bad, gate_config), "platform.needed")
    assert "_fx_libz.abi3.so" in detail and "libz.so.1" in detail


def test_repair_that_would_vendor_fails(real_wheel, build, gate_config, tmp_path) -> None:
    dep_dir = tmp_path / "dep"
    dep_dir.mkdir()
    (dep_dir / "dep.cpp").write_text('extern "C" int fixture_dep() { return 1; }\n')
    subprocess.run(
        [
            "g++",
            "-shared",
            "-fPIC",
            "-Wl,-soname,libfixturedep.so.1",
            dep_dir / "dep.cpp",
            "-o",
            dep_dir / "libfixturedep.so.1",
        ],
        check=True,
    )
    (dep_dir / "libfixturedep.so").symlink_to("libfixturedep.so.1")
    lib = build.module(
        "_fx_vendor",
        decls='extern "C" int fixture_dep();\nextern "C" int aoti_torch_get_numel(void*, long*);',
        body="long n; aoti_torch_get_numel(nullptr, &n); fixture_dep();",
        link=[f"-L{dep_dir}", "-lfixturedep", f"-Wl,-rpath,{dep_dir}"],
    )
    bad = rewrite_wheel(
        real_wheel, tmp_path / real_wheel.name, put={f"{PKG}/_fx_vendor.abi3.so": lib}
    )
    report = run_audit(bad, gate_config)
    fails = failing(report)
    assert set(fails) == {"platform.repair", "platform.needed"}, report.table()
    (repair,) = fails["platform.repair"]
    assert "would vendor" in repair and "libfixturedep" in repair
    assert "needed by _fx_vendor.abi3.so" in repair
    (needed,) = fails["platform.needed"]
    assert "_fx_vendor.abi3.so" in needed and "libfixturedep.so.1" in needed


def test_shared_cudart_fails(real_wheel, build, gate_config, tmp_path) -> None:
    lib = build.cuda_library("cudart_shared", *ALL_DECLARED, cudart="shared")
    bad = rewrite_wheel(real_wheel, tmp_path / real_wheel.name, put={f"{PKG}/_C_cuda.abi3.so": lib})
    report = run_audit(bad, gate_config)
    fails = failing(report)
    assert set(fails) == {"platform.cudart", "platform.needed"}, report.table()
    (cudart,) = fails["platform.cudart"]
    assert "_C_cuda.abi3.so" in cudart and "libcudart.so" in cudart and "dynamically" in cudart


def test_shim_user_without_libtorch_needed_fails(real_wheel, gate_config, tmp_path) -> None:
    src = tmp_path / "nolink.cpp"
    src.write_text(
        'extern "C" int aoti_torch_get_numel(void*, long*);\n'
        'extern "C" int fixture_touch() { long n; return aoti_torch_get_numel(nullptr, &n); }\n'
    )
    lib = tmp_path / "libnolink.so"
    subprocess.run(["g++", "-shared", "-fPIC", src, "-o", lib], check=True)
    bad = rewrite_wheel(real_wheel, tmp_path / real_wheel.name, put={f"{PKG}/libnolink.so": lib})
    detail = only_failure(run_audit(bad, gate_config), "platform.needed")
    assert "libnolink.so" in detail and "libtorch_cpu.so" in detail


# --- 4. GPU code --------------------------------------------------------------------------


def test_missing_declared_arch_fails(real_wheel, build, gate_config, tmp_path) -> None:
    lib = build.cuda_library("only_sm90", "-gencode=arch=compute_90,code=sm_90")
    bad = rewrite_wheel(real_wheel, tmp_path / real_wheel.name, put={f"{PKG}/_C_cuda.abi3.so": lib})
    report = run_audit(bad, gate_config)
    fails = failing(report)
    assert set(fails) == {"gpu-code.sass", "gpu-code.ptx"}, report.table()
    (sass,) = fails["gpu-code.sass"]
    assert "_C_cuda.abi3.so" in sass
    assert "no SASS for declared sm_80, sm_100" in sass
    (ptx,) = fails["gpu-code.ptx"]
    assert "no PTX for declared compute_100" in ptx


def test_undeclared_arch_fails(real_wheel, build, gate_config, tmp_path) -> None:
    lib = build.cuda_library("extra_sm86", *ALL_DECLARED, "-gencode=arch=compute_86,code=sm_86")
    bad = rewrite_wheel(real_wheel, tmp_path / real_wheel.name, put={f"{PKG}/_C_cuda.abi3.so": lib})
    detail = only_failure(run_audit(bad, gate_config), "gpu-code.sass")
    assert "SASS for undeclared sm_86" in detail and "_C_cuda.abi3.so" in detail


# --- 5. size ------------------------------------------------------------------------------


def test_over_budget_fails(real_wheel, gate_config) -> None:
    tiny = edited(gate_config, size={"budget_mib": {"default": 0.5, "other": 0.5}})
    detail = only_failure(run_audit(real_wheel, tiny), "size.budget")
    assert real_wheel.name in detail
    assert "over the 0.50 MiB budget of arch set 'default'" in detail


def test_budget_falls_back_to_other(real_wheel, gate_config) -> None:
    budgets = {k: v for k, v in gate_config["size"]["budget_mib"].items() if k != "default"}
    report = run_audit(real_wheel, edited(gate_config, size={"budget_mib": budgets}))
    (row,) = report.rows_of("size.budget")
    assert row.result == PASS and row.data["budget_key"] == "other", row.detail


# --- 6. metadata --------------------------------------------------------------------------


def test_torch_upper_bound_fails(real_wheel, gate_config, tmp_path) -> None:
    bad = rewrite_wheel(
        real_wheel,
        tmp_path / real_wheel.name,
        edit={
            "*METADATA": lambda t: t.replace(
                "Requires-Dist: torch>=2.10", "Requires-Dist: torch<2.16,>=2.10"
            )
        },
    )
    detail = only_failure(run_audit(bad, gate_config), "metadata.torch")
    assert "<2.16" in detail and "upper bound" in detail


def test_floor_mismatch_with_build_info_fails(real_wheel, gate_config, tmp_path) -> None:
    bad = rewrite_wheel(
        real_wheel,
        tmp_path / real_wheel.name,
        edit={
            f"{PKG}/_build_info.py": lambda t: t.replace('TORCH_MIN = "2.10"', 'TORCH_MIN = "2.12"')
        },
    )
    detail = only_failure(run_audit(bad, gate_config), "metadata.torch")
    assert "'2.12'" in detail and "torch>=2.10" in detail


def test_missing_license_fails(real_wheel, gate_config, tmp_path) -> None:
    def drop_license(text: str) -> str:
        return "\n".join(
            line for line in text.splitlines() if not line.startswith("License-Expression:")
        )

    bad = rewrite_wheel(real_wheel, tmp_path / real_wheel.name, edit={"*METADATA": drop_license})
    detail = only_failure(run_audit(bad, gate_config), "metadata.license")
    assert "no License-Expression" in detail


def test_not_a_wheel_fails(tmp_path, gate_config) -> None:
    junk = tmp_path / "stablekernels-0.1.0-cp310-abi3-linux_x86_64.whl"
    junk.write_bytes(b"not a zip")
    report = run_audit(junk, gate_config)
    assert not report.passed and report.failures[0].check == "wheel.open"

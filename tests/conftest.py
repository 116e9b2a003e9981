# SPDX-License-Identifier: Apache-2.0
"""Shared pytest setup: the cuda marker's skip rule and a report header that
says which wheel and which torch a run used (read it first when a matrix cell fails)."""

from __future__ import annotations

import platform

import pytest
import stablekernels
import torch
from stablekernels import build_info


def _gpu_available() -> bool:
    return torch.version.cuda is not None and torch.cuda.is_available()


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = [
        f"stablekernels {stablekernels.__version__} from {stablekernels.__file__}",
        f"  built: families={','.join(build_info.FAMILIES)} variant={build_info.CUDA_VARIANT} "
        f"sass={','.join(build_info.SASS_ARCHS) or '-'} ptx={','.join(build_info.PTX_ARCHS) or '-'} "
        f"torch_floor={build_info.TORCH_MIN} headers={build_info.TORCH_HEADER_VERSION} "
        f"git={build_info.GIT_REVISION}",
        f"  running: torch {torch.__version__} (CUDA {torch.version.cuda}) on Python "
        f"{platform.python_version()}; cuda library loaded: {stablekernels.cuda_library_loaded()}",
    ]
    if _gpu_available():
        for i in range(torch.cuda.device_count()):
            cap = torch.cuda.get_device_capability(i)
            lines.append(f"  GPU {i}: {torch.cuda.get_device_name(i)} (sm_{cap[0]}{cap[1]})")
    else:
        lines.append("  GPU: none visible; tests marked cuda are skipped")
    return lines


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _gpu_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (none visible to torch)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)

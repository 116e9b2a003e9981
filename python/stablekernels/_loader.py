# SPDX-License-Identifier: Apache-2.0
"""Loads the compiled libraries after checking that the running torch can host them."""

from __future__ import annotations

import dataclasses
import importlib
import re

from . import _build_info


@dataclasses.dataclass
class LoadState:
    cuda_loaded: bool = False
    error: ImportError | None = None


def parse_torch_version(version: str) -> tuple[int, int]:
    """``"2.10.0+cu128"`` -> ``(2, 10)``; ``"2.12.0a0+git1234"`` -> ``(2, 12)``."""
    m = re.match(r"^(\d+)\.(\d+)", version)
    if not m:
        raise ValueError(f"cannot parse torch version {version!r}")
    return int(m.group(1)), int(m.group(2))


def check_torch_floor(torch_version: str, floor: str = _build_info.TORCH_MIN) -> None:
    """Raise ImportError naming the floor and the version found if torch is older than the floor."""
    if parse_torch_version(torch_version) < parse_torch_version(floor):
        raise ImportError(
            f"stablekernels {_build_info.VERSION} needs torch>={floor} (the stable-ABI floor it was "
            f"built for), but torch {torch_version} is installed. Upgrade torch: "
            f"pip install 'torch>={floor}'"
        )


def torch_has_cuda() -> bool:
    import torch

    return torch.version.cuda is not None and getattr(torch.version, "hip", None) is None


def load_libraries() -> LoadState:
    """Import torch, check the floor, load _C and, under a CUDA torch, _C_cuda."""
    import torch

    check_torch_floor(torch.__version__)
    state = LoadState()
    try:
        importlib.import_module("stablekernels._C")
        if _build_info.WITH_CUDA and torch_has_cuda():
            importlib.import_module("stablekernels._C_cuda")
            state.cuda_loaded = True
    except (ImportError, OSError) as err:
        raise ImportError(
            f"stablekernels {_build_info.VERSION} ({_build_info.CUDA_VARIANT}, torch floor "
            f"{_build_info.TORCH_MIN}) could not load its compiled library under torch "
            f"{torch.__version__}: {err}"
        ) from err
    return state

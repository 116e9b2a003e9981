# SPDX-License-Identifier: Apache-2.0
"""Test helpers: devices, memory layouts, NaN-filled outputs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]

# How a [..., n] tensor sits in memory. All keep the last dim contiguous.
LAYOUTS = [
    "contiguous",
    "row_strided",  # rows further apart than n (a slice x[..., :n] of a wider tensor)
    "noncollapsible",  # leading dims whose strides cannot merge into one row stride
    "transposed",  # leading dims permuted
    "misaligned",  # base pointer off a 16-byte boundary
]


def make_tensor(
    shape: tuple[int, ...],
    layout: str,
    dtype: torch.dtype,
    device: str,
    *,
    seed: int = 0,
    fill: float | None = None,
) -> torch.Tensor:
    """A tensor of `shape` with the given memory layout, random normal (or `fill`) values."""
    g = torch.Generator().manual_seed(seed)
    n = shape[-1]
    lead = shape[:-1]

    def rand(s: tuple[int, ...]) -> torch.Tensor:
        t = torch.randn(s, generator=g, dtype=torch.float32).to(dtype)
        if fill is not None:
            t.fill_(fill)
        return t.to(device)

    if layout == "contiguous":
        t = rand(shape)
    elif layout == "row_strided":
        t = rand((*lead, n + 13))[..., :n]
    elif layout == "noncollapsible":
        if len(lead) == 0:
            t = rand(shape)
        else:
            t = rand((*lead[:-1], lead[-1] + 2, n + 5))[..., 1 : lead[-1] + 1, :n]
    elif layout == "transposed":
        if len(lead) < 2:
            t = rand((*lead, n + 7))[..., 3 : n + 3]  # nothing to permute: offset rows instead
        else:
            t = rand((lead[1], lead[0], *lead[2:], n)).transpose(0, 1)
    elif layout == "misaligned":
        numel = 1
        for s in shape:
            numel *= s
        t = rand((numel + 1,))[1:].view(shape)
    else:
        raise ValueError(layout)
    assert t.shape == torch.Size(shape), (t.shape, shape)
    assert t.stride(-1) == 1 or n <= 1
    return t


def nan_like(t: torch.Tensor, shape: tuple[int, ...] | None = None) -> torch.Tensor:
    """An output buffer filled with NaN, so any element the op leaves unwritten shows."""
    return torch.full(
        shape if shape is not None else t.shape, float("nan"), dtype=t.dtype, device=t.device
    )


def load_script(path: Path, name: str) -> ModuleType:
    """Import a script that is not in a package (benchmarks/*.py) as module `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module

# SPDX-License-Identifier: Apache-2.0
"""torch.library.opcheck on every registered op: schema, fake, autograd registration, AOT dispatch."""

from __future__ import annotations

import pytest
import torch
from helpers import DEVICES
from stablekernels.ops import REGISTRY


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_opcheck(name: str, device: str, dtype: torch.dtype) -> None:
    spec = REGISTRY[name]
    samples = list(spec.sample_args(torch.device(device), dtype))
    assert samples, f"{name} has no sample inputs"
    for args in samples:
        result = torch.library.opcheck(spec.op, args)
        failed = {k: v for k, v in result.items() if v != "SUCCESS"}
        assert not failed, f"{name}: {failed}"

# SPDX-License-Identifier: Apache-2.0
"""Programmatic dependent launch (sm_90 and newer; csrc/include/stablekernels/kernel_launch.cuh):
a kernel may be scheduled before the one ahead of it ends and waits for it before touching
memory. A chain of dependent calls, each reading what the one before wrote and writing what
it read (in place), eagerly and in a CUDA graph, gives bit for bit what the same chain gives
in a process with STABLEKERNELS_PDL=0 (plain launches), and what the step-by-step reference
gives within rounding."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

CHAIN = textwrap.dedent(
    """
    import sys, torch, stablekernels
    from stablekernels.ops.quantization import static_scaled_fp8_quant_ref

    def chain(x, res, w, steps):
        outs = []
        for _ in range(steps):
            stablekernels.fused_add_rms_norm_(x, res, w)   # x, res in place
            y = stablekernels.rms_norm(x, w)               # reads the x just written
            q = stablekernels.static_scaled_fp8_quant(y, scale)
            q2, s2 = stablekernels.dynamic_scaled_fp8_quant(y)
            outs += [y, q.view(torch.uint8), q2.view(torch.uint8), s2]
        return outs

    g = torch.Generator(device="cuda").manual_seed(0)
    shapes = [(1, 4096), (32, 8192), (2048, 4096)]
    results = []
    for t, h in shapes:
        x = torch.randn(t, h, device="cuda", dtype=torch.bfloat16, generator=g)
        res = torch.randn(t, h, device="cuda", dtype=torch.bfloat16, generator=g)
        w = torch.rand(h, device="cuda", dtype=torch.bfloat16, generator=g) + 0.5
        scale = torch.tensor([0.01], device="cuda")
        x0, r0 = x.clone(), res.clone()
        results += chain(x, res, w, 6) + [x.clone(), res.clone()]
        # the same chain captured in a graph, replayed from the same start
        x.copy_(x0); res.copy_(r0)
        side = torch.cuda.Stream(); side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            chain(x.clone(), res.clone(), w, 1)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outs = chain(x, res, w, 6)
        x.copy_(x0); res.copy_(r0)
        graph.replay()
        results += [o.clone() for o in outs] + [x.clone(), res.clone()]
    torch.cuda.synchronize()
    torch.save([r.cpu() for r in results], sys.argv[1])
    """
)


def _run_chain(tmp_path, pdl: str) -> list[torch.Tensor]:
    out = tmp_path / f"chain_pdl{pdl}.pt"
    script = tmp_path / "chain.py"
    script.write_text(CHAIN)
    env = dict(os.environ, STABLEKERNELS_PDL=pdl)
    done = subprocess.run(
        [sys.executable, str(script), str(out)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return torch.load(out)


@pytest.mark.cuda
def test_dependent_chain_same_bits_with_and_without_pdl(tmp_path) -> None:
    on = _run_chain(tmp_path, "1")
    off = _run_chain(tmp_path, "0")
    assert len(on) == len(off) > 0
    for i, (a, b) in enumerate(zip(on, off, strict=True)):
        assert torch.equal(a, b), f"result {i} differs with and without PDL"
    # eager and graph halves of each shape agree too (the same chain from the same start)
    per_shape = len(on) // 3
    for k in range(3):
        block = on[k * per_shape : (k + 1) * per_shape]
        eager, graph = block[: per_shape // 2], block[per_shape // 2 :]
        for i, (a, b) in enumerate(zip(eager, graph, strict=True)):
            assert torch.equal(a, b), f"shape {k}: result {i} differs between eager and graph"


@pytest.mark.cuda
def test_dependent_chain_matches_reference() -> None:
    import stablekernels
    from stablekernels.ops.norm import fused_add_rms_norm_ref

    g = torch.Generator(device="cuda").manual_seed(1)
    x = torch.randn(32, 8192, device="cuda", dtype=torch.bfloat16, generator=g)
    res = torch.randn(32, 8192, device="cuda", dtype=torch.bfloat16, generator=g)
    w = torch.rand(8192, device="cuda", dtype=torch.bfloat16, generator=g) + 0.5
    for step in range(8):
        x_ref, res_ref = fused_add_rms_norm_ref(x, res, w, 1e-6)  # from the state before
        stablekernels.fused_add_rms_norm_(x, res, w)
        torch.testing.assert_close(res, res_ref, atol=0, rtol=0, msg=f"residual, step {step}")
        torch.testing.assert_close(x, x_ref, atol=1.6e-2, rtol=1.6e-2, msg=f"output, step {step}")

# SPDX-License-Identifier: Apache-2.0
"""The schemas (written once, in C++) and the Python side agree."""

from __future__ import annotations

import inspect

import pytest
import stablekernels
import torch
from helpers import DEVICES
from stablekernels import build_info
from stablekernels.ops import REGISTRY


def _registered_op_names() -> set[str]:
    return {
        schema.name.split("::", 1)[1]
        for schema in torch._C._jit_get_all_schemas()
        if schema.name.startswith("stablekernels::")
    }


def test_every_compiled_op_has_a_spec() -> None:
    compiled = _registered_op_names()
    assert compiled, "no op registered in torch.ops.stablekernels"
    assert compiled == set(REGISTRY), (
        f"compiled only: {compiled - set(REGISTRY)}; spec only: {set(REGISTRY) - compiled}"
    )


def test_families_match_build_info() -> None:
    assert {spec.family for spec in REGISTRY.values()} == set(build_info.FAMILIES)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_wrapper_signature_matches_schema(name: str) -> None:
    spec = REGISTRY[name]
    schema_args = [a.name for a in spec.op._schema.arguments]
    expected = [a for a in schema_args if a not in spec.outputs]
    params = list(inspect.signature(spec.wrapper).parameters)
    assert params == expected, (
        f"{name}: wrapper {params} vs schema {schema_args} minus outputs {spec.outputs}"
    )
    assert spec.wrapper.__doc__ and "Args:" in spec.wrapper.__doc__


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_wrapper_is_public(name: str) -> None:
    spec = REGISTRY[name]
    assert getattr(stablekernels, spec.wrapper.__name__) is spec.wrapper
    assert spec.wrapper.__name__ in stablekernels.__all__


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_fake_runs_without_data(name: str) -> None:
    from torch._subclasses.fake_tensor import FakeTensorMode

    spec = REGISTRY[name]
    args = next(iter(spec.sample_args(torch.device("cpu"), torch.float32)))
    with FakeTensorMode() as mode:
        fake_args = torch.utils._pytree.tree_map_only(torch.Tensor, mode.from_tensor, list(args))
        out = spec.op(*fake_args)
        if not spec.op._schema.returns:
            assert out is None
        else:  # hadacore_transform: one tensor shaped like its input
            assert isinstance(out, torch.Tensor) and out.shape == fake_args[0].shape


def test_schemas_match_vllm() -> None:
    # The exact schemas users switching from vLLM's ops of the same names rely on.
    expected = {
        "rms_norm": "stablekernels::rms_norm(Tensor! result, Tensor input, Tensor weight, float epsilon) -> ()",
        "fused_add_rms_norm": "stablekernels::fused_add_rms_norm(Tensor! input, Tensor! residual, Tensor weight, float epsilon) -> ()",
        "silu_and_mul": "stablekernels::silu_and_mul(Tensor! result, Tensor input) -> ()",
        "gelu_and_mul": "stablekernels::gelu_and_mul(Tensor! result, Tensor input) -> ()",
        "gelu_tanh_and_mul": "stablekernels::gelu_tanh_and_mul(Tensor! result, Tensor input) -> ()",
        "rotary_embedding": "stablekernels::rotary_embedding(Tensor positions, Tensor! query, Tensor!? key, int head_size, Tensor cos_sin_cache, bool is_neox) -> ()",
        "merge_attn_states": "stablekernels::merge_attn_states(Tensor! output, Tensor!? output_lse, Tensor prefix_output, Tensor prefix_lse, Tensor suffix_output, Tensor suffix_lse) -> ()",
        "reshape_and_cache_flash": "stablekernels::reshape_and_cache_flash(Tensor key, Tensor value, Tensor! key_cache, Tensor! value_cache, Tensor slot_mapping, str kv_cache_dtype, Tensor k_scale, Tensor v_scale) -> ()",
        "swap_blocks": "stablekernels::swap_blocks(Tensor src, Tensor! dst, Tensor block_mapping) -> ()",
        "copy_blocks": "stablekernels::copy_blocks(Tensor(a!)[] key_caches, Tensor(b!)[] value_caches, Tensor block_mapping) -> ()",
        "static_scaled_fp8_quant": "stablekernels::static_scaled_fp8_quant(Tensor! result, Tensor input, Tensor scale) -> ()",
        "dynamic_scaled_fp8_quant": "stablekernels::dynamic_scaled_fp8_quant(Tensor! result, Tensor input, Tensor! scale) -> ()",
        "dynamic_per_token_scaled_fp8_quant": "stablekernels::dynamic_per_token_scaled_fp8_quant(Tensor! result, Tensor input, Tensor! scale, Tensor? scale_ub) -> ()",
        "apply_repetition_penalties_": "stablekernels::apply_repetition_penalties_(Tensor! logits, Tensor prompt_mask, Tensor output_mask, Tensor repetition_penalties) -> ()",
        "top_k_per_row": "stablekernels::top_k_per_row(Tensor logits, Tensor row_starts, Tensor row_ends, Tensor! indices, int k) -> ()",
        "hadacore_transform": "stablekernels::hadacore_transform(Tensor! x, bool inplace) -> Tensor",
    }
    for name, schema in expected.items():
        assert str(REGISTRY[name].op._schema) == str(torch._C.parse_schema(schema))


def _leaves(x: object) -> list[torch.Tensor]:
    """The tensors of x: floating ones as float32, integer ones (indices, in any order
    within a row) sorted along their last dim."""
    out = []
    for t in torch.utils._pytree.tree_leaves(x):
        if isinstance(t, torch.Tensor):
            is_int = not t.is_floating_point() and t.dtype != torch.bool and t.dim() > 0
            out.append(t.sort(dim=-1).values if is_int else t.float())
    return out


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    "name", sorted(n for n, s in REGISTRY.items() if s.native is not None and s.bench_quick)
)
def test_native_matches_ours_on_benchmark_inputs(name: str, device: str) -> None:
    # What benchmarks/run.py times side by side computes the same thing. A `native` that
    # returns its results is compared with the wrapper's; one that works in place (returns
    # None) with `bench_fn` (or the wrapper), through the tensors both wrote.
    spec = REGISTRY[name]
    dtype = torch.bfloat16 if torch.bfloat16 in spec.dtypes else spec.dtypes[0]
    case = spec.bench_quick[0]
    torch.manual_seed(0)
    ours_args = case.make_args(torch.device(device), dtype)
    theirs_args = torch.utils._pytree.tree_map_only(torch.Tensor, torch.clone, ours_args)
    theirs = spec.native(*theirs_args)
    if theirs is None:
        (spec.bench_fn or spec.wrapper)(*ours_args)
        a, b = _leaves(ours_args), _leaves(theirs_args)
    else:
        a, b = _leaves(spec.wrapper(*ours_args)), _leaves(theirs)
    assert len(a) == len(b) and a, f"{name}: {len(a)} vs {len(b)} tensors"
    for x, y in zip(a, b, strict=True):
        # both round through float32 to the output dtype: they may differ by one step of
        # it (an FP8 e4m3 step is 12.5%)
        torch.testing.assert_close(x, y, atol=0.05, rtol=0.13, equal_nan=True)

"""The same model, inputs and calibration give byte-identical IR and identical outputs, every run.

Diffs of IR (and the FileCheck tests written from it) must show changes of the
compiler, never noise of the run. Noise comes from iterating sets or dicts keyed
by objects (their order follows `id()`, i.e. memory addresses), from names built
from `id()` or from counters that outlive a run, and from string hashing, which
Python salts per process (`PYTHONHASHSEED`): a set of names iterates differently
in another process. So the whole static flow — export, prepare, calibrate,
convert, lower — runs twice here and once in a fresh interpreter with another
hash seed, and every stage's text (locations included), every weight and every
output must agree exactly.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import torch

import qir
from qir.quantizer import X86Quantizer

MODELS = ("cnn_bn_residual", "transformer_encoder")
"""Folded BatchNorms and a fused residual add; shared specs, fixed-range softmax, matmuls."""


def run_flow(name: str) -> dict:
    """Every stage of the x86 static flow on a zoo model: IR texts, weights, outputs."""
    from zoo.models import ZOO

    entry = ZOO[name]
    model = entry.make_model()
    args, kwargs = entry.make_inputs()
    # Two batches, the second widening the ranges (so that observers update, not just start).
    widened = torch.utils._pytree.tree_map(lambda t: t * 1.7 - 0.3 if torch.is_tensor(t) and t.is_floating_point()
                                           else t, (args, kwargs))
    calibration = [(args, kwargs), widened]
    float_program = qir.export(model, args, kwargs)
    prepared = qir.prepare(model, args, X86Quantizer(), kwargs=kwargs)
    with torch.no_grad():
        for batch_args, batch_kwargs in calibration:
            prepared(*batch_args, **batch_kwargs)
        observed = qir.observed_program(prepared)
        quantized = qir.convert(prepared)
        lowered = qir.lower(quantized, "x86")
        stages = {"float": float_program, "observed": observed, "quantized": quantized.qir_program,
                  "lowered": lowered.qir_program}
        return {
            "text": {stage: p.text() for stage, p in stages.items()},
            "debuginfo": {stage: p.text(debuginfo=True) for stage, p in stages.items()},
            "weights": {stage: [(n, p.params[n]) for n in sorted(p.param_names())] for stage, p in stages.items()},
            "outputs": {"prepared": prepared(*args, **kwargs), "quantized": quantized(*args, **kwargs),
                        "lowered": lowered(*args, **kwargs)},
        }


def _assert_same(first: dict, second: dict, what: str) -> None:
    for key in ("text", "debuginfo"):
        assert first[key].keys() == second[key].keys()
        for stage in first[key]:
            assert first[key][stage] == second[key][stage], f"{what}: {stage} IR ({key}) differs"
    for stage, weights in first["weights"].items():
        assert [n for n, _ in weights] == [n for n, _ in second["weights"][stage]], f"{what}: {stage} weight names"
        for (n, a), (_, b) in zip(weights, second["weights"][stage]):
            assert a.dtype == b.dtype and torch.equal(a, b), f"{what}: {stage} weight {n!r} differs"
    for stage, out in first["outputs"].items():
        other = second["outputs"][stage]
        flat, flat_other = torch.utils._pytree.tree_leaves(out), torch.utils._pytree.tree_leaves(other)
        assert len(flat) == len(flat_other) and all(torch.equal(a, b) for a, b in zip(flat, flat_other)), \
            f"{what}: {stage} outputs differ"


_CHILD = """
import sys, torch
sys.path[:0] = [{tests!r}]
from test_determinism import MODELS, run_flow
torch.save({{name: run_flow(name) for name in MODELS}}, {out!r})
"""


@pytest.mark.slow  # runs the flow in fresh processes
def test_same_flow_gives_identical_ir_weights_and_outputs_across_runs_and_hash_seeds(tmp_path):
    # Another hash seed than this process's (random, unless PYTHONHASHSEED is set).
    seed = "2" if os.environ.get("PYTHONHASHSEED") == "1" else "1"
    out = tmp_path / "child.pt"
    child = subprocess.Popen([sys.executable, "-c", _CHILD.format(tests=str(Path(__file__).parent), out=str(out))],
                             env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONWARNINGS": "ignore"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:  # the child runs while this process runs the flow twice
        here = {name: (run_flow(name), run_flow(name)) for name in MODELS}
    finally:
        _, stderr = child.communicate(timeout=600)
    for name, (first, second) in here.items():
        _assert_same(first, second, f"{name}, twice in one process")
    assert child.returncode == 0, stderr[-3000:]
    theirs = torch.load(out, weights_only=False)
    for name, (first, _) in here.items():
        _assert_same(first, theirs[name], f"{name}, PYTHONHASHSEED={seed} against this process")

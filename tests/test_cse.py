"""`cse` on exported models and on its FileCheck cases: duplicates merged, outputs bit-identical,
provenance kept apart; and through `prepare`/`convert`, a model that computes a layer twice
quantizes to what the model computing it once gives."""

from __future__ import annotations

import glob
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from test_canonicalize import _functions, _inputs, _same, _targets, canonicalize

import qir
from qir.passes.cse import attr_key

LIT_DIR = Path(__file__).parent / "lit" / "cse"


class Duplicates(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.ReLU()
        self.b = nn.ReLU()

    def forward(self, x):
        s = torch.sigmoid(x) * torch.sigmoid(x)
        return s + torch.sigmoid(x), self.a(x) + self.b(x)


def test_duplicates_merge_within_a_module_only():
    model = Duplicates()
    x = torch.randn(3, 4)
    _, after, counts = canonicalize(model, x, pipeline="cse")
    ops = _targets(after)
    assert ops["sigmoid.default"] == 1 and counts["duplicate"] == 2
    assert ops["relu.default"] == 2  # two modules: `set_module_name` must still see both
    assert _same(model(x), after.to_fx()(x))


def test_canonicalize_leaves_duplicates_to_cse():
    _, after, counts = canonicalize(Duplicates(), torch.randn(3, 4))
    assert _targets(after)["sigmoid.default"] == 3 and "duplicate" not in counts


def test_enum_attributes_are_compared_by_value():
    from qir.dialects.aten import DTypeAttr, MemoryFormatAttr

    assert attr_key(MemoryFormatAttr("channels_last")) != attr_key(MemoryFormatAttr("contiguous_format"))
    assert attr_key(DTypeAttr("float32")) == attr_key(DTypeAttr("float32"))


@pytest.mark.parametrize("path", sorted(glob.glob(str(LIT_DIR / "*.mlir"))), ids=lambda p: Path(p).name)
def test_lit_cases_keep_their_numerics(path):
    """Every function of the FileCheck tests computes the same before and after, through torch."""
    for name, program in _functions(path):
        if any(not isinstance(t, torch.Tensor) or not (t.dtype.is_floating_point or t.dtype == torch.int64)
               for t in _inputs(program.forward)):
            continue  # quantized inputs: `cse` of casts is checked by FileCheck
        result = qir.PassManager("canonicalize,cse").run(program)
        inputs = _inputs(program.forward)
        torch.manual_seed(0)
        expected = program.to_fx()(*[t.clone() for t in inputs])
        torch.manual_seed(0)
        assert _same(expected, result.to_fx()(*[t.clone() for t in inputs])), name


class LayerTwice(nn.Module):
    """One layer called twice on one input, as the model computing it once below."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x):
        return self.fc(x).relu() + self.fc(x).relu()


class LayerOnce(LayerTwice):
    def forward(self, x):
        y = self.fc(x).relu()
        return y + y


def test_a_layer_computed_twice_quantizes_as_computed_once():
    torch.manual_seed(0)
    twice = LayerTwice().eval()
    once = LayerOnce().eval()
    once.load_state_dict(twice.state_dict())
    x = torch.randn(16, 8)
    outputs = []
    for model in (twice, once):
        prepared = qir.prepare(model, (x,))
        prepared(x)
        quantized = qir.convert(prepared)
        linears = [n for n in quantized.graph.nodes if n.target is torch.ops.aten.linear.default]
        assert len(linears) == 1
        outputs.append(quantized(x))
    assert torch.equal(outputs[0], outputs[1])
    with torch.no_grad():
        expected = twice(x)
    assert (outputs[0] - expected).abs().max() < 0.05 * expected.abs().max()


def test_ops_declared_effect_free_write_nothing():
    """`Mutations.of` skips ops whose class declares no memory effects without asking each op's
    traits, and `removable` takes them as xDSL's `would_be_trivially_dead` does: on the programs
    of every stage, each such op indeed writes no operand, and every op is removable exactly
    when xDSL says."""
    from xdsl.transforms.dead_code_elimination import would_be_trivially_dead

    from qir.aliasing import Mutations, _declared_effect_free, removable, storage_root, written_values
    from qir.dialects.aten import AtenOp, ParamOp, ParamUpdateOp

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 5)).eval()
    x = torch.randn(2, 3, 6, 6)
    prepared = qir.prepare(torch.export.export(model, (x,)), (x,))
    prepared(x)
    converted = qir.convert(prepared)
    lowered = qir.lower(converted, "x86")
    skipped = set()
    for module in (prepared.qir_program.module, converted.qir_program.module, lowered.qir_program.module):
        for op in module.walk():
            if _declared_effect_free(type(op)):
                skipped.add(op.name)
                assert not list(written_values(op)), op.name
            if not isinstance(op, AtenOp | ParamOp | ParamUpdateOp) and not op.regions:
                assert removable(op) == (bool(op.results) and would_be_trivially_dead(op)), op.name
        asked = {storage_root(value) for op in module.walk() for value in written_values(op)}
        assert Mutations.of(module).roots == asked  # no aten.param_update here
    assert {"quant.qcast", "quant.dcast"} <= skipped
    assert not _declared_effect_free(type(lowered.qir_program.module))  # regions: its ops' effects are its own

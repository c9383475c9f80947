"""`canonicalize` on real exported models: fewer ops, bit-identical outputs, the input untouched."""

from __future__ import annotations

import glob
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils._pytree import tree_flatten
from xdsl.dialects.builtin import ModuleOp, StringAttr

import qir
from qir.passes.canonicalize import Canonicalize

LIT_DIR = Path(__file__).parent / "lit" / "canonicalize"


def _same(a, b) -> bool:
    la, sa = tree_flatten(a)
    lb, sb = tree_flatten(b)
    return sa == sb and len(la) == len(lb) and all(
        torch.equal(x, y) and x.dtype == y.dtype if isinstance(x, torch.Tensor) else x == y
        for x, y in zip(la, lb)
    )


def _targets(program: qir.Program) -> Counter:
    return Counter(op.target.data if op.name == "aten.op" else op.name
                   for op in program.forward.body.walk() if op.name != "func.return")


def canonicalize(model: nn.Module, *args, pipeline: str = "canonicalize"):
    """Export, run `pipeline`, check the input program is unchanged; (before, after, counts of
    every pass)."""
    program = qir.export(model, args)
    text = program.text(debuginfo=True)
    manager = qir.PassManager(pipeline)
    result = manager.run(program)
    assert program.text(debuginfo=True) == text, f"{pipeline} changed its input program"
    result.verify()
    return program, result, sum((Counter(r.counts) for r in manager.records), Counter())


class Block(nn.Module):
    """What export leaves between two layers, plus a computation written twice."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.drop = nn.Dropout(0.5)
        self.drop2d = nn.Dropout2d(0.3)

    def forward(self, x):
        y = self.drop(self.fc(x))
        y = y.clone().contiguous().reshape(4, 8).to(torch.float32).detach()
        y = y.view(32).view(4, 8)
        y = self.drop2d(y[None, :, :, None]).squeeze(0).squeeze(-1)
        y = y.t().t().permute(0, 1).flatten(1).type_as(x)
        return y.relu() + y.relu() + F.dropout(y, 0.0, True)


def test_eval_block_folds_to_its_arithmetic():
    model = Block().eval()
    x = torch.randn(4, 8)
    before, after, counts = canonicalize(model, x, pipeline="canonicalize,cse")
    assert counts["no-op"] >= 12 and counts["duplicate"] == 1 and counts["dead-code"] >= 1
    ops = _targets(after)
    assert ops == Counter({"aten.param": 2, "linear.default": 1, "relu.default": 1, "add.Tensor": 2,
                           "_assert_tensor_metadata.default": ops["_assert_tensor_metadata.default"]})
    assert sum(_targets(before).values()) > sum(ops.values()) + 15
    with torch.no_grad():
        assert _same(model(x), after.to_fx()(x))


def test_training_dropout_survives_and_draws_the_same_numbers():
    model = Block().train()
    x = torch.randn(4, 8)
    _, after, counts = canonicalize(model, x, pipeline="canonicalize,cse")
    ops = _targets(after)
    assert ops["dropout.default"] == 1  # the p=0 functional dropout goes, nn.Dropout(0.5) stays
    assert ops["feature_dropout.default"] == 1
    assert counts["duplicate"] == 1
    torch.manual_seed(0)
    expected = model(x)
    torch.manual_seed(0)
    assert _same(expected, after.to_fx()(x))


class Attention(nn.Module):
    """`transpose(...).contiguous().view(...)`: a copy a later `view` needs."""

    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(16, 48)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, 4, d // 4).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))
        attn = torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v
        out = attn.transpose(1, 2).contiguous().view(b, t, d)
        return out.clone().view(b * t, d).view(b, t, d)


def test_contiguous_copy_before_view_stays():
    model = Attention().eval()
    x = torch.randn(2, 5, 16)
    _, after, counts = canonicalize(model, x)
    ops = _targets(after)
    assert ops["contiguous.default"] == 1
    assert ops["clone.default"] == 0 and counts["no-op"] >= 2
    with torch.no_grad():
        assert _same(model(x), after.to_fx()(x))


class ExpandClone(nn.Module):
    def forward(self, x):
        return x[:, None].expand(3, 4, 5).clone().view(60), x.clone()


def test_clone_of_a_broadcast_stays_clone_of_a_dense_tensor_goes():
    model = ExpandClone()
    x = torch.randn(3, 5)
    _, after, _ = canonicalize(model, x)
    assert _targets(after)["clone.default"] == 1
    assert _same(model(x), after.to_fx()(x))


class Stats(nn.Module):
    """A training-mode BatchNorm: it updates its buffers, and the model returns a copy of one."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(4)

    def forward(self, x):
        y = self.bn(x)
        return y.clone() + y.clone(), self.bn.running_mean.clone()


@pytest.mark.parametrize("functional", [False, True], ids=["in-place", "param_update"])
def test_buffer_updates_keep_their_copies(functional):
    """torch.export leaves `batch_norm(training=True)` (which writes the running stats though its
    schema does not say so) and `add_`; `run_decompositions` makes them `aten.param_update`s."""
    model = Stats().train()
    x = torch.randn(6, 4)
    reference = Stats().train()
    reference.load_state_dict(model.state_dict())
    ep = torch.export.export(model, (x,))
    program = qir.import_program(ep.run_decompositions() if functional else ep)
    text = program.text()
    manager = qir.PassManager("canonicalize")
    after = manager.run(program)
    assert program.text() == text
    ops, counts = _targets(after), manager.records[0].counts
    if functional:
        assert ops["aten.param_update"] == 3 and ops["_native_batch_norm_legit_functional.default"] == 1
        assert counts["no-op"] == 3  # a copy of the new running mean is not the buffer itself
    else:
        assert ops["batch_norm.default"] == 1 and ops["add_.Tensor"] == 1
        assert counts["no-op"] == 2 and ops["clone.default"] == 1  # the running mean's copy stays
    gm = after.to_fx()
    expected = reference(x)
    out = gm(x)
    assert _same(expected, out)
    assert torch.equal(gm.get_submodule("bn").running_mean, reference.bn.running_mean)
    assert torch.equal(gm.get_submodule("bn").num_batches_tracked, reference.bn.num_batches_tracked)
    # The returned statistics are a copy, not the buffer that the next call updates.
    gm(x)
    assert torch.equal(out[1], expected[1])


class ReturnsInput(nn.Module):
    def forward(self, x):
        return x.clone().detach(), F.dropout(x, 0.5, training=False)


def test_returning_an_input_argument():
    model = ReturnsInput()
    x = torch.randn(2, 3)
    _, after, _ = canonicalize(model, x)
    assert _targets(after) == Counter()
    assert _same(model(x), after.to_fx()(x))


def test_keep_detach_option():
    model = ReturnsInput()
    x = torch.randn(2, 3)
    _, after, _ = canonicalize(model, x, pipeline="canonicalize{keep-detach=true}")
    assert _targets(after)["detach.default"] == 1
    assert Canonicalize(keep_detach=True).keep_detach


@pytest.mark.parametrize("name", ["mobilenet_v2", "transformer"])
def test_examples_stay_bit_identical(name):
    from qir.examples import example

    entry = example(name)
    model = entry.build()
    args = entry.inputs(2)
    before, after, counts = canonicalize(model, *args)
    assert sum(counts.values()) == sum(_targets(before).values()) - sum(_targets(after).values())
    with torch.no_grad():
        assert _same(model(*args), after.to_fx()(*args))


def test_idempotent():
    program = qir.export(Block().eval(), (torch.randn(4, 8),))
    once = qir.PassManager("canonicalize").run(program)
    manager = qir.PassManager("canonicalize")
    twice = manager.run(once)
    assert twice.text() == once.text()
    assert manager.records[0].counts == {}


def _functions(path: str):
    program = qir.parse(Path(path).read_text(), filename=path)
    for fn in program.module.ops:
        clone = fn.clone()
        clone.sym_name = StringAttr("forward")
        yield fn.sym_name.data, qir.Program(ModuleOp([clone]), program.params)


def _inputs(fn) -> list[torch.Tensor]:
    from qir.tensors import torch_dtype

    gen = torch.Generator().manual_seed(0)
    inputs = []
    for type_ in fn.function_type.inputs.data:
        shape = [d if d >= 0 else 3 for d in type_.get_shape()]
        dtype = torch_dtype(type_.element_type)
        inputs.append(torch.randn(shape, generator=gen).to(dtype) if dtype.is_floating_point
                      else torch.randint(0, 5, shape, generator=gen, dtype=dtype))
    return inputs


@pytest.mark.parametrize("path", sorted(glob.glob(str(LIT_DIR / "*.mlir"))), ids=lambda p: Path(p).name)
def test_lit_cases_keep_their_numerics(path):
    """Every function of the FileCheck tests computes the same before and after, through torch."""
    for name, program in _functions(path):
        result = qir.PassManager("canonicalize").run(program)
        inputs = _inputs(program.forward)
        torch.manual_seed(0)
        expected = program.to_fx()(*[t.clone() for t in inputs])
        torch.manual_seed(0)
        assert _same(expected, result.to_fx()(*[t.clone() for t in inputs])), name

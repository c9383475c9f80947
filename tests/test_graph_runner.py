"""`qir.graph_runner`: the first calls of an emitted module run its graph node by node, and give
what its generated code gives, bit for bit."""

from __future__ import annotations

import pytest
import torch
from helpers import zoo_params
from torch.utils._pytree import tree_flatten
from zoo.models import ZOO

import qir
from qir.graph_runner import INTERPRETED_CALLS, GraphRunner


def _same(a, b) -> bool:
    la, sa = tree_flatten(a)
    lb, sb = tree_flatten(b)
    return sa == sb and len(la) == len(lb) and all(
        torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y for x, y in zip(la, lb))


def _by_code(module, args, kwargs):
    """What the module's generated code gives (its code generated first)."""
    module.real_recompile()
    return module.forward(*args, **kwargs)


def _by_runner(module, args, kwargs):
    runner = GraphRunner.of(module)
    assert runner is not None
    inputs = runner.inputs_of(args, kwargs)
    assert inputs is not None
    return runner.run(module, inputs)


@pytest.mark.parametrize("name", zoo_params(sorted(ZOO)))
def test_the_runner_gives_what_the_code_gives_at_every_stage(name):
    """Every zoo model (keyword inputs, nested outputs, views, attention), prepared, converted
    and lowered: the runner's outputs equal the generated code's bit for bit, and a
    calibration run by the runner leaves the statistics the code leaves."""
    entry = ZOO[name]
    args, kwargs = entry.make_inputs()
    exported = torch.export.export(entry.make_model(), args, kwargs, dynamic_shapes=entry.dynamic_shapes)
    prepared, by_code = (qir.prepare(exported, args, kwargs=kwargs) for _ in range(2))
    with torch.no_grad():
        assert _same(_by_runner(prepared, args, kwargs), _by_code(by_code, args, kwargs))
    assert _same(dict(prepared.state_dict()), dict(by_code.state_dict()))
    assert _same({n: o.stats() for n, o in prepared.observers.named_children()},
                 {n: o.stats() for n, o in by_code.observers.named_children()})
    quantized = qir.convert(prepared)
    lowered = qir.lower(quantized, "x86")
    with torch.no_grad():
        for module in (quantized, lowered):
            assert _same(_by_runner(module, args, kwargs), _by_code(module, args, kwargs))


class _Pairs(torch.nn.Module):
    def forward(self, pair: tuple, scale: torch.Tensor, *, table: dict):
        a, b = pair
        return {"sum": a + b * scale, "rows": (a.relu()[0], table["x"].view(-1)[1:])}


def test_nested_inputs_and_outputs_keywords_and_wrong_calls_behave_as_the_code():
    x, y, s, t = torch.randn(3, 4), torch.randn(3, 4), torch.randn(4), torch.randn(2, 3)
    exported = torch.export.export(_Pairs(), ((x, y), s), {"table": {"x": t}})
    module = qir.prepare(exported, ((x, y), s), kwargs={"table": {"x": t}})
    runner = GraphRunner.of(module)
    assert runner is not None
    for args, kwargs in ((((x, y), s), {"table": {"x": t}}), (((x, y),), {"scale": s, "table": {"x": t}})):
        assert _same(runner.run(module, runner.inputs_of(args, kwargs)), _by_code(module, args, kwargs))
    # arguments the forward does not take are left to the generated code, which words the error
    assert runner.inputs_of(((x, y),), {}) is None
    assert runner.inputs_of(((x, y), s), {"table": {"x": t}, "other": t}) is None
    assert runner.inputs_of(((x,), s), {"table": {"x": t}}) is None
    with pytest.raises(TypeError):
        module((x, y))


def test_a_changed_graph_is_run_as_changed():
    """`recompile()` after an edit of the graph: the next calls run the new graph, through a
    new runner, and generate its code after `INTERPRETED_CALLS` more."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU()).eval()
    x = torch.randn(2, 4)
    module = qir.prepare(torch.export.export(model, (x,)), (x,))
    with torch.no_grad():
        before = module(x)
        relu = next(node for node in module.graph.nodes if node.target == torch.ops.aten.relu.default)
        with module.graph.inserting_after(relu):
            negated = module.graph.call_function(torch.ops.aten.neg.default, (relu,))
        relu.replace_all_uses_with(negated, delete_user_cb=lambda user: user is not negated)
        module.recompile()
        for _ in range(INTERPRETED_CALLS + 1):
            assert torch.equal(module(x), -before)


def test_modules_compile_and_export_before_their_code_exists():
    """`torch.compile` traces a module whose code is not generated yet (the runner is not used
    under a tracer), and so does `torch.export` (a Q/DQ module: a lowered one holds packed
    weights, which export does not take): they give its outputs."""
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)).eval()
    x = torch.randn(3, 8)
    prepared = qir.prepare(torch.export.export(model, (x,)), (x,))
    prepared(x)
    with torch.no_grad():
        expected = _by_code(qir.convert(prepared), (x,), {})
        assert torch.equal(torch.compile(qir.convert(prepared), backend="eager")(x), expected)
        assert torch.equal(torch.export.export(qir.convert(prepared), (x,)).module()(x), expected)
        lowered = qir.lower(qir.convert(prepared), "x86")
        assert torch.equal(torch.compile(lowered, backend="eager")(x), _by_code(lowered, (x,), {}))

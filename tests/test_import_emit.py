"""Import → emit and save → load round trips are exact on the model zoo."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.utils._pytree import tree_flatten

import qir
from zoo.models import ZOO


def _same(a, b) -> bool:
    la, sa = tree_flatten(a)
    lb, sb = tree_flatten(b)
    return sa == sb and len(la) == len(lb) and all(
        torch.equal(x, y) if isinstance(x, torch.Tensor) else x == y for x, y in zip(la, lb)
    )


@pytest.fixture(scope="module", params=sorted(ZOO))
def exported(request):
    entry = ZOO[request.param]
    model = entry.make_model()
    args, kwargs = entry.make_inputs()
    ep = torch.export.export(model, args, kwargs, dynamic_shapes=entry.dynamic_shapes)
    return entry, model, ep


def test_emit_is_bit_identical(exported):
    entry, model, ep = exported
    program = qir.import_program(ep)
    gm = program.to_fx()
    args, kwargs = entry.make_inputs()
    with torch.no_grad():
        assert _same(model(*args, **kwargs), gm(*args, **kwargs))
    if entry.dynamic_shapes is not None:
        args, kwargs = entry.make_inputs(batch=5)
        with torch.no_grad():
            assert _same(model(*args, **kwargs), gm(*args, **kwargs))


def test_save_load_is_exact(exported, tmp_path):
    entry, model, ep = exported
    program = qir.import_program(ep)
    program.save(tmp_path / "m.mlir")
    loaded = qir.load(tmp_path / "m.mlir")
    assert loaded.text(debuginfo=True) == program.text(debuginfo=True)
    args, kwargs = entry.make_inputs()
    with torch.no_grad():
        assert _same(model(*args, **kwargs), loaded.to_fx()(*args, **kwargs))


def test_print_parse_print_is_byte_identical(exported):
    _, _, ep = exported
    program = qir.import_program(ep)
    for debuginfo in (False, True):
        text = program.text(debuginfo)
        assert qir.parse(text, program.params).text(debuginfo) == text


def test_import_leaves_model_and_program_unchanged(exported):
    entry, model, ep = exported
    state = copy.deepcopy(model.state_dict())
    graph_before = str(ep.graph)
    program = qir.import_program(ep)
    for name, tensor in ep.state_dict.items():
        assert tensor.data_ptr() != program.params.get(name, torch.empty(0)).data_ptr()
    assert str(ep.graph) == graph_before
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_dynamic_dimensions_print_as_question_marks():
    entry = ZOO["dynamic_batch"]
    args, kwargs = entry.make_inputs()
    program = qir.export(entry.make_model(), args, kwargs, dynamic_shapes=entry.dynamic_shapes)
    arg_type = str(program.forward.body.block.args[0].type)
    assert arg_type.startswith("tensor<?x"), arg_type


def test_provenance_is_kept():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    program = qir.export(model, (torch.randn(1, 3, 8, 8),))
    conv = next(op for op in program.forward.body.ops if getattr(op, "op_name", "") == "conv2d")
    assert conv.attributes["module"].data == "0"
    assert conv.attributes["module_type"].data == "torch.nn.modules.conv.Conv2d"
    assert "loc(" in program.text(debuginfo=True)


def test_unsupported_construct_names_the_node():
    class Cond(torch.nn.Module):
        def forward(self, x):
            return torch.cond(x.sum() > 0, lambda y: y + 1, lambda y: y - 1, (x,))

    ep = torch.export.export(Cond(), (torch.randn(3),))
    with pytest.raises(qir.UnsupportedError, match="cond"):
        qir.import_program(ep)


@pytest.mark.parametrize("functional", [False, True])
def test_training_mode_batchnorm_updates_buffers(functional):
    """Export keeps BatchNorm's in-place statistics update; a decomposed (functional)
    program returns the new statistics instead, imported as `aten.param_update`."""
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).train()
    x = torch.randn(2, 3, 8, 8)
    reference = copy.deepcopy(model)
    ep = torch.export.export(model, (x,))
    if functional:
        ep = ep.run_decompositions()
    program = qir.import_program(ep)
    assert ("aten.param_update" in str(program)) == functional
    gm = program.to_fx()
    out = gm(x)
    expected = reference(x)
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.allclose(gm.get_buffer("1.running_mean"), reference[1].running_mean)
    assert torch.equal(gm.get_buffer("1.num_batches_tracked"), reference[1].num_batches_tracked)
    assert model[1].num_batches_tracked.item() == 0  # the caller's model is untouched


def test_parse_errors_are_located():
    bad = 'builtin.module {\n  func.func @forward() {\n    %0 = aten.op "nosuch.default"() : () -> tensor<f32>\n    func.return\n  }\n}\n'
    with pytest.raises(qir.ParseFailure, match=r"^x\.mlir:3:5: error: .*nosuch"):
        qir.parse(bad, filename="x.mlir")
    with pytest.raises(qir.ParseFailure, match=r"^x\.mlir:1:\d+: error: "):
        qir.parse("builtin.module {", filename="x.mlir")


def test_scalar_inputs_keep_the_calling_convention():
    class Scaled(torch.nn.Module):
        def forward(self, x, n: int, s: float):
            return x * n + s, x.sum() > 0

    model, args = Scaled(), (torch.randn(3), 2, 0.5)
    program = qir.export(model, args)
    assert "%n: i64" in str(program) and "%s: f64" in str(program)
    assert _same(model(*args), program.to_fx()(*args))


def test_op_locations_point_at_the_models_code_not_torchs():
    """An op's location is the line of the model that called it (here, `_LocatedNet.forward`),
    not the frame inside `torch/nn/modules/` that ran it."""

    class _LocatedNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3)

        def forward(self, x):
            return self.conv(x).relu()

    program = qir.export(_LocatedNet(), (torch.randn(1, 3, 8, 8),))
    conv = next(op for op in program.module.walk() if getattr(op, "target", None) is not None
                and op.target.data == "conv2d.default")
    assert conv.location.filename.data == __file__
    assert conv.location.line.data == _LocatedNet.forward.__code__.co_firstlineno + 1


def test_an_emitted_module_checks_its_inputs_against_the_program():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    x = torch.randn(5, 4)
    static = qir.export(model, (x,)).to_fx()
    with pytest.raises(qir.QirError, match=r"input 'input': dimension 0 is 2, the program expects 5"):
        static(torch.randn(2, 4))
    with pytest.raises(qir.QirError, match=r"input 'input': expected 2 dimensions"):
        static(torch.randn(5, 4, 1))
    with pytest.raises(qir.QirError, match=r"input 'input': expected dtype torch.float32"):
        static(torch.randn(5, 4, dtype=torch.float64))
    batch = torch.export.Dim("batch")
    dynamic = qir.export(model, (x,), dynamic_shapes=({0: batch},)).to_fx()
    torch.testing.assert_close(dynamic(torch.ones(2, 4)), model(torch.ones(2, 4)))


def test_an_emitted_module_generates_its_code_when_first_needed(monkeypatch):
    """Emission builds the graph; its Python code is generated when first needed: `.code`, or
    the call after the first `INTERPRETED_CALLS`, which run the graph node by node. A Q/DQ
    module that is only lowered, and a module calibrated on one batch, never pay for it."""
    from qir.graph_runner import INTERPRETED_CALLS

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU()).eval()
    x = torch.randn(2, 4)
    exported = torch.export.export(model, (x,))  # export generates code of its own graphs
    generated = []
    python_code = torch.fx.Graph.python_code
    monkeypatch.setattr(torch.fx.Graph, "python_code", lambda self, *a, **k: generated.append(1) or python_code(self, *a, **k))
    prepared = qir.prepare(exported, (x,))
    assert generated == []
    with torch.no_grad():
        for _ in range(INTERPRETED_CALLS):
            prepared(x)
        assert generated == []
        prepared(x)
    assert generated == [1]
    quantized = qir.convert(prepared)
    lowered = qir.lower(quantized, "x86")
    assert len(generated) == 1  # the Q/DQ module was only lowered
    with torch.no_grad():
        assert lowered(x).shape == (2, 4) and quantized(x).shape == (2, 4)
    assert len(generated) == 1
    assert "quantize_per_tensor" in quantized.code and len(generated) == 2  # generated once
    with torch.no_grad():
        for _ in range(INTERPRETED_CALLS + 1):
            quantized(x)
    assert len(generated) == 2


def _quantized_linear():
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU()).eval()
    x = torch.randn(3, 8)
    prepared = qir.prepare(torch.export.export(model, (x,)), (x,))
    with torch.no_grad():
        prepared(x)
    return prepared, x


@pytest.mark.parametrize("first_use", ["call", "graph", "state_dict", "print", "deepcopy", "save", "setattr"])
def test_a_converted_module_is_built_when_first_used(monkeypatch, first_use):
    """convert's Q/DQ module builds its FX graph on first use; lowering it reads only its program.
    Whatever the first use, the module then is the one emission builds: the same graph, buffers
    and outputs as the program emitted directly."""
    import io

    from qir import emitter

    prepared, x = _quantized_linear()
    built = []
    emit = emitter.emit
    monkeypatch.setattr(emitter, "emit", lambda program: built.append(program) or emit(program))
    quantized = qir.convert(prepared)
    program = quantized.qir_program
    lowered = qir.lower(quantized, "x86")
    assert built == [lowered.qir_program] or built == []  # only the lowered program was emitted
    built.clear()
    use = {"call": lambda m: m(x), "graph": lambda m: m.graph, "state_dict": lambda m: m.state_dict(),
           "print": repr, "deepcopy": copy.deepcopy, "save": lambda m: torch.save(m, io.BytesIO()),
           "setattr": lambda m: setattr(m, "tag", 1)}[first_use]
    with torch.no_grad():
        use(quantized)
    assert built == [program] and isinstance(quantized, emitter.QirModule)
    assert not isinstance(quantized, emitter.DeferredModule) and quantized.qir_program is program
    with torch.no_grad():
        result = quantized(x)
    assert len(built) == 1  # built once
    direct = emit(program)
    assert str(quantized.graph) == str(direct.graph)
    assert quantized.state_dict().keys() == direct.state_dict().keys()
    with torch.no_grad():
        assert torch.equal(result, direct(x))


def test_program_copies_equal_xdsls_clone(exported):
    """`Program.clone` maps operands in one walk (`qir.program.clone_ops`): the copy prints as
    xDSL's own clone does, verifies, and shares no op or value with the original."""
    _, _, ep = exported
    program = qir.import_program(ep)
    copy_ = program.clone()
    assert str(copy_.module) == str(program.module.clone())
    copy_.module.verify()
    originals = {id(v) for op in program.module.walk() for v in (*op.results, *op.operands)}
    assert not any(id(v) in originals for op in copy_.module.walk() for v in (*op.results, *op.operands))


def test_program_copies_keep_reads_before_definitions():
    """In a graph region a value may be read before the op defining it: the copy reads the copy."""
    from xdsl.context import Context
    from xdsl.dialects.builtin import Builtin
    from xdsl.dialects.test import Test
    from xdsl.parser import Parser

    from qir.program import clone_ops

    ctx = Context(allow_unregistered=True)
    ctx.load_dialect(Builtin)
    ctx.load_dialect(Test)
    module = Parser(ctx, """builtin.module {
      %0 = "test.op"(%1) : (i32) -> i32
      %1 = "test.op"(%0) : (i32) -> i32
    }""").parse_module()
    first, second = clone_ops(module).ops
    assert first.operands[0] is second.results[0] and second.operands[0] is first.results[0]


def test_negative_zero_arguments_stay_negative():
    """Argument attributes are shared by value, and -0.0 == 0.0: the sign must still count
    (`x + -0.0` keeps a -0.0 in `x`, `x + 0.0` does not)."""
    import math

    from qir.dialects.aten import to_attr

    assert math.copysign(1.0, to_attr(0.0, []).value.data) == 1.0
    assert math.copysign(1.0, to_attr(-0.0, []).value.data) == -1.0
    assert math.copysign(1.0, to_attr(0.0, []).value.data) == 1.0

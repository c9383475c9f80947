"""`qir.verification.verify` accepts what xDSL's `Operation.verify` accepts and, on anything it
rejects, raises xDSL's own exception: the compiled per-definition checks check no less."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from xdsl.dialects import func
from xdsl.dialects.builtin import IntAttr, StringAttr, TensorType, f32, f64, i64
from xdsl.ir import Block, Region
from xdsl.utils.exceptions import VerifyException

import qir
from qir.dialects.aten import AtenOp, ParamOp
from qir.dialects.obs import ObserveOp
from qir.dialects.quant import DequantizeCastOp, QuantizeCastOp, UniformQuantizedType
from qir.verification import _as_xdsl, _checker, verify


def _stages() -> dict[str, qir.Program]:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)).eval()
    x = torch.randn(2, 8)
    prepared = qir.prepare(model, (x,))
    prepared(x)
    converted = qir.convert(prepared)
    lowered = qir.lower(converted, "reference")
    return {"observed": prepared.qir_program, "quantized": converted.qir_program, "lowered": lowered.qir_program}


@pytest.fixture(scope="module")
def stages() -> dict[str, qir.Program]:
    return _stages()


def _first(program: qir.Program, kind: type, where: Callable = lambda op: True):
    return next(op for op in program.module.walk() if isinstance(op, kind) and where(op))


def _xdsl_error(program: qir.Program) -> BaseException | None:
    try:
        program.module.verify()
    except Exception as err:  # noqa: BLE001  (whatever xDSL raises is what qir must raise)
        return err
    return None


@pytest.mark.parametrize("stage", ["observed", "quantized", "lowered"])
def test_valid_programs_verify(stages, stage):
    program = stages[stage]
    assert _xdsl_error(program) is None
    verify(program.module)


def _wrong_operand_type(program):
    dcast = _first(program, DequantizeCastOp)
    dcast.results[0]._type = TensorType(i64, dcast.results[0].type.get_shape())  # not a float


def _missing_property(program):
    del _first(program, ParamOp).properties["kind"]


def _unknown_property(program):
    _first(program, ParamOp).properties["color"] = StringAttr("red")


def _property_of_the_wrong_kind(program):
    _first(program, ParamOp).properties["kind"] = IntAttr(3)


def _too_many_operands(program):
    qcast = _first(program, QuantizeCastOp)
    qcast.operands = (*qcast.operands, qcast.operands[0])


def _output_type_not_the_inputs(program):
    observe = _first(program, ObserveOp)
    observe.results[0]._type = TensorType(f32, [1, 2, 3])  # input and output types differ (one T)


def _custom_verifier_rejects(program):
    qcast = _first(program, QuantizeCastOp)
    shape = qcast.results[0].type.get_shape()
    qcast.results[0]._type = TensorType(qcast.quantized_type, [*shape, 1])  # not the input's shape


def _unknown_aten_overload(program):
    _first(program, AtenOp).properties["target"] = StringAttr("nosuch.default")


def _no_terminator(program):
    program.forward.body.block.last_op.detach()


def _region_where_none_is_defined(program):
    _first(program, ParamOp).add_region(Region(Block()))


def _op_in_two_blocks(program):
    op = _first(program, ParamOp)
    object.__setattr__(op, "parent", Block())


def _return_of_the_wrong_type(program):
    ret = program.forward.body.block.last_op
    assert isinstance(ret, func.ReturnOp)
    ret.operands = (*ret.operands, ret.operands[0])


_CORRUPTIONS = [_wrong_operand_type, _missing_property, _unknown_property, _property_of_the_wrong_kind,
                _too_many_operands, _custom_verifier_rejects, _unknown_aten_overload, _no_terminator,
                _region_where_none_is_defined, _op_in_two_blocks, _return_of_the_wrong_type]


@pytest.mark.parametrize("stage, corrupt", [("quantized", c) for c in _CORRUPTIONS]
                         + [("observed", _output_type_not_the_inputs), ("observed", _missing_property)])
def test_invalid_programs_raise_what_xdsl_raises(stage, corrupt):
    program = _stages()[stage]
    corrupt(program)
    expected = _xdsl_error(program)
    assert expected is not None, "the corruption should make the program invalid"
    with pytest.raises(type(expected)) as raised:
        verify(program.module)
    assert str(raised.value) == str(expected)


def test_qir_ops_are_checked_by_their_compiled_definitions():
    """Each qir op's definition is compiled (xDSL's per-op interpretation is what cost the
    time) and its own verify_ still runs: a change in how xDSL wraps it shows here."""
    for kind in (AtenOp, ParamOp, ObserveOp, QuantizeCastOp, DequantizeCastOp):
        assert _checker(kind) is not _as_xdsl, kind.name
    assert _checker(func.FuncOp) is _as_xdsl  # regions: verified by xDSL itself
    with pytest.raises(VerifyException, match="expressed type"):
        _checker(QuantizeCastOp)(_bad_qcast())


def _bad_qcast() -> QuantizeCastOp:
    """A qcast whose own verify_ rejects it (the operand is f64, the type expresses f32)."""
    block = Block(arg_types=[TensorType(f64, [2])])
    return QuantizeCastOp(block.args[0], TensorType(UniformQuantizedType.get("u8", 0.1, 3), [2]))

"""The pass manager's contracts: stage order, untouched inputs, named failures, determinism."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch

import qir
from qir.dialects.aten import AtenOp
from qir.errors import OpError
from qir.pass_manager import QirPass
from qir.quantizer import X86Quantizer


def _program():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                torch.nn.Flatten(), torch.nn.Linear(144, 2)).eval()
    return qir.export(model, (torch.randn(1, 3, 8, 8),))


@dataclass(frozen=True)
class _BreaksHalfway(QirPass):
    """Rewrites the first op, then fails on the next one."""

    name = "breaks-halfway"

    def apply(self, ctx, op) -> None:
        ops = [o for o in op.walk() if isinstance(o, AtenOp)]
        ops[0].attributes["touched"] = ops[0].target
        raise OpError(ops[1], "this pass always fails here")


def test_failing_pass_names_itself_and_the_op_and_leaves_the_input_alone():
    program = _program()
    before = program.text(debuginfo=True)
    with pytest.raises(qir.PassFailure) as failure:
        qir.PassManager(["canonicalize", _BreaksHalfway()]).run(program)
    message = str(failure.value)
    assert "breaks-halfway" in message and "batch_norm" in message and "this pass always fails" in message
    assert program.text(debuginfo=True) == before


@dataclass(frozen=True)
class _BreaksIR(QirPass):
    """Leaves an op the verifier rejects (an ATen overload that does not exist)."""

    name = "breaks-ir"

    def apply(self, ctx, op) -> None:
        from xdsl.dialects.builtin import StringAttr

        aten = next(o for o in op.walk() if isinstance(o, AtenOp))
        aten.properties["target"] = StringAttr("nosuch.default")


@dataclass(frozen=True)
class _Crashes(QirPass):
    """Fails with an error of its own, as a pass does that trips on IR an earlier pass broke."""

    name = "crashes"

    def apply(self, ctx, op) -> None:
        raise KeyError("boom")


@pytest.mark.parametrize("verify_each", [False, True])
@pytest.mark.parametrize("after", [[], ["canonicalize"], [_Crashes()]])
def test_the_pass_that_breaks_the_ir_is_named_whether_or_not_each_pass_is_verified(verify_each, after):
    """The IR is verified once, after the pipeline, unless `verify_each`: either way the failure
    names the pass that left invalid IR, not a later one, and the input stays as it was."""
    program = _program()
    before = program.text(debuginfo=True)
    with pytest.raises(qir.PassFailure) as failure:
        qir.PassManager(["canonicalize", _BreaksIR(), *after], verify_each=verify_each).run(program)
    assert failure.value.pass_name == "breaks-ir"
    assert "left invalid IR" in str(failure.value) and "nosuch.default" in str(failure.value)
    assert program.text(debuginfo=True) == before


@pytest.mark.parametrize("after", [[], [_Crashes()]])
def test_a_program_given_away_is_rewritten_in_place_and_a_failure_still_blamed(after):
    """With `fresh` (how to make the program again) the passes rewrite the program itself, and
    the pass that broke the IR is found by running again on a fresh one."""
    program = _program()
    assert qir.PassManager(["canonicalize"]).run(program, fresh=_program) is program
    made = []

    def fresh():
        made.append(_program())
        return made[-1]

    with pytest.raises(qir.PassFailure) as failure:
        qir.PassManager(["canonicalize", _BreaksIR(), *after]).run(_program(), fresh=fresh)
    assert failure.value.pass_name == "breaks-ir" and "nosuch.default" in str(failure.value)
    assert len(made) == 1


def test_a_pass_failing_on_valid_ir_is_named_with_its_own_error():
    with pytest.raises(qir.PassFailure, match="pass 'crashes' failed: internal error: KeyError: 'boom'"):
        qir.PassManager(["canonicalize", _Crashes()]).run(_program())


def test_verification_can_be_turned_off():
    result = qir.PassManager(["canonicalize", _BreaksIR()], verify=False).run(_program())
    assert "nosuch.default" in result.text()


def test_misordered_pipeline_fails_before_running():
    with pytest.raises(qir.PipelineError, match="'convert' needs a program at stage 'observed'"):
        qir.PassManager("canonicalize,convert").run(_program())


def test_timing_and_ir_dumps(capsys):
    import io

    stream = io.StringIO()
    manager = qir.PassManager("canonicalize,fold-bn", timing=True, print_ir_after_all=True, stream=stream)
    manager.run(_program())
    text = stream.getvalue()
    assert "IR Dump After canonicalize" in text and "IR Dump After fold-bn" in text
    assert "folded: 1" in text
    assert [r.name for r in manager.records] == ["canonicalize", "fold-bn"]


def test_same_inputs_give_byte_identical_ir_and_outputs():
    texts, outputs = [], []
    x = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    for _ in range(2):
        program = _program()
        prepared = qir.prepare(program, (x,), X86Quantizer())
        prepared(x)
        quantized = qir.convert(prepared)
        texts.append(quantized.qir_program.text(debuginfo=True))
        outputs.append(quantized(x))
    assert texts[0] == texts[1]
    assert torch.equal(outputs[0], outputs[1])


def test_an_unknown_quantizer_name_is_a_bad_option_before_anything_runs():
    with pytest.raises(qir.PipelineError, match=r"pass 'annotate': bad options: unknown quantizer 'nosuch' \(available: x86"):
        qir.PassManager("canonicalize,annotate{quantizer=nosuch}")


def test_pausing_the_collector_leaks_nothing_and_restores_it():
    """A pause ends by moving every object into the oldest generation (unscanned): cycles built
    during it are still freed by the next full collection, and the collector is on again."""
    import gc
    import weakref

    from qir.gc_pause import paused_gc

    class Node:
        pass

    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        node = Node()
        node.itself = node
        alive = weakref.ref(node)
        del node
    assert gc.isenabled() and gc.get_freeze_count() == 0
    gc.collect()
    assert alive() is None

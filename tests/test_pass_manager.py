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

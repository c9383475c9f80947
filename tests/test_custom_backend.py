"""A backend written outside qir, through its public interface only: `tests/custom_backend`.

It is use case 3 of torch.ao's custom-backend RFC (kernels that are plain `torch.library`
functions on integer tensors), and what these tests pin is that a backend author gets the whole
flow from a table, a dialect, a rule file and an emission: the derived quantizer, the fused
kernel actually running, numerics that agree with the `reference` emulation within one
quantization step per kernel output, the text form and its pass pipeline, and rule-file errors
at `file:line:col`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from operator import attrgetter

import pytest
import torch
import torch.fx as fx
import torch.nn as nn

import custom_backend  # registers `mybackend` in this process
import qir
from peers import sqnr
from qir.dialects.ref import per_tensor


class Attention(nn.Module):
    """One attention head between float ops: layer norm, q/k/v projections, softmax(q kᵀ) v, an
    out projection, a residual add and a GELU. The 1/sqrt(d) scale is folded into q's weights,
    as inference exports often do: a scalar mul between the bmm and the softmax would keep the
    softmax float under a quantizer without a quantized mul (this backend has none)."""

    def __init__(self, dim: int = 16):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        with torch.no_grad():
            self.q.weight.mul_(dim ** -0.5)
            self.q.bias.mul_(dim ** -0.5)

    def forward(self, x):
        h = self.norm(x)
        attn = torch.softmax(torch.bmm(self.q(h), self.k(h).transpose(1, 2)), dim=-1)
        return nn.functional.gelu(x + self.o(torch.bmm(attn, self.v(h))))


def _inputs(seed: int) -> tuple[torch.Tensor]:
    return (torch.randn(2, 6, 16, generator=torch.Generator().manual_seed(seed)),)


@pytest.fixture(scope="module")
def flow():
    """The model quantized for mybackend in one `qir.quantize` call, and the same flow step by
    step with the backend's derived quantizer, lowered to the reference emulation."""
    torch.manual_seed(0)
    model = Attention().eval()
    example = _inputs(0)
    batches = [_inputs(seed) for seed in range(1, 9)]
    mine = qir.quantize(model, example, calibration=batches, backend="mybackend")
    prepared = qir.prepare(model, example, custom_backend.BACKEND.quantizer())
    for batch in batches:
        prepared(*batch)
    quantized = qir.convert(prepared)
    return model, mine, quantized, qir.lower(quantized, "reference")


def _uniquely_named(program: qir.Program) -> qir.Program:
    """A copy whose every value has a name of its own (`val7`): lowering keeps a value's name,
    and emission names each value's node after it, so the nodes of two backends' modules that
    compute the same IR value have the same name."""
    program = program.clone()
    for i, value in enumerate(r for op in program.forward.body.walk() for r in op.results):
        value.name_hint = f"val{i}"
    return program


def _ops(program: qir.Program) -> Counter:
    return Counter(getattr(op, "target", None) and op.target.data or op.name for op in program.forward.body.walk())


def test_the_fused_kernel_is_what_runs(flow):
    """The backend's whole reason to exist: the first bmm, the softmax and its quantize are one
    qbmm_softmax kernel, in the lowered IR and in the emitted graph, and no ref op or float
    softmax is left to run instead."""
    _, mine, _, _ = flow
    program = mine.qir_program
    ops = _ops(program)
    assert program.stage == "lowered" and program.module.attributes["qir.backend"].data == "mybackend"
    assert ops["mybackend.qbmm_softmax"] == 1 and ops["mybackend.qbmm"] == 1 and ops["mybackend.qlinear"] == 4
    assert not any(name.startswith("ref.") for name in ops)
    assert "softmax.int" not in ops and "bmm.default" not in ops and "linear.default" not in ops
    targets = Counter(n.target for n in mine.graph.nodes if n.op == "call_function")
    assert targets[torch.ops.mybackend.qbmm_softmax.default] == 1
    assert targets[torch.ops.mybackend.qbmm.default] == 1
    assert targets[torch.ops.mybackend.qlinear.default] == 4
    assert not any("softmax" in str(t) and "mybackend" not in str(t) for t in targets)
    # The float ops around it stay float; the casts keep their generic (quantized_decomposed) emission.
    assert {"layer_norm.default", "add.Tensor", "gelu.default"} <= set(ops)
    assert targets[torch.ops.quantized_decomposed.quantize_per_tensor.default] >= 1


def test_quantize_uses_the_derived_quantizer(flow):
    """`qir.quantize(backend=...)` with no quantizer is the step-by-step flow with the backend's
    own quantizer: the same IR, byte for byte."""
    _, mine, quantized, _ = flow
    assert qir.lower(quantized, "mybackend").qir_program.text() == mine.qir_program.text()


class _Recorder(fx.Interpreter):
    """Runs a module and keeps every node's value by name."""

    def __init__(self, gm):
        super().__init__(gm)
        self.values: dict[str, object] = {}

    def run_node(self, n):
        self.values[n.name] = result = super().run_node(n)
        return result


def test_each_kernel_within_one_step_of_the_reference(flow):
    """Teacher-forced: each mybackend kernel runs on the values the reference emulation computed
    for its inputs, and its output is compared with the reference's value of the same IR value,
    as integers (one step = one storage unit) or, for the float output, in accumulator units."""
    quantized = _uniquely_named(flow[2].qir_program)
    mine, reference = qir.lower(quantized, "mybackend"), qir.lower(quantized, "reference")
    recorder = _Recorder(reference)
    recorder.run(*_inputs(42))
    compared = []
    for node in mine.graph.nodes:
        if node.op != "call_function" or not str(node.target).startswith("mybackend."):
            continue

        def value(arg):
            if not isinstance(arg, fx.Node):
                return arg
            return attrgetter(arg.target)(mine) if arg.op == "get_attr" else recorder.values[arg.name]

        with torch.no_grad():
            actual = node.target(*[value(a) for a in node.args])
        expected = recorder.values[node.name]
        assert actual.shape == expected.shape and actual.dtype == expected.dtype, node.name
        if actual.is_floating_point():  # qlinear to float: sx * sw is one accumulator unit
            sx, sw = node.args[1], node.args[4]
            steps = (actual.double() - expected.double()).abs() / (sx * sw)
        else:
            steps = (actual.int() - expected.int()).abs()
        assert float(steps.max()) <= 1 + 1e-6, f"{node.name}: {float(steps.max())} steps from the reference"
        print(f"{node.target}: {float((steps > 0.5).double().mean()):.2%} of the elements a step off")
        compared.append(str(node.target))
    assert sorted(Counter(compared).items()) == [("mybackend.qbmm.default", 1), ("mybackend.qbmm_softmax.default", 1),
                                                 ("mybackend.qlinear.default", 4)]


def test_the_fused_kernel_keeps_the_logits_quantization(flow):
    """The fused kernel requantizes its logits to the type the matmul had (`mid`), which is what
    keeps it within a step of the reference: the types of the reference program's chain
    ref.matmul -> dcast -> softmax -> qcast are the fused op's."""
    _, mine, _, reference = flow
    (fused,) = [op for op in mine.qir_program.module.walk() if op.name == "mybackend.qbmm_softmax"]
    (softmax,) = [op for op in reference.qir_program.module.walk() if getattr(op, "target", None)
                  and op.target.data == "softmax.int"]
    dcast = softmax.operands[0].owner
    (use,) = softmax.results[0].uses
    assert dcast.name == "quant.dcast" and dcast.input.owner.name == "ref.matmul"
    assert fused.mid == per_tensor(dcast.input) and fused.output.type == use.operation.results[0].type


def test_accuracy_against_float(flow):
    """End to end on unseen inputs: as accurate against float as the reference emulation."""
    model, mine, _, reference = flow
    for seed in (100, 101):
        inputs = _inputs(seed)
        with torch.no_grad():
            expected, ours, emulated = model(*inputs), mine(*inputs), reference(*inputs)
        assert sqnr(expected, ours) >= 40, f"{sqnr(expected, ours):.1f} dB against float"
        assert abs(sqnr(expected, ours) - sqnr(expected, emulated)) < 0.5
        assert sqnr(emulated, ours) >= 35


def test_pass_pipeline_on_the_text_form(flow, tmp_path):
    """`qir-opt -p 'reference-rewrite{backend=mybackend},lower-mybackend'`, in this process: qir-opt
    is another process, which sees a backend only through a `qir.backends` entry point, so the
    pipeline runs through `qir.PassManager` (qir-opt's own engine) on the saved text form, and the
    lowered text parses back (the backend's dialect is found through the registry) and prints the same."""
    _, mine, quantized, _ = flow
    quantized.qir_program.save(tmp_path / "quantized.mlir")
    program = qir.load(tmp_path / "quantized.mlir")
    lowered = qir.PassManager("reference-rewrite{backend=mybackend},lower-mybackend,canonicalize,cse").run(program)
    assert "mybackend.qbmm_softmax(" in lowered.text()
    lowered.save(tmp_path / "lowered.mlir")
    again = qir.load(tmp_path / "lowered.mlir")
    assert again.text() == lowered.text() == mine.qir_program.text()
    inputs = _inputs(7)
    assert torch.equal(again.to_fx()(*inputs), mine(*inputs))


def test_qir_opt_driver_in_this_process(flow, tmp_path, capsys):
    """qir-opt's `main`, called here, finds the in-process registration too."""
    from qir.tools.qir_opt import main

    _, mine, quantized, _ = flow
    quantized.qir_program.save(tmp_path / "quantized.mlir")
    assert main([str(tmp_path / "quantized.mlir"), "-p", "reference-rewrite{backend=mybackend},lower-mybackend"]) in (0, None)
    out = capsys.readouterr().out
    assert out.count("mybackend.qbmm_softmax(") == 1 and "ref." not in out


_BLOCKED = """
!a = !quant.uniform<u8:f32, 2.000000e-02:128>
!m = !quant.uniform<u8:f32, 5.000000e-02:120>
!s = !quant.uniform<u8:f32, 3.906250e-03>
builtin.module attributes {qir.stage = "reference"} {
  func.func @forward(%a: tensor<2x4x8x!a>, %b: tensor<2x8x4x!a>) -> (tensor<2x4x4x!s>{extra_type}) {
    %m = ref.matmul(%a, %b) : (tensor<2x4x8x!a>, tensor<2x8x4x!a>) -> tensor<2x4x4x!m>
    %f = quant.dcast %m : tensor<2x4x4x!m> to tensor<2x4x4xf32>
    %s = aten.op "softmax.int"(%f, -1) : (tensor<2x4x4xf32>) -> tensor<2x4x4xf32>
    %y = quant.qcast %s : tensor<2x4x4xf32> to tensor<2x4x4x!s>
    func.return %y{extra} : tensor<2x4x4x!s>{extra_type}
  }
}
"""


def test_fusion_is_blocked_when_the_logits_are_read_elsewhere():
    """A non-root matched value used outside the match (the dequantized logits, or the float
    softmax) blocks the fused rule: the matmul alone becomes qbmm and the softmax runs in float."""
    for extra in ("%f", "%s"):
        text = _BLOCKED.replace("{extra}", f", {extra}").replace("{extra_type}", ", tensor<2x4x4xf32>")
        ops = _ops(qir.PassManager("lower-mybackend").run(qir.parse(text)))
        assert ops["mybackend.qbmm"] == 1 and ops["softmax.int"] == 1 and "mybackend.qbmm_softmax" not in ops
    alone = _BLOCKED.replace("{extra}", "").replace("{extra_type}", "")
    ops = _ops(qir.PassManager("lower-mybackend").run(qir.parse(alone)))
    assert ops["mybackend.qbmm_softmax"] == 1 and "softmax.int" not in ops and "mybackend.qbmm" not in ops


def _position(text: str, needle: str) -> tuple[int, int]:
    offset = text.index(needle)
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


@pytest.mark.parametrize("good, bad, at, message", [
    ("mybackend.qbmm_softmax(", "mybackend.qbmm_sofmax(", "mybackend.qbmm_sofmax(", "qbmm_sofmax"),
    ("element(%m)", "elemnt(%m)", "elemnt(%m)", "elemnt"),
    ("mybackend.qlinear(%x, %w, %b)", "mybackend.qlinear(%x, %w)", "%y = mybackend.qlinear(", "takes 3 operands"),
])
def test_rule_file_errors_are_located(flow, tmp_path, good, bad, at, message):
    """A mistake in the backend's rule file is reported, when `lower-mybackend` first loads the
    rules, at `file:line:col` of the mistake, named by the pass."""
    source = custom_backend.BACKEND.rules[0].read_text()
    broken = tmp_path / "mybackend.rules"
    broken.write_text(source.replace(good, bad))
    line, col = _position(broken.read_text(), at)
    backend = dataclasses.replace(custom_backend.BACKEND, rules=(broken,))
    program = qir.PassManager("reference-rewrite{backend=mybackend}").run(flow[2].qir_program)
    with pytest.raises(qir.PassFailure) as err:
        qir.PassManager([backend.lower_pass()()]).run(program)
    text = str(err.value)
    assert "lower-mybackend" in text and f"{broken}:{line}:{col}: error:" in text and message in text, text

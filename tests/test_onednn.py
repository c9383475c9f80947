"""The onednn backend: what is specific to it beyond agreeing with the reference op by op
(`test_backends.py`): the fusions its rules find in real models, in-place sums that must not
clobber a value read again, float-output linears, dynamic batch, lowered programs saved and
loaded, the exact storage kernels, no torch quantized tensor anywhere, and the errors for
what it cannot emit."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

import qir
from peers import sqnr
from qir.errors import QirError
from qir.lowering.onednn import storage_kernels
from qir.registry import get_backend

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")


def _quantize(model, inputs, batches=4, **kwargs):
    """The derived-quantizer flow, calibrated on `batches` perturbed copies of the inputs."""
    generator = torch.Generator().manual_seed(0)
    calibration = [tuple(t + 0.1 * torch.randn(t.shape, generator=generator) for t in inputs)
                   for _ in range(batches)]
    return qir.quantize(model.eval(), inputs, calibration=calibration, backend="onednn", **kwargs)


def _prepare_convert(model, inputs, **kwargs):
    prepared = qir.prepare(model.eval(), inputs, get_backend("onednn").quantizer(), **kwargs)
    with torch.no_grad():
        prepared(*inputs)
    return qir.convert(prepared)


def _ops(module, prefix="") -> list:
    return [op for op in module.qir_program.module.walk() if op.name.startswith(prefix)]


def _kernels(module) -> list:
    return _ops(module, "onednn.")


def _called(module) -> set:
    return {n.target for n in module.graph.nodes if n.op == "call_function"}


# --------------------------------------------------------------------------
# Fusions.
# --------------------------------------------------------------------------


class LinearGeluLinear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.act, self.fc2 = torch.nn.Linear(32, 64), torch.nn.GELU(), torch.nn.Linear(64, 16)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


def test_linear_gelu_linear_is_two_kernels_with_the_gelu_fused():
    torch.manual_seed(0)
    model, x = LinearGeluLinear(), torch.randn(4, 8, 32)
    lowered = _quantize(model, (x,))
    linears = [op for op in _kernels(lowered) if op.name == "onednn.qlinear_pointwise"]
    assert len(linears) == 2
    assert linears[0].post.data == "gelu" and linears[0].algorithm.data == "none"
    assert linears[0].attributes["module"].data == "fc1"  # the linear's provenance, not the gelu's
    assert torch.ops.aten.gelu.default not in _called(lowered)
    assert str(linears[1].output.type.element_type) == "f32"  # the last one is read in float
    with torch.no_grad():
        assert sqnr(model(x), lowered(x)) > 30


def test_gelu_tanh_is_the_kernel_algorithm():
    torch.manual_seed(1)
    model = LinearGeluLinear()
    model.act = torch.nn.GELU(approximate="tanh")
    lowered = _quantize(model, (torch.randn(4, 32),))
    first = next(op for op in _kernels(lowered) if op.name == "onednn.qlinear_pointwise")
    assert (first.post.data, first.algorithm.data) == ("gelu", "tanh")


class ConvBlock(torch.nn.Module):
    """conv+relu, conv+relu6 (a hardtanh), a residual conv+add+relu, conv+hardswish (a lookup)."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3 = (torch.nn.Conv2d(8, 8, 3, padding=1) for _ in range(3))
        self.c4 = torch.nn.Conv2d(8, 8, 1)

    def forward(self, x):
        a = F.relu(self.c1(x))
        b = F.relu6(self.c2(a))
        c = F.relu(self.c3(b) + a)
        return F.hardswish(self.c4(c))


def test_conv_posts_and_residual_sum_are_fused():
    torch.manual_seed(2)
    model, x = ConvBlock(), torch.randn(1, 8, 12, 12)
    lowered = _quantize(model, (x,))
    convs = [op for op in _kernels(lowered) if op.name.startswith("onednn.qconv2d")]
    posts = [(op.name, op.post.data if op.post else None) for op in convs]
    assert posts == [("onednn.qconv2d_pointwise", "relu"), ("onednn.qconv2d_pointwise", "hardtanh"),
                     ("onednn.qconv2d_pointwise_sum", "relu"), ("onednn.qconv2d_pointwise", "hardswish")]
    assert not _ops(lowered, "ref.")
    with torch.no_grad():
        assert sqnr(model(x), lowered(x)) > 25


class Residual(torch.nn.Module):
    """A transformer's residual: a linear read in float, added to its float input, normalized."""

    def __init__(self):
        super().__init__()
        self.fc, self.norm = torch.nn.Linear(32, 32), torch.nn.LayerNorm(32)

    def forward(self, x):
        return self.norm(x + self.fc(x))


def test_a_float_residual_add_is_the_linear_kernel_binary_post_op():
    torch.manual_seed(11)
    model, x = Residual(), torch.randn(2, 8, 32)
    lowered = _quantize(model, (x,))
    (binary,) = [op for op in _kernels(lowered) if op.name == "onednn.qlinear_pointwise_binary"]
    assert binary.binary.data == "add" and str(binary.output.type.element_type) == "f32"
    assert not any(op.name == "aten.op" and op.target.data == "add.Tensor"
                   for op in lowered.qir_program.module.walk())
    with torch.no_grad():
        assert sqnr(model(x), lowered(x)) > 30


def test_a_residual_that_is_a_view_is_added_as_its_values():
    """oneDNN reads the binary add's `other` as contiguous memory: a transposed residual must
    reach it contiguous."""

    class TransposedResidual(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(32, 32)

        def forward(self, x, y):
            return self.fc(x) + y.transpose(1, 2)

    torch.manual_seed(13)
    model, x, y = TransposedResidual(), torch.randn(2, 8, 32), torch.randn(2, 32, 8)
    lowered = _quantize(model, (x, y))
    assert [op.binary.data for op in _kernels(lowered) if op.name == "onednn.qlinear_pointwise_binary"] == ["add"]
    with torch.no_grad():
        assert sqnr(model(x, y), lowered(x, y)) > 30


def test_int32_biases_and_per_tensor_weights():
    """An i32 bias (in accumulator units, read through `quant.scast` or as is) reaches the kernel
    as the float the definition implies: the result is the reference's."""
    text = """
    builtin.module attributes {qir.stage = "reference"} {
      func.func @forward(%x: tensor<3x8xf32>) -> (tensor<3x4xf32>, tensor<3x4xf32>) {
        %q = quant.qcast %x : tensor<3x8xf32> to tensor<3x8x!quant.uniform<u8:f32, 2.000000e-02:128>>
        %w = aten.param constant "w" : tensor<4x8x!quant.uniform<i8:f32, 1.000000e-02>>
        %b = aten.param constant "b" : tensor<4xi32>
        %bq = aten.param constant "bq" : tensor<4x!quant.uniform<i32:f32, 2.000000e-04>>
        %bs = quant.scast %bq : tensor<4x!quant.uniform<i32:f32, 2.000000e-04>> to tensor<4xi32>
        %y = ref.linear(%q, %w, %b) : (tensor<3x8x!quant.uniform<u8:f32, 2.000000e-02:128>>, tensor<4x8x!quant.uniform<i8:f32, 1.000000e-02>>, tensor<4xi32>) -> tensor<3x4x!quant.uniform<u8:f32, 5.000000e-02:100>>
        %d = quant.dcast %y : tensor<3x4x!quant.uniform<u8:f32, 5.000000e-02:100>> to tensor<3x4xf32>
        %f = ref.linear(%q, %w, %bs) : (tensor<3x8x!quant.uniform<u8:f32, 2.000000e-02:128>>, tensor<4x8x!quant.uniform<i8:f32, 1.000000e-02>>, tensor<4xi32>) -> tensor<3x4xf32>
        func.return %d, %f : tensor<3x4xf32>, tensor<3x4xf32>
      }
    }"""
    g = torch.Generator().manual_seed(12)
    params = {"w": torch.randint(-127, 128, (4, 8), dtype=torch.int8, generator=g),
              "b": torch.randint(-3000, 3000, (4,), dtype=torch.int32, generator=g),
              "bq": torch.randint(-3000, 3000, (4,), dtype=torch.int32, generator=g)}
    program = qir.parse(text, params)
    x = ((torch.randint(0, 256, (3, 8), generator=g) - 128) * 0.02).float()
    expected = qir.PassManager(["lower-reference"]).run(program).to_fx()(x)
    actual = qir.PassManager(["lower-onednn"]).run(program).to_fx()(x)
    assert torch.equal(actual[0], expected[0])
    torch.testing.assert_close(actual[1], expected[1], rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------
# In-place sums.
# --------------------------------------------------------------------------


class ResidualReadAgain(torch.nn.Module):
    """`a` is the residual of a conv whose own input it is, and is read again after the sum
    (by `z * a`); `y` is the residual of a conv of something else and read by nothing after."""

    def __init__(self):
        super().__init__()
        self.c0, self.c1, self.c2, self.c3 = (torch.nn.Conv2d(4, 4, 3, padding=1) for _ in range(4))

    def forward(self, x):
        a = F.relu(self.c0(x))
        b = F.relu(self.c3(x))
        y = F.relu(self.c1(a) + a)      # the conv reads `a` while the sum writes into it: a copy
        z = F.relu(self.c2(b) + y)      # summed into `y`'s buffer in place
        return z * a                     # `a` read again: its old value must survive


def _sum_copies(module) -> list[bool]:
    return [n.args[-1] for n in module.graph.nodes if n.target is storage_kernels.qconv2d_sum]


def test_an_accumulator_read_again_is_copied_and_keeps_its_value():
    torch.manual_seed(3)
    model, x = ResidualReadAgain(), torch.randn(1, 4, 10, 10)
    quantized = _prepare_convert(model, (x,))
    lowered = qir.lower(quantized, "onednn")
    assert _sum_copies(lowered) == [True, False]
    reference = qir.lower(quantized, "reference")
    with torch.no_grad():
        assert sqnr(reference(x), lowered(x)) > 35
        first = lowered(x)
        assert torch.equal(first, lowered(x))  # nothing the module owns was written into


_U8 = "!quant.uniform<u8:f32, 2.000000e-02:128>"
_W = "!quant.uniform<i8:f32, 1.000000e-02>"
_CONV = ('{stride = array<i64: 1, 1>, padding = array<i64: 0, 0>, dilation = array<i64: 1, 1>, groups = 1 : i64}')


def _residual_program(body: str, results: str, result_types: str, extra_args: str = "") -> qir.Program:
    """A reference-stage program of 1x2x4x4 tensors around `body` (`%q` the quantized input, `%w`
    and `%b` a 1x1 conv's weight and bias)."""
    t = f"tensor<1x2x4x4x{_U8}>"
    text = f"""
    builtin.module attributes {{qir.stage = "reference"}} {{
      func.func @forward(%x: tensor<1x2x4x4xf32>{extra_args}) -> ({result_types}) {{
        %q = quant.qcast %x : tensor<1x2x4x4xf32> to {t}
        %w = aten.param constant "w" : tensor<2x2x1x1x{_W}>
        %b = aten.param constant "b" : tensor<2xf32>
        {body}
        func.return {results} : {result_types}
      }}
    }}"""
    weight = torch.tensor([[1, -2], [3, 1]], dtype=torch.int8).reshape(2, 2, 1, 1)
    return qir.parse(text, {"w": weight, "b": torch.tensor([0.1, -0.2])})


def _conv_add(result: str, addend: str) -> str:
    t = f"tensor<1x2x4x4x{_U8}>"
    return (f"{result} = ref.conv_add(%q, %w, %b, {addend}) {_CONV} : ({t}, tensor<2x2x1x1x{_W}>, "
            f"tensor<2xf32>, {t}) -> {t}")


def test_an_accumulator_that_is_a_view_of_a_value_read_again_is_copied():
    t = f"tensor<1x2x4x4x{_U8}>"
    body = f"""
        %a = ref.conv(%q, %w, %b) {_CONV} : ({t}, tensor<2x2x1x1x{_W}>, tensor<2xf32>) -> {t}
        %v = aten.op "transpose.int"(%a, 2, 3) : ({t}) -> {t}
        {_conv_add("%y", "%v")}
        %yd = quant.dcast %y : {t} to tensor<1x2x4x4xf32>
        %ad = quant.dcast %a : {t} to tensor<1x2x4x4xf32>"""
    program = _residual_program(body, "%yd, %ad", "tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>")
    lowered = qir.PassManager(["lower-onednn"]).run(program).to_fx()
    assert _sum_copies(lowered) == [True]  # `%a` is read after the sum through its own dequantize
    x = torch.randn(1, 2, 4, 4, generator=torch.Generator().manual_seed(4))
    expected = qir.PassManager(["lower-reference"]).run(program).to_fx()(x)
    actual = lowered(x)
    assert torch.equal(actual[1], expected[1])  # the view's base kept its value
    assert float((actual[0] - expected[0]).abs().max()) <= 0.02 + 1e-6


def test_an_accumulator_given_by_the_caller_is_copied():
    t = f"tensor<1x2x4x4x{_U8}>"
    body = f"""{_conv_add("%y", "%a")}
        %yd = quant.dcast %y : {t} to tensor<1x2x4x4xf32>"""
    program = _residual_program(body, "%yd", "tensor<1x2x4x4xf32>", extra_args=f", %a: {t}")
    lowered = qir.PassManager(["lower-onednn"]).run(program).to_fx()
    assert _sum_copies(lowered) == [True]
    a = torch.full((1, 2, 4, 4), 7, dtype=torch.uint8).contiguous(memory_format=torch.channels_last)
    lowered(torch.zeros(1, 2, 4, 4), a)
    assert torch.equal(a, torch.full((1, 2, 4, 4), 7, dtype=torch.uint8))


# --------------------------------------------------------------------------
# Float outputs, dynamic batch, save and load.
# --------------------------------------------------------------------------


def test_a_linear_read_in_float_leaves_the_kernel_in_float32():
    torch.manual_seed(5)
    model, x = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 4)), torch.randn(3, 16)
    quantized = _prepare_convert(model, (x,))
    lowered = qir.lower(quantized, "onednn")
    last = [op for op in _kernels(lowered) if op.name == "onednn.qlinear_pointwise"][-1]
    assert str(last.output.type.element_type) == "f32"
    assert not [op for op in _kernels(lowered) if op.name == "onednn.dequantize"]
    with torch.no_grad():
        out = lowered(x)
        expected = qir.lower(quantized, "reference")(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5 * float(expected.abs().max()))


def test_dynamic_batch_packs_for_any_shape():
    torch.manual_seed(6)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                torch.nn.Flatten(), torch.nn.Linear(8 * 8 * 8, 10))
    x = torch.randn(2, 3, 16, 16)
    batch = torch.export.Dim("batch", min=1, max=64)
    quantized = _prepare_convert(model, (x,), dynamic_shapes=({0: batch},))
    lowered = qir.lower(quantized, "onednn")
    prepacks = [op for op in _kernels(lowered) if op.name.endswith("_prepack")]
    assert prepacks and all(op.x_shape is None for op in prepacks)
    reference = qir.lower(quantized, "reference")
    with torch.no_grad():
        for n in (1, 2, 5):
            xn = torch.randn(n, 3, 16, 16)
            out = lowered(xn)
            assert out.shape == (n, 10)
            assert sqnr(reference(xn), out) > 35


def test_a_saved_lowered_program_loads_and_runs_identically(tmp_path):
    torch.manual_seed(7)
    model, x = ConvBlock(), torch.randn(1, 8, 12, 12)
    lowered = _quantize(model, (x,))
    lowered.qir_program.save(tmp_path / "lowered.mlir")
    loaded = qir.load(tmp_path / "lowered.mlir")
    assert loaded.stage == "lowered"
    assert str(loaded) == str(lowered.qir_program)
    with torch.no_grad():
        assert torch.equal(loaded.to_fx()(x), lowered(x))


# --------------------------------------------------------------------------
# What runs: plain integer tensors only, and the exact storage kernels.
# --------------------------------------------------------------------------


def test_no_torch_quantized_tensor_is_made():
    """Every tensor any op of the lowered module makes is a plain one (torch 2.13 deprecates
    quint8 and friends): seen from below, with a dispatch mode over the whole call."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils._pytree import tree_flatten

    class Dtypes(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.seen = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            self.seen |= {t.dtype for t in tree_flatten(out)[0] if isinstance(t, torch.Tensor)}
            return out

    torch.manual_seed(8)
    model, x = ConvBlock(), torch.randn(1, 8, 12, 12)
    lowered = _quantize(model, (x,))
    with torch.no_grad(), Dtypes() as mode:
        lowered(x)
    assert torch.uint8 in mode.seen
    assert not mode.seen & {torch.quint8, torch.qint8, torch.qint32}


@pytest.mark.parametrize("shape, kernel, stride, padding, dilation, ceil_mode", [
    ((1, 64, 112, 112), [3, 3], [2, 2], [1, 1], [1, 1], False),   # ResNet's stem: torch's uint8 kernel fails
    ((2, 3, 11, 9), [3, 2], [2, 3], [1, 1], [2, 1], True),
    ((1, 4, 7, 7), [2, 2], [2, 2], [0, 0], [1, 1], True),
    ((1, 2, 5, 6, 7), [2, 3, 2], [1, 2, 2], [1, 1, 0], [1, 1, 2], False),
])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_max_pool_of_storage_is_torch_max_pool(shape, kernel, stride, padding, dilation, ceil_mode, layout):
    x = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(9))
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last if x.dim() == 4 else torch.channels_last_3d)
    pool = F.max_pool2d if len(kernel) == 2 else F.max_pool3d
    expected = pool(x.float(), kernel, stride, padding, dilation, ceil_mode).to(torch.uint8)
    actual = storage_kernels.max_pool(x, kernel, stride, padding, dilation, ceil_mode, 0)
    assert torch.equal(actual, expected)
    if layout == "channels_last":
        assert not actual.is_contiguous() or x.shape[1] == 1  # the layout the next conv wants is kept


def test_int8_lookup_table_is_indexed_by_the_bits():
    from qir.dialects.quant import UniformQuantizedType
    from qir.emit_ref import lookup_table
    from qir.lowering.onednn.emit import storage_table

    qin, qout = UniformQuantizedType.get("i8", 0.05, 3), UniformQuantizedType.get("i8", 1 / 128, 0)
    q = torch.arange(-128, 128, dtype=torch.int8)
    expected = lookup_table(qin, qout, "tanh.default")[(q.long() + 128)]
    assert torch.equal(storage_kernels.lookup(q, storage_table(qin, qout, "tanh.default", None)), expected)


def test_quantize_and_dequantize_are_quantized_decomposed_bit_for_bit():
    import torch.ao.quantization.fx._decomposed  # noqa: F401

    x = torch.randn(4, 3, 17, 5) * 3
    decomposed = torch.ops.quantized_decomposed
    for scale, zp, lo, hi, dtype in ((0.02, 128, 0, 255, torch.uint8), (0.031, -3, -128, 127, torch.int8)):
        q = decomposed.quantize_per_tensor(x, scale, zp, lo, hi, dtype)
        assert torch.equal(storage_kernels.quantize(x, 1.0 / scale, zp, lo, hi, dtype), q)
        channels_last = q.contiguous(memory_format=torch.channels_last)
        d = storage_kernels.dequantize(channels_last, scale, zp)
        assert torch.equal(d, decomposed.dequantize_per_tensor(q, scale, zp, lo, hi, dtype)) and d.is_contiguous()


# --------------------------------------------------------------------------
# The capability table, the quantizer and the rules agree; errors.
# --------------------------------------------------------------------------


def test_what_the_table_refuses_stays_float_and_the_rest_is_lowered():
    class Mixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.up = torch.nn.ConvTranspose2d(4, 4, 2, stride=2)
            self.conv = torch.nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return self.conv(self.up(x))

    torch.manual_seed(10)
    model, x = Mixed(), torch.randn(1, 4, 5, 5)
    lowered = _quantize(model, (x,))
    assert not _ops(lowered, "ref.")
    names = {op.name for op in lowered.qir_program.module.walk()}
    assert "onednn.qconv2d_pointwise" in names
    assert any(op.name == "aten.op" and op.target.data == "conv_transpose2d.input"
               for op in lowered.qir_program.module.walk())
    with torch.no_grad():
        assert sqnr(model(x), lowered(x)) > 25


def test_a_reference_op_the_table_refuses_runs_as_the_reference():
    from backend_cases import CASES

    case = next(c for c in CASES if c.name == "conv_transpose2d")
    program, inputs, _ = case.build()
    lowered = qir.PassManager(["lower-onednn"]).run(program)
    assert [op.name for op in lowered.module.walk() if op.name.startswith("ref.")] == ["ref.conv"]
    expected = qir.PassManager(["lower-reference"]).run(program).to_fx()(*inputs)
    assert torch.equal(lowered.to_fx()(*inputs)[0], expected[0])


def test_a_weight_that_is_not_a_parameter_is_a_clear_error():
    text = """
    builtin.module attributes {qir.stage = "lowered", qir.backend = "onednn"} {
      func.func @forward(%x: tensor<2x3xf32>, %w: tensor<4x3x!quant.uniform<i8:f32, 1.000000e-02>>) -> tensor<2x4xf32> {
        %q = onednn.quantize(%x) : (tensor<2x3xf32>) -> tensor<2x3x!quant.uniform<u8:f32, 2.000000e-02:128>>
        %p = onednn.qlinear_prepack(%w) : (tensor<4x3x!quant.uniform<i8:f32, 1.000000e-02>>) -> !onednn.packed_linear
        %b = aten.param constant "b" : tensor<4xf32>
        %y = onednn.qlinear_pointwise(%q, %p, %b) : (tensor<2x3x!quant.uniform<u8:f32, 2.000000e-02:128>>, !onednn.packed_linear, tensor<4xf32>) -> tensor<2x4xf32>
        func.return %y : tensor<2x4xf32>
      }
    }"""
    program = qir.parse(text, {"b": torch.zeros(4)})
    with pytest.raises(QirError, match=r"onednn.qlinear_prepack: the weight must be a parameter"):
        program.to_fx()


def test_a_packed_weight_from_elsewhere_is_a_clear_error():
    text = """
    builtin.module attributes {qir.stage = "lowered", qir.backend = "onednn"} {
      func.func @forward(%x: tensor<2x3xf32>, %p: !onednn.packed_linear) -> tensor<2x4xf32> {
        %q = onednn.quantize(%x) : (tensor<2x3xf32>) -> tensor<2x3x!quant.uniform<u8:f32, 2.000000e-02:128>>
        %b = aten.param constant "b" : tensor<4xf32>
        %y = onednn.qlinear_pointwise(%q, %p, %b) : (tensor<2x3x!quant.uniform<u8:f32, 2.000000e-02:128>>, !onednn.packed_linear, tensor<4xf32>) -> tensor<2x4xf32>
        func.return %y : tensor<2x4xf32>
      }
    }"""
    program = qir.parse(text, {"b": torch.zeros(4)})
    with pytest.raises(QirError, match=r"onednn.qlinear_pointwise: the packed weight must come from an onednn prepack op"):
        program.to_fx()


def test_every_accepted_ref_op_has_a_rule():
    """reference-rewrite{backend=onednn} on the zoo leaves only ref ops the rules lower."""
    from peers import calibration_batches
    from zoo.models import ZOO

    for name in ("cnn_bn_residual", "mobilenet_dw", "transformer_encoder"):
        entry = ZOO[name]
        model = entry.make_model()
        args, kwargs = entry.make_inputs()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            prepared = qir.prepare(model, args, get_backend("onednn").quantizer(), kwargs=kwargs)
            for a, k in calibration_batches(entry):
                prepared(*a, **k)
            lowered = qir.lower(qir.convert(prepared), "onednn")
        assert not _ops(lowered, "ref."), name


def test_the_derived_quantizer_asks_only_for_what_the_table_runs():
    patterns = set(get_backend("onednn").quantizer().patterns)
    assert {"conv", "conv_relu", "conv_add", "conv_add_relu", "linear", "linear_relu", "matmul", "add", "mul",
            "cat", "pooling", "hardswish", "fixed_qparams", "relu", "shape"} <= patterns
    assert not patterns & {"conv_transpose", "conv_transpose_relu"}  # no oneDNN quantized transposed conv

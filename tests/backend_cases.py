"""One-op programs at the reference stage, with float inputs and outputs, for checking backends.

Each case is a `ref` op between `quant.qcast`s of float inputs and a `quant.dcast` of its
result, as `reference-rewrite` leaves a model: every backend lowers it, and its output is
compared with the `reference` backend's, the exact integer emulation. Inputs are drawn as
exact multiples of their scale (`s * (q - z)`), so every backend quantizes them to the same
integers and any difference comes from the op itself.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from xdsl.dialects.builtin import TensorType, f32

import qir
from qir.dialects.quant import QuantizedType, UniformQuantizedPerAxisType, UniformQuantizedType
from qir.params import ParamStore


def u8(scale: float, zero_point: int = 0) -> UniformQuantizedType:
    return UniformQuantizedType.get("u8", scale, zero_point)


def i8(scale: float, zero_point: int = 0) -> UniformQuantizedType:
    return UniformQuantizedType.get("i8", scale, zero_point)


def per_channel(scales, axis: int = 0) -> UniformQuantizedPerAxisType:
    return UniformQuantizedPerAxisType.get("i8", list(scales), [0] * len(scales), axis)


def tensor_type(shape, element) -> TensorType:
    return TensorType(f32 if element == "f32" else element, list(shape))


def _array(values) -> str:
    return "array<i64: " + ", ".join(str(int(v)) for v in values) + ">"


class Builder:
    """Text of a reference-stage program around one op, and its inputs and weights."""

    def __init__(self, generator: torch.Generator):
        self.generator = generator
        self.args: list[str] = []
        self.lines: list[str] = []
        self.inputs: list[torch.Tensor] = []
        self.store = ParamStore()

    def _value(self, text: str) -> str:
        name = f"%v{len(self.lines)}"
        self.lines.append(f"{name} = {text}")
        return name

    def input(self, shape, qtype: UniformQuantizedType) -> str:
        """A float input holding exact quantized values, and its qcast."""
        storage = torch.randint(qtype.storage_min, qtype.storage_max + 1, tuple(shape), generator=self.generator)
        self.inputs.append(((storage - qtype.zero_point) * qtype.scale).float())
        arg = f"%arg{len(self.args)}"
        float_type = tensor_type(shape, "f32")
        self.args.append(f"{arg}: {float_type}")
        return self._value(f"quant.qcast {arg} : {float_type} to {tensor_type(shape, qtype)}")

    def weight(self, shape, qtype) -> str:
        """A random int8 weight of `qtype` (per channel or per tensor)."""
        storage = torch.randint(-127, 128, tuple(shape), generator=self.generator, dtype=torch.int8)
        return self.param(storage, tensor_type(shape, qtype))

    def bias(self, channels: int, scale: float = 0.5) -> str:
        return self.param(torch.randn(channels, generator=self.generator) * scale, tensor_type([channels], "f32"))

    def param(self, tensor: torch.Tensor, type_) -> str:
        key = f"t{len(self.store)}"
        self.store[key] = tensor
        return self._value(f'aten.param constant "{key}" : {type_}')

    def op(self, text: str) -> str:
        return self._value(text)

    def program(self, result: str, result_type: TensorType) -> qir.Program:
        out, out_type = result, result_type
        if isinstance(result_type.element_type, QuantizedType):
            out_type = tensor_type(result_type.get_shape(), "f32")
            out = self._value(f"quant.dcast {result} : {result_type} to {out_type}")
        text = ('builtin.module attributes {qir.stage = "reference"} {\n'
                f"  func.func @forward({', '.join(self.args)}) -> {out_type} {{\n"
                + "".join(f"    {line}\n" for line in self.lines)
                + f"    func.return {out} : {out_type}\n  }}\n}}\n")
        return qir.parse(text, self.store)


@dataclass(frozen=True)
class Case:
    name: str
    make: Callable[[Builder], tuple[str, TensorType]]
    """Adds the op to the builder; returns its result and result type."""

    def build(self, seed: int = 0) -> tuple[qir.Program, list[torch.Tensor], float | None]:
        """The program, its inputs, and the output's quantization step (None for a float output)."""
        builder = Builder(torch.Generator().manual_seed(seed))
        result, result_type = self.make(builder)
        element = result_type.element_type
        step = element.scale if isinstance(element, UniformQuantizedType) else None
        return builder.program(result, result_type), builder.inputs, step


def _conv(shape, weight_shape, out_shape, *, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1,
          post=None, post_args=None, transposed=False, output_padding=None, per_tensor_weight=False,
          bias=True, out=None):
    def make(b: Builder):
        xq, out_type = u8(0.02, 128), out or u8(0.03, 0 if post else 128)
        x = b.input(shape, xq)
        channels_axis = 1 if transposed else 0
        wq = i8(0.004) if per_tensor_weight else per_channel(
            [0.002 + 0.001 * i for i in range(weight_shape[channels_axis])], channels_axis)
        w = b.weight(weight_shape, wq)
        cout = out_shape[1]
        bv = b.bias(cout) if bias else b.param(torch.zeros(cout), tensor_type([cout], "f32"))
        attrs = [f"stride = {_array(stride)}", f"padding = {_array(padding)}", f"dilation = {_array(dilation)}",
                 f"groups = {groups} : i64"]
        if transposed:
            attrs.append("transposed = true")
            attrs.append(f"output_padding = {_array(output_padding or [0] * len(stride))}")
        if post:
            attrs.append(f'post = "{post}"')
        if post_args:
            attrs.append("post_args = array<f64: " + ", ".join(map(str, post_args)) + ">")
        result_type = tensor_type(out_shape, out_type)
        y = b.op(f"ref.conv({x}, {w}, {bv}) {{{', '.join(attrs)}}} : ({tensor_type(shape, xq)}, "
                 f"{tensor_type(weight_shape, wq)}, {tensor_type([cout], 'f32')}) -> {result_type}")
        return y, result_type

    return make


def _conv_add(post=None):
    def make(b: Builder):
        xq, aq, out_type = u8(0.02, 128), u8(0.05, 10), u8(0.04, 0 if post else 100)
        x, a = b.input([1, 8, 10, 10], xq), b.input([1, 16, 10, 10], aq)
        wq = per_channel([0.002 + 0.0005 * i for i in range(16)])
        w, bias = b.weight([16, 8, 3, 3], wq), b.bias(16)
        result_type = tensor_type([1, 16, 10, 10], out_type)
        post_attr = f', post = "{post}"' if post else ""
        y = b.op(f"ref.conv_add({x}, {w}, {bias}, {a}) {{stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, "
                 f"dilation = array<i64: 1, 1>, groups = 1 : i64{post_attr}}} : ({tensor_type([1, 8, 10, 10], xq)}, "
                 f"{tensor_type([16, 8, 3, 3], wq)}, tensor<16xf32>, {tensor_type([1, 16, 10, 10], aq)}) -> {result_type}")
        return y, result_type

    return make


def _linear(shape, out_features, post=None, post_args=None, float_out=False):
    def make(b: Builder):
        xq = u8(0.02, 128)
        x = b.input(shape, xq)
        wq = per_channel([0.001 + 0.0002 * i for i in range(out_features)])
        w, bias = b.weight([out_features, shape[-1]], wq), b.bias(out_features)
        out_shape = [*shape[:-1], out_features]
        result_type = tensor_type(out_shape, "f32" if float_out else u8(0.05, 0 if post else 128))
        attrs = ([f'post = "{post}"'] if post else []) + (
            ["post_args = array<f64: " + ", ".join(map(str, post_args)) + ">"] if post_args else [])
        attr_text = f" {{{', '.join(attrs)}}}" if attrs else ""
        y = b.op(f"ref.linear({x}, {w}, {bias}){attr_text} : ({tensor_type(shape, xq)}, "
                 f"{tensor_type([out_features, shape[-1]], wq)}, tensor<{out_features}xf32>) -> {result_type}")
        return y, result_type

    return make


def _binary(op: str, lhs_shape, rhs_shape, post=None):
    def make(b: Builder):
        aq, bq, out_type = u8(0.03, 120), u8(0.02, 130), u8(0.04, 0 if post else 125)
        lhs, rhs = b.input(lhs_shape, aq), b.input(rhs_shape, bq)
        out_shape = list(torch.broadcast_shapes(tuple(lhs_shape), tuple(rhs_shape)))
        result_type = tensor_type(out_shape, out_type)
        post_attr = f' {{post = "{post}"}}' if post else ""
        y = b.op(f"ref.{op}({lhs}, {rhs}){post_attr} : ({tensor_type(lhs_shape, aq)}, {tensor_type(rhs_shape, bq)})"
                 f" -> {result_type}")
        return y, result_type

    return make


def _matmul(lhs_shape, rhs_shape):
    def make(b: Builder):
        aq, bq, out_type = u8(0.03, 120), u8(0.02, 130), u8(0.5, 128)
        lhs, rhs = b.input(lhs_shape, aq), b.input(rhs_shape, bq)
        out_shape = [*lhs_shape[:-1], rhs_shape[-1]]
        result_type = tensor_type(out_shape, out_type)
        y = b.op(f"ref.matmul({lhs}, {rhs}) : ({tensor_type(lhs_shape, aq)}, {tensor_type(rhs_shape, bq)}) -> "
                 f"{result_type}")
        return y, result_type

    return make


def _cat(same: bool):
    def make(b: Builder):
        qtypes = [u8(0.02, 128)] * 3 if same else [u8(0.02, 128), u8(0.05, 0), u8(0.01, 200)]
        shapes = [[2, 3, 4], [2, 5, 4], [2, 1, 4]]
        xs = [b.input(s, q) for s, q in zip(shapes, qtypes)]
        result_type = tensor_type([2, 9, 4], qtypes[0] if same else u8(0.03, 100))
        y = b.op(f"ref.cat({', '.join(xs)}) {{dim = 1 : i64}} : ("
                 + ", ".join(str(tensor_type(s, q)) for s, q in zip(shapes, qtypes)) + f") -> {result_type}")
        return y, result_type

    return make


def _avg_pool(kernel, stride, padding, out_hw, ceil_mode=False, include_pad=True, same=True):
    def make(b: Builder):
        xq = u8(0.02, 128)
        x = b.input([1, 4, 9, 9], xq)
        result_type = tensor_type([1, 4, *out_hw], xq if same else u8(0.01, 100))
        attrs = (f"kernel_size = {_array(kernel)}, stride = {_array(stride)}, padding = {_array(padding)}, "
                 f"ceil_mode = {'true' if ceil_mode else 'false'}, "
                 f"count_include_pad = {'true' if include_pad else 'false'}")
        y = b.op(f"ref.avg_pool({x}) {{{attrs}}} : ({tensor_type([1, 4, 9, 9], xq)}) -> {result_type}")
        return y, result_type

    return make


def _adaptive(out_hw, same=True):
    def make(b: Builder):
        xq = u8(0.02, 128)
        x = b.input([2, 4, 7, 9], xq)
        result_type = tensor_type([2, 4, *out_hw], xq if same else u8(0.01, 120))
        y = b.op(f"ref.adaptive_avg_pool({x}) {{output_size = {_array(out_hw)}}} : ({tensor_type([2, 4, 7, 9], xq)})"
                 f" -> {result_type}")
        return y, result_type

    return make


def _lookup(fn: str, out, args: str = "", xq=None):
    def make(b: Builder):
        q = xq or u8(0.05, 128)
        x = b.input([2, 3, 5, 5], q)
        result_type = tensor_type([2, 3, 5, 5], out or q)
        extra = f", fn_args = [{args}]" if args else ""
        y = b.op(f'ref.lookup({x}) {{fn = "{fn}"{extra}}} : ({tensor_type([2, 3, 5, 5], q)}) -> {result_type}')
        return y, result_type

    return make


def _requantize():
    def make(b: Builder):
        x = b.input([3, 7], u8(0.02, 128))
        result_type = tensor_type([3, 7], u8(0.05, 20))
        return b.op(f"ref.requantize({x}) : ({tensor_type([3, 7], u8(0.02, 128))}) -> {result_type}"), result_type

    return make


CASES = [
    Case("conv2d", _conv([1, 3, 9, 9], [8, 3, 3, 3], [1, 8, 9, 9], padding=(1, 1))),
    Case("conv2d_relu", _conv([1, 3, 9, 9], [8, 3, 3, 3], [1, 8, 9, 9], padding=(1, 1), post="relu")),
    Case("conv2d_hardtanh", _conv([1, 3, 9, 9], [8, 3, 3, 3], [1, 8, 9, 9], padding=(1, 1), post="hardtanh",
                                  post_args=(0.0, 2.0))),
    Case("conv2d_strided_dilated", _conv([2, 4, 12, 11], [6, 4, 3, 2], [2, 6, 4, 5], stride=(2, 2),
                                         padding=(1, 0), dilation=(2, 1))),
    Case("conv2d_depthwise", _conv([1, 8, 10, 10], [8, 1, 3, 3], [1, 8, 10, 10], padding=(1, 1), groups=8,
                                   post="relu")),
    Case("conv2d_grouped_per_tensor", _conv([1, 8, 6, 6], [4, 4, 1, 1], [1, 4, 6, 6], groups=2,
                                            per_tensor_weight=True)),
    Case("conv2d_no_bias", _conv([1, 3, 6, 6], [5, 3, 3, 3], [1, 5, 4, 4], bias=False)),
    Case("conv1d", _conv([2, 4, 16], [6, 4, 3], [2, 6, 16], stride=(1,), padding=(1,), dilation=(1,))),
    Case("conv1d_relu", _conv([2, 4, 16], [6, 4, 3], [2, 6, 8], stride=(2,), padding=(1,), dilation=(1,),
                              post="relu")),
    Case("conv3d", _conv([1, 2, 5, 6, 6], [4, 2, 3, 3, 3], [1, 4, 5, 6, 6], stride=(1, 1, 1), padding=(1, 1, 1),
                         dilation=(1, 1, 1))),
    Case("conv_transpose2d", _conv([1, 4, 5, 5], [4, 3, 3, 3], [1, 3, 11, 11], stride=(2, 2), padding=(0, 0),
                                   transposed=True, per_tensor_weight=True)),
    Case("conv_transpose2d_relu", _conv([1, 4, 5, 5], [4, 3, 3, 3], [1, 3, 10, 10], stride=(2, 2),
                                        padding=(1, 1), transposed=True, output_padding=(1, 1), post="relu",
                                        per_tensor_weight=True)),
    Case("conv_transpose2d_per_channel", _conv([1, 4, 5, 5], [4, 3, 3, 3], [1, 3, 11, 11], stride=(2, 2),
                                               padding=(0, 0), transposed=True)),
    Case("conv_transpose1d", _conv([2, 4, 7], [4, 2, 3], [2, 2, 15], stride=(2,), padding=(0,), dilation=(1,),
                                   transposed=True, per_tensor_weight=True)),
    Case("conv_add", _conv_add()),
    Case("conv_add_relu", _conv_add("relu")),
    Case("linear", _linear([4, 32], 16)),
    Case("linear_3d_relu", _linear([2, 5, 32], 24, post="relu")),
    Case("linear_hardtanh", _linear([4, 32], 16, post="hardtanh", post_args=(-1.0, 1.0))),
    Case("linear_float_out", _linear([3, 6, 32], 16, float_out=True)),
    Case("matmul", _matmul([2, 3, 5, 8], [2, 3, 8, 4])),
    Case("bmm", _matmul([4, 6, 8], [4, 8, 5])),
    Case("add", _binary("add", [2, 3, 4, 4], [2, 3, 4, 4])),
    Case("add_relu_broadcast", _binary("add", [2, 3, 4, 4], [1, 3, 1, 4], post="relu")),
    Case("mul", _binary("mul", [2, 3, 4, 4], [2, 3, 4, 4])),
    Case("mul_relu", _binary("mul", [2, 6], [2, 6], post="relu")),
    Case("cat_same", _cat(True)),
    Case("cat_requantized", _cat(False)),
    Case("avg_pool", _avg_pool([3, 3], [2, 2], [1, 1], [5, 5])),
    Case("avg_pool_ceil_exclude_pad", _avg_pool([3, 3], [2, 2], [1, 1], [5, 5], ceil_mode=True, include_pad=False)),
    Case("avg_pool_requantized", _avg_pool([2, 2], [2, 2], [0, 0], [4, 4], same=False)),
    Case("adaptive_avg_pool_global", _adaptive([1, 1])),
    Case("adaptive_avg_pool_uneven", _adaptive([3, 4], same=False)),
    Case("relu", _lookup("relu.default", None)),
    Case("hardtanh", _lookup("hardtanh.default", None, args="-1.0, 2.0")),
    Case("hardswish", _lookup("hardswish.default", u8(0.03, 10))),
    Case("sigmoid", _lookup("sigmoid.default", u8(1 / 256, 0))),
    Case("gelu", _lookup("gelu.default", u8(0.04, 20))),
    Case("tanh_int8", _lookup("tanh.default", i8(1 / 128, 0), xq=i8(0.05, 3))),
    Case("requantize", _requantize()),
]

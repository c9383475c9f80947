"""The lowering rule language (`qir.lowering.rules`) on a toy backend dialect.

Each test builds a small module of `ref`, `quant` and `aten` ops, applies
rules (most from `tests/rules/toy.rules`) and checks the printed result; the
error tests pin every kind of rule-file error to its exact `file:line:col`.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from xdsl.dialects.builtin import (
    BoolAttr,
    DenseArrayBase,
    FileLineColLoc,
    FloatAttr,
    IntAttr,
    IntegerAttr,
    ModuleOp,
    StringAttr,
    TensorType,
    f32,
    f64,
    i64,
)
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Block, Dialect, ParametrizedAttribute, Region, TypeAttribute
from xdsl.irdl import (
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    var_operand_def,
)
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
)
from xdsl.printer import Printer

from qir.context import make_context
from qir.dialects.kernel import KernelOp
from qir.dialects.quant import UniformQuantizedType
from qir.dialects.ref import AddOp, MulOp
from qir.errors import OpError, ParseFailure, QirError
from qir.lowering.rules import BUILTINS, RuleSet, to_attribute
from qir.textio import parse_module

RULES = Path(__file__).parent / "rules"

# --------------------------------------------------------------------------
# A toy backend: a packed-weight type and a few kernels.
# --------------------------------------------------------------------------


@irdl_attr_definition
class PackedType(ParametrizedAttribute, TypeAttribute):
    """Prepacked convolution weights."""

    name = "toy.packed"


@irdl_op_definition
class PrepackOp(KernelOp):
    name = "toy.prepack"

    weight = operand_def(TensorType)
    bias = operand_def(TensorType)
    packed = result_def(PackedType)

    stride = prop_def(DenseArrayBase)
    groups = prop_def(IntegerAttr)
    padding = prop_def(DenseArrayBase)


@irdl_op_definition
class QConvOp(KernelOp):
    name = "toy.qconv"

    input = operand_def(TensorType)
    packed = operand_def(PackedType)
    output = result_def(TensorType)

    scale = prop_def(FloatAttr)
    zero_point = prop_def(IntegerAttr)
    post = opt_prop_def(StringAttr)


@irdl_op_definition
class QLinearOp(KernelOp):
    name = "toy.qlinear"

    input = operand_def(TensorType)
    weight = operand_def(TensorType)
    bias = operand_def(TensorType)
    output = result_def(TensorType)

    scale = prop_def(FloatAttr)
    zero_point = prop_def(IntegerAttr)
    post = opt_prop_def(StringAttr)


@irdl_op_definition
class CatOp(KernelOp):
    name = "toy.cat"

    inputs = var_operand_def(TensorType)
    output = result_def(TensorType)

    dim = prop_def(IntegerAttr)


@irdl_op_definition
class QAddOp(KernelOp):
    name = "toy.qadd"

    lhs = operand_def(TensorType)
    rhs = operand_def(TensorType)
    output = result_def(TensorType)

    scale = prop_def(FloatAttr)
    relu = opt_prop_def(BoolAttr)


@irdl_op_definition
class FloatReluOp(KernelOp):
    name = "toy.relu_float"

    input = operand_def(TensorType)
    output = result_def(TensorType)


@irdl_op_definition
class CheckOp(KernelOp):
    name = "toy.check"

    condition = operand_def(TensorType)


Toy = Dialect("toy", [PrepackOp, QConvOp, QLinearOp, CatOp, QAddOp, FloatReluOp, CheckOp], [PackedType])


def toy_rules(**kwargs) -> RuleSet:
    return RuleSet.from_file(RULES / "toy.rules", dialects=[Toy], **kwargs)


def rules(text: str, filename: str = "test.rules", **kwargs) -> RuleSet:
    return RuleSet.from_text(text, filename, dialects=[Toy], **kwargs)


def context():
    ctx = make_context()
    ctx.load_dialect(Toy)
    return ctx


def module(body: str, args: str, results: str) -> ModuleOp:
    """A module with one function `@f(args) -> results` whose body is `body`."""
    text = f"func.func @f({args}) -> ({results}) {{\n{body}\n}}"
    return parse_module(text, context(), "test.mlir")


def body_text(m: ModuleOp) -> list[str]:
    """The ops of `@f`, one line each, as qir-opt prints them."""
    func = m.body.block.first_op
    lines = []
    for op in func.body.block.ops:
        lines.append(_print(op))
    return lines


def _print(op) -> str:
    import io

    stream = io.StringIO()
    printer = Printer(stream=stream)
    printer.print_op(op)
    return stream.getvalue()


# Types (as xDSL prints them, so that expected text reads like the output).
X = "tensor<1x3x8x8x!quant.uniform<u8:f32, 2.000000e-02:128>>"
XS = "tensor<1x3x8x8x!quant.uniform<i8:f32, 2.000000e-02>>"
W = "tensor<4x3x3x3x!quant.uniform<i8:f32:0, {1.000000e-01,2.000000e-01,3.000000e-01,4.000000e-01}>>"
WT = "tensor<4x3x3x3x!quant.uniform<i8:f32, 1.000000e-01>>"
WTR = "tensor<3x4x3x3x!quant.uniform<i8:f32:1, {1.000000e-01,2.000000e-01,3.000000e-01,4.000000e-01}>>"
B = "tensor<4xf32>"
Y = "tensor<1x4x8x8x!quant.uniform<u8:f32, 1.000000e-02:3>>"
CONV_ATTRS = ("stride = array<i64: 1, 1>, padding = array<i64: 1, 1>, dilation = array<i64: 1, 1>, "
              "groups = 1 : i64")

LX = "tensor<2x8x!quant.uniform<u8:f32, 5.000000e-02:128>>"
LW = "tensor<4x8x!quant.uniform<i8:f32:0, {1.000000e-01,1.000000e-01,1.000000e-01,1.000000e-01}>>"
LY = "tensor<2x4x!quant.uniform<u8:f32, 2.500000e-01:10>>"
LQ = "tensor<2x4x!quant.uniform<u8:f32, 1.250000e-01:5>>"
F = "tensor<2x4xf32>"

T = "tensor<2x4x!quant.uniform<u8:f32, 1.000000e-01:128>>"
T2 = "tensor<2x4x!quant.uniform<u8:f32, 2.000000e-01:128>>"


def conv_module(x: str = X, w: str = W, extra: str = "") -> ModuleOp:
    return module(
        f'  %y = ref.conv(%x, %w, %b) {{{CONV_ATTRS}{extra}, module = "layer1.conv", '
        f'module_type = "torch.nn.modules.conv.Conv2d"}} : ({x}, {w}, {B}) -> {Y} loc("model.py":12:3)\n'
        f"  func.return %y : {Y}",
        f"%x: {x}, %w: {w}, %b: {B}", Y)


def linear_gelu_module(extra_use: bool = False, approximate: str = "") -> ModuleOp:
    results = f"{LQ}, {F}" if extra_use else LQ
    returned = f"%q, %d : {LQ}, {F}" if extra_use else f"%q : {LQ}"
    return module(
        f'  %l = ref.linear(%x, %w, %b) {{module = "mlp.fc"}} : ({LX}, {LW}, {B}) -> {LY}\n'
        f"  %d = quant.dcast %l : {LY} to {F}\n"
        f'  %g = aten.op "gelu.default"(%d{approximate}) {{module = "mlp.act"}} : ({F}) -> {F}\n'
        f"  %q = quant.qcast %g : {F} to {LQ}\n"
        f"  func.return {returned}",
        f"%x: {LX}, %w: {LW}, %b: {B}", results)


# --------------------------------------------------------------------------
# Matching and rewriting.
# --------------------------------------------------------------------------


def test_conv_with_captures_attr_and_prepacked_weights():
    m = conv_module(extra=', post = "relu"')
    counts = toy_rules().apply(m)
    assert counts == {"conv2d": 1}
    assert body_text(m) == [
        '%p = toy.prepack(%w, %b) {stride = array<i64: 1, 1>, groups = 1 : i64, padding = array<i64: 1, 1>, '
        'module = "layer1.conv", module_type = "torch.nn.modules.conv.Conv2d"} '
        f": ({W}, {B}) -> !toy.packed",
        '%y = toy.qconv(%x, %p) {scale = 1.000000e-02 : f64, zero_point = 3 : i64, post = "relu", '
        'module = "layer1.conv", module_type = "torch.nn.modules.conv.Conv2d"} '
        f": ({X}, !toy.packed) -> {Y}",
        f"func.return %y : {Y}",
    ]
    m.verify()


def test_new_ops_inherit_root_location():
    m = conv_module()
    toy_rules().apply(m)
    func = m.body.block.first_op
    prepack, conv, _ = func.body.block.ops
    for op in (prepack, conv):
        assert isinstance(op.location, FileLineColLoc)
        assert (op.location.filename.data, op.location.line.data, op.location.column.data) == ("model.py", 12, 3)


def test_function_returning_none_omits_the_entry():
    m = conv_module()  # no `post`: attr(%y, "post") is None
    toy_rules().apply(m)
    conv = body_text(m)[1]
    assert "post" not in conv and conv.startswith("%y = toy.qconv(%x, %p) {scale = 1.000000e-02 : f64,")


@pytest.mark.parametrize("x, w, extra, why", [
    (XS, W, "", "storage(%x) is i8, not u8"),
    (X, WT, "", "the weight is per tensor"),
    (X, WTR, ", transposed = true", "transposed = none fails"),
])
def test_conv_conditions_and_constraints_reject(x, w, extra, why):
    m = conv_module(x, w, extra)
    before = body_text(m)
    assert toy_rules().apply(m) == {}, why
    assert body_text(m) == before


def test_transposed_false_is_not_absent():
    # `transposed = none` means absent or `none`; an explicit `false` is a value.
    m = conv_module(extra=", transposed = false")
    assert toy_rules().apply(m) == {}


def test_fused_chain_replaces_four_ops_and_erases_the_dead_ones():
    m = linear_gelu_module()
    assert toy_rules().apply(m) == {"linear_gelu": 1}
    assert body_text(m) == [
        '%q = toy.qlinear(%x, %w, %b) {scale = 1.250000e-01 : f64, zero_point = 5 : i64, post = "gelu", '
        f'module = "mlp.act"}} : ({LX}, {LW}, {B}) -> {LQ}',
        f"func.return %q : {LQ}",
    ]


def test_aten_default_argument_is_matched():
    # `approximate` left out is its schema default "none"; "tanh" is not.
    assert toy_rules().apply(linear_gelu_module(approximate=', approximate = "none"')) == {"linear_gelu": 1}
    assert toy_rules().apply(linear_gelu_module(approximate=', approximate = "tanh"')) == {"linear": 1}


def test_outside_use_blocks_the_chain_and_the_producer_rule_applies():
    m = linear_gelu_module(extra_use=True)
    assert toy_rules().apply(m) == {"linear": 1}
    assert [line.split(" = ")[1].split("(")[0].split(" ")[0] for line in body_text(m)[:-1]] == [
        "toy.qlinear", "quant.dcast", "aten.op", "quant.qcast"]


def test_the_chain_wins_over_its_first_op_in_the_walk():
    # The single-op rule for ref.linear would apply if the linear were visited first.
    counts = toy_rules().apply(linear_gelu_module())
    assert counts == {"linear_gelu": 1} and "linear" not in counts


def test_variadic_operands_and_len():
    m = module(
        f"  %c = ref.cat(%a, %b, %a) {{dim = 1 : i64}} : ({T}, {T}, {T}) -> tensor<2x12x!quant.uniform<u8:f32, 1.000000e-01:128>>\n"
        f"  %d = ref.cat(%a, %b) {{dim = 0 : i64}} : ({T}, {T}) -> tensor<4x4x!quant.uniform<u8:f32, 1.000000e-01:128>>\n"
        f"  func.return %c, %d : tensor<2x12x!quant.uniform<u8:f32, 1.000000e-01:128>>, "
        f"tensor<4x4x!quant.uniform<u8:f32, 1.000000e-01:128>>",
        f"%a: {T}, %b: {T}",
        "tensor<2x12x!quant.uniform<u8:f32, 1.000000e-01:128>>, tensor<4x4x!quant.uniform<u8:f32, 1.000000e-01:128>>")
    assert toy_rules().apply(m) == {"cat3": 1}
    lines = body_text(m)
    assert lines[0].startswith("%c = toy.cat(%a, %b, %a) {dim = 1 : i64, n = 3 : i64} : ")
    assert lines[1].startswith("%d = ref.cat(%a, %b)")


def test_variadic_between_fixed_operands():
    rs = rules('rule r { match { %y = ref.cat(%first, %mid..., %last) } where len(%mid) == 2 '
               'replace { %y = toy.cat(%last, %mid..., %first) {dim = 7} } }')
    m = module(f"  %y = ref.cat(%a, %b, %c, %d) {{dim = 0 : i64}} : ({T}, {T}, {T}, {T}) -> "
               f"tensor<8x4x!quant.uniform<u8:f32, 1.000000e-01:128>>\n"
               f"  func.return %y : tensor<8x4x!quant.uniform<u8:f32, 1.000000e-01:128>>",
               f"%a: {T}, %b: {T}, %c: {T}, %d: {T}", "tensor<8x4x!quant.uniform<u8:f32, 1.000000e-01:128>>")
    assert rs.apply(m) == {"r": 1}
    assert body_text(m)[0].startswith("%y = toy.cat(%d, %b, %c, %a) {dim = 7 : i64} : ")


def adds_module() -> ModuleOp:
    return module(
        f'  %r = ref.add(%a, %b) {{post = "relu"}} : ({T}, {T}) -> {T2}\n'
        f"  %s = ref.add(%a, %b) : ({T}, {T}) -> {T2}\n"
        f"  %t = ref.add(%a, %a) : ({T}, {T}) -> {T2}\n"
        f'  %u = ref.add(%a, %a) {{post = "relu"}} : ({T}, {T}) -> {T2}\n'
        f"  func.return %r, %s, %t, %u : {T2}, {T2}, {T2}, {T2}",
        f"%a: {T}, %b: {T}", f"{T2}, {T2}, {T2}, {T2}")


def test_benefit_orders_rules_of_one_root():
    m = adds_module()
    assert toy_rules().apply(m) == {"add_relu": 2, "add": 1, "add_twice": 1}
    lines = body_text(m)
    assert lines[0].startswith("%r = toy.qadd(%a, %b) {scale = 2.000000e-01 : f64, relu = true} :")
    assert lines[1].startswith("%s = toy.qadd(%a, %b) {scale = 2.000000e-01 : f64} :")
    assert lines[2].startswith("%t = toy.qadd(%a, %a) {scale = 2.000000e-01 : f64, twice = true} :")
    assert lines[3].startswith("%u = toy.qadd(%a, %a) {scale = 2.000000e-01 : f64, relu = true} :")


def test_rules_for_lists_in_trial_order():
    rs = toy_rules()
    assert [r.name for r in rs.rules_for("ref.add")] == ["add_relu", "add_twice", "add"]
    assert [r.name for r in rs.rules_for("quant.qcast")] == ["linear_gelu", "dequantize_quantize"]
    assert rs.rules_for("ref.mul") == ()
    assert rs.names[:3] == ["linear_gelu", "linear", "conv2d"]
    assert rs["conv2d"].benefit == 2 and rs["conv2d"].root == "ref.conv"
    assert rs["conv2d"].line == 23 and rs["conv2d"].filename == str(RULES / "toy.rules")


def test_rules_of_one_root_are_indexed_by_a_pinned_entry():
    rs = rules("rule relu_a benefit 3 { match { %y = ref.add(%a, %b) {post = \"relu\"} } where rank(%a) == 9 "
               "replace { %y = %a } }\n"
               "rule any benefit 2 { match { %y = ref.add(%a, %b) } where rank(%a) == 9 replace { %y = %a } }\n"
               "rule relu_c { match { %y = ref.add(%a, %b) {post = \"relu\"} } replace { %y = toy.qadd(%a, %b) "
               "{scale = 1.0, relu = true} } }\n"
               "rule plain { match { %y = ref.add(%a, %b) {post = none} } replace { %y = toy.qadd(%a, %b) {scale = 1.0} } }")
    group = rs._index["ref.add"]
    assert group.key == "post"
    ops = list(adds_module().body.block.first_op.body.block.ops)
    relu, plain = ops[0], ops[1]
    assert [r.name for r in group.candidates(relu)] == ["relu_a", "any", "relu_c"]
    assert [r.name for r in group.candidates(plain)] == ["any", "plain"]
    hardtanh = AddOp.create(operands=list(relu.operands), result_types=[relu.results[0].type],
                            properties={"post": StringAttr("hardtanh")})
    assert [r.name for r in group.candidates(hardtanh)] == ["any"]
    assert rs.apply(adds_module()) == {"relu_c": 2, "plain": 2}


def test_equal_benefit_keeps_file_order():
    rs = rules("rule first { match { %y = ref.add(%a, %b) } replace { %y = toy.qadd(%a, %b) {scale = 1.0} } }\n"
               "rule second { match { %y = ref.add(%a, %b) } replace { %y = toy.qadd(%a, %b) {scale = 2.0} } }")
    m = adds_module()
    assert rs.apply(m) == {"first": 4}


def test_alias_replaces_a_value_by_an_existing_one():
    m = module(f"  %y = ref.requantize(%x) : ({T}) -> {T}\n"
               f"  %z = ref.requantize(%x) : ({T}) -> {T2}\n"
               f"  func.return %y, %z : {T}, {T2}",
               f"%x: {T}", f"{T}, {T2}")
    assert toy_rules().apply(m) == {"same_requantize": 1}
    assert body_text(m) == [f"%z = ref.requantize(%x) : ({T}) -> {T2}", f"func.return %x, %z : {T}, {T2}"]


def test_alias_of_a_chain_erases_the_dead_producer():
    m = module(f"  %d = quant.dcast %q : {T} to {F}\n"
               f"  %r = quant.qcast %d : {F} to {T}\n"
               f"  func.return %r : {T}",
               f"%q: {T}", T)
    assert toy_rules().apply(m) == {"dequantize_quantize": 1}
    assert body_text(m) == [f"func.return %q : {T}"]


def test_outside_use_of_a_non_root_op_blocks_the_match():
    m = module(f"  %d = quant.dcast %q : {T} to {F}\n"
               f"  %r = quant.qcast %d : {F} to {T}\n"
               f"  func.return %r, %d : {T}, {F}",
               f"%q: {T}", f"{T}, {F}")
    assert toy_rules().apply(m) == {}


def test_matched_op_still_used_by_the_replacement_is_kept():
    rs = rules('rule relu { match { %d = quant.dcast(%q)\n %r = aten.op "relu.default"(%d) } '
               "replace { %r = toy.relu_float(%d) } }")
    m = module(f"  %d = quant.dcast %q : {T} to {F}\n"
               f'  %r = aten.op "relu.default"(%d) : ({F}) -> {F}\n'
               f"  func.return %r : {F}",
               f"%q: {T}", F)
    assert rs.apply(m) == {"relu": 1}
    assert body_text(m) == [f"%d = quant.dcast %q : {T} to {F}", f"%r = toy.relu_float(%d) : ({F}) -> {F}",
                            f"func.return %r : {F}"]


def test_dataflow_binding_must_be_the_same_value():
    rs = rules("rule r { match { %y = ref.add(%a, %a) } replace { %y = toy.qadd(%a, %a) {scale = 1.0} } }")
    m = adds_module()
    assert rs.apply(m) == {"r": 2}
    assert [line.split(" = ")[1].split("(")[0] for line in body_text(m)[:-1]] == [
        "ref.add", "ref.add", "toy.qadd", "toy.qadd"]


def test_type_patterns_and_literals():
    rs = rules(f"rule r {{ match {{ %y = ref.add(%a, _) : ({T}, $t) -> $t }} "
               "replace { %y = toy.qadd(%a, %a) {scale = 1.0} } }")
    m = module(f"  %y = ref.add(%a, %b) : ({T}, {T2}) -> {T2}\n"
               f"  %z = ref.add(%a, %b) : ({T}, {T2}) -> {T}\n"
               f"  %w = ref.add(%b, %a) : ({T2}, {T}) -> {T}\n"
               f"  func.return %y, %z, %w : {T2}, {T}, {T}",
               f"%a: {T}, %b: {T2}", f"{T2}, {T}, {T}")
    assert rs.apply(m) == {"r": 1}
    assert body_text(m)[0].startswith("%y = toy.qadd(%a, %a)")


def test_attribute_captures_shared_between_ops():
    rs = rules("rule r { match { %a = ref.add(%x, %y) {post = $p?}\n %b = ref.add(%a, %y) {post = $p?} } "
               "replace { %b = toy.qadd(%x, %y) {scale = 1.0} } }")
    m = module(f'  %a = ref.add(%x, %y) {{post = "relu"}} : ({T}, {T}) -> {T}\n'
               f"  %b = ref.add(%a, %y) : ({T}, {T}) -> {T}\n"
               f'  %c = ref.add(%x, %y) : ({T}, {T}) -> {T}\n'
               f"  %d = ref.add(%c, %y) : ({T}, {T}) -> {T}\n"
               f"  func.return %b, %d : {T}, {T}",
               f"%x: {T}, %y: {T}", f"{T}, {T}")
    assert rs.apply(m) == {"r": 1}  # only %d: both absent; %a has relu, %b none
    assert [line.split(" = ")[0] + " " + line.split(" = ")[1].split("(")[0] for line in body_text(m)[:-1]] == [
        "%a ref.add", "%b ref.add", "%d toy.qadd"]


def test_where_conditions_with_builtins():
    def check(condition: str) -> bool:
        rs = rules(f"rule r {{ match {{ %y = ref.conv(%x, %w, %b) }} where {condition} "
                   "replace { %y = ref.conv(%x, %w, %b) {stride = attr(%y, \"stride\"), "
                   "padding = attr(%y, \"padding\"), dilation = attr(%y, \"dilation\"), groups = attr(%y, \"groups\"), "
                   "module = \"rewritten\"} -> type(%y) } }")
        return rs.apply(conv_module(), max_rewrites=10) == {"r": 1}

    # A rule rewriting ref.conv into ref.conv again would loop; the condition below stops it.
    holds = [
        "rank(%x) == 4", "dim(%x, 1) == 3", "dim(%x, -1) == 8", "shape(%b) == array<i64: 4>",
        "element(%b) == f32", "type(%b) == tensor<4xf32>", "scale(%x) == 0.02", "zero_point(%x) == 128",
        "scales(%w) == array<f64: 0.1, 0.2, 0.3, 0.4>", "zero_points(%w) == array<i64: 0, 0, 0, 0>",
        "axis(%w) == 0", "axis(%x) == none", "qmin(%w) == -128", "qmax(%x) == 255", 'storage(%w) == "i8"',
        "is_quantized(%x)", "not is_quantized(%b)", "is_per_tensor(%x)", "is_per_channel(%w)",
        "is_float(%b)", "not is_param(%w)", "has_one_use(%x)", 'attr(%y, "groups") == 1',
        'attr(%y, "groups") != 2', 'attr(%y, "post") == none', 'attr(%x, "post") == none',
        'attr(%y, "module") == "layer1.conv"', "%x != %w", "%x == %x", "storage(%b) == none",
    ]
    for condition in holds:
        assert check(condition + ', attr(%y, "module") != "rewritten"'), condition
    assert not check("rank(%x) == 3")
    assert not check("is_float(%x)")


def test_is_param_and_uses():
    rs = rules("rule r { match { %y = ref.add(%a, %b) } where is_param(%b), not has_one_use(%a) "
               "replace { %y = toy.qadd(%a, %b) {scale = 1.0} } }")
    m = module(f'  %p = aten.param constant "c" = dense<128> : tensor<2x4xui8>\n'
               f"  %c = quant.scast %p : tensor<2x4xui8> to {T}\n"
               f"  %y = ref.add(%a, %c) : ({T}, {T}) -> {T}\n"
               f"  func.return %y, %a : {T}, {T}",
               f"%a: {T}", f"{T}, {T}")
    assert rs.apply(m) == {}  # %c is a storage cast of a param, not a param
    rs = rules("rule r { match { %y = quant.scast(%p) } where is_param(%p), not has_one_use(%y), "
               "attr(%y, \"module\") == none "
               "replace { %y = quant.scast(%p) {module = \"seen\"} } }")
    m2 = module(f'  %p = aten.param constant "c" = dense<128> : tensor<2x4xui8>\n'
                f"  %c = quant.scast %p : tensor<2x4xui8> to {T}\n"
                f"  func.return %c, %c : {T}, {T}",
                "", f"{T}, {T}")
    assert rs.apply(m2, max_rewrites=1000) == {"r": 1}


def test_function_results_become_attributes():
    seen = {}

    def record(value):
        seen["arg"] = value
        return None

    functions = {
        "an_int": lambda: 7, "a_float": lambda: 0.5, "a_str": lambda: "s", "a_bool": lambda: False,
        "ints": lambda: [1, 2, 3], "floats": lambda: (1, 2.5), "empty": lambda: [], "an_attr": lambda: IntAttr(3),
        "nothing": lambda: None, "record": record,
    }
    rs = rules("rule r { match { %y = ref.add(%a, %b) {post = $p} } replace { %y = toy.qadd(%a, %b) "
               "{scale = 1.0, i = an_int(), f = a_float(), s = a_str(), b = a_bool(), l = ints(), "
               "g = floats(), e = empty(), a = an_attr(), n = nothing(), r = record($p)} } }", functions=functions)
    m = adds_module()
    assert rs.apply(m) == {"r": 2}
    assert body_text(m)[0] == (
        '%r = toy.qadd(%a, %b) {scale = 1.000000e+00 : f64, i = 7 : i64, f = 5.000000e-01 : f64, s = "s", '
        "b = false, l = array<i64: 1, 2, 3>, g = array<f64: 1.000000e+00, 2.500000e+00>, e = array<i64>, "
        f"a = #builtin.int<3>}} : ({T}, {T}) -> {T2}")
    assert seen["arg"] == StringAttr("relu")


def test_to_attribute():
    assert to_attribute(3) == IntegerAttr(3, i64)
    assert to_attribute(True) == IntegerAttr(1, 1)
    assert to_attribute(None) is None
    with pytest.raises(TypeError, match="cannot make an attribute of dict"):
        to_attribute({})
    assert set(BUILTINS) >= {"type", "element", "shape", "rank", "dim", "attr", "scale", "zero_point",
                             "scales", "zero_points", "axis", "qmin", "qmax", "storage", "is_quantized",
                             "is_per_tensor", "is_per_channel", "is_float", "is_param", "has_one_use", "len"}


def test_function_that_raises_names_the_op_and_the_rule():
    def boom(value):
        raise RuntimeError("no kernel for this shape")

    rs = rules("rule r {\n  match { %y = ref.add(%a, %b) }\n  replace { %y = toy.qadd(%a, %b) {scale = boom(%a)} }\n}",
               functions={"boom": boom})
    m = module(f'  %y = ref.add(%a, %b) {{module = "blocks.0"}} : ({T}, {T}) -> {T2}\n  func.return %y : {T2}',
               f"%a: {T}, %b: {T}", T2)
    before = body_text(m)
    with pytest.raises(OpError) as info:
        rs.apply(m)
    assert str(info.value) == ("ref.add (blocks.0): rule r (test.rules:3:44): boom(%a) failed: "
                               "RuntimeError: no kernel for this shape")
    assert not getattr(info.value, "__notes__", None)
    assert body_text(m) == before  # nothing was changed


def test_builtin_failure_in_a_condition():
    rs = rules("rule r { match { %y = ref.conv(%x, %w, %b) } where scale(%w) == 1.0 "
               "replace { %y = %x } }")
    with pytest.raises(OpError, match=r"ref.conv \(layer1.conv\) at model.py:12:3: rule r \(test.rules:1:52\): "
                                      r"scale\(%w\) failed: ValueError: scale: .* is quantized per channel"):
        rs.apply(conv_module())


def test_non_boolean_condition():
    rs = rules("rule r { match { %y = ref.conv(%x, %w, %b) } where rank(%x) replace { %y = %x } }")
    with pytest.raises(OpError, match=r"rule r \(test.rules:1:52\): a condition must be true or false"):
        rs.apply(conv_module())


def test_result_type_that_is_not_a_type():
    rs = rules("rule r { match { %y = ref.add(%a, %b) } replace { %y = toy.qadd(%a, %b) {scale = 1.0} -> rank(%a) } }")
    with pytest.raises(OpError, match=r"rule r \(test.rules:1:51\): a result type of toy.qadd is not a type: 2"):
        rs.apply(adds_module())


def test_verify_names_the_rule_and_leaves_the_ir():
    # toy.qadd requires `scale`; the rule forgets it.
    rs = rules("rule r { match { %y = ref.add(%a, %b) } replace { %y = toy.qadd(%a, %b) } }", verify=True)
    m = adds_module()
    before = body_text(m)
    with pytest.raises(OpError, match=r"ref.add: rule r \(test.rules:1:6\) built an invalid toy.qadd: property 'scale' expected"):
        rs.apply(m)
    assert body_text(m) == before


def test_new_aten_ops_take_schema_arguments_as_keywords():
    rs = rules('rule r { match { %y = toy.relu_float(%x) } replace { %y = aten.op "gelu.default"(%x) '
               '{approximate = "tanh", note = 1} } }')
    m = module(f"  %y = toy.relu_float(%x) : ({F}) -> {F}\n  func.return %y : {F}", f"%x: {F}", F)
    assert rs.apply(m) == {"r": 1}
    assert body_text(m)[0] == f'%y = aten.op "gelu.default"(%x, approximate = "tanh") {{note = 1 : i64}} : ({F}) -> {F}'
    m.verify()


def test_explicit_provenance_wins():
    rs = rules('rule r { match { %y = ref.add(%a, %b) } replace { %y = toy.qadd(%a, %b) {scale = 1.0, module = "mine"} } }')
    m = module(f'  %y = ref.add(%a, %b) {{module = "theirs", module_type = "Add"}} : ({T}, {T}) -> {T2}\n'
               f"  func.return %y : {T2}", f"%a: {T}, %b: {T}", T2)
    rs.apply(m)
    assert body_text(m)[0].startswith('%y = toy.qadd(%a, %b) {scale = 1.000000e+00 : f64, module = "mine", '
                                      'module_type = "Add"}')


def test_output_is_deterministic():
    texts = set()
    for _ in range(3):
        m = adds_module()
        toy_rules().apply(m)
        texts.add(str(m))
    assert len(texts) == 1


def test_patterns_with_a_python_pattern():
    class RequantizeToRelu(RewritePattern):  # what a backend might do in Python
        def match_and_rewrite(self, op, rewriter: PatternRewriter):
            if op.name == "ref.requantize":
                rewriter.replace(op, FloatReluOp.create(operands=[op.operands[0]], result_types=[op.results[0].type]))

    rs = toy_rules()
    m = module(f"  %z = ref.requantize(%x) : ({T}) -> {T2}\n"
               f"  %s = ref.add(%z, %z) : ({T2}, {T2}) -> {T2}\n"
               f"  func.return %s : {T2}", f"%x: {T}", T2)
    patterns = rs.patterns()
    PatternRewriteWalker(GreedyRewritePatternApplier([*patterns, RequantizeToRelu()]),
                         walk_reverse=True).rewrite_module(m)
    assert patterns[0].counts == {"add_twice": 1}
    assert body_text(m)[:2] == [f"%z = toy.relu_float(%x) : ({T}) -> {T2}",
                                f"%s = toy.qadd(%z, %z) {{scale = 2.000000e-01 : f64, twice = true}} : ({T2}, {T2}) -> {T2}"]
    m = module(f"  %z = ref.requantize(%x) : ({T}) -> {T2}\n  func.return %z : {T2}", f"%x: {T}", T2)
    assert rs.apply(m, extra_patterns=[RequantizeToRelu()]) == {}
    assert body_text(m)[0] == f"%z = toy.relu_float(%x) : ({T}) -> {T2}"


def test_ops_without_results():
    rs = rules('rule check { match { aten.op "_assert_async.msg"(%c) {assert_msg = "keep"} } replace { toy.check(%c) } }\n'
               'rule drop { match { aten.op "_assert_async.msg"(%c) } replace { } }')
    m = module('  aten.op "_assert_async.msg"(%c, "keep") : (tensor<i1>) -> ()\n'
               '  aten.op "_assert_async.msg"(%c, "other") : (tensor<i1>) -> ()\n'
               "  func.return", "%c: tensor<i1>", "")
    assert rs.apply(m) == {"check": 1, "drop": 1}
    assert body_text(m) == ["toy.check(%c) : (tensor<i1>) -> ()", "func.return"]


def test_aten_rules_dispatch_by_overload():
    rs = rules('rule relu { match { %y = aten.op "relu.default"(%x) } replace { %y = toy.relu_float(%x) } }\n'
               'rule gelu { match { %y = aten.op "gelu.default"(%x) } replace { %y = toy.relu_float(%x) } }\n'
               'rule any { match { %y = toy.relu_float(%x) } where attr(%y, "module") == "m" replace { %y = %x } }')
    assert [r.name for r in rs.rules_for("aten.op")] == ["relu", "gelu"]
    assert [r.name for r in rs.rules_for('aten.op "gelu.default"')] == ["gelu"]
    assert [r.name for r in rs.rules_for("aten.op", "relu.default")] == ["relu"]
    assert rs.roots == ['aten.op "gelu.default"', 'aten.op "relu.default"', "toy.relu_float"]
    m = module(f'  %a = aten.op "relu.default"(%x) : ({F}) -> {F}\n'
               f'  %b = aten.op "sigmoid.default"(%a) : ({F}) -> {F}\n'
               f'  %c = aten.op "gelu.default"(%b) {{module = "m"}} : ({F}) -> {F}\n'
               f"  func.return %c : {F}", f"%x: {F}", F)
    assert rs.apply(m) == {"relu": 1, "gelu": 1, "any": 1}
    assert body_text(m) == [f"%a = toy.relu_float(%x) : ({F}) -> {F}",
                            f'%b = aten.op "sigmoid.default"(%a) : ({F}) -> {F}', f"func.return %b : {F}"]


def test_backend_functions_and_arity():
    def pick(*values):
        return values[-1]

    def scaled(value, factor=2.0):
        return BUILTINS["scale"](value) * (factor.value.data if isinstance(factor, FloatAttr) else factor)

    rs = rules("rule r { match { %y = ref.add(%a, %b) } where rank(pick(%a, %b, %y)) == 2 "
               "replace { %y = toy.qadd(%a, %b) {scale = scaled(%y), rank = rank(%y)} } }",
               functions={"pick": pick, "scaled": scaled, "rank": lambda value: 99})
    m = module(f"  %y = ref.add(%a, %b) : ({T}, {T}) -> {T2}\n  func.return %y : {T2}", f"%a: {T}, %b: {T}", T2)
    assert rs.apply(m) == {}  # rank is the backend's now, and says 99
    rs = rules("rule r { match { %y = ref.add(%a, %b) } replace { %y = toy.qadd(%a, %b) {scale = scaled(%y, 4.0)} } }",
               functions={"scaled": scaled})
    assert rs.apply(m) == {"r": 1}
    assert body_text(m)[0].startswith("%y = toy.qadd(%a, %b) {scale = 8.000000e-01 : f64}")
    with pytest.raises(ParseFailure, match="test.rules:1:82: error: scaled takes 1 to 2 arguments, got 3"):
        rules("rule r { match { %y = ref.add(%a, %b) } replace { %y = toy.qadd(%a, %b) {scale = scaled(%y, 1.0, 2.0)} } }",
              functions={"scaled": scaled})


def test_rules_that_do_not_terminate():
    rs = rules("rule flip { match { %y = ref.add(%a, %b) } replace { %y = ref.add(%b, %a) } }")
    with pytest.raises(OpError, match="the rules do not terminate: 101 rewrites, rule flip applied 101 times"):
        rs.apply(adds_module(), max_rewrites=100)


# --------------------------------------------------------------------------
# Loading.
# --------------------------------------------------------------------------


def test_from_file_is_cached_by_path_and_mtime(tmp_path):
    path = tmp_path / "a.rules"
    path.write_text("rule r { match { %y = ref.add(%a, %b) } replace { %y = %a } }")
    first = RuleSet.from_file(path)
    assert RuleSet.from_file(path) is first
    assert RuleSet.from_file(path, functions={"f": len}) is not first
    path.write_text("rule s { match { %y = ref.add(%a, %b) } replace { %y = %b } }")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = RuleSet.from_file(path)
    assert second is not first and second.names == ["s"]


def test_missing_file():
    with pytest.raises(QirError, match="cannot read rule file .*missing.rules"):
        RuleSet.from_file(RULES / "missing.rules")


def test_combine():
    a = rules("rule r { match { %y = ref.add(%a, %b) } replace { %y = %a } }", "a.rules")
    b = rules("rule s { match { %y = ref.mul(%a, %b) } replace { %y = %a } }", "b.rules")
    both = RuleSet.combine([a, b])
    assert both.names == ["r", "s"] and both.rules_for("ref.mul")[0].name == "s"
    with pytest.raises(QirError, match="a.rules:1:6: error: rule 'r' is already defined at a.rules:1:6"):
        RuleSet.combine([a, a])


def test_empty_file_and_comments():
    assert len(rules("")) == 0
    assert len(rules("# nothing\n// still nothing\n")) == 0
    rs = rules("rule r { # a comment\n match { %y = ref.add(%a, %b) // another\n } #close\n replace { %y = %a } }")
    assert rs.names == ["r"]


def test_rules_context_does_not_touch_the_callers_context():
    ctx = make_context()
    RuleSet.from_text("rule r { match { %y = toy.relu_float(%x) } replace { %y = %x } }", "t.rules", ctx=ctx,
                      dialects=[Toy])
    assert "toy" not in ctx.registered_dialect_names
    RuleSet.from_text("rule r { match { %y = toy.relu_float(%x) } replace { %y = %x } }", "t.rules",
                      ops=[FloatReluOp])


def test_literal_forms():
    rs = rules('rule r { match { %y = ref.conv(%x, %w, %b) {stride = array<i64: 1, 1>, groups = 1 : i64, '
               'padding = array<i64:1,1>, module_type = "torch.nn.modules.conv.Conv2d", post = none, '
               'dilation = _} : (tensor<1x3x8x8x!quant.uniform<u8:f32, 0.02:128>>, _, tensor<4xf32>) -> _ } '
               'replace { %y = %x } }')
    conv = next(iter(conv_module().body.block.first_op.body.block.ops))
    assert rs["r"].match(conv) is not None


# --------------------------------------------------------------------------
# Rules that reuse: loops, includes, parameters, provenance, the target.
# --------------------------------------------------------------------------

ADD_RELU_RULES = """
for (post, name, relu) in [(none, add_plain, false), ("relu", add_relu, true)] {
  rule {name} {
    match { %y = ref.add(%a, %b) {post = {post}} }
    replace { %y = toy.qadd(%a, %b) {scale = scale(%y), relu = {relu}} }
  }
}
"""


def test_for_loop_over_tuples_makes_one_rule_per_step():
    rs = rules(ADD_RELU_RULES)
    assert rs.names == ["add_plain", "add_relu"]
    assert (rs["add_relu"].line, rs["add_relu"].column) == (3, 8)  # where `{name}` stands
    m = adds_module()
    assert rs.apply(m) == {"add_relu": 2, "add_plain": 2}
    assert body_text(m)[0] == f"%r = toy.qadd(%a, %b) {{scale = 2.000000e-01 : f64, relu = true}} : ({T}, {T}) -> {T2}"
    assert body_text(m)[1] == f"%s = toy.qadd(%a, %b) {{scale = 2.000000e-01 : f64, relu = false}} : ({T}, {T}) -> {T2}"


def test_nested_loops_substitute_into_names_strings_and_literals():
    rs = rules("""
    for fn in [relu, gelu] {
      for rank in [2, 4] {
        rule {fn}_rank{rank} {
          match { %y = aten.op "{fn}.default"(%x) }
          where rank(%x) == {rank}
          replace { %y = toy.relu_float(%x) -> type(%y) }
        }
      }
    }""", ops=[FloatReluOp])
    assert rs.names == ["relu_rank2", "relu_rank4", "gelu_rank2", "gelu_rank4"]
    assert [r.root for r in rs] == ['aten.op "relu.default"'] * 2 + ['aten.op "gelu.default"'] * 2
    m = module(f'  %y = aten.op "gelu.default"(%x) : ({F}) -> {F}\n  func.return %y : {F}', f"%x: {F}", F)
    assert rs.apply(m) == {"gelu_rank2": 1}


def test_a_loop_value_may_be_an_expression_and_an_outer_value_a_list():
    rs = rules("""
    for (name, ranks, scale) in [(small, [1, 2], 0.5), (scaled, [3], scale(%y))] {
      for r in {ranks} {
        rule {name}{r} {
          match { %y = ref.cat(%xs...) {dim = $dim} }
          where len(%xs) == {r}
          replace { %y = toy.qadd(%xs...) {scale = {scale}} }
        }
      }
    }""")
    assert rs.names == ["small1", "small2", "scaled3"]


def _toy_include(tmp_path, main: str, common: str | None = None) -> Path:
    (tmp_path / "lib").mkdir(exist_ok=True)
    (tmp_path / "lib" / "common.rules").write_text(common if common is not None else
        "# Rules for any backend with a qadd kernel.\n"
        "rule add_{suffix} {\n"
        "  match { %y = ref.add(%a, %b) {post = none} }\n"
        "  replace { %y = {dialect}.qadd(%a, %b) {scale = {scale}} }\n"
        "}\n")
    path = tmp_path / "main.rules"
    path.write_text(main)
    return path


def test_include_with_parameters(tmp_path):
    path = _toy_include(tmp_path, 'include "lib/common.rules" with dialect = toy, scale = scale(%y), suffix = toy\n'
                                  "rule mul { match { %y = ref.mul(%a, %b) } replace { %y = %a } }\n")
    rs = RuleSet.from_file(path, dialects=[Toy])
    common = (tmp_path / "lib" / "common.rules").resolve()
    assert rs.names == ["add_toy", "mul"]
    assert (rs["add_toy"].filename, rs["add_toy"].line) == (str(common), 2)
    assert rs.dependencies == (common,)
    m = adds_module()
    assert rs.apply(m) == {"add_toy": 2}


def test_one_file_included_twice_with_different_parameters(tmp_path):
    path = _toy_include(tmp_path, 'include "lib/common.rules" with dialect = toy, scale = 1.0, suffix = one\n'
                                  'include "lib/common.rules" with dialect = toy,\n  scale = 2.0, suffix = two\n')
    rs = RuleSet.from_file(path, dialects=[Toy])
    assert rs.names == ["add_one", "add_two"]
    m = adds_module()
    assert rs.apply(m) == {"add_one": 2}  # same benefit: file order


def test_included_file_changes_invalidate_the_cache(tmp_path):
    path = _toy_include(tmp_path, 'include "lib/common.rules" with dialect = toy, scale = 1.0, suffix = a\n')
    first = RuleSet.from_file(path, dialects=[Toy])
    assert RuleSet.from_file(path, dialects=[Toy]) is first
    common = tmp_path / "lib" / "common.rules"
    common.write_text(common.read_text().replace("add_{suffix}", "sum_{suffix}"))
    stat = common.stat()
    os.utime(common, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert RuleSet.from_file(path, dialects=[Toy]).names == ["sum_a"]


def test_provenance_names_the_op_new_ops_are_attributed_to():
    # By default new ops take the root's provenance (the gelu's); `provenance %l` the linear's.
    text = (RULES / "toy.rules").read_text()
    m = linear_gelu_module()
    rules(text.replace("  replace {\n    %q = toy.qlinear", "  provenance %l\n  replace {\n    %q = toy.qlinear")).apply(m)
    assert body_text(m)[0].endswith(f'post = "gelu", module = "mlp.fc"}} : ({LX}, {LW}, {B}) -> {LQ}')


def test_provenance_falls_back_to_the_root_and_yields_to_the_rule():
    rs = rules('rule r { match { %c = ref.add(%a, %b)\n %y = ref.add(%c, %a) } provenance %c\n'
               'replace { %y = toy.qadd(%a, %b) {scale = 1.0, module_type = "Mine"} } }')
    m = module(f"  %c = ref.add(%a, %b) : ({T}, {T}) -> {T}\n"
               f'  %y = ref.add(%c, %a) {{module = "root", module_type = "Add"}} : ({T}, {T}) -> {T2}\n'
               f"  func.return %y : {T2}", f"%a: {T}, %b: {T}", T2)
    rs.apply(m)
    assert body_text(m)[0].startswith('%y = toy.qadd(%a, %b) {scale = 1.000000e+00 : f64, module_type = "Mine", '
                                      'module = "root"}')


TARGET_RULES = """
rule add_vnni benefit 2 {
  match { %y = ref.add(%a, %b) }
  where target has avx512_vnni
  replace { %y = toy.qadd(%a, %b) {scale = 1.0, relu = true} }
}
rule add_not_neon benefit 2 {
  match { %y = ref.add(%a, %b) }
  where not target has neon, not target has avx512_vnni
  replace { %y = toy.qadd(%a, %b) {scale = 2.0} }
}
rule add {
  match { %y = ref.add(%a, %b) }
  replace { %y = toy.qadd(%a, %b) {scale = 3.0} }
}
"""


@pytest.mark.parametrize("target, applied", [
    ("x86-avx512-vnni", "add_vnni"), ("x86-avx2", "add_not_neon"), ("arm64", "add"),
])
def test_conditions_on_the_target(target, applied):
    rs = rules(TARGET_RULES)
    assert rs.uses_target and rs[applied].uses_target != (applied == "add")
    assert rs.apply(adds_module(), target=target) == {applied: 4}
    from qir.target import parse_target

    assert rs.apply(adds_module(), target=parse_target(target)) == {applied: 4}
    m = adds_module()
    PatternRewriteWalker(GreedyRewritePatternApplier(rs.patterns(target)), walk_reverse=True).rewrite_module(m)
    assert {line.split(" = ")[1].split("(")[0] for line in body_text(m)[:-1]} == {"toy.qadd"}


@pytest.mark.parametrize("target, scale", [("x86-avx512-vnni", 1.0), ("x86-avx2", 2.0), ("arm64", 3.0)])
def test_a_function_taking_target_is_given_it(target, scale):
    seen = []

    def by_cpu(a, *, target):
        seen.append(target.name)
        return 1.0 if target.has("avx512_vnni") else 2.0 if target.has("avx2") else 3.0

    rs = rules("rule add { match { %y = ref.add(%a, %b) } replace { %y = toy.qadd(%a, %b) {scale = by_cpu(%a)} } }",
               functions={"by_cpu": by_cpu})
    assert rs.uses_target and rs["add"].uses_target
    assert rs.apply(adds_module(), target=target) == {"add": 4}
    assert set(seen) == {target}
    m = adds_module()
    rs.apply(m, target=target)
    assert all(f"scale = {scale:e} : f64" in line for line in body_text(m)[:-1])
    with pytest.raises(ParseFailure, match="by_cpu takes"):  # its arity is checked without the target
        rules("rule add { match { %y = ref.add(%a, %b) } replace { %y = toy.qadd(%a, %b) {scale = by_cpu(%a, %b)} } }",
              functions={"by_cpu": by_cpu})


def test_the_target_defaults_to_the_one_the_module_records():
    from qir.target import record_target, parse_target

    m = adds_module()
    record_target(m, parse_target("x86-avx512-vnni"))
    assert rules(TARGET_RULES).apply(m) == {"add_vnni": 4}


def test_target_is_a_keyword_only_where_a_condition_starts():
    # A rule named `target`, and an attribute value `target` elsewhere.
    rs = rules('rule target { match { %y = ref.add(%a, %b) {post = "target"} } where target has avx2 '
               'replace { %y = %a } }')
    assert rs.names == ["target"]


def test_builtin_backends_share_one_rule_file():
    from qir.lowering.qnnpack import BACKEND as QNNPACK
    from qir.lowering.x86 import BACKEND as X86

    shared = Path(X86.ruleset["conv2d"].filename)
    assert shared.name == "quantized_kernels.rules" and QNNPACK.ruleset["conv2d"].filename == str(shared)
    assert QNNPACK.ruleset.dependencies == (shared,)
    # x86 also includes the dynamic-quantization rules it shares with onednn (qnnpack keeps the Q/DQ form)
    dynamic = shared.parent.parent / "dynamic_kernels" / "dynamic.rules"
    assert X86.ruleset.dependencies == (shared, dynamic)
    for backend in (X86, QNNPACK):
        for rule in backend.ruleset:
            for statement in rule.statements:
                assert not statement.name.startswith("x86" if backend is QNNPACK else "qnnpack")
    assert "conv_transpose3d" in X86.ruleset.names and "conv_transpose3d" not in QNNPACK.ruleset.names


# --------------------------------------------------------------------------
# Errors in rule files, each at its place.
# --------------------------------------------------------------------------

OK_REPLACE = "replace { %y = %a } }"


@pytest.mark.parametrize("text, error", [
    # syntax
    ("rule r { match { %y = ref.add(%a, %b } " + OK_REPLACE,
     "e.rules:1:38: error: unexpected '}'; expected one of ')', ','"),
    ("rule r {\n  match {\n  }\n}", "e.rules:3:3: error: unexpected '}'; expected one of a value (%name), "
                                    "an op name (dialect.op)"),
    ("rule r { match { %y = ref.add(%a, %b) } replace { %y = %a }", "e.rules:1:60: error: unexpected end of file; expected '}'"),
    ("rule r { match { %y = ref.add(%a, %b) ; } " + OK_REPLACE,
     "e.rules:1:39: error: unexpected character ';'; expected one of '->', ':', '{', '}', a value (%name), "
     "an op name (dialect.op)"),
    ("rule r { match { %y = ref.add(%a, %b) {post = array<i64: 1} } " + OK_REPLACE,
     "e.rules:1:52: error: unexpected character '<' (unbalanced brackets in a literal, or nested more "
     "than 8 deep?)"),
    ("rule r { match { %y, %z = %a } " + OK_REPLACE,
     "e.rules:1:27: error: unexpected '%a'; expected an op name (dialect.op)"),
    # names
    ("rule r { match { %y = ref.nope(%a, %b) } " + OK_REPLACE,
     "e.rules:1:23: error: unknown op 'ref.nope': dialect 'ref' has no such op"),
    ("rule r { match { %y = nope.add(%a, %b) } " + OK_REPLACE,
     "e.rules:1:23: error: unknown op 'nope.add': no dialect 'nope' is registered"),
    ("rule r { match { %y = ref.add(%a, %b) } replace { %y = toy.nope(%a) -> type(%y) } }",
     "e.rules:1:56: error: unknown op 'toy.nope': dialect 'toy' has no such op"),
    ('rule r { match { %y = aten.op "geluu.default"(%a) } ' + OK_REPLACE,
     "e.rules:1:31: error: torch has no operator overload 'geluu.default'"),
    ("rule r { match { %y = aten.op(%a) } " + OK_REPLACE,
     "e.rules:1:23: error: aten.op needs its ATen overload: aten.op \"relu.default\"(%x)"),
    ('rule r { match { %y = ref.add "x"(%a, %b) } ' + OK_REPLACE,
     "e.rules:1:31: error: only aten.op names an overload; ref.add takes none"),
    ("rule r { match { %y = ref.add(%a, %b) } where frob(%a) " + OK_REPLACE,
     "e.rules:1:47: error: unknown function 'frob'"),
    ("rule r { match { %y = ref.add(%a, %b) } where rank(%a, %b) == 2 " + OK_REPLACE,
     "e.rules:1:47: error: rank takes 1 argument, got 2"),
    ("rule r { match { %y = ref.add(%a, %b) } where is_float(dim(%a)) " + OK_REPLACE,
     "e.rules:1:56: error: dim takes 2 arguments, got 1"),
    ("rule r { match { %y = ref.add(%a, %b) } where rank(%c) == 2 " + OK_REPLACE,
     "e.rules:1:52: error: %c is not defined"),
    ("rule r { match { %y = ref.add(%a, %b) } replace { %y = toy.qadd(%a, %c) {scale = 1.0} } }",
     "e.rules:1:69: error: %c is not defined"),
    ("rule r { match { %y = ref.add(%a, %b) } replace { %y = toy.qadd(%a, %b) {scale = scale($s)} } }",
     "e.rules:1:88: error: $s is not bound by the match"),
    ("rule r { match { %y = ref.add(%a, %b) } replace { %z = %a } }",
     "e.rules:1:51: error: %z is not a result of a matched op: an alias replaces one"),
    ("rule r { match { %y = ref.add(%a, %b) } replace { %a = toy.qadd(%a, %b) {scale = 1.0} } }",
     "e.rules:1:51: error: %a is not a result of a matched op: only those can be redefined"),
    # literals, at their place in the literal
    ("rule r { match { %y = ref.add(%a, %b) {post = array<i64: x>} } " + OK_REPLACE,
     "e.rules:1:58: error: Expected integer literal"),
    ("rule r { match { %y = ref.add(%a, %b) : (!quant.uniform<u8:f32, -0.5:3>, _) -> _ } " + OK_REPLACE,
     "e.rules:1:56: error: scale must be positive and finite, got -0.5"),
    ("rule r {\n  match { %y = ref.add(%a, %b) }\n  where type(%a) == tensor<4x!nope.t>\n  " + OK_REPLACE,
     "e.rules:3:37: error: 'nope.t' is not registered"),
    ("rule r { match { %y = ref.add(%a, %b) {post = 1:2} } " + OK_REPLACE,
     "e.rules:1:49: error: type expected"),
    ("rule r { match { %y = ref.add(%a, %b) } where rank(%a) == 1 2 " + OK_REPLACE,
     "e.rules:1:61: error: unexpected '2'; expected one of ',', 'provenance', 'replace'"),
    # structure
    ("rule r { match { %y = ref.add(%a, %b)\n %z = ref.add(%a, %b) } replace { %z = %a } }",
     "e.rules:1:18: error: ref.add does not feed a later op of the match: every op of a match block must "
     "be used by one after it, up to the root (the last)"),
    ("rule r { match { %z = ref.add(%y, %b)\n %y = ref.add(%a, %b) } replace { %y = %a } }",
     "e.rules:2:2: error: %y is used at line 1 before it is defined here: list the ops of a match in "
     "dataflow order"),
    ("rule r { match { %y = ref.add(%a, %b)\n %y = ref.add(%y, %b) } " + OK_REPLACE,
     "e.rules:2:2: error: %y is defined twice"),
    ("rule r { match { %y = ref.cat(%a..., %b...) } " + OK_REPLACE,
     "e.rules:1:38: error: one op may have only one variadic operand (%name...)"),
    ("rule r { match { %y = ref.add(%a, %b, %c) } " + OK_REPLACE,
     "e.rules:1:18: error: ref.add takes 2 operands, the pattern gives 3"),
    ("rule r { match { %y, %z = ref.add(%a, %b) } " + OK_REPLACE,
     "e.rules:1:18: error: ref.add has 1 result, the pattern names 2"),
    ("rule r { match { %y = ref.add(%a, %b) : (_) -> _ } " + OK_REPLACE,
     "e.rules:1:42: error: 1 operand types for 2 operands"),
    ("rule r { match { %y = ref.add(%a, %b) {post = _, post = _} } " + OK_REPLACE,
     "e.rules:1:50: error: entry 'post' is constrained twice"),
    ("rule r { match { %y = ref.add(%a, %b) } replace { } }",
     "e.rules:1:18: error: %y, a result of the root op ref.add, is not redefined in replace: its uses "
     "would have no definition"),
    ("rule r { match { %y = ref.add(%a, %b) } replace { %p = toy.qadd(%y, %b) {scale = 1.0} -> type(%y)\n"
     " %y = %p } }",
     "e.rules:1:65: error: %y is a result of the root op, which the rule erases: redefine it before using it"),
    ("rule r { match { %y = ref.add(%a, %b) } replace { %p = toy.qadd(%a, %b) {scale = 1.0} } }",
     "e.rules:1:51: error: %p is new: give its type (-> type(...))"),
    ("rule r { match { %y = ref.add(%a, %b) } replace { %y = %a\n %y = %b } }",
     "e.rules:2:2: error: %y is redefined twice"),
    ("rule r { match { %y = ref.add(%a, %b) } replace { %y = toy.qadd(%a) {scale = 1.0} } }",
     "e.rules:1:51: error: toy.qadd takes 2 operands, the pattern gives 1"),
    ("rule r { match { %y = ref.add(%a, %b) } replace { %y = toy.qadd(%a, %b) {scale = 1.0, scale = 2.0} } }",
     "e.rules:1:87: error: entry 'scale' is set twice"),
    ("rule r { match { %y = ref.cat(%xs...) } replace { %y = toy.cat(%xs) {dim = 0} } }",
     "e.rules:1:64: error: %xs stands for several values: write %xs..."),
    ("rule r { match { %y = ref.add(%a, %b) } replace { %y = toy.cat(%a...) {dim = 0} } }",
     "e.rules:1:64: error: %a is one value: write %a, without '...'"),
    ("rule r { match { %y = ref.add(%a, %b) } replace { %y = toy.qadd(%a, %b) {scale = 1.0} -> (_) } }",
     "e.rules:1:91: error: attribute expected"),
    ("rule r { match { %y = ref.add(%a, %b) } replace { %y = toy.qadd(%a, %b) {scale = 1.0} -> (type(%a), type(%b)) } }",
     "e.rules:1:51: error: 2 result types for 1 results"),
    ("rule r { match { %y = ref.add(%a, %b) } replace { %y = %a\n func.func() } }",
     "e.rules:2:2: error: func.func has regions or successors: a rule cannot build it (use a Python pattern)"),
    ("rule r { match { %y = ref.add(%a, %b) } " + OK_REPLACE + "\nrule r { match { %y = ref.mul(%a, %b) } "
     + OK_REPLACE, "e.rules:2:6: error: rule 'r' is already defined at line 1"),
])
def test_rule_file_errors(text, error):
    with pytest.raises(ParseFailure) as info:
        rules(text, "e.rules")
    if error is not None:
        assert str(info.value) == error
    assert info.value.filename == "e.rules"


ADD_RULE = "rule r{a} { match { %y = ref.add(%a, %b) } replace { %y = %a } }"


@pytest.mark.parametrize("text, error", [
    # loops
    ("for a in [1, 2] {\n  rule r{a} { match { %y = ref.nope{a}(%a, %b) } replace { %y = %a } }\n}",
     "e.rules:2:28: error: unknown op 'ref.nope1': dialect 'ref' has no such op (where a = 1)"),
    ("for a in [1, x] {\n  rule r{a} { match { %y = ref.add(%a, %b) {post = array<i64: {a}>} } replace { %y = %a } }\n}",
     "e.rules:2:63: error: Expected integer literal (where a = x)"),
    ('for fn in [relu, frob] {\n  rule r_{fn} { match { %y = aten.op "{fn}.default"(%a) } replace { %y = %a } }\n}',
     "e.rules:2:38: error: torch has no operator overload 'frob.default' (where fn = frob)"),
    ("for a in [1, 1] { " + ADD_RULE + " }", "e.rules:1:24: error: rule 'r1' is already defined at line 1 (where a = 1)"),
    ("for a in [1, 2] {\n  rule r{a} { match { %y = ref.add(%a, %b) ; } replace { %y = %a } }\n}",
     "e.rules:2:44: error: unexpected character ';'; expected one of '->', ':', '{', '}', a value (%name), an op "
     "name (dialect.op) (where a = 1)"),
    ("for (a, b) in [(1, 2), (3)] { rule r{a}{b} { match { %y = ref.add(%a, %b) } replace { %y = %a } } }",
     "e.rules:1:24: error: a tuple of 1 for the 2 names (a, b)"),
    ("for (a, b) in [(1, 2), 3] { rule r{a}{b} { match { %y = ref.add(%a, %b) } replace { %y = %a } } }",
     "e.rules:1:24: error: each value of a loop over (a, b) is a tuple of 2: (..., ...)"),
    ("for a in [1, , 2] { " + ADD_RULE + " }", "e.rules:1:14: error: empty value in the list of a for loop"),
    ("for a in [1, 2] {\n  rule r { match { %y = ref.add(%a, %b) } replace { %y = %a } }\n}",
     "e.rules:1:5: error: the body of this loop never uses {a}"),
    ("for a in [1] { for a in [2] { " + ADD_RULE + " } }",
     "e.rules:1:20: error: a is already a parameter here (bound at e.rules:1:5) (where a = 1)"),
    ("for a in [1] { " + ADD_RULE, "e.rules:1:14: error: unclosed '{': the body of this for loop has no '}'"),
    ("for a [1] { " + ADD_RULE + " }", "e.rules:1:7: error: unexpected '['; expected 'in'"),
    ("for a in 1 { " + ADD_RULE + " }",
     "e.rules:1:10: error: unexpected '1'; expected '[' values ']' (or a parameter that stands for them)"),
    ("for in in [1] { " + ADD_RULE + " }", "e.rules:1:5: error: 'in' is a keyword: name the parameter otherwise"),
    ("for a in [1] " + ADD_RULE, "e.rules:1:14: error: unexpected 'rule'; expected '{' (the body of the loop)"),
    ("for a in [1] {\n " + ADD_RULE.replace("{a}", "{b}") + " {a} }",
     "e.rules:2:8: error: {b} is not a parameter here (parameters are bound by `for` and `include ... with`) "
     "(where a = 1)"),
    (ADD_RULE, "e.rules:1:7: error: {a} is not a parameter here (parameters are bound by `for` and `include ... "
               "with`)"),
    ("for r in {ranks} { " + ADD_RULE + " }",
     "e.rules:1:10: error: {ranks} is not a parameter here (parameters are bound by `for` and `include ... with`)"),
    # provenance
    ("rule r { match { %y = ref.add(%a, %b) } provenance %a replace { %y = %a } }",
     "e.rules:1:52: error: %a is not a result of a matched op: provenance names the op whose module new ops are "
     "attributed to"),
    ("rule r { match { %y = ref.add(%a, %b) } provenance %c replace { %y = %a } }",
     "e.rules:1:52: error: %c is not defined"),
    ("rule r { match { %y = ref.add(%a, %b) } provenance replace { %y = %a } }",
     "e.rules:1:52: error: unexpected 'replace'; expected a value (%name)"),
    ("rule r { match { %y = ref.add(%a, %b) } provenance %y where rank(%a) == 1 replace { %y = %a } }",
     "e.rules:1:55: error: unexpected 'where'; expected 'replace'"),
    # target
    ("rule r { match { %y = ref.add(%a, %b) } where target has avx512vnni replace { %y = %a } }",
     "e.rules:1:58: error: unknown target feature 'avx512vnni' (features: avx2, avx512, avx512_vnni, avx_vnni, "
     "amx, neon, dotprod, i8mm)"),
    ("rule r { match { %y = ref.add(%a, %b) } where target avx2 replace { %y = %a } }",
     "e.rules:1:54: error: unexpected 'avx2'; expected 'has'"),
])
def test_template_errors(text, error):
    with pytest.raises(ParseFailure) as info:
        rules(text, "e.rules")
    assert str(info.value) == error
    assert info.value.filename == "e.rules"


@pytest.mark.parametrize("main, error", [
    ('include "lib/common.rules" with dialect = toy, scale = 1.0\n',
     "lib/common.rules:2:10: error: {suffix} is not a parameter here (parameters are bound by `for` and `include "
     "... with`) (included from main.rules:1:1)"),
    ('include "lib/common.rules" with dialect = toy, scale = 1.0, suffix = a, extra = 2\n',
     "main.rules:1:73: error: common.rules never uses {extra}"),
    ('include "lib/common.rules" with dialect = nope, scale = 1.0, suffix = a\n',
     "lib/common.rules:4:18: error: unknown op 'nope.qadd': no dialect 'nope' is registered (included from "
     "main.rules:1:1)"),
    ('for s in [a, b] {\n  include "lib/common.rules" with dialect = toy, scale = frob(%y), suffix = {s}\n}\n',
     "lib/common.rules:4:50: error: unknown function 'frob' (where s = a; included from main.rules:2:3)"),
    ('include "lib/common.rules" with dialect = toy, scale = 1.0, suffix = a, suffix = b\n',
     "main.rules:1:73: error: suffix is already a parameter here (bound at main.rules:1:61)"),
    ('include "lib/common.rules" with dialect toy\n', "main.rules:1:41: error: unexpected 'toy'; expected '=' (the value of dialect)"),
    ('include "lib/common.rules" with dialect =\n', "main.rules:1:42: error: expected the value of dialect after '='"),
    ("include lib/common.rules\n", "main.rules:1:9: error: unexpected 'lib'; expected the path of the file to include, as a string"),
    ('include "lib/nope.rules"\n', "main.rules:1:9: error: cannot read 'lib/nope.rules' (lib/nope.rules): No such file or directory"),
    ('include "main.rules"\n', "main.rules:1:9: error: include cycle: main.rules -> main.rules"),
])
def test_include_errors(tmp_path, main, error):
    path = _toy_include(tmp_path, main)
    with pytest.raises(ParseFailure) as info:
        RuleSet.from_file(path, dialects=[Toy])
    assert str(info.value).replace(f"{tmp_path.resolve()}/", "").replace(f"{tmp_path}/", "") == error


def test_include_cycle_through_another_file(tmp_path):
    path = _toy_include(tmp_path, 'include "lib/common.rules"\n', common='include "../main.rules"\n')
    with pytest.raises(ParseFailure, match=r"common.rules:1:9: error: include cycle: main.rules -> common.rules -> "
                                           r"main.rules \(included from .*main.rules:1:1\)"):
        RuleSet.from_file(path, dialects=[Toy])


def test_errors_at_run_time_name_the_template(tmp_path):
    # A function failing in a rule that a value of an include put there: reported where `{scale}` stands.
    path = _toy_include(tmp_path, 'include "lib/common.rules" with dialect = toy, scale = attr(%y, 3), suffix = a\n')
    rs = RuleSet.from_file(path, dialects=[Toy])
    with pytest.raises(OpError, match=r"rule add_a \(.*lib/common.rules:4:50\): attr\(%\w+, 3 : i64\) failed"):
        rs.apply(adds_module())


@pytest.mark.parametrize("literal", [
    "a<" + "(->" * 3000,  # an arrow or a `-` and a closing bracket: once exponential
    "array<" + "i64, " * 5000,
    "a<[(" * 2000,
    "[" * 9 + "1" + "]" * 9,
], ids=["arrows", "unclosed", "openers", "too-deep"])
def test_unbalanced_literals_fail_fast(literal):
    """The parse ends, at the first unbalanced bracket. It takes milliseconds; one that backtracked
    exponentially would not end, and the alarm stops it (a guard against a hang, not a measure of
    speed: nothing here depends on how loaded the machine is)."""

    def hung(signum, frame):
        pytest.fail("still parsing after 300 s: the literal's pattern backtracks exponentially")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(300)
    try:
        with pytest.raises(ParseFailure, match=r"e.rules:1:(47|48|52): error: unexpected character '[<\[]' \(unbalanced brackets"):
            rules("rule r { match { %y = ref.add(%a, %b) {post = " + literal + "} } " + OK_REPLACE, "e.rules")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_error_file_on_disk():
    path = RULES / "errors.rules"
    with pytest.raises(ParseFailure) as info:
        RuleSet.from_file(path, dialects=[Toy])
    assert str(info.value) == f"{path}:6:44: error: unknown function 'scal'"
    assert (info.value.line, info.value.column) == (6, 44)


def test_wrong_function_registration():
    with pytest.raises(ValueError, match="identifiers"):
        rules("", functions={"not a name": len})
    with pytest.raises(TypeError, match="not callable"):
        rules("", functions={"f": 3})


# --------------------------------------------------------------------------
# Scale.
# --------------------------------------------------------------------------


def _chain(n: int, muls: int = 0) -> ModuleOp:
    """`n` ops in a chain, built without parsing: `ref.add`s (every third with a relu) and,
    every fourth op if `muls`, a `ref.mul` clamped to `[-k, 6]`, `k` counting up modulo `muls`."""
    type_ = TensorType(UniformQuantizedType.get("u8", 0.1, 128), [2, 4])
    block = Block(arg_types=[type_])
    x = value = block.args[0]
    relu = {"post": StringAttr("relu")}
    k = 0
    for i in range(n):
        if muls and i % 4 == 3:
            clamp = {"post": StringAttr("hardtanh"), "post_args": DenseArrayBase.from_list(f64, [-float(k), 6.0])}
            k = (k + 1) % muls
            op = MulOp.create(operands=[value, x], result_types=[type_], properties=clamp)
        else:
            op = AddOp.create(operands=[value, x], result_types=[type_], properties=relu if i % 3 == 0 else {},
                              attributes={"module": StringAttr(f"blocks.{i}")})
        block.add_op(op)
        value = op.results[0]
    block.add_op(ReturnOp(value))
    return ModuleOp([FuncOp("f", ([type_], [type_]), Region(block))])


def test_ten_thousand_ops_and_fifty_rules():
    # The toy rules plus 40 rules rooted at ref.mul that differ in one entry: dispatch is by
    # root name, then by that entry, so an op tries the rules that can match it, not all 50.
    text = (RULES / "toy.rules").read_text() + "".join(
        f"rule clamp{i} {{ match {{ %y = ref.mul(%a, %b) {{post_args = array<f64: -{i}.0, 6.0>}} }} "
        f"replace {{ %y = %a }} }}\n" for i in range(50 - len(toy_rules())))
    rs = rules(text)
    assert len(rs) == 50 and rs._index["ref.mul"].key == "post_args"
    m = _chain(10_000, muls=40)
    start = time.perf_counter()
    counts = rs.apply(m)
    elapsed = time.perf_counter() - start
    assert sum(counts.values()) == 10_000
    assert counts["add_relu"] == 2500 and counts["add"] == 5000
    assert all(counts[f"clamp{i}"] == 63 if i < 20 else 62 for i in range(40))  # 2500 = 20 * 63 + 20 * 62
    ops = list(m.body.block.first_op.body.block.ops)
    assert len(ops) == 7_501 and all(op.name == "toy.qadd" for op in ops[:-1])
    assert ops[-2].attributes["module"] == StringAttr("blocks.9998")
    print(f"lowered 10000 ops with {len(rs)} rules in {elapsed:.2f} s")


def test_whole_module_output():
    """Every toy rule once on one function (`tests/rules/toy_input.mlir`), printed exactly."""
    m = parse_module((RULES / "toy_input.mlir").read_text(), context(), "toy_input.mlir")
    counts = toy_rules().apply(m)
    assert counts == {"conv2d": 1, "linear_gelu": 1, "same_requantize": 1, "cat3": 1, "dequantize_quantize": 1,
                      "add_relu": 1}
    m.verify()
    assert str(m) + "\n" == (RULES / "toy_output.mlir").read_text()

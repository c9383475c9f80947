"""The `quant` dialect: its types and their properties, every verifier, the
printed syntax (MLIR's), and the lit files under `tests/lit/quant/`.

Until `qir-opt` exists, the lit files are run here the way their RUN lines
would run them: parse and verify, print, re-parse and print again (byte for
byte the same), and FileCheck the output; `invalid.mlir` is split on
`// -----` and every chunk must fail with its `expected-error`.
"""

from __future__ import annotations

import io
import math
import random
import re
import shutil
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    DenseIntOrFPElementsAttr,
    BFloat16Type,
    IntegerType,
    ModuleOp,
    Signedness,
    SignednessAttr,
    TensorType,
    f16,
    f32,
    f64,
    i8,
    i64,
)
from xdsl.dialects.func import FuncOp, ReturnOp
from xdsl.ir import Attribute, Block, Region
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import Pure
from xdsl.utils.exceptions import ParseError, VerifyException

from qir.context import make_context
from qir.dialects.quant import (
    AnyQuantizedType,
    ChooseQParamsOp,
    DequantizeCastOp,
    QuantizeCastOp,
    Quant,
    StorageCastOp,
    UniformQuantizedPerAxisType,
    UniformQuantizedType,
    format_scale,
    has_parameters,
    integer_range,
)

LIT = Path(__file__).parent / "lit" / "quant"


def parse_type(text: str) -> Attribute:
    return Parser(make_context(), text).parse_type()


def parse_module(text: str) -> ModuleOp:
    module = Parser(make_context(), text).parse_module()
    module.verify()
    return module


def print_generic(module: ModuleOp) -> str:
    out = io.StringIO()
    Printer(stream=out, print_generic_format=True).print_op(module)
    return out.getvalue()


# --- types: constructors and properties -------------------------------------


def test_per_tensor_properties():
    t = UniformQuantizedType.get("i8", 0.05, -3)
    assert str(t) == "!quant.uniform<i8:f32, 5.000000e-02:-3>"
    assert t.storage_type == i8  # signless, as in MLIR
    assert t.is_signed and t.storage_width == 8
    assert (t.storage_min, t.storage_max) == (-128, 127)
    assert t.expressed_type == f32
    assert (t.scale, t.zero_point) == (0.05, -3)
    assert (t.storage_dtype_name, t.expressed_dtype_name) == ("int8", "float32")


def test_unsigned_narrow_range_properties():
    t = UniformQuantizedType.get("u8", 0.1, 64, storage_max=127, expressed=f16)
    assert str(t) == "!quant.uniform<u8<0:127>:f16, 1.000000e-01:64>"
    assert t.storage_type == i8 and not t.is_signed
    assert (t.storage_min, t.storage_max) == (0, 127)
    assert (t.storage_dtype_name, t.expressed_dtype_name) == ("uint8", "float16")


def test_per_axis_properties():
    t = UniformQuantizedPerAxisType.get(
        "i8", [0.1, 0.2], [0, 1], axis=1, storage_min=-127, expressed=BFloat16Type()
    )
    assert str(t) == "!quant.uniform<i8<-127:127>:bf16:1, {1.000000e-01,2.000000e-01:1}>"
    assert t.scales == (0.1, 0.2) and t.zero_points == (0, 1) and t.axis == 1
    assert (t.storage_min, t.storage_max) == (-127, 127)
    assert t.expressed_dtype_name == "bfloat16"


def test_per_axis_tables_are_dense():
    # Scales and zero points are held as two dense tables, as the sub-channel type holds its
    # own: a 64-channel type is a few attributes, not one per channel.
    scales = [0.001 * (i + 1) for i in range(64)]
    t = UniformQuantizedPerAxisType.get("i8", scales, [0] * 64, 0)
    assert sum(1 for p in t.parameters if isinstance(p, DenseIntOrFPElementsAttr)) == 2
    assert t.scales == tuple(scales) and t.zero_points == (0,) * 64
    from_bytes = UniformQuantizedPerAxisType.get("i8", struct.pack("64d", *scales), struct.pack("64q", *[0] * 64), 0)
    assert from_bytes == t and hash(from_bytes) == hash(t)


def test_per_axis_types_compare_by_every_parameter():
    a = UniformQuantizedPerAxisType.get("i8", [0.1, 0.2], [0, 1], 0)
    same = UniformQuantizedPerAxisType.get("i8", [0.1, 0.2], [0, 1], 0)
    assert a == same and hash(a) == hash(same)
    for other in (UniformQuantizedPerAxisType.get("i8", [0.1, 0.3], [0, 1], 0),
                  UniformQuantizedPerAxisType.get("i8", [0.1, 0.2], [0, 2], 0),
                  UniformQuantizedPerAxisType.get("i8", [0.1, 0.2], [0, 1], 1),
                  UniformQuantizedPerAxisType.get("i8", [0.1, 0.2, 0.3], [0, 1, 0], 0),
                  UniformQuantizedPerAxisType.get("u8", [0.1, 0.2], [0, 1], 0),
                  UniformQuantizedPerAxisType.get("i8", [0.1, 0.2], [0, 1], 0, expressed=f64)):
        assert a != other
    assert parse_type(str(a)) == a and hash(parse_type(str(a))) == hash(a)


def test_per_axis_scales_round_trip_exactly():
    rng = random.Random(1)
    scales = [rng.uniform(1e-6, 1.0) for _ in range(32)]
    zero_points = [rng.randint(-128, 127) for _ in range(32)]
    t = UniformQuantizedPerAxisType.get("i8", scales, zero_points, 1)
    again = parse_type(str(t))
    assert again.scales == tuple(scales) and again.zero_points == tuple(zero_points)  # bit-exact
    assert again == t and str(again) == str(t)


def test_per_axis_tables_of_another_kind_do_not_verify():
    good = UniformQuantizedPerAxisType.get("i8", [0.1, 0.2], [0, 0], 0)
    wrong = DenseIntOrFPElementsAttr(TensorType(f32, [2]), good.scales_attr.data)
    with pytest.raises(VerifyException, match="1-d tables of f64 scales and i64 zero points"):
        UniformQuantizedPerAxisType.new((*good.parameters[:5], wrong, good.zero_points_attr, good.axis_attr))


@pytest.mark.parametrize(
    ("storage", "printed", "dtype", "full_range"),
    [
        ("i4", "i4", "int4", (-8, 7)),
        ("u4", "u4", "uint4", (0, 15)),
        ("i8", "i8", "int8", (-128, 127)),
        ("si8", "i8", "int8", (-128, 127)),
        ("u8", "u8", "uint8", (0, 255)),
        ("ui8", "u8", "uint8", (0, 255)),
        ("i16", "i16", "int16", (-32768, 32767)),
        ("u16", "u16", "uint16", (0, 65535)),
        ("i32", "i32", "int32", (-(2**31), 2**31 - 1)),
    ],
)
def test_storage_types(storage: str, printed: str, dtype: str, full_range: tuple[int, int]):
    t = UniformQuantizedType.get(storage, 0.5)
    assert str(t) == f"!quant.uniform<{printed}:f32, 5.000000e-01>"
    assert t.storage_dtype_name == dtype
    assert (t.storage_min, t.storage_max) == full_range
    assert t.storage_type == IntegerType(t.storage_width)


def test_integer_range():
    assert integer_range(1, True) == (-1, 0)
    assert integer_range(8, False) == (0, 255)


def test_equality_and_hash_cover_every_parameter():
    a = UniformQuantizedType.get("i8", 0.05, -3)
    assert a == UniformQuantizedType.get("i8", 0.05, -3)
    assert hash(a) == hash(UniformQuantizedType.get("i8", 0.05, -3))
    assert a != UniformQuantizedType.get("u8", 0.05, 3)
    assert a != UniformQuantizedType.get("i8", 0.05, -3, storage_min=-127)
    assert a != UniformQuantizedType.get("i8", 0.05, -3, expressed=f64)
    assert a != UniformQuantizedType.get("i8", 0.05, -2)


# --- types: verifiers -------------------------------------------------------

per_tensor = UniformQuantizedType.get
per_axis = UniformQuantizedPerAxisType.get

BAD_TYPES = [
    (lambda: per_tensor("i8", -0.1), "scale must be positive and finite, got -0.1"),
    (lambda: per_tensor("i8", 0.0), "scale must be positive and finite, got 0.0"),
    (lambda: per_tensor("i8", math.nan), "scale must be positive and finite, got nan"),
    (lambda: per_tensor("i8", math.inf), "scale must be positive and finite, got inf"),
    (
        lambda: per_tensor("i8", 1e-30, expressed=f16),
        "scale 1e-30 is outside the range [5.960464477539063e-08, 65504.0] "
        "of expressed type f16",
    ),
    (lambda: per_tensor("i8", 0.1, 128), "zero point 128 is outside the storage range [-128, 127]"),
    (lambda: per_tensor("u8", 0.1, -1), "zero point -1 is outside the storage range [0, 255]"),
    (
        lambda: per_tensor("i8", 0.1, -128, storage_min=-127),
        "zero point -128 is outside the storage range [-127, 127]",
    ),
    (
        lambda: per_tensor("u8", 0.1, storage_max=256),
        "storage range [0, 256] is outside [0, 255], the range of u8",
    ),
    (
        lambda: per_tensor("i8", 0.1, 5, storage_min=5, storage_max=5),
        "storage min 5 must be less than storage max 5",
    ),
    (lambda: per_tensor("i0", 0.1), "storage type width must be between 1 and 32, got 0"),
    (lambda: per_tensor("u64", 0.1), "storage type width must be between 1 and 32, got 64"),
    (lambda: per_tensor("int8", 0.1), "expected a storage type such as i8 or u8, got 'int8'"),
    (
        lambda: per_axis("i8", [], [], 0),
        "per-axis type needs at least one scale",
    ),
    (
        lambda: per_axis("i8", [0.1, 0.2], [0], 0),
        "per-axis type has 2 scales but 1 zero points",
    ),
    (
        lambda: per_axis("i8", [0.1], [0], -1),
        "quantized dimension must be non-negative, got -1",
    ),
    (
        lambda: per_axis("i8", [0.1, math.nan], [0, 0], 0),
        "scale must be positive and finite, got nan",
    ),
    (
        lambda: per_axis("u8", [0.1], [300], 0),
        "zero point 300 is outside the storage range [0, 255]",
    ),
    (
        lambda: UniformQuantizedType(
            IntegerType(8, Signedness.SIGNED),
            SignednessAttr(Signedness.SIGNED),
            *UniformQuantizedType.get("i8", 0.1).parameters[2:],
        ),
        "storage type must be a signless integer type, got si8",
    ),
]


@pytest.mark.parametrize(("build", "message"), BAD_TYPES)
def test_type_verifier(build, message: str):
    with pytest.raises(VerifyException) as error:
        build()
    assert str(error.value) == message


def test_invalid_type_text_is_a_located_parse_error():
    text = "\n\n  !quant.uniform<i8:f32, 0.1:300>"
    with pytest.raises(ParseError) as error:
        parse_type(text)
    assert error.value.msg == "zero point 300 is outside the storage range [-128, 127]"
    location = error.value.span.get_location()
    assert (location.line, location.col) == (3, 17)


# --- types: printed syntax --------------------------------------------------

PRINTED_TYPES = [
    ("!quant.uniform<i8:f32, 0.05:-3>", "!quant.uniform<i8:f32, 5.000000e-02:-3>"),
    ("!quant.uniform<i8:f32, 5.0e-2:0>", "!quant.uniform<i8:f32, 5.000000e-02>"),
    ("!quant.uniform<i8:f32, 2:10>", "!quant.uniform<i8:f32, 2.000000e+00:10>"),
    (
        "!quant.uniform<u8:f32, 0.0235294117647059:128>",
        "!quant.uniform<u8:f32, 2.35294117647059e-02:128>",
    ),
    ("!quant.uniform<i8<-127:127>:f32, 0.1>", "!quant.uniform<i8<-127:127>:f32, 1.000000e-01>"),
    ("!quant.uniform<i8<-128:127>:f32, 0.1>", "!quant.uniform<i8:f32, 1.000000e-01>"),
    ("!quant.uniform<u8<0:127>:f32, 0.1:64>", "!quant.uniform<u8<0:127>:f32, 1.000000e-01:64>"),
    ("!quant.uniform<ui8:f64, 0.1>", "!quant.uniform<u8:f64, 1.000000e-01>"),
    ("!quant.uniform<i4:bf16, 1.5e+3>", "!quant.uniform<i4:bf16, 1.500000e+03>"),
    (
        "!quant.uniform<i8:f32:0, {0.1, 0.2:1}>",
        "!quant.uniform<i8:f32:0, {1.000000e-01,2.000000e-01:1}>",
    ),
    (
        "!quant.uniform<i8<-120:127>:f16:2, {2.0e+2:-120,9.987200e-01:127}>",
        "!quant.uniform<i8<-120:127>:f16:2, {2.000000e+02:-120,9.987200e-01:127}>",
    ),
    (
        "tensor<?x4x!quant.uniform<i8:f32:1, {0.1,0.2,0.3,0.4}>>",
        "tensor<?x4x!quant.uniform<i8:f32:1, "
        "{1.000000e-01,2.000000e-01,3.000000e-01,4.000000e-01}>>",
    ),
]


@pytest.mark.parametrize(("text", "expected"), PRINTED_TYPES)
def test_printed_type_round_trips(text: str, expected: str):
    parsed = parse_type(text)
    assert str(parsed) == expected
    reparsed = parse_type(expected)
    assert reparsed == parsed
    assert str(reparsed) == expected


def test_parsed_per_axis_type_is_the_per_axis_class():
    # Both forms are `!quant.uniform`; only UniformQuantizedType is registered for them (with
    # `!quant.any`), and its `new` hands per-axis parameters to the per-axis class.
    assert list(Quant.attributes) == [UniformQuantizedType, AnyQuantizedType]
    per_axis = parse_type("!quant.uniform<i8:f32:0, {0.1}>")
    assert isinstance(per_axis, UniformQuantizedPerAxisType)
    per_tensor = parse_type("!quant.uniform<i8:f32, 0.1>")
    assert type(per_tensor) is UniformQuantizedType
    # The generic rebuild path `type(t).new(t.parameters)` keeps each class.
    for t in (per_axis, per_tensor):
        assert type(t).new(t.parameters) == t
        assert type(type(t).new(t.parameters)) is type(t)


@pytest.mark.parametrize("scale", [0.0235294117647059, 1 / 3, 0.05, 0.1, 2**-20, 1e-300, 3.4e38])
def test_scale_round_trips_exactly(scale: float):
    t = UniformQuantizedType.get("i8", scale, expressed=f64)
    again = parse_type(str(t))
    assert again.scale == scale  # bit-exact, not approximately
    assert str(again) == str(t)


def test_scale_printing_is_mlir_style_when_lossless():
    assert format_scale(0.05) == "5.000000e-02"
    assert format_scale(0.99872) == "9.987200e-01"
    assert format_scale(0.0235294117647059) == "2.35294117647059e-02"
    assert float(format_scale(1 / 3)) == 1 / 3


def test_random_scales_round_trip_exactly():
    rng = random.Random(0)
    for _ in range(2000):
        scale = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if not (math.isfinite(scale) and scale > 0):
            continue
        assert float(format_scale(scale)) == scale
        t = UniformQuantizedType.get("i8", scale, expressed=f64)
        assert parse_type(str(t)).scale == scale


# --- ops --------------------------------------------------------------------

Q = UniformQuantizedType.get("i8", 0.05, -3)


def function(arg_types: list[Attribute], build: Callable[[Block], None]) -> ModuleOp:
    """A module with one function `f`, whose body `build(block)` fills."""
    block = Block(arg_types=arg_types)
    build(block)
    block.add_op(ReturnOp())
    return ModuleOp([FuncOp("f", (arg_types, []), Region(block))])


def test_ops_built_from_python_print_as_mlir():
    x_type = TensorType(f32, [2, 4])
    q_type = TensorType(Q, [2, 4])

    def build(block: Block):
        q = QuantizeCastOp(block.args[0], q_type)
        i = StorageCastOp(q, TensorType(i8, [2, 4]))
        q2 = StorageCastOp(i, q_type)
        y = DequantizeCastOp(q2, x_type)
        qp = ChooseQParamsOp(block.args[0], AnyQuantizedType.get("u8"), symmetric=True)
        block.add_ops([q, i, q2, y, qp])

    module = function([x_type], build)
    module.verify()
    text = str(module)
    q = "tensor<2x4x!quant.uniform<i8:f32, 5.000000e-02:-3>>"
    assert text.splitlines()[2:7] == [
        f"    %1 = quant.qcast %0 : tensor<2x4xf32> to {q}",
        f"    %2 = quant.scast %1 : {q} to tensor<2x4xi8>",
        f"    %3 = quant.scast %2 : tensor<2x4xi8> to {q}",
        f"    %4 = quant.dcast %3 : {q} to tensor<2x4xf32>",
        "    %5, %6 = quant.choose_qparams %0 {quantized_type = !quant.any<u8:f32>, symmetric} : "
        "tensor<2x4xf32> -> (tensor<f32>, tensor<i64>)",
    ]
    # print -> parse -> print is byte-identical, in the custom and the generic format
    assert str(parse_module(text)) == text
    generic = print_generic(module)
    assert print_generic(parse_module(generic)) == generic


def test_op_accessors():
    module = parse_module((LIT / "ops.mlir").read_text())
    ops = {type(op): op for op in module.walk()}
    assert ops[QuantizeCastOp].quantized_type.storage_dtype_name == "int8"
    assert ops[DequantizeCastOp].quantized_type.zero_point == -3
    scast = ops[StorageCastOp]
    assert scast.integer_type.width.data == scast.quantized_type.storage_width
    for op_type in (QuantizeCastOp, DequantizeCastOp, StorageCastOp, ChooseQParamsOp):
        assert op_type.has_trait(Pure)


@pytest.mark.parametrize(
    ("storage", "symmetric", "per_token", "signed", "storage_range"),
    [
        (AnyQuantizedType.get("u8"), False, False, False, (0, 255)),
        (AnyQuantizedType.get("i8"), True, False, True, (-128, 127)),
        (AnyQuantizedType.get("u8", storage_max=127), False, False, False, (0, 127)),
        (AnyQuantizedType.get("i8"), False, True, True, (-128, 127)),
        (AnyQuantizedType.get("i8", storage_min=-127), True, True, True, (-127, 127)),
    ],
)
def test_choose_qparams(storage, symmetric: bool, per_token: bool, signed: bool, storage_range):
    """Per tensor the parameters are scalars (rank 0); per token one per row of the last dimension."""
    def build(block: Block):
        block.add_op(ChooseQParamsOp(block.args[0], storage, symmetric, per_token))

    module = function([TensorType(f32, [DYNAMIC_INDEX, 4])], build)
    module.verify()
    op = next(op for op in module.walk() if isinstance(op, ChooseQParamsOp))
    assert op.is_signed == signed
    assert (op.storage_min, op.storage_max) == storage_range
    assert op.is_symmetric == symmetric and op.per_token == per_token
    shape = [DYNAMIC_INDEX, 1] if per_token else []
    assert (op.scale.type, op.zero_point.type) == (TensorType(f32, shape), TensorType(i64, shape))
    assert str(parse_module(str(module))) == str(module)


def test_any_quantized_type():
    """`!quant.any` is MLIR's quantized type without parameters: storage, range, expressed type."""
    t = AnyQuantizedType.get("i8", storage_min=-127, expressed=f16)
    assert str(t) == "!quant.any<i8<-127:127>:f16>"
    assert parse_type(str(t)) == t and parse_type("!quant.any<u8:f32>") == AnyQuantizedType.get("u8")
    assert (t.storage_min, t.storage_max, t.storage_dtype_name, t.expressed_dtype_name) == (-127, 127, "int8", "float16")
    assert not has_parameters(t) and has_parameters(Q)


# --- the lit files ----------------------------------------------------------


def _filecheck(check_file: Path, output: str) -> None:
    filecheck = shutil.which("filecheck")
    assert filecheck is not None, "the `filecheck` test dependency is not installed"
    result = subprocess.run(
        [filecheck, str(check_file)], input=output, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["types.mlir", "ops.mlir"])
def test_lit_valid(name: str):
    """`qir-opt %s | filecheck %s` and `qir-opt %s | qir-opt | filecheck %s`."""
    path = LIT / name
    output = str(parse_module(path.read_text()))
    again = str(parse_module(output))
    assert again == output
    _filecheck(path, output)


_EXPECTED_ERROR = re.compile(r"//\s*expected-error(?:@([+-]\d+))?\s*\{\{(.*)\}\}")
_UNDERLINE = re.compile(r"\s*\^+-*")


def _invalid_chunks() -> list[tuple[int, str]]:
    """`(first line, text)` of each `// -----` chunk of invalid.mlir."""
    chunks, first = [], 1
    for text in (LIT / "invalid.mlir").read_text().split("// -----"):
        chunks.append((first, text))
        first += text.count("\n")
    return chunks


@pytest.mark.parametrize(("first_line", "chunk"), _invalid_chunks())
def test_lit_invalid(first_line: int, chunk: str):
    """`qir-opt %s --split-input-file --verify-diagnostics`: each chunk fails as annotated."""
    annotations = [
        (number, match)
        for number, line in enumerate(chunk.split("\n"), start=1)
        if (match := _EXPECTED_ERROR.search(line))
    ]
    assert len(annotations) == 1, f"chunk at line {first_line} needs one expected-error"
    number, match = annotations[0]
    expected_line = number + int(match.group(1) or 0)
    message = match.group(2)
    try:
        parse_module(chunk)
    except ParseError as error:
        assert message in error.msg
        assert error.span.get_location().line == expected_line
    except VerifyException as error:
        assert message in str(error)
        # xDSL ops carry no source location, but when an op fails to verify the
        # exception's note prints the module with that op underlined: it must be
        # the op on the annotated line (the same results). A type constraint of the
        # declarative format fails while parsing, before there is an op, unlocated.
        if hasattr(error, "__notes__"):
            printed = error.__notes__[0].splitlines()
            failing = next(
                op for op, under in zip(printed, printed[1:]) if _UNDERLINE.fullmatch(under)
            )
            source = chunk.split("\n")[expected_line - 1]
            assert failing.split(" = ")[0].strip() == source.split(" = ")[0].strip()
    else:
        pytest.fail(f"chunk at line {first_line} of invalid.mlir did not fail")


def test_per_axis_tables_as_tensors_are_its_scales_and_zero_points():
    """`qir.tensors.per_axis_tables` reads a per-axis type's tables as tensors from their bytes:
    the scales and zero points the type holds, exactly."""
    import torch

    from qir.tensors import per_axis_tables

    scales, zero_points = [0.1, 2.5e-07, 3.0, 1 / 3], [0, -3, 7, 127]
    qtype = UniformQuantizedPerAxisType.get("i8", scales, zero_points, 0)
    got_scales, got_zero_points = per_axis_tables(qtype)
    assert got_scales.dtype == torch.float64 and got_scales.tolist() == scales
    assert got_zero_points.dtype == torch.int64 and got_zero_points.tolist() == zero_points
    assert torch.equal(got_scales.float(), torch.tensor(qtype.scales, dtype=torch.float32))

"""The `obs` dialect: quantization before its parameters are known.

A quantizer says, per op, how each operand and result should be quantized;
those annotations are attributes on the op itself (`qin`, one entry per
operand, and `qout`, one per result; `none` = left in float):

    %y = aten.op "conv2d.default"(%x, %w, %b) {qin = [#obs.spec<u8[0:255], affine, histogram>,
           #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0>, none], qout = [none]} : ...
    %r = aten.op "relu.default"(%y) {qout = [#obs.spec<u8[0:255], affine, histogram>]} : ...
    %v = aten.op "view.default"(%r, [1, -1]) {qout = [#obs.shared<operand 0>]} : ...

The attributes are the PT2E specs: `#obs.spec` (QuantizationSpec: storage and
range, affine or symmetric, observer kind, per-channel axis, dynamic [per token]),
`#obs.shared` (SharedQuantizationSpec: same parameters as one of the op's own
operands or results), `#obs.derived` (DerivedQuantizationSpec: scale = product
of the scales of some operands, as for an int32 bias) and `#obs.fixed`
(FixedQParamsQuantizationSpec: sigmoid, softmax, tanh). Propagation resolves
shared specs and numbers the groups of values that must share parameters
(`group N`); observer insertion puts one observer per group:

    %o = obs.observe %r {id = "obs3", spec = #obs.spec<u8[0:255], affine, histogram, group 3>} : tensor<1x4xf32>

After calibration an observer carries its statistics (`stats = {min = ..., max = ...}`),
so the observed IR can be printed, saved and converted later. `obs.fake_quant`
is the same idea for quantization-aware training.

A dynamic spec (`#obs.spec<u8[0:255], affine, minmax, dynamic>`, or `..., dynamic, per_token`
for one scale per row) marks an activation quantized when the program runs: its `obs.observe`
records nothing (the calibration module passes the value through) and `convert` turns it into
`quant.choose_qparams` and run-time casts (see the `quant` dialect).

A smoothed spec (`#obs.spec<u8[0:255], affine, minmax, smooth 0.5>`, on a linear's input) is
static and per tensor, but its observer records each channel of the last dimension
(`stats = {min = array<f64: ...>, max = array<f64: ...>}`): `smooth-quant` turns those into
SmoothQuant's division and the per-tensor range of the divided value, before `convert`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Self

from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    DictionaryAttr,
    Float64Type,
    FloatAttr,
    FloatData,
    IntAttr,
    ShapedType,
    StringAttr,
    UnitAttr,
)
from xdsl.ir import Attribute, Dialect, ParametrizedAttribute, SSAValue, Operation
from xdsl.irdl import (
    AnyAttr,
    IRDLOperation,
    ParsePropInAttrDict,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    result_def,
    VarConstraint,
)
from xdsl.parser import AttrParser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

SCHEMES = ("affine", "symmetric")
OBSERVERS = ("minmax", "moving_minmax", "histogram", "per_channel_minmax", "per_group_minmax", "learned")
PER_CHANNEL_OBSERVERS = ("per_channel_minmax", "per_group_minmax")
"""Observers with a channel axis (and, `per_group_minmax`, groups of `block` along the last one)."""
STORAGES = {"u8": (0, 255), "i8": (-128, 127), "u16": (0, 65535), "i16": (-32768, 32767),
            "i32": (-(2**31), 2**31 - 1), "u4": (0, 15), "i4": (-8, 7)}
NO_GROUP = -1
NO_SMOOTHING = -1.0


def _parse_storage_range(parser: AttrParser) -> tuple[str, int, int]:
    pos = parser.pos
    storage = parser.parse_identifier()
    if storage not in STORAGES:
        parser.raise_error(f"unknown storage type {storage!r} (expected one of {', '.join(STORAGES)})",
                           pos, parser.pos)
    parser.parse_punctuation("[")
    qmin = parser.parse_integer(allow_boolean=False)
    parser.parse_punctuation(":")
    qmax = parser.parse_integer(allow_boolean=False)
    parser.parse_punctuation("]")
    return storage, qmin, qmax


def _verify_range(storage: str, qmin: int, qmax: int) -> None:
    lo, hi = STORAGES.get(storage, (None, None))
    if lo is None:
        raise VerifyException(f"unknown storage type {storage!r}")
    if not lo <= qmin < qmax <= hi:
        raise VerifyException(f"range [{qmin}:{qmax}] is not a non-empty range inside {storage} [{lo}:{hi}]")


class _GroupedSpec(ParametrizedAttribute):
    """A spec that propagation may give a group number (printed `, group N`); subclasses
    declare a `group: IntAttr` parameter."""

    @property
    def group_id(self) -> int | None:
        return None if self.group.data == NO_GROUP else self.group.data

    def with_group(self, group: int | None) -> Self:
        """This spec in group `group` (None: in none). Its other parameters are this spec's own
        attributes, and no check looks at the group, so the copy is made as xDSL's
        `ParametrizedAttribute.new` makes it, less the verification (`__post_init__`) that
        would check this spec again: propagation regroups thousands of specs."""
        number = NO_GROUP if group is None else group
        return self if number == self.group.data else self._with_parameter("group", IntAttr(number))

    def _with_parameter(self, name: str, value: Attribute) -> Self:
        copy = type(self).__new__(type(self))
        for parameter, _ in self.get_irdl_definition().parameters:
            object.__setattr__(copy, parameter, getattr(self, parameter))
        object.__setattr__(copy, name, value)
        return copy

    def _print_group(self, printer: Printer) -> None:
        if self.group.data != NO_GROUP:
            printer.print_string(f", group {self.group.data}")


@irdl_attr_definition
class QuantSpecAttr(_GroupedSpec):
    """How one value is to be quantized: `#obs.spec<u8[0:255], affine, histogram>`."""

    name = "obs.spec"

    storage: StringAttr
    qmin: IntAttr
    qmax: IntAttr
    scheme: StringAttr
    observer: StringAttr
    axis: IntAttr
    dynamic: IntAttr
    """0 for a static spec (parameters from calibration), 1 for a dynamic one (chosen at run time
    from the tensor, `, dynamic`), 2 for a dynamic one per token (one scale and zero point per
    row of the last dimension, `, dynamic, per_token`)."""
    group: IntAttr
    int16_pairs: IntAttr
    """0, or the largest activation storage magnitude a weight is multiplied by in a kernel that
    adds pairs of products in int16 with saturation (x86 without VNNI): `convert` then gives each
    channel the smallest scale at which none of its pairs can overflow (`qir.accumulation`)."""
    block: IntAttr
    """0, or the size of the groups of a `per_group_minmax` spec (`, block 32`): each row of a 2-d
    weight (channel axis 0) has a scale and zero point per `block` consecutive elements, and
    `convert` gives it a sub-channel type `!quant.uniform<u4:f32:{0:1, 1:32}, ...>`."""
    smooth: FloatData
    """-1, or the migration strength alpha in [0, 1] of SmoothQuant (`, smooth 0.5`) on a linear's
    input: its observer records each input channel's range (the last dimension), and
    `smooth-quant` divides the channels by scales it moves into the linears' weights, before
    the value is quantized per tensor (see `qir.passes.smooth_quant`)."""

    def __init__(self, storage: str, qmin: int, qmax: int, scheme: str = "affine",
                 observer: str = "minmax", axis: int | None = None, dynamic: bool = False,
                 group: int | None = None, int16_pairs: int = 0, per_token: bool = False, block: int = 0,
                 smooth: float | None = None):
        super().__init__(StringAttr(storage), IntAttr(qmin), IntAttr(qmax), StringAttr(scheme),
                         StringAttr(observer), IntAttr(-1 if axis is None else axis),
                         IntAttr(2 if per_token else int(dynamic)), IntAttr(NO_GROUP if group is None else group),
                         IntAttr(int16_pairs), IntAttr(block), FloatData(NO_SMOOTHING if smooth is None else smooth))

    @property
    def symmetric(self) -> bool:
        return self.scheme.data == "symmetric"

    @property
    def channel_axis(self) -> int | None:
        return None if self.axis.data < 0 else self.axis.data

    @property
    def is_dynamic(self) -> bool:
        return bool(self.dynamic.data)

    @property
    def per_token(self) -> bool:
        """A dynamic spec with one scale and zero point per row of the last dimension."""
        return self.dynamic.data == 2

    @property
    def smoothing(self) -> float | None:
        """SmoothQuant's migration strength for this linear input, or None."""
        return None if self.smooth.data == NO_SMOOTHING else self.smooth.data

    @property
    def signed(self) -> bool:
        return self.storage.data.startswith("i")

    def without_smoothing(self) -> QuantSpecAttr:
        """This spec as `smooth-quant` leaves it: the same quantization, of the smoothed value."""
        return self._with_parameter("smooth", FloatData(NO_SMOOTHING))

    def verify(self) -> None:
        _verify_range(self.storage.data, self.qmin.data, self.qmax.data)
        if self.scheme.data not in SCHEMES:
            raise VerifyException(f"unknown scheme {self.scheme.data!r} (expected affine or symmetric)")
        if self.observer.data not in OBSERVERS:
            raise VerifyException(f"unknown observer {self.observer.data!r} (expected one of {', '.join(OBSERVERS)})")
        if (self.observer.data in PER_CHANNEL_OBSERVERS) != (self.channel_axis is not None):
            raise VerifyException("per_channel_minmax and per_group_minmax observers, and only they, take an axis")
        if (self.observer.data == "per_group_minmax") != (self.block.data > 0):
            raise VerifyException("per_group_minmax observers, and only they, take a block size (positive)")
        if self.block.data and self.channel_axis != 0:
            raise VerifyException(f"groups of a per_group_minmax spec run along the rows of axis 0, not axis "
                                  f"{self.channel_axis}")
        if self.int16_pairs.data < 0:
            raise VerifyException(f"int16_pairs must be positive, got {self.int16_pairs.data}")
        if self.dynamic.data not in (0, 1, 2):
            raise VerifyException(f"dynamic must be 0 (static), 1 (per tensor) or 2 (per token), got {self.dynamic.data}")
        if self.is_dynamic and self.channel_axis is not None:
            raise VerifyException("a dynamic spec is per tensor or per token, not per channel")
        if self.smoothing is not None:
            if not 0.0 <= self.smoothing <= 1.0:
                raise VerifyException(f"smooth takes a migration strength in [0, 1], got {self.smoothing}")
            if self.is_dynamic or self.observer.data != "minmax":
                raise VerifyException("a smoothed spec is static, per tensor and observed with minmax (its range "
                                      "is derived from each channel's)")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        with parser.in_angle_brackets():
            storage, qmin, qmax = _parse_storage_range(parser)
            parser.parse_punctuation(",")
            scheme = parser.parse_identifier()
            parser.parse_punctuation(",")
            observer = parser.parse_identifier()
            axis, dynamic, group, pairs, block, smooth = -1, 0, NO_GROUP, 0, 0, NO_SMOOTHING
            while parser.parse_optional_punctuation(","):
                pos = parser.pos
                word = parser.parse_identifier()
                if word == "axis":
                    axis = parser.parse_integer(allow_boolean=False)
                elif word == "dynamic":
                    dynamic = max(dynamic, 1)
                elif word == "per_token":
                    dynamic = 2
                elif word == "group":
                    group = parser.parse_integer(allow_boolean=False)
                elif word == "int16_pairs":
                    pairs = parser.parse_integer(allow_boolean=False)
                elif word == "block":
                    block = parser.parse_integer(allow_boolean=False)
                elif word == "smooth":
                    smooth = parser.parse_number()
                else:
                    parser.raise_error("expected 'axis N', 'block N', 'dynamic', 'per_token', 'int16_pairs N', "
                                       "'smooth A' or 'group N'", pos, parser.pos)
        return [StringAttr(storage), IntAttr(qmin), IntAttr(qmax), StringAttr(scheme),
                StringAttr(observer), IntAttr(axis), IntAttr(dynamic), IntAttr(group), IntAttr(pairs),
                IntAttr(block), FloatData(float(smooth))]

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_string(f"{self.storage.data}[{self.qmin.data}:{self.qmax.data}], "
                                 f"{self.scheme.data}, {self.observer.data}")
            if self.channel_axis is not None:
                printer.print_string(f", axis {self.channel_axis}")
            if self.block.data:
                printer.print_string(f", block {self.block.data}")
            if self.is_dynamic:
                printer.print_string(", dynamic")
            if self.per_token:
                printer.print_string(", per_token")
            if self.int16_pairs.data:
                printer.print_string(f", int16_pairs {self.int16_pairs.data}")
            if self.smoothing is not None:
                printer.print_string(f", smooth {self.smoothing!r}")
            self._print_group(printer)


@irdl_attr_definition
class FixedQParamsAttr(_GroupedSpec):
    """Parameters fixed by the op's range: `#obs.fixed<u8[0:255], 3.906250e-03:0>` (sigmoid)."""

    name = "obs.fixed"

    storage: StringAttr
    qmin: IntAttr
    qmax: IntAttr
    scale: FloatData
    zero_point: IntAttr
    group: IntAttr

    def __init__(self, storage: str, qmin: int, qmax: int, scale: float, zero_point: int,
                 group: int | None = None):
        super().__init__(StringAttr(storage), IntAttr(qmin), IntAttr(qmax), FloatData(scale),
                         IntAttr(zero_point), IntAttr(NO_GROUP if group is None else group))

    @property
    def signed(self) -> bool:
        return self.storage.data.startswith("i")

    def verify(self) -> None:
        _verify_range(self.storage.data, self.qmin.data, self.qmax.data)
        if not self.scale.data > 0 or self.scale.data == float("inf"):
            raise VerifyException(f"scale must be positive and finite, got {self.scale.data}")
        if not self.qmin.data <= self.zero_point.data <= self.qmax.data:
            raise VerifyException(f"zero point {self.zero_point.data} outside [{self.qmin.data}:{self.qmax.data}]")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        with parser.in_angle_brackets():
            storage, qmin, qmax = _parse_storage_range(parser)
            parser.parse_punctuation(",")
            scale = parser.parse_float()
            parser.parse_punctuation(":")
            zero_point = parser.parse_integer(allow_boolean=False)
            group = NO_GROUP
            if parser.parse_optional_punctuation(","):
                parser.parse_keyword("group")
                group = parser.parse_integer(allow_boolean=False)
        return [StringAttr(storage), IntAttr(qmin), IntAttr(qmax), FloatData(scale),
                IntAttr(zero_point), IntAttr(group)]

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_string(f"{self.storage.data}[{self.qmin.data}:{self.qmax.data}], ")
            printer.print_string(f"{_float_text(self.scale.data)}:{self.zero_point.data}")
            self._print_group(printer)


@irdl_attr_definition
class DerivedSpecAttr(_GroupedSpec):
    """Scale = product of the scales of some operands, zero point 0: `#obs.derived<i32[...], operands [0, 1]>`.

    The bias of a conv or linear, quantized with input scale × weight scale (per
    channel when the weight is)."""

    name = "obs.derived"

    storage: StringAttr
    qmin: IntAttr
    qmax: IntAttr
    operands: ArrayAttr[IntAttr]
    group: IntAttr

    def __init__(self, operands: Sequence[int], storage: str = "i32", qmin: int | None = None,
                 qmax: int | None = None, group: int | None = None):
        lo, hi = STORAGES[storage]
        super().__init__(StringAttr(storage), IntAttr(lo if qmin is None else qmin),
                         IntAttr(hi if qmax is None else qmax),
                         ArrayAttr([IntAttr(i) for i in operands]),
                         IntAttr(NO_GROUP if group is None else group))

    @property
    def sources(self) -> tuple[int, ...]:
        return tuple(i.data for i in self.operands.data)

    def with_group(self, group: int | None) -> DerivedSpecAttr:
        return DerivedSpecAttr(self.sources, self.storage.data, self.qmin.data, self.qmax.data, group)

    def verify(self) -> None:
        _verify_range(self.storage.data, self.qmin.data, self.qmax.data)
        if not self.operands.data:
            raise VerifyException("a derived spec needs at least one source operand")
        if any(i < 0 for i in self.sources):
            raise VerifyException(f"a derived spec's source operands are indices from 0, not {list(self.sources)}")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        with parser.in_angle_brackets():
            storage, qmin, qmax = _parse_storage_range(parser)
            parser.parse_punctuation(",")
            parser.parse_keyword("operands")
            sources = parser.parse_comma_separated_list(
                parser.Delimiter.SQUARE, lambda: parser.parse_integer(allow_boolean=False))
            group = NO_GROUP
            if parser.parse_optional_punctuation(","):
                parser.parse_keyword("group")
                group = parser.parse_integer(allow_boolean=False)
        return [StringAttr(storage), IntAttr(qmin), IntAttr(qmax),
                ArrayAttr([IntAttr(i) for i in sources]), IntAttr(group)]

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_string(f"{self.storage.data}[{self.qmin.data}:{self.qmax.data}], operands [")
            printer.print_string(", ".join(str(i) for i in self.sources) + "]")
            self._print_group(printer)


@irdl_attr_definition
class CastSpecAttr(_GroupedSpec):
    """Stored in a narrower float type, no scale: `#obs.cast<f16>` (or `bf16`). PT2E's
    `QuantizationSpec(dtype=torch.float16)`: `convert` gives a weight with it the float16
    parameter it rounds to, converted back to float32 where it is read (weight-only float16);
    an activation is rounded to it and back. It needs no statistics."""

    name = "obs.cast"

    dtype: StringAttr
    group: IntAttr

    def __init__(self, dtype: str, group: int | None = None):
        super().__init__(StringAttr(dtype), IntAttr(NO_GROUP if group is None else group))

    def with_group(self, group: int | None) -> CastSpecAttr:
        return CastSpecAttr(self.dtype.data, group)

    def verify(self) -> None:
        if self.dtype.data not in CAST_TYPES:
            raise VerifyException(f"a cast spec stores f16 or bf16, not {self.dtype.data!r}")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        with parser.in_angle_brackets():
            pos = parser.pos
            dtype = parser.parse_identifier()
            if dtype not in CAST_TYPES:
                parser.raise_error(f"expected f16 or bf16, got {dtype!r}", pos, parser.pos)
            group = NO_GROUP
            if parser.parse_optional_punctuation(","):
                parser.parse_keyword("group")
                group = parser.parse_integer(allow_boolean=False)
        return [StringAttr(dtype), IntAttr(group)]

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_string(self.dtype.data)
            self._print_group(printer)


CAST_TYPES = ("f16", "bf16")
"""The float types a cast spec stores values in."""


@irdl_attr_definition
class SharedSpecAttr(ParametrizedAttribute):
    """Same parameters as one of the op's own operands or results: `#obs.shared<operand 0>`."""

    name = "obs.shared"

    kind: StringAttr
    index: IntAttr

    def __init__(self, kind: str, index: int):
        super().__init__(StringAttr(kind), IntAttr(index))

    def verify(self) -> None:
        if self.kind.data not in ("operand", "result"):
            raise VerifyException(f"a shared spec refers to an 'operand' or a 'result', not {self.kind.data!r}")
        if self.index.data < 0:
            raise VerifyException(f"a shared spec refers to {self.kind.data} {self.index.data}: indices start at 0")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> list[Attribute]:
        with parser.in_angle_brackets():
            kind = parser.parse_identifier()
            index = parser.parse_integer(allow_boolean=False)
        return [StringAttr(kind), IntAttr(index)]

    def print_parameters(self, printer: Printer) -> None:
        printer.print_string(f"<{self.kind.data} {self.index.data}>")


ResolvedSpec = QuantSpecAttr | FixedQParamsAttr | DerivedSpecAttr | CastSpecAttr
"""What an annotation entry is after propagation: a concrete spec with a group."""

AnnotationSpec = QuantSpecAttr | FixedQParamsAttr | DerivedSpecAttr | CastSpecAttr | SharedSpecAttr
"""What a `qin`/`qout` entry may be, besides `none`."""


def verify_spec_fits(spec: Attribute, type_: Attribute) -> None:
    """A per-channel spec's axis must be a dimension of the value it quantizes: the
    passes index the value's shape with it (and the observer its tensor)."""
    axis = spec.channel_axis if isinstance(spec, QuantSpecAttr) else None
    if axis is None:
        return
    shape = type_.get_shape() if isinstance(type_, ShapedType) else None
    if shape is None or axis >= len(shape):
        raise VerifyException(f"per-channel axis {axis} is out of range for a value of type {type_}")
    block = spec.block.data
    if block and (len(shape) != 2 or (shape[1] >= 0 and shape[1] % block)):
        raise VerifyException(f"groups of {block} need a 2-d value whose rows they divide, got {type_}")


def _float_text(value: float) -> str:
    text = repr(float(value))
    return text.replace("e", ".0e") if "e" in text and "." not in text else text


# --------------------------------------------------------------------------
# Operations.
# --------------------------------------------------------------------------


def _verify_stats(stats: DictionaryAttr | None, spec: Attribute, type_: Attribute) -> None:
    """The statistics' shape, as the observers write them (see `qir.observers`): scalars
    `min`, `max`, arrays for a per-channel observer, an array of `bins` for a histogram.
    Their values (finite, min <= max, the bin count) are for `convert` to judge."""
    if stats is None:
        return
    unknown = set(stats.data) - {"min", "max", "bins"}
    if unknown:
        raise VerifyException(f"unknown statistics {sorted(unknown)} (expected min, max, bins)")
    if ("min" in stats.data) != ("max" in stats.data):
        raise VerifyException("statistics need both min and max")
    if not stats.data:
        return
    if not isinstance(spec, QuantSpecAttr):
        raise VerifyException(f"an observer with fixed parameters has no statistics, got {stats}")
    if "min" not in stats.data:
        raise VerifyException("statistics need both min and max")
    per_channel = spec.channel_axis is not None or spec.smoothing is not None
    for key in ("min", "max"):
        value = stats.data[key]
        if per_channel and not _is_float_array(value):
            raise VerifyException(f"statistic {key} of a per-channel observer must be an array<f64: ...>, "
                                  f"got {value}")
        if not per_channel and not (isinstance(value, FloatAttr) and isinstance(value.type, Float64Type)):
            raise VerifyException(f"statistic {key} must be an f64 number, got {value}")
    if per_channel:
        channels = {len(stats.data["min"]), len(stats.data["max"])}
        shape = type_.get_shape() if isinstance(type_, ShapedType) else ()
        axis = len(shape) - 1 if spec.channel_axis is None else spec.channel_axis  # smoothed: the last
        size = shape[axis] if 0 <= axis < len(shape) else -1
        if spec.block.data and size >= 0:  # one entry per group of each channel
            size = size * shape[1] // spec.block.data if len(shape) == 2 and shape[1] >= 0 else -1
        if len(channels) != 1:
            raise VerifyException(f"statistics min and max must have one entry per channel each, got "
                                  f"{len(stats.data['min'])} and {len(stats.data['max'])}")
        if size >= 0 and channels != {size}:
            raise VerifyException(f"statistics for {channels.pop()} channels, but axis {axis} "
                                  f"of {type_} has {size}")
    histogram = spec.observer.data == "histogram"
    if histogram != ("bins" in stats.data):
        raise VerifyException("the statistics of a histogram observer, and only they, have bins")
    if histogram and not _is_float_array(stats.data["bins"]):
        raise VerifyException(f"statistic bins must be an array<f64: ...>, got {stats.data['bins']}")


def _is_float_array(value: Attribute) -> bool:
    return isinstance(value, DenseArrayBase) and isinstance(value.elt_type, Float64Type)


class _ObserverLike(IRDLOperation):
    T: ClassVar = VarConstraint("T", AnyAttr())

    input = operand_def(T)
    output = result_def(T)
    spec = prop_def(QuantSpecAttr | FixedQParamsAttr | CastSpecAttr)
    obs_id = prop_def(StringAttr, prop_name="id")
    stats = opt_prop_def(DictionaryAttr)

    irdl_options = (ParsePropInAttrDict(),)
    assembly_format = "$input attr-dict `:` type($input)"

    def __init__(self, input: SSAValue | Operation, spec: Attribute, obs_id: str,
                 stats: DictionaryAttr | None = None):
        """One operand, one result of its type, no variadics for IRDL's generic builder to
        check or flatten: the op is built directly, as `Operation.create` builds it
        (`insert-observers` builds thousands; the verifier checks them once)."""
        value = SSAValue.get(input)
        Operation.__init__(self, operands=[value], result_types=[value.type],
                           properties={"id": StringAttr(obs_id), "spec": spec,
                                       **({"stats": stats} if stats is not None else {})})

    def verify_(self) -> None:
        verify_spec_fits(self.spec, self.input.type)
        _verify_stats(self.stats, self.spec, self.input.type)


@irdl_op_definition
class ObserveOp(_ObserverLike):
    """Identity that records the range of the values passing through (calibration)."""

    name = "obs.observe"


@irdl_op_definition
class FakeQuantOp(_ObserverLike):
    """Quantize-dequantize in float, observing as it goes: quantization-aware training.

        %o = obs.fake_quant %r {id = "obs3", spec = #obs.spec<u8[0:255], affine, moving_minmax, group 3>,
                                stats = {min = 0.0, max = 5.1}} : tensor<1x8xf32>

    The forward rounds and clamps with the parameters its statistics give; the gradient
    passes straight through inside the range (`qir.fake_quant`). `frozen`: the statistics
    no longer learn; `disabled`: the forward does not quantize (values pass unchanged).
    `convert` treats it as an `obs.observe` with the same statistics."""

    name = "obs.fake_quant"

    frozen = opt_prop_def(UnitAttr)
    disabled = opt_prop_def(UnitAttr)

    def __init__(self, input: SSAValue | Operation, spec: Attribute, obs_id: str,
                 stats: DictionaryAttr | None = None, frozen: bool = False, disabled: bool = False):
        super().__init__(input, spec, obs_id, stats)
        if frozen:
            self.properties["frozen"] = UnitAttr()
        if disabled:
            self.properties["disabled"] = UnitAttr()


Obs = Dialect(
    "obs",
    [ObserveOp, FakeQuantOp],
    [QuantSpecAttr, FixedQParamsAttr, DerivedSpecAttr, CastSpecAttr, SharedSpecAttr],
)

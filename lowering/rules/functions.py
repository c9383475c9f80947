"""The functions a rule may call, and how their Python results become attributes.

A rule computes with named Python functions rather than with an expression
language of its own: `scale(%y)`, `attr(%y, "padding")`, or whatever a
backend registers (`prepack_layout(%w)`). Arguments arrive as xDSL objects —
an `SSAValue` for `%v`, a tuple of them for a variadic `%vs`, the bound
`Attribute` (or None) for `$cap`, an `Attribute` for a literal — so a
function can use the whole xDSL API. Results may be attributes or plain
Python; `to_attribute` converts them once, in one place, so that a rule
compares `rank(%x) == 4` with the same `4 : i64` that the literal `4` parses to.

The built-ins below cover what lowering rules ask of types and quantization
parameters; every one takes a value or a type (`scale($ty)` works as
`scale(%y)` does).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from xdsl.dialects.builtin import (
    AnyFloat,
    ArrayAttr,
    DenseArrayBase,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    NoneAttr,
    NoneType,
    Signedness,
    StringAttr,
    TensorType,
    f64,
    i1,
    i64,
)
from xdsl.ir import Attribute, Operation, OpResult, SSAValue, TypeAttribute

from qir.dialects.aten import AtenOp
from qir.dialects.quant import QuantizedType, UniformQuantizedPerAxisType, UniformQuantizedType

# --------------------------------------------------------------------------
# Python ↔ attributes.
# --------------------------------------------------------------------------


_SCALARS: dict[type, Callable[[Any], Attribute]] = {
    bool: lambda v: IntegerAttr(int(v), i1),
    int: lambda v: IntegerAttr(v, i64),
    float: lambda v: FloatAttr(v, f64),
    str: StringAttr,
}
_SCALAR_CACHE_SIZE = 4096
_scalar_cache: dict[tuple[type, Any], Attribute] = {}
"""Built attributes of plain scalars: xDSL attributes are immutable, and building one
(with its checks) costs more than matching the op it goes on."""


def to_attribute(value: Any) -> Attribute | None:
    """A function's result as an attribute (None stays None: "absent").

    int → `IntegerAttr` i64, float → `FloatAttr` f64, str → `StringAttr`, bool →
    `BoolAttr` (`true`), a list or tuple of ints → `array<i64: ...>`, of numbers with
    a float among them → `array<f64: ...>`, of attributes → `ArrayAttr`. `NoneAttr`
    and the `none` type are None, as an absent entry is."""
    kind = type(value)
    if kind in _SCALARS:
        key = (kind, value)
        attribute = _scalar_cache.get(key)
        if attribute is None:
            if len(_scalar_cache) >= _SCALAR_CACHE_SIZE:
                _scalar_cache.clear()
            attribute = _scalar_cache[key] = _SCALARS[kind](value)
        return attribute
    if value is None or kind is NoneAttr or kind is NoneType:
        return None
    if isinstance(value, Attribute):
        return value
    if isinstance(value, bool):
        return IntegerAttr(int(value), i1)
    if isinstance(value, int):
        return IntegerAttr(value, i64)
    if isinstance(value, float):
        return FloatAttr(value, f64)
    if isinstance(value, str):
        return StringAttr(value)
    if isinstance(value, list | tuple):
        items = list(value)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            return DenseArrayBase.from_list(i64, items)
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in items):
            return DenseArrayBase.from_list(f64, [float(v) for v in items])
        if all(isinstance(v, Attribute) for v in items):
            return ArrayAttr(items)
    raise TypeError(f"cannot make an attribute of {type(value).__name__} {value!r}")


def comparable(value: Any) -> Any:
    """The form in which two expression results are compared by `==` / `!=`.

    Values (and tuples of values) compare by identity; everything else as the
    attribute `to_attribute` makes of it."""
    if isinstance(value, SSAValue):
        return value
    if isinstance(value, tuple) and value and all(isinstance(v, SSAValue) for v in value):
        return value
    return to_attribute(value)


def truth(value: Any) -> bool:
    """Whether a condition holds: True/False, `true`/`false` (i1), or None (false)."""
    if value is None or isinstance(value, NoneAttr | NoneType):
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, IntegerAttr) and value.type == i1:
        return bool(value.value.data)
    raise TypeError(f"a condition must be true or false, got {value!r}")


# --------------------------------------------------------------------------
# Arguments.
# --------------------------------------------------------------------------


def _type(x: SSAValue | Attribute) -> Attribute:
    if isinstance(x, SSAValue):
        return x.type
    if isinstance(x, Attribute):
        return x
    raise TypeError(f"expected a value or a type, got {x!r}")


def _element(x: SSAValue | Attribute) -> Attribute:
    type_ = _type(x)
    return type_.element_type if isinstance(type_, TensorType) else type_


def _quantized(x: SSAValue | Attribute, what: str) -> QuantizedType:
    element = _element(x)
    if not isinstance(element, QuantizedType):
        raise ValueError(f"{what}: {_type(x)} is not quantized")
    return element


def _tensor(x: SSAValue | Attribute, what: str) -> TensorType:
    type_ = _type(x)
    if not isinstance(type_, TensorType):
        raise ValueError(f"{what}: {type_} is not a tensor type")
    return type_


def _int(x: Any, what: str) -> int:
    if isinstance(x, IntegerAttr):
        return x.value.data
    if isinstance(x, int):
        return x
    raise TypeError(f"{what}: expected an integer, got {x!r}")


def _str(x: Any, what: str) -> str:
    if isinstance(x, StringAttr):
        return x.data
    if isinstance(x, str):
        return x
    raise TypeError(f"{what}: expected a string, got {x!r}")


def op_entry(op: Operation, key: str) -> Attribute | None:
    """The entry `key` of an op's printed attribute dictionary, wherever it is stored.

    Kernel ops keep some entries as properties and some as discardable attributes
    (`qir.dialects.kernel.KernelOp.attribute_or_property`); every op is read that way.
    An `aten.op` is read by its operator's argument names first (`approximate` of
    `gelu.default`, its default value when the call leaves it out), then by its
    discardable attributes (`module`)."""
    if isinstance(op, AtenOp):
        return aten_argument(op, key)
    return entry(op, key)


def entry(op: Operation, key: str) -> Attribute | None:
    """`op_entry` of an op known not to be an `aten.op` (what matching calls, many times)."""
    value = op.properties.get(key)
    if value is None:
        value = op.attributes.get(key)
    return value


def aten_argument(op, key: str) -> Attribute | None:
    """An `aten.op` argument by its schema name (see `op_entry`); None when absent."""
    if op.kwargs is not None and key in op.kwargs.data:
        return op.kwargs.data[key]
    position = _argument_position(op.target.data, key)
    if position is not None:
        index, default = position
        if index is not None and index < len(op.args.data):
            return op.args.data[index]
        return default
    return op.attributes.get(key)


_ARGUMENT_POSITIONS: dict[tuple[str, str], tuple[int | None, Attribute | None] | None] = {}


def _argument_position(target: str, key: str) -> tuple[int | None, Attribute | None] | None:
    """(positional index or None for keyword-only, default attribute) of a schema argument."""
    cache_key = (target, key)
    if cache_key in _ARGUMENT_POSITIONS:
        return _ARGUMENT_POSITIONS[cache_key]
    from qir.dialects.aten import resolve_overload, schema_of, to_attr

    found = None
    schema = schema_of(target)
    if schema is not None and schema.arg(key) is not None:
        positional = [a.name for a in schema.positional]
        index = positional.index(key) if key in positional else None
        default = None
        for argument in resolve_overload(target)._schema.arguments:
            if argument.name == key and argument.has_default_value():
                try:
                    default = to_attribute(to_attr(argument.default_value, []))
                except TypeError:  # a torch enum or device: no attribute spells it
                    default = None
        found = (index, default)
    _ARGUMENT_POSITIONS[cache_key] = found
    return found


# --------------------------------------------------------------------------
# Built-ins.
# --------------------------------------------------------------------------


def type_(x: SSAValue | Attribute) -> Attribute:
    """The type of a value (a type is its own type)."""
    return _type(x)


def element(x: SSAValue | Attribute) -> Attribute:
    """The element type of a tensor (`!quant.uniform<...>`, `f32`); a scalar type itself."""
    return _element(x)


def shape(x: SSAValue | Attribute) -> tuple[int, ...]:
    """The static shape, `-1` for a dynamic dimension."""
    return tuple(_tensor(x, "shape").get_shape())


def rank(x: SSAValue | Attribute) -> int:
    return _tensor(x, "rank").get_num_dims()


def dim(x: SSAValue | Attribute, index: IntegerAttr | int) -> int:
    """The size of dimension `index` (negative counts from the end; `-1` if dynamic)."""
    sizes = _tensor(x, "dim").get_shape()
    i = _int(index, "dim")
    if not -len(sizes) <= i < len(sizes):
        raise ValueError(f"dim: index {i} out of range for rank {len(sizes)}")
    return sizes[i]


def attr(x: SSAValue, name: StringAttr | str) -> Attribute | None:
    """An entry of the attribute dictionary of the op that defines `x` (None if absent
    or if `x` is a block argument)."""
    if not isinstance(x, SSAValue):
        raise TypeError(f"attr: expected a value, got {x!r}")
    if not isinstance(x, OpResult):
        return None
    return op_entry(x.op, _str(name, "attr"))


def scale(x: SSAValue | Attribute) -> float:
    """The scale of a per-tensor quantized tensor."""
    q = _quantized(x, "scale")
    if not isinstance(q, UniformQuantizedType):
        raise ValueError(f"scale: {_type(x)} is quantized per channel (use scales)")
    return q.scale


def zero_point(x: SSAValue | Attribute) -> int:
    """The zero point of a per-tensor quantized tensor."""
    q = _quantized(x, "zero_point")
    if not isinstance(q, UniformQuantizedType):
        raise ValueError(f"zero_point: {_type(x)} is quantized per channel (use zero_points)")
    return q.zero_point


def scales(x: SSAValue | Attribute) -> tuple[float, ...]:
    """Every scale: one per channel, or the one scale of a per-tensor type."""
    q = _quantized(x, "scales")
    return q.scales if isinstance(q, UniformQuantizedPerAxisType) else (q.scale,)


def zero_points(x: SSAValue | Attribute) -> tuple[int, ...]:
    q = _quantized(x, "zero_points")
    return q.zero_points if isinstance(q, UniformQuantizedPerAxisType) else (q.zero_point,)


def axis(x: SSAValue | Attribute) -> int | None:
    """The quantized axis of a per-channel type; None per tensor."""
    q = _quantized(x, "axis")
    return q.axis if isinstance(q, UniformQuantizedPerAxisType) else None


def qmin(x: SSAValue | Attribute) -> int:
    """The smallest storage value the type may use (`-127` for `i8<-127:127>`)."""
    return _quantized(x, "qmin").storage_min


def qmax(x: SSAValue | Attribute) -> int:
    return _quantized(x, "qmax").storage_max


def storage(x: SSAValue | Attribute) -> str | None:
    """The storage of a quantized type (`"u8"`, `"i8"`, `"i4"`), the spelling of an
    integer element type (`"i32"`, `"ui8"`), or None for anything else."""
    element_ = _element(x)
    if isinstance(element_, QuantizedType):
        return f"{'i' if element_.is_signed else 'u'}{element_.storage_width}"
    if isinstance(element_, IntegerType):
        prefix = {Signedness.SIGNLESS: "i", Signedness.SIGNED: "si", Signedness.UNSIGNED: "ui"}
        return f"{prefix[element_.signedness.data]}{element_.width.data}"
    return None


def is_quantized(x: SSAValue | Attribute) -> bool:
    return isinstance(_element(x), QuantizedType)


def is_per_tensor(x: SSAValue | Attribute) -> bool:
    return isinstance(_element(x), UniformQuantizedType)


def is_per_channel(x: SSAValue | Attribute) -> bool:
    return isinstance(_element(x), UniformQuantizedPerAxisType)


def is_float(x: SSAValue | Attribute) -> bool:
    return isinstance(_element(x), AnyFloat)


def is_param(x: SSAValue) -> bool:
    """Whether `x` is a weight, buffer or constant (`aten.param`)."""
    from qir.dialects.aten import ParamOp

    return isinstance(x, OpResult) and isinstance(x.op, ParamOp)


def has_one_use(x: SSAValue) -> bool:
    if not isinstance(x, SSAValue):
        raise TypeError(f"has_one_use: expected a value, got {x!r}")
    return x.has_one_use()


def len_(x: Sequence[Any] | ArrayAttr | DenseArrayBase) -> int:
    """The number of values of a variadic `%xs`, or of entries of an array attribute."""
    if isinstance(x, ArrayAttr):
        return len(x.data)
    if isinstance(x, DenseArrayBase):
        return len(x)
    if isinstance(x, tuple | list):
        return len(x)
    raise TypeError(f"len: expected variadic values or an array, got {x!r}")


BUILTINS: Mapping[str, Callable[..., Any]] = {
    "type": type_,
    "element": element,
    "shape": shape,
    "rank": rank,
    "dim": dim,
    "attr": attr,
    "scale": scale,
    "zero_point": zero_point,
    "scales": scales,
    "zero_points": zero_points,
    "axis": axis,
    "qmin": qmin,
    "qmax": qmax,
    "storage": storage,
    "is_quantized": is_quantized,
    "is_per_tensor": is_per_tensor,
    "is_per_channel": is_per_channel,
    "is_float": is_float,
    "is_param": is_param,
    "has_one_use": has_one_use,
    "len": len_,
}
"""The functions every rule set has; a backend's functions are added to (or override) these."""


# --------------------------------------------------------------------------
# Arity, for checking calls when the rules are loaded.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Arity:
    """How many positional arguments a function takes (`most` None: any number)."""

    least: int
    most: int | None

    def accepts(self, n: int) -> bool:
        return self.least <= n and (self.most is None or n <= self.most)

    def __str__(self) -> str:
        if self.most == self.least:
            return f"{self.least} argument{'' if self.least == 1 else 's'}"
        if self.most is None:
            return f"at least {self.least} arguments"
        return f"{self.least} to {self.most} arguments"


def arity(fn: Callable[..., Any]) -> Arity | None:
    """The positional arity of `fn`, or None when Python cannot tell (some built-ins)."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    least, most = 0, 0
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            most += 1
            if parameter.default is parameter.empty:
                least += 1
        elif parameter.kind == parameter.VAR_POSITIONAL:
            return Arity(least, None)
        elif (parameter.kind == parameter.KEYWORD_ONLY and parameter.default is parameter.empty
              and parameter.name != "target"):  # the target is given to a function taking it
            return None  # needs a keyword a rule cannot give: let the call fail and say so
    return Arity(least, most)


def takes_target(fn: Callable[..., Any]) -> bool:
    """Whether `fn` takes the target the rules are applied for, as a keyword-only `target`."""
    try:
        parameter = inspect.signature(fn).parameters.get("target")
    except (TypeError, ValueError):
        return False
    return parameter is not None and parameter.kind == parameter.KEYWORD_ONLY


def function_table(functions: Mapping[str, Callable[..., Any]] | None) -> dict[str, Callable[..., Any]]:
    """The built-ins with `functions` added; names must be identifiers, values callables."""
    table = dict(BUILTINS)
    for name, fn in (functions or {}).items():
        if not (isinstance(name, str) and name.isidentifier()):
            raise ValueError(f"rule function names must be identifiers, got {name!r}")
        if not callable(fn):
            raise TypeError(f"rule function {name!r} is not callable: {fn!r}")
        table[name] = fn
    return table

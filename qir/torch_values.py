"""Torch's values as IR attributes and back: dtypes, memory formats, layouts, devices.

The `aten` dialect describes the IR: an `aten.op`'s non-tensor arguments are attributes
(`#aten.dtype<float32>`, `#aten.memory_format<channels_last>`, `i64` and `f64` numbers),
its tensors have MLIR element types (`f32`, `ui8`, `complex<f32>`). Which torch object each
of those stands for is a question of the layers that meet torch: the importer
(torch → attributes), the emitter and `fold-constants` (attributes → torch's objects, to
call the operator). They ask it here, so the dialect needs no torch beyond the operator
schemas it verifies against.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from xdsl.dialects.builtin import (
    ArrayAttr,
    ComplexType,
    IntegerType,
    Signedness,
    bf16,
    f16,
    f32,
    f64,
    i1,
    i8,
    i16,
    i32,
    i64,
)
from xdsl.ir import Attribute

from qir.dialects.aten import (
    DeviceAttr,
    DTypeAttr,
    LayoutAttr,
    MemoryFormatAttr,
    OperandAttr,
    TrainingModeAttr,
    from_attr,
)

ELEMENT_TYPES: dict[str, Attribute] = {
    "float32": f32,
    "float64": f64,
    "float16": f16,
    "bfloat16": bf16,
    "int64": i64,
    "int32": i32,
    "int16": i16,
    "int8": i8,
    "uint8": IntegerType(8, Signedness.UNSIGNED),
    "bool": i1,
    "complex64": ComplexType(f32),
    "complex128": ComplexType(f64),
}
"""torch dtype name (without "torch.") → MLIR element type."""

DTYPE_NAMES: dict[Attribute, str] = {t: n for n, t in ELEMENT_TYPES.items()}
"""MLIR element type → torch dtype name."""


def enum_attr(value: Any) -> Attribute | None:
    """A `torch.dtype`, `torch.memory_format`, `torch.layout` or `torch.device` argument as its
    attribute (`#aten.dtype<float32>`, ...); None for any other value."""
    if isinstance(value, torch.dtype):
        return DTypeAttr(str(value).removeprefix("torch."))
    if isinstance(value, torch.memory_format):
        return MemoryFormatAttr(str(value).removeprefix("torch."))
    if isinstance(value, torch.layout):
        return LayoutAttr(str(value).removeprefix("torch."))
    if isinstance(value, torch.device):
        return DeviceAttr(str(value))
    return None


def torch_argument(attr: Attribute, operand: Callable[[int], Any],
                   training: Callable[[str], Any] | None = None) -> Any:
    """An argument attribute as torch receives it: dtypes, memory formats, layouts and devices as
    torch's objects, operand `i` as `operand(i)` (an FX node when emitting, a tensor when folding),
    a training mode as `training(switch)` (what reads it at run time; without it, the mode is a
    run-time value that no constant stands for: an error)."""
    if isinstance(attr, OperandAttr):
        return operand(attr.index.data)
    if isinstance(attr, ArrayAttr):
        return [torch_argument(a, operand, training) for a in attr.data]
    if isinstance(attr, TrainingModeAttr):
        if training is None:
            raise ValueError(f"{attr} is decided when the module runs, not a constant")
        return training(attr.value.data)
    if isinstance(attr, DeviceAttr):
        return torch.device(attr.value.data)
    if isinstance(attr, DTypeAttr | MemoryFormatAttr | LayoutAttr):
        return getattr(torch, attr.value.data)
    return from_attr(attr, ())

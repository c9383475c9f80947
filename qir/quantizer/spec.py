"""The PT2E quantization specs, as Python values that become `obs` attributes.

These are the concepts of torchao's PT2E (`QuantizationSpec`,
`SharedQuantizationSpec`, `DerivedQuantizationSpec`,
`FixedQParamsQuantizationSpec`, `QuantizationConfig`), with one difference: a
shared or derived spec names one of the op's own operands or results rather
than an FX node, because annotations live on the op in the IR.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import torch
from xdsl.ir import Attribute

from qir.dialects.obs import (
    CastSpecAttr,
    DerivedSpecAttr,
    FixedQParamsAttr,
    QuantSpecAttr,
    SharedSpecAttr,
)

_STORAGE = {torch.uint8: "u8", torch.int8: "i8", torch.uint16: "u16", torch.int16: "i16",
            torch.int32: "i32", torch.uint4: "u4", torch.int4: "i4"}
_RANGES = {"u8": (0, 255), "i8": (-128, 127), "u16": (0, 65535), "i16": (-32768, 32767),
           "i32": (-(2**31), 2**31 - 1), "u4": (0, 15), "i4": (-8, 7)}
_CASTS = {torch.float16: "f16", torch.bfloat16: "bf16"}
"""Float dtypes a spec may store values in without a scale (weight-only float16)."""

# torch.ao observer classes a PT2E user may name, by the kind of observer qir runs.
_OBSERVER_NAMES = {
    "MinMaxObserver": "minmax",
    "MovingAverageMinMaxObserver": "moving_minmax",
    "HistogramObserver": "histogram",
    "PerChannelMinMaxObserver": "per_channel_minmax",
    "MovingAveragePerChannelMinMaxObserver": "per_channel_minmax",
    "PlaceholderObserver": "minmax",  # PT2E's observer of a dynamic spec: the run-time min/max
}


def _storage(dtype: torch.dtype) -> str:
    if dtype not in _STORAGE:
        raise ValueError(f"cannot quantize to {dtype} (supported: {', '.join(map(str, _STORAGE))})")
    return _STORAGE[dtype]


def _range(storage: str, quant_min: int | None, quant_max: int | None) -> tuple[int, int]:
    lo, hi = _RANGES[storage]
    return (lo if quant_min is None else quant_min, hi if quant_max is None else quant_max)


@dataclass(frozen=True)
class QuantizationSpec:
    """How a value is quantized: storage dtype and range, scheme, granularity, observer."""

    dtype: torch.dtype
    quant_min: int | None = None
    quant_max: int | None = None
    qscheme: torch.qscheme = torch.per_tensor_affine
    ch_axis: int | None = None
    is_dynamic: bool = False
    observer: str | type = "minmax"
    """An observer kind (`minmax`, `moving_minmax`, `histogram`, `per_channel_minmax`)
    or the torch.ao observer class of the same name."""
    int16_pairs: int | None = None
    """For a weight: the largest activation storage magnitude its kernel multiplies it by, when
    that kernel adds pairs of products in int16 with saturation (x86 without VNNI). `convert`
    then widens the scale of each channel just enough that no pair can overflow, so the kernel
    computes exactly what the quantized program says (see `qir.accumulation`)."""
    per_token: bool = False
    """With `is_dynamic`: one scale and zero point per row of the last dimension (per token),
    chosen at run time, rather than one for the whole tensor."""
    group_size: int | None = None
    """With a per-channel `qscheme` on a 2-d weight (channels along axis 0): a scale and zero
    point per `group_size` consecutive elements of each row (group-wise, sub-channel
    quantization, as torchao's `PerGroup(group_size)`), observed with `per_group_minmax`."""
    smoothing: float | None = None
    """On a linear's static per-tensor input: SmoothQuant's migration strength alpha in [0, 1].
    The input is observed per channel (its last dimension) with min/max, and before convert each
    channel is divided by a scale that the linear's weight columns take on (`smooth-quant`), so
    that a few channels of large values no longer set the range of all. Set it through
    `QuantizationConfig.smoothing`, which puts it on linear inputs only."""

    @property
    def per_channel(self) -> bool:
        return self.qscheme in (torch.per_channel_affine, torch.per_channel_symmetric)

    def to_attr(self) -> QuantSpecAttr | CastSpecAttr:
        if self.dtype in _CASTS:  # PT2E's float16 spec: a cast, no parameters
            return CastSpecAttr(_CASTS[self.dtype])
        storage = _storage(self.dtype)
        qmin, qmax = _range(storage, self.quant_min, self.quant_max)
        symmetric = self.qscheme in (torch.per_tensor_symmetric, torch.per_channel_symmetric)
        observer = self.observer
        if isinstance(observer, type):
            observer = _OBSERVER_NAMES.get(observer.__name__, observer.__name__)
        if self.per_channel:
            observer = "per_channel_minmax" if self.group_size is None else "per_group_minmax"
            axis = 0 if self.ch_axis is None else self.ch_axis
        else:
            axis = None
        if self.per_token and not self.is_dynamic:
            raise ValueError("per_token is a granularity of dynamic quantization: give is_dynamic=True too")
        if self.smoothing is not None:
            if self.is_dynamic or self.per_channel or not 0.0 <= self.smoothing <= 1.0:
                raise ValueError("smoothing is a migration strength in [0, 1] for a static per-tensor spec")
            observer = "minmax"  # the smoothed range is derived from each channel's
        if self.group_size is not None and (not self.per_channel or axis != 0 or self.group_size < 1):
            raise ValueError("group_size groups the rows of a per-channel spec along axis 0 (a weight [out, in]): "
                             "give qscheme=torch.per_channel_symmetric or per_channel_affine, ch_axis=0")
        return QuantSpecAttr(storage, qmin, qmax, "symmetric" if symmetric else "affine",
                             observer, axis, self.is_dynamic, int16_pairs=self.int16_pairs or 0,
                             per_token=self.per_token, block=self.group_size or 0, smooth=self.smoothing)


@dataclass(frozen=True)
class SharedQuantizationSpec:
    """The same parameters as another operand (`kind="operand"`) or result of the op."""

    kind: str
    index: int = 0

    @classmethod
    def operand(cls, index: int = 0) -> "SharedQuantizationSpec":
        return cls("operand", index)

    @classmethod
    def result(cls, index: int = 0) -> "SharedQuantizationSpec":
        return cls("result", index)

    def to_attr(self) -> SharedSpecAttr:
        return SharedSpecAttr(self.kind, self.index)


@dataclass(frozen=True)
class DerivedQuantizationSpec:
    """Scale = product of the scales of the op's operands `derived_from`, zero point 0
    (an int32 bias: input scale × weight scale)."""

    derived_from: tuple[int, ...] = (0, 1)
    dtype: torch.dtype = torch.int32
    quant_min: int | None = None
    quant_max: int | None = None

    def to_attr(self) -> DerivedSpecAttr:
        storage = _storage(self.dtype)
        qmin, qmax = _range(storage, self.quant_min, self.quant_max)
        return DerivedSpecAttr(self.derived_from, storage, qmin, qmax)


@dataclass(frozen=True)
class FixedQParamsQuantizationSpec:
    """Parameters fixed by the op's output range (sigmoid: [0, 1] → scale 1/256)."""

    dtype: torch.dtype
    scale: float
    zero_point: int
    quant_min: int | None = None
    quant_max: int | None = None

    def to_attr(self) -> FixedQParamsAttr:
        storage = _storage(self.dtype)
        qmin, qmax = _range(storage, self.quant_min, self.quant_max)
        return FixedQParamsAttr(storage, qmin, qmax, self.scale, self.zero_point)


Spec = QuantizationSpec | SharedQuantizationSpec | DerivedQuantizationSpec | FixedQParamsQuantizationSpec


def spec_attr(spec: Spec | None) -> Attribute | None:
    return None if spec is None else _attr_of(spec)


@lru_cache(maxsize=1024)
def _attr_of(spec: Spec) -> Attribute:
    """A quantizer asks for the attributes of the same few specs at every op it annotates; specs
    are frozen and attributes immutable values, so each is built (and verified) once."""
    return spec.to_attr()


@dataclass(frozen=True)
class QuantizationConfig:
    """What a quantizer applies to an op: specs for activations in and out, weight and bias."""

    input_activation: QuantizationSpec | None
    output_activation: QuantizationSpec | None
    weight: QuantizationSpec | None
    bias: QuantizationSpec | DerivedQuantizationSpec | None = None
    is_qat: bool = False
    smoothing: float | None = None
    """SmoothQuant (Xiao et al., 2023) on the inputs of this config's linears: the migration
    strength alpha in [0, 1] (0.5 is the paper's default) with which `smooth-quant` moves the
    range of each input channel into the weight's column before the input is quantized per
    tensor. For activations with a few channels of outsized values (a transformer's LayerNorm
    outputs). Other ops of the config are quantized as without it."""

    def __post_init__(self) -> None:
        if self.smoothing is None:
            return
        if self.is_qat or not 0.0 <= self.smoothing <= 1.0:
            raise ValueError(f"smoothing takes a migration strength in [0, 1] for post-training "
                             f"quantization, got {self.smoothing}{' with is_qat' if self.is_qat else ''}")
        activation = self.input_activation
        if activation is None or activation.is_dynamic or activation.per_channel:
            raise ValueError("smoothing needs a static per-tensor input_activation spec")

    def linear_input(self) -> QuantizationSpec | None:
        """The spec of a linear's input under this config: smoothed when `smoothing` is set."""
        if self.smoothing is None:
            return self.input_activation
        return replace(self.input_activation, smoothing=self.smoothing)

"""Between `obs` attributes and the observers of `qir.observers`.

A spec attribute becomes an `ObserverSpec`, statistics travel as a
`stats = {min = ..., max = ..., bins = array<f64: ...>}` dictionary on the
`obs.observe` op, and quantization parameters come back as the
`!quant.uniform` type a converted value gets.
"""

from __future__ import annotations

import sys
from array import array

import torch
from xdsl.dialects.builtin import BytesAttr, DenseArrayBase, DictionaryAttr, FloatAttr, f64
from xdsl.ir import Attribute
from xdsl.utils.exceptions import VerifyException

from qir.dialects.obs import FixedQParamsAttr, QuantSpecAttr
from qir.dialects.quant import UniformQuantizedPerAxisType, UniformQuantizedSubChannelType, UniformQuantizedType
from qir.observers import ObserverSpec, qparams_many


def observer_spec(spec: QuantSpecAttr) -> ObserverSpec:
    """How values of `spec` are observed; a smoothed spec's, per channel along the last dimension
    (the linear's inputs), which is how `smooth-quant` finds the scales and the smoothed range."""
    smoothed = spec.smoothing is not None
    return ObserverSpec(observer="per_channel_minmax" if smoothed else spec.observer.data, qmin=spec.qmin.data,
                        qmax=spec.qmax.data, symmetric=spec.symmetric, axis=-1 if smoothed else spec.channel_axis,
                        signed=spec.signed, group_size=spec.block.data or None)


def stats_to_attr(stats: dict) -> DictionaryAttr:
    """The `stats` dictionary of an op; lists (or 1-d float64 tensors, taken as their bytes) as
    f64 arrays."""
    entries: dict[str, Attribute] = {}
    for key, value in stats.items():
        if isinstance(value, torch.Tensor):
            entries[key] = DenseArrayBase(f64, BytesAttr(_tensor_f64_bytes(value)))
        elif isinstance(value, list | tuple):
            entries[key] = DenseArrayBase(f64, BytesAttr(_f64_bytes(value)))
        else:
            entries[key] = FloatAttr(float(value), f64)
    return DictionaryAttr(entries)


def stats_from_attr(attr: DictionaryAttr | None) -> dict:
    """The statistics an op carries; f64 arrays as 1-d float64 tensors over their bytes (a
    histogram's thousands of bins never become Python floats), which `qir.observers` takes."""
    if attr is None:
        return {}
    stats = {}
    for key, value in attr.data.items():
        if isinstance(value, DenseArrayBase) and value.elt_type == f64 and len(value) and sys.byteorder == "little":
            stats[key] = torch.frombuffer(bytearray(value.data.data), dtype=torch.float64)
        elif isinstance(value, DenseArrayBase):
            stats[key] = list(value.get_values())
        else:
            stats[key] = float(value.value.data)
    return stats


def _tensor_f64_bytes(values: torch.Tensor) -> bytes:
    """`_f64_bytes` of a 1-d tensor's values, copied as they are where the layout is xDSL's."""
    if sys.byteorder != "little":
        return _f64_bytes(values.tolist())
    return values.detach().double().contiguous().numpy().tobytes()


def _f64_bytes(values) -> bytes:
    """Little-endian float64 bytes of `values` (xDSL's layout of an f64 dense array)."""
    packed = array("d", values)
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tobytes()


def quantized_type(spec: QuantSpecAttr | FixedQParamsAttr, stats: dict,
                   shape: tuple[int, ...] | None = None) -> Attribute:
    """The `!quant.uniform` type of a value of `shape` observed with `spec` and `stats` (a
    sub-channel one for a per-group spec, whose table has the value's rows and groups)."""
    (result,) = quantized_types([(spec, stats, shape)])
    if isinstance(result, ValueError):
        raise result
    return result


def quantized_types(observed: list[tuple[QuantSpecAttr | FixedQParamsAttr, dict, tuple[int, ...] | None]]
                    ) -> list[Attribute | ValueError]:
    """`quantized_type` of each `(spec, stats, shape)`, or the ValueError it raises, in order;
    the parameters of all of them computed together (`qir.observers.qparams_many`)."""
    measured = [index for index, (spec, _, _) in enumerate(observed) if not isinstance(spec, FixedQParamsAttr)]
    computed = qparams_many([(observer_spec(observed[i][0]), observed[i][1]) for i in measured])
    parameters: dict[int, tuple | ValueError] = dict(zip(measured, computed))
    results: list[Attribute | ValueError] = []
    for index, (spec, _, shape) in enumerate(observed):
        found = parameters.get(index)
        try:
            if isinstance(found, ValueError):
                raise found
            results.append(_type_of(spec, found, shape))
        except ValueError as err:
            results.append(err)
    return results


def _type_of(spec: QuantSpecAttr | FixedQParamsAttr, parameters: tuple | None,
             shape: tuple[int, ...] | None) -> Attribute:
    storage = spec.storage.data
    qmin, qmax = spec.qmin.data, spec.qmax.data
    if isinstance(spec, FixedQParamsAttr):
        return UniformQuantizedType.get(storage, spec.scale.data, spec.zero_point.data,
                                        storage_min=qmin, storage_max=qmax)
    scale, zero_point = parameters
    try:
        if spec.block.data:
            import torch

            if shape is None or len(shape) != 2:
                raise ValueError(f"groups of {spec.block.data} need the shape of the 2-d value they group")
            table = [shape[0], len(scale) // max(shape[0], 1)]
            return UniformQuantizedSubChannelType.get(
                storage, torch.tensor(scale, dtype=torch.float64).numpy().tobytes(),
                torch.tensor(zero_point, dtype=torch.int64).numpy().tobytes(), table,
                {0: 1, 1: spec.block.data}, storage_min=qmin, storage_max=qmax)
        if spec.channel_axis is not None:
            return UniformQuantizedPerAxisType.get(storage, scale, zero_point, spec.channel_axis,
                                                   storage_min=qmin, storage_max=qmax)
        return UniformQuantizedType.get(storage, float(scale), int(zero_point), storage_min=qmin,
                                        storage_max=qmax)
    except VerifyException as err:  # a range too wide for float32 scales ([-3e38, 3e38]: scale inf)
        raise ValueError(f"its statistics give no valid quantized type: {err}") from None

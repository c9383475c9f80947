"""Sub-channel (block-wise, group-wise) quantized types with torch: their tables as tensors, and
quantization and dequantization exactly as the per-axis `quantized_decomposed` ops compute them.

A `!quant.uniform<u4:f32:{0:1, 1:32}, {...}>` value is its integer storage, one value per byte
(`container_dtype_name`); its table of scales and zero points has one entry per block. Expanded
to the value's shape (each entry repeated over its block), the arithmetic is the per-channel one:

    quantize:    q = clamp(round(x * (1 / s)) + zp, qmin, qmax)      (float32, half to even)
    dequantize:  x = (float32(q) - zp) * s                            (float32)

which is what `quantized_decomposed.quantize_per_channel` / `dequantize_per_channel` (and
`dequantize_per_channel_group`, whose `(q - zp) * s` is the same float32 value) compute.
"""

from __future__ import annotations

import torch

from qir.dialects.quant import UniformQuantizedSubChannelType


def table(qtype: UniformQuantizedSubChannelType) -> tuple[torch.Tensor, torch.Tensor]:
    """The scales (float32, as the kernels and the decomposed ops take them) and zero points
    (int64), each of the table's shape."""
    shape = qtype.scale_table_shape
    scales = torch.frombuffer(bytearray(qtype.scales_bytes), dtype=torch.float64).reshape(shape)
    zero_points = torch.frombuffer(bytearray(qtype.zero_points_bytes), dtype=torch.int64).reshape(shape)
    return scales.float(), zero_points


def expand(entries: torch.Tensor, block_shape) -> torch.Tensor:
    """A table expanded to the value's shape: each entry repeated over its block."""
    for dim, block in enumerate(block_shape):
        if block != 1:
            entries = entries.repeat_interleave(block, dim=dim)
    return entries


def quantize_blocks(x: torch.Tensor, scales: torch.Tensor, zero_points: torch.Tensor, block_shape,
                    qmin: int, qmax: int, dtype: torch.dtype) -> torch.Tensor:
    """`clamp(round(x * (1 / s)) + zp, qmin, qmax)` with the table expanded over its blocks."""
    inv_scale = 1.0 / expand(scales, block_shape)
    q = torch.clamp(torch.round(x.float() * inv_scale) + expand(zero_points, block_shape), qmin, qmax)
    return q.to(dtype)


def dequantize_blocks(q: torch.Tensor, scales: torch.Tensor, zero_points: torch.Tensor, block_shape) -> torch.Tensor:
    """`(float32(q) - zp) * s` with the table expanded over its blocks."""
    return (q.to(torch.float32) - expand(zero_points, block_shape)) * expand(scales, block_shape)


def quantize(x: torch.Tensor, qtype: UniformQuantizedSubChannelType) -> torch.Tensor:
    """The integer storage of `x` (float32) quantized to `qtype`."""
    scales, zero_points = table(qtype)
    return quantize_blocks(x, scales, zero_points, qtype.block_shape(tuple(x.shape)), qtype.storage_min,
                           qtype.storage_max, getattr(torch, qtype.container_dtype_name))


def dequantize(q: torch.Tensor, qtype: UniformQuantizedSubChannelType) -> torch.Tensor:
    """The float32 values the storage `q` stands for."""
    scales, zero_points = table(qtype)
    return dequantize_blocks(q, scales, zero_points, qtype.block_shape(tuple(q.shape)))


def row_groups(qtype: UniformQuantizedSubChannelType, shape) -> int | None:
    """The group size when `qtype` groups the rows of a 2-d value (`{0:1, 1:g}`, the form of a
    group-wise weight `[out, in]`), else None."""
    if len(shape) != 2 or len(qtype.scale_table_shape) != 2:
        return None
    rows, group = qtype.block_shape(tuple(shape))
    return group if rows == 1 and group > 1 else None


def dequantize_weight(storage: torch.Tensor, element) -> torch.Tensor:
    """The float32 tensor a weight-only weight stands for: `(float32(q) - zp) * s` for any
    quantized type with its parameters (per tensor, per axis, sub-channel), the exact float32
    value of a float16 / bfloat16 one."""
    from qir.dialects.quant import UniformQuantizedPerAxisType, UniformQuantizedType

    if isinstance(element, UniformQuantizedSubChannelType):
        return dequantize(storage, element)
    if isinstance(element, UniformQuantizedPerAxisType):
        shape = [1] * storage.dim()
        shape[element.axis] = -1
        scales = torch.tensor(element.scales, dtype=torch.float32).reshape(shape)
        zero_points = torch.tensor(element.zero_points, dtype=torch.int64).reshape(shape)
        return (storage.to(torch.float32) - zero_points) * scales
    if isinstance(element, UniformQuantizedType):
        return (storage.to(torch.float32) - element.zero_point) * torch.tensor(element.scale, dtype=torch.float32)
    return storage.to(torch.float32)


def weight_bytes(program, kinds: tuple[str, ...] = ("parameter",)) -> int:
    """The bytes a program's weights need at their storage width: an `i4`/`u4` value is half a
    byte (the parameter store and the `.safetensors` file hold one per byte; kernels pack two),
    a quantized type's scales float32 and its zero points at the storage width (a sub-channel
    table per block, a per-axis type per channel), any other tensor its dtype's size. Only
    `aten.param`s of `kinds` count (buffers, such as a KV cache, are not weights)."""
    from qir.dialects.aten import ParamOp
    from qir.dialects.quant import QuantizedType, UniformQuantizedPerAxisType

    bits = 0
    for op in program.module.walk():
        if not isinstance(op, ParamOp) or op.kind.data not in kinds:
            continue
        type_ = op.result.type
        numel = 1
        for d in type_.get_shape():
            numel *= d
        element = type_.element_type
        if isinstance(element, QuantizedType):
            width = element.storage_width
            if isinstance(element, UniformQuantizedSubChannelType):
                entries = len(element.scales_bytes) // 8
            elif isinstance(element, UniformQuantizedPerAxisType):
                entries = len(element.scales)
            else:
                entries = 1
            bits += numel * width + entries * (32 + width)
        else:
            bits += numel * program.tensor(op).element_size() * 8
    return bits // 8

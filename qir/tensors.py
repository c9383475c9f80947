"""Torch tensors and dtypes against IR types: the one place the two meet."""

from __future__ import annotations

import torch
from xdsl.dialects.builtin import DYNAMIC_INDEX, DenseIntOrFPElementsAttr, TensorType
from xdsl.ir import Attribute

from qir.torch_values import DTYPE_NAMES, ELEMENT_TYPES


def torch_dtype(element_type: Attribute) -> torch.dtype:
    """The torch dtype of an IR element type (`f32` → torch.float32)."""
    name = DTYPE_NAMES.get(element_type)
    if name is None:
        storage = getattr(element_type, "container_dtype_name", None)
        if storage is not None:  # a !quant.uniform type: its integer storage (i4/u4 one per byte)
            return getattr(torch, storage)
        raise ValueError(f"no torch dtype for element type {element_type}")
    return getattr(torch, name)


def element_type(dtype: torch.dtype) -> Attribute:
    element = ELEMENT_TYPES.get(str(dtype).removeprefix("torch."))
    if element is None:
        raise ValueError(f"tensors of dtype {dtype} are not supported")
    return element


def tensor_matches_type(tensor: torch.Tensor, type_: Attribute) -> str | None:
    """Why `tensor` does not fit the IR type `type_`, or None when it does."""
    if not isinstance(type_, TensorType):
        return f"expected a tensor type, the IR says {type_}"
    shape = tuple(type_.get_shape())
    if len(shape) != tensor.dim() or any(s not in (DYNAMIC_INDEX, t) for s, t in zip(shape, tensor.shape)):
        return f"tensor of shape {tuple(tensor.shape)} does not match {type_}"
    try:
        expected = torch_dtype(type_.element_type)
    except ValueError as err:
        return str(err)
    if tensor.dtype != expected:
        return f"tensor of dtype {tensor.dtype} does not match {type_}"
    return None


def dense_to_tensor(value: DenseIntOrFPElementsAttr) -> torch.Tensor:
    """An inline `dense<...>` value as a tensor of its type's dtype and shape."""
    type_ = value.get_type()
    dtype = torch_dtype(type_.element_type)
    shape = tuple(type_.get_shape())
    values = value.get_values()
    tensor = torch.tensor(list(values), dtype=dtype)
    numel = 1
    for s in shape:
        numel *= s
    if tensor.numel() == 1 and numel != 1:  # a splat
        return tensor.expand(shape).clone()
    return tensor.reshape(shape)


def per_axis_tables(qtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The scales (float64) and zero points (int64) of a per-axis quantized type as 1-d tensors
    read from the bytes of its dense tables: no Python number per channel."""
    return (torch.frombuffer(bytearray(qtype.scales_attr.data.data), dtype=torch.float64),
            torch.frombuffer(bytearray(qtype.zero_points_attr.data.data), dtype=torch.int64))


def type_of(tensor: torch.Tensor) -> TensorType:
    """The IR tensor type of a (static-shaped) tensor."""
    return TensorType(element_type(tensor.dtype), tuple(tensor.shape))

"""The check an emitted module makes of its inputs, as `torch.export`'s modules do.

A program's inputs have types (`tensor<?x32xi64>`): a rank, a dtype, and each
dimension either fixed or free (`?`, exported with `dynamic_shapes`). A call
whose tensors do not fit would reach a kernel and fail there with torch's
message about some tensor deep inside the model, or, worse, compute with a
constant made for the fixed size. So the module checks first, and names the
input, the dimension and what the program expects.
"""

from __future__ import annotations

import torch
from xdsl.dialects.builtin import DYNAMIC_INDEX, TensorType

from qir.errors import QirError


class InputCheck(torch.nn.Module):
    """Called with the flat inputs of the program; raises `QirError` on the first that does not fit."""

    def __init__(self, names: list[str], types: list) -> None:
        super().__init__()
        from qir.tensors import torch_dtype

        self.expected: list[tuple[str, torch.dtype, tuple[int | None, ...]] | None] = []
        for name, type_ in zip(names, types):
            if not isinstance(type_, TensorType):
                self.expected.append(None)
                continue
            dims = tuple(None if d == DYNAMIC_INDEX else d for d in type_.get_shape())
            try:
                dtype = torch_dtype(type_.element_type)
            except ValueError:
                self.expected.append(None)
                continue
            self.expected.append((name, dtype, dims))

    def forward(self, *inputs) -> None:
        for value, expected in zip(inputs, self.expected):
            if expected is None:
                continue
            name, dtype, dims = expected
            if not isinstance(value, torch.Tensor):
                raise QirError(f"input {name!r}: expected a tensor, got {type(value).__name__}")
            if value.dim() != len(dims):
                raise QirError(f"input {name!r}: expected {len(dims)} dimensions {_shape(dims)}, got shape "
                               f"{tuple(value.shape)}")
            for axis, (size, want) in enumerate(zip(value.shape, dims)):
                if want is not None and size != want:
                    raise QirError(f"input {name!r}: dimension {axis} is {size}, the program expects {want} "
                                   f"(shape {_shape(dims)}; export with dynamic_shapes to leave it free)")
            if value.dtype != dtype:
                raise QirError(f"input {name!r}: expected dtype {dtype}, got {value.dtype}")

    def extra_repr(self) -> str:
        return ", ".join(f"{e[0]}: {_shape(e[2])} {e[1]}" for e in self.expected if e is not None)


def _shape(dims: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"

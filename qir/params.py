"""The parameter store: the tensors that `aten.param` ops name.

Weights stay out of the IR text (MLIR would keep them as `dense_resource`
blobs, which xDSL holds as hex strings, twice the memory): the store maps each
name to a `torch.Tensor`, and on disk it is a `.safetensors` file beside the
`.mlir` file. Passes never change a tensor in place; they put a new tensor
under a (new) name, so a copy of the store is cheap and a failed pipeline
leaves the caller's store as it was.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
import re
from pathlib import Path

import torch


class ParamStore(MutableMapping[str, torch.Tensor]):
    """Name → tensor, with safetensors I/O and fresh-name allocation."""

    def __init__(self, tensors: dict[str, torch.Tensor] | None = None):
        self._tensors: dict[str, torch.Tensor] = dict(tensors or {})

    def __getitem__(self, name: str) -> torch.Tensor:
        return self._tensors[name]

    def __setitem__(self, name: str, tensor: torch.Tensor) -> None:
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"parameter {name!r}: expected a tensor, got {type(tensor).__name__}")
        self._tensors[name] = tensor

    def __delitem__(self, name: str) -> None:
        del self._tensors[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def copy(self) -> "ParamStore":
        """A new store sharing the (never mutated) tensors."""
        return ParamStore(self._tensors)

    def fresh_name(self, base: str) -> str:
        """`base`, or `base_1`, `base_2`, ... whichever is not taken yet."""
        name, i = base, 0
        while name in self._tensors:
            i += 1
            name = f"{base}_{i}"
        return name

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self._tensors.values())

    def save(self, path: str | Path, names: set[str] | None = None) -> None:
        """Write the tensors (those in `names`, if given) to a safetensors file."""
        from safetensors.torch import save_file

        chosen = {
            n: t.detach().contiguous()
            for n, t in self._tensors.items()
            if names is None or n in names
        }
        save_file(_untie(chosen), str(path))

    @classmethod
    def load(cls, path: str | Path) -> "ParamStore":
        from safetensors.torch import load_file

        # Copies, not views of the file's buffer: those are not 64-byte aligned, and some CPU
        # kernels (depthwise convolution) round differently on unaligned data.
        return cls({name: t.clone() for name, t in load_file(str(path)).items()})


def _untie(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors sharing memory: give each shared one its own copy."""
    seen: set[tuple[int, int]] = set()
    out = {}
    for name, t in tensors.items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset())
        out[name] = t.clone() if key in seen and t.numel() else t
        seen.add(key)
    return out


def weights_path(mlir_path: str | Path) -> Path:
    """Where the weights of `model.mlir` live: `model.safetensors` beside it."""
    return Path(mlir_path).with_suffix(".safetensors")


def param_tensor(op, store: ParamStore) -> torch.Tensor:
    """The tensor an `aten.param` op stands for: its inline value, or the store's entry."""
    if op.value is not None:
        from qir.tensors import dense_to_tensor

        return dense_to_tensor(op.value)
    return store[op.param_name]


def constant_tensor(value, store: ParamStore | None) -> torch.Tensor | None:
    """The tensor behind an SSA value that is a constant: an `aten.param` (its integer storage
    when quantized), seen through `quant.scast`; None for anything else, or for a named
    parameter when there is no store to read it from."""
    from qir.dialects.aten import ParamOp
    from qir.dialects.quant import StorageCastOp

    owner = value.owner
    if isinstance(owner, StorageCastOp):
        owner = owner.input.owner
    if not isinstance(owner, ParamOp) or (store is None and owner.value is None):
        return None
    return param_tensor(owner, store)


def new_param(store: ParamStore, base_name: str, tensor: torch.Tensor, kind: str = "parameter",
              type_=None):
    """Put `tensor` in the store under a fresh name derived from `base_name`; the `aten.param` op for it.

    `type_` overrides the IR type (a quantized tensor type over the integer storage, say)."""
    from qir.dialects.aten import ParamOp
    from qir.tensors import type_of

    name = store.fresh_name(base_name)
    store[name] = tensor
    op = ParamOp(name, type_ if type_ is not None else type_of(tensor), kind)
    op.result.name_hint = "p_" + re.sub(r"\W", "_", name)
    return op

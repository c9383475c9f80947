"""fold-constants: compute once, at compile time, what the model computes from constants alone.

Before (weight normalization, as `torch.nn.utils.parametrizations.weight_norm` exports it):

    %g = aten.param parameter "fc.parametrizations.weight.original0" : tensor<4x1xf32>
    %v = aten.param parameter "fc.parametrizations.weight.original1" : tensor<4x8xf32>
    %w = aten.op "_weight_norm.default"(%v, %g) : (...) -> tensor<4x8xf32>
    %y = aten.op "linear.default"(%x, %w, %b) : (...) -> tensor<2x4xf32>

After (one new parameter in the store; the store's tensors are never changed):

    %w = aten.param parameter "fc._weight_norm" : tensor<4x8xf32>
    %y = aten.op "linear.default"(%x, %w, %b) : (...) -> tensor<2x4xf32>

Why: a quantizer finds a layer's weight as an `aten.param` operand. A weight the
forward computes from parameters (weight or spectral normalization, a transposed,
scaled or standardized weight, a slice of a shared table) reaches the layer as an
activation, so the layer stays float, or is quantized as if its weight were data
(an observer, a quantize per call). Folding makes it the constant it is, and the
rest of the pipeline (fold-bn, annotate, prepacking) sees an ordinary weight.

What folds: a pure ATen op (`qir.dialects.aten.is_pure`: not random, writing no
argument) whose operands are all `aten.param`s that nothing writes (no `aten.param_update`,
no in-place op, directly or through a view: `qir.aliasing.Mutations`), whose results are
tensors of static shape that no op writes in place and no `aten.param_update` writes back
(a constant must not change), and no larger than its operands (or 1 MiB):
folding must not turn a small `expand` into megabytes of weights. Ops fold in
order, so a chain folds whole; operands left unused are erased. The result is
computed by the op's own torch kernel, so it is exactly what the model computed.
Each fold counts as `folded`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.rewriter import InsertPoint, Rewriter

from qir.aliasing import Mutations
from qir.context import params_of
from qir.dialects.aten import (
    AtenOp,
    ParamOp,
    ParamUpdateOp,
    is_pure,
    resolve_overload,
)
from qir.params import ParamStore, new_param, param_tensor
from qir.pass_manager import QirPass, count
from qir.tensors import tensor_matches_type, torch_dtype
from qir.torch_values import torch_argument

SMALL_BYTES = 1 << 20
"""A folded result may be this large whatever its operands' size (masks, position tables)."""


def _bytes(types) -> int:
    return sum(torch_dtype(t.element_type).itemsize * t.element_count() for t in types)


@dataclass
class _Folder:
    store: ParamStore
    ctx: Context
    module: ModuleOp

    @cached_property
    def mutations(self) -> Mutations:
        """What is written in place: analysed at the first op that reads only parameters, before
        anything is folded (a program may have none such)."""
        return Mutations.of(self.module)

    def sources(self, op: AtenOp) -> list[ParamOp] | None:
        """The constant `aten.param`s `op` reads, or None when it reads anything else."""
        sources = [value.owner for value in op.operands]
        if not all(isinstance(s, ParamOp) for s in sources) or any(self.mutations.written(v) for v in op.operands):
            return None
        return sources

    def foldable(self, op: AtenOp, sources: list[ParamOp]) -> bool:
        if not op.results or op.target.data.startswith("py::") or not is_pure(op):
            return False
        types = [r.type for r in op.results]
        if not all(isinstance(t, TensorType) and t.has_static_shape() for t in types):
            return False
        if any(self.mutations.written(r) or any(isinstance(u.operation, ParamUpdateOp) for u in r.uses)
               for r in op.results):
            return False  # written in place or written back: a constant must not change
        return _bytes(types) <= max(_bytes(s.result.type for s in sources), SMALL_BYTES)

    def fold(self, op: AtenOp, sources: list[ParamOp]) -> None:
        target = resolve_overload(op.target.data)
        if target is None:
            return
        tensors = [param_tensor(s, self.store) for s in sources]
        args = [torch_argument(a, tensors.__getitem__) for a in op.args.data]
        kwargs = {k: torch_argument(v, tensors.__getitem__) for k, v in (op.kwargs.data.items() if op.kwargs else ())}
        try:
            with torch.no_grad():
                values = target(*args, **kwargs)
        except Exception:  # noqa: BLE001 - what torch cannot compute here stays a computation
            return
        values = list(values) if isinstance(values, tuple | list) else [values]
        if len(values) != len(op.results) or any(
                not isinstance(v, torch.Tensor) or tensor_matches_type(v, r.type) is not None
                for v, r in zip(values, op.results)):
            return
        kind = "parameter" if any(s.kind.data == "parameter" for s in sources) else "constant"
        # Named beside what it came from, never below a tensor's name (`a.b` must not make a
        # tensor `a` a module): `fc.mul_folded` in the op's module, or `pos_ids_slice`.
        module = op.attributes.get("module")
        if module is not None and module.data:
            base = f"{module.data}.{op.op_name}_folded"
        else:
            base = f"{sources[0].param_name}_{op.op_name}" if sources else f"{op.op_name}_folded"
        folded = [new_param(self.store, base, v.detach().clone().contiguous(), kind) for v in values]
        rewriter = Rewriter()
        rewriter.insert_op(folded, InsertPoint.before(op))
        rewriter.replace_op(op, [], [f.result for f in folded])
        for source in set(sources):
            if not source.result.uses:
                rewriter.erase_op(source)
        count(self.ctx, "folded")


@dataclass(frozen=True)
class FoldConstants(QirPass):
    """Compute the ops that read only constants once, as new constants."""

    name = "fold-constants"
    requires = ("float",)

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        folder = _Folder(params_of(ctx), ctx, op)
        for candidate in list(op.walk()):
            if isinstance(candidate, AtenOp) and candidate.parent is not None:
                sources = folder.sources(candidate)
                if sources is not None and folder.foldable(candidate, sources):
                    folder.fold(candidate, sources)

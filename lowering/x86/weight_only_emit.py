"""How the x86 dialect's weight-only ops (`weight_only_ops`) become torch calls.

Registered in the quantized kernels' emission table by kernel name, so the x86 dialect's
emission covers them with its other ops. Weights are packed once, when the module is built
(`weight_only_pack`, `linear_prepack_fp16`, `embedding_pack`: registered on the module); the
running module calls `qir.lowering.weight_only_kernels.linear` (inductor's generated kernels,
compiled on first use per shape), fbgemm's `quantized.linear_dynamic_fp16`, or
`weight_only_kernels.embedding`.
"""

from __future__ import annotations

import torch

from qir.dialects.quant import UniformQuantizedPerAxisType, UniformQuantizedSubChannelType
from qir.dialects.ref import element, embedding_bag_args
from qir.emitter import Emitter
from qir.errors import QirError
from qir.lowering.quantized_kernels.emit import _rule
from qir.lowering.weight_only_kernels import kernels
from qir.lowering.x86 import weight_only_ops as w


def _constant(em: Emitter, op, value, what: str) -> torch.Tensor:
    tensor = em.constant(value)
    if tensor is None:
        raise QirError(f"{op.name}: the {what} must be a parameter (it is packed when the module is built)")
    return tensor


def _parameters(qtype, shape) -> tuple[torch.Tensor, torch.Tensor, int | None]:
    """Scales and zero points of a weight per row (`[N]`) or per group (`[N, G]`), its group."""
    from qir.blockwise import table

    if isinstance(qtype, UniformQuantizedSubChannelType):
        scales, zero_points = table(qtype)
        return scales, zero_points, qtype.block_shape(tuple(shape))[1]
    if isinstance(qtype, UniformQuantizedPerAxisType):
        return (torch.tensor(qtype.scales, dtype=torch.float32), torch.tensor(qtype.zero_points, dtype=torch.int64),
                None)
    rows = shape[0]
    return (torch.full((rows,), qtype.scale, dtype=torch.float32),
            torch.full((rows,), qtype.zero_point, dtype=torch.int64), None)


def _register(em: Emitter, op, what: str, packed) -> None:
    name = (op.weight.name_hint or "weight").removeprefix("p_")
    em.nodes[op.output] = em.new_attr(f"packed.{name}_{what}", packed)


@_rule("weight_only_pack")
def _emit_weight_only_pack(em: Emitter, op: w.WeightOnlyPack) -> None:
    qtype = element(op.weight)
    storage = _constant(em, op, op.weight, "weight")
    scales, zero_points, group = _parameters(qtype, storage.shape)
    packed = kernels.pack(storage, scales, zero_points, qtype.storage_width, qtype.is_signed, group)
    _register(em, op, "woq", packed)


@_rule("weight_only_linear")
def _emit_weight_only_linear(em: Emitter, op: w.WeightOnlyLinear) -> None:
    bias = em.node(op.bias) if op.bias is not None else None
    em.bind(op, em.call(kernels.linear, (em.node(op.input), em.node(op.packed), bias),
                        name=op.output.name_hint))


@_rule("linear_prepack_fp16")
def _emit_linear_prepack_fp16(em: Emitter, op: w.LinearPrepackFp16) -> None:
    weight = _constant(em, op, op.weight, "weight").float()
    bias = _constant(em, op, op.bias, "bias").float() if op.bias is not None else None
    _register(em, op, "fp16", torch.ops.quantized.linear_prepack_fp16(weight, bias))


@_rule("linear_fp16")
def _emit_linear_fp16(em: Emitter, op: w.LinearFp16) -> None:
    em.bind(op, em.call(torch.ops.quantized.linear_dynamic_fp16.default, (em.node(op.input), em.node(op.packed)),
                        name=op.output.name_hint))


@_rule("embedding_pack")
def _emit_embedding_pack(em: Emitter, op: w.EmbeddingPack) -> None:
    qtype = element(op.weight)
    storage = _constant(em, op, op.weight, "table")
    if not hasattr(qtype, "storage_width"):  # float16 / bfloat16 rows
        packed = kernels.pack_table(storage, None, None, None, False)
    else:
        scales, zero_points, _ = _parameters(qtype, storage.shape)
        packed = kernels.pack_table(storage, scales, zero_points, qtype.storage_width, qtype.is_signed)
    _register(em, op, "table", packed)


@_rule("embedding_lookup")
def _emit_embedding_lookup(em: Emitter, op: w.EmbeddingLookup) -> None:
    em.bind(op, em.call(kernels.embedding, (em.node(op.indices), em.node(op.table)), name=op.output.name_hint))


@_rule("embedding_rows_pack")
def _emit_embedding_rows_pack(em: Emitter, op: w.EmbeddingRowsPack) -> None:
    qtype = element(op.weight)
    storage = _constant(em, op, op.weight, "table")
    scales, zero_points, _ = _parameters(qtype, storage.shape)
    _register(em, op, "rows", kernels.pack_rows_for_fbgemm(storage, scales, zero_points, qtype.is_signed))


_BAG_KERNELS = {w.EmbeddingBagLookup: kernels.embedding_bag, w.EmbeddingBagRowwise: kernels.embedding_bag_rowwise}
"""The two kernels of bags take the same arguments: indices, offsets, per-sample weights, the
packed table, then the mode, `include_last_offset` and `padding_idx`."""


@_rule("embedding_bag_lookup", "embedding_bag_rowwise")
def _emit_embedding_bag(em: Emitter, op: w.EmbeddingBagLookup | w.EmbeddingBagRowwise) -> None:
    _, mode, _, last, padding_idx = embedding_bag_args(op)
    weights = em.node(op.per_sample_weights) if op.per_sample_weights is not None else None
    args = (em.node(op.indices), em.node(op.offsets), weights, em.node(op.table), mode, last, padding_idx)
    em.bind(op, em.call(_BAG_KERNELS[type(op)], args, name=op.output.name_hint))

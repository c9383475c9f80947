"""How the `quant` and `obs` ops become torch calls.

The quantized stage is emitted as torchao's `convert_pt2e` emits it:
`quantized_decomposed` quantize/dequantize calls around float ATen ops, on
plain integer tensors, so that `torch.compile` recognises the patterns.
Observers become calls of observer modules (one module per observer id, so
values that share parameters share the statistics).
"""

from __future__ import annotations

from operator import getitem as _getitem

import torch
import torch.ao.quantization.fx._decomposed  # noqa: F401  (registers torch.ops.quantized_decomposed)

from qir.dialects.aten import ParamOp
from qir.dialects.obs import FakeQuantOp, FixedQParamsAttr, ObserveOp
from qir.dialects.quant import (
    ChooseQParamsOp,
    DequantizeCastOp,
    DynamicDequantizeCastOp,
    DynamicQuantizeCastOp,
    QuantizeCastOp,
    StorageCastOp,
    UniformQuantizedPerAxisType,
    UniformQuantizedSubChannelType,
)
from qir.emitter import Emitter, emits, folds
from qir.observation import observer_spec, stats_from_attr
from qir.observers import make_observer
from qir.tensors import per_axis_tables

_decomposed = torch.ops.quantized_decomposed


def _qparams_args(em: Emitter, qtype, name: str) -> tuple:
    """The (scale, zero point[, axis], qmin, qmax, dtype) arguments for `qtype` (the dtype of the
    tensor holding the storage: int8/uint8 for 4-bit storage)."""
    dtype = getattr(torch, qtype.container_dtype_name)
    if isinstance(qtype, UniformQuantizedPerAxisType):
        name = f"{name}_{len(em.attrs)}"  # one pair of tensors per call: names never collide
        scales, zero_points = per_axis_tables(qtype)
        scales = em.get_attr(f"{name}.scales", scales.float(), "constant")
        zero_points = em.get_attr(f"{name}.zero_points", zero_points, "constant")
        return (scales, zero_points, qtype.axis, qtype.storage_min, qtype.storage_max, dtype)
    return (qtype.scale, qtype.zero_point, qtype.storage_min, qtype.storage_max, dtype)


def _is_per_axis(qtype) -> bool:
    return isinstance(qtype, UniformQuantizedPerAxisType)


def _emit_cast(em: Emitter, op, per_tensor, per_channel, default_name: str) -> None:
    qtype = op.quantized_type
    name = op.results[0].name_hint or default_name
    if isinstance(qtype, UniformQuantizedSubChannelType):
        _emit_subchannel_cast(em, op, qtype, name, quantize=default_name == "q")
        return
    target = per_channel if _is_per_axis(qtype) else per_tensor
    em.bind(op, em.call(target, (em.node(op.input), *_qparams_args(em, qtype, f"qparams.{name}")), name=name))


def _emit_subchannel_cast(em: Emitter, op, qtype: UniformQuantizedSubChannelType, name: str, quantize: bool) -> None:
    """A sub-channel cast, its table a pair of constants: a dequantize of groups along the rows
    of a 2-d value is `quantized_decomposed.dequantize_per_channel_group` (the group-wise form of
    torchao and ExecuTorch); anything else `qir.blockwise`'s arithmetic, the per-channel ops'
    expanded over the blocks (`quantize_per_channel_group` rounds `x / s + zp`, not the
    per-channel ops' `x / s`, then adds `zp`)."""
    from qir import blockwise

    shape = op.input.type.get_shape()
    if any(d < 0 for d in shape):
        raise ValueError(f"a sub-channel cast needs a static shape, got {op.input.type}")
    scales, zero_points = blockwise.table(qtype)
    prefix = f"qparams.{name}_{len(em.attrs)}"
    group = blockwise.row_groups(qtype, shape)
    if group is not None and not quantize:
        scales = em.get_attr(f"{prefix}.scales", scales.reshape(-1), "constant")
        zero_points = em.get_attr(f"{prefix}.zero_points", zero_points.reshape(-1), "constant")
        args = (em.node(op.input), scales, zero_points, qtype.storage_min, qtype.storage_max,
                getattr(torch, qtype.container_dtype_name), group, torch.float32)
        em.bind(op, em.call(_decomposed.dequantize_per_channel_group.default, args, name=name))
        return
    scales = em.get_attr(f"{prefix}.scales", scales, "constant")
    zero_points = em.get_attr(f"{prefix}.zero_points", zero_points, "constant")
    blocks = list(qtype.block_shape(tuple(shape)))
    if quantize:
        args = (em.node(op.input), scales, zero_points, blocks, qtype.storage_min, qtype.storage_max,
                getattr(torch, qtype.container_dtype_name))
        em.bind(op, em.call(blockwise.quantize_blocks, args, name=name))
    else:
        em.bind(op, em.call(blockwise.dequantize_blocks, (em.node(op.input), scales, zero_points, blocks), name=name))


@emits("quant.qcast")
def _emit_qcast(em: Emitter, op: QuantizeCastOp) -> None:
    _emit_cast(em, op, _decomposed.quantize_per_tensor.default, _decomposed.quantize_per_channel.default, "q")


@emits("quant.dcast")
def _emit_dcast(em: Emitter, op: DequantizeCastOp) -> None:
    _emit_cast(em, op, _decomposed.dequantize_per_tensor.default, _decomposed.dequantize_per_channel.default,
               "dq")


# -- dynamic quantization: parameters chosen at run time ---------------------------------------

EPS = torch.finfo(torch.float32).eps
"""The smallest scale `quant.choose_qparams` gives per tensor (torchao's dynamic quantization's)."""


def _storage_args(qtype) -> tuple:
    return (qtype.storage_min, qtype.storage_max, getattr(torch, qtype.storage_dtype_name))


@emits("quant.choose_qparams")
def _emit_choose_qparams(em: Emitter, op: ChooseQParamsOp) -> None:
    """torch's `quantized_decomposed` choose ops. Per tensor they return the scale as a float64
    tensor of one element (a float32 value) and the zero point as int64; per token the scales are
    made float32 and the zero points int64 here, as the `quant` dialect defines them."""
    qtype = op.quantized_type
    x = em.node(op.input)
    hint = op.scale.name_hint or "x_scale"
    if not op.per_token:
        choose = _decomposed.choose_qparams_symmetric.tensor if op.is_symmetric else _decomposed.choose_qparams.tensor
        node = em.call(choose, (x, qtype.storage_min, qtype.storage_max, EPS, getattr(torch, qtype.storage_dtype_name)),
                       name=f"{hint}_qparams")
        scale, zero_point = (em.call(_getitem, (node, i), name=n)
                             for i, n in ((0, hint), (1, op.zero_point.name_hint or "x_zero_point")))
    elif op.is_symmetric:
        node = em.call(_decomposed.choose_qparams_per_token.default, (x, torch.int8), name=f"{hint}_qparams")
        scale = em.call(_getitem, (node, 0), name=hint)
        zero_point = em.call(torch.ops.aten._to_copy.default, (em.call(_getitem, (node, 1)),),
                             {"dtype": torch.int64}, name=op.zero_point.name_hint or "x_zero_point")
    else:
        node = em.call(_decomposed.choose_qparams_per_token_asymmetric.default, (x, torch.int8),
                       name=f"{hint}_qparams")
        scale = em.call(torch.ops.aten._to_copy.default, (em.call(_getitem, (node, 0)),), {"dtype": torch.float32},
                        name=hint)
        zero_point = em.call(_getitem, (node, 1), name=op.zero_point.name_hint or "x_zero_point")
    em.nodes[op.scale] = scale
    em.nodes[op.zero_point] = zero_point


@emits("quant.dynamic_qcast")
def _emit_dynamic_qcast(em: Emitter, op: DynamicQuantizeCastOp) -> None:
    target = _decomposed.quantize_per_token.default if op.per_token else _decomposed.quantize_per_tensor.tensor
    args = (em.node(op.input), em.node(op.scale), em.node(op.zero_point), *_storage_args(op.quantized_type))
    em.bind(op, em.call(target, args, name=op.results[0].name_hint or "q"))


@emits("quant.dynamic_dcast")
def _emit_dynamic_dcast(em: Emitter, op: DynamicDequantizeCastOp) -> None:
    args = (em.node(op.input), em.node(op.scale), em.node(op.zero_point), *_storage_args(op.quantized_type))
    if op.per_token:
        node = em.call(_decomposed.dequantize_per_token.default, (*args, torch.float32),
                       name=op.results[0].name_hint or "dq")
    else:
        node = em.call(_decomposed.dequantize_per_tensor.tensor, args, name=op.results[0].name_hint or "dq")
    em.bind(op, node)


@emits("quant.scast")
def _emit_scast(em: Emitter, op: StorageCastOp) -> None:
    em.nodes[op.results[0]] = em.node(op.input)  # quantized values are already their integer storage


@folds("quant.scast")
def _fold_scast(em: Emitter, op: StorageCastOp, inputs: list) -> torch.Tensor:
    return inputs[0]


@emits("obs.observe")
def _emit_observe(em: Emitter, op: ObserveOp) -> None:
    if isinstance(op.input.owner, ParamOp) or not hasattr(op.spec, "observer") or op.spec.is_dynamic:
        # weights were observed at compile time; fixed ranges need no observer, dynamic ones none
        # either (their parameters are chosen when the converted program runs)
        em.nodes[op.output] = em.node(op.input)
        return
    target = f"observers.{op.obs_id.data}"
    if target not in em.modules:
        observer = make_observer(observer_spec(op.spec))
        observer.name = op.obs_id.data
        stats = stats_from_attr(op.stats)
        if stats:
            observer.load_stats(stats)
        em.modules[target] = observer
    em.nodes[op.output] = em.graph.call_module(target, (em.node(op.input),))


@emits("obs.fake_quant")
def _emit_fake_quant(em: Emitter, op: FakeQuantOp) -> None:
    from qir.accumulation import reduction_of
    from qir.fake_quant import FakeQuantize

    target = f"observers.{op.obs_id.data}"
    if target not in em.modules:
        spec = op.spec
        if isinstance(spec, FixedQParamsAttr):
            fake = FakeQuantize(fixed=(spec.scale.data, spec.zero_point.data, spec.qmin.data, spec.qmax.data))
        else:
            weight = _from_parameters(op.input)
            reduction = reduction_of(op.output) if weight and spec.int16_pairs.data else None
            fake = FakeQuantize(observer_spec(spec), weight=weight,
                                int16_pairs=(reduction, spec.int16_pairs.data) if reduction is not None else None)
            stats = stats_from_attr(op.stats)
            if stats:
                fake.load_stats(stats)
        fake.observing = op.frozen is None
        fake.quantizing = op.disabled is None
        em.modules[target] = fake
    em.nodes[op.output] = em.graph.call_module(target, (em.node(op.input),))


def _from_parameters(value) -> bool:
    """Whether `value` is computed from parameters alone (a weight, or a weight scaled by a batch
    norm's factor): its range is its own at every step, not learned over batches."""
    seen: set = set()
    stack = [value]
    while stack:
        value = stack.pop()
        owner = value.owner
        if isinstance(owner, ParamOp) or owner in seen:
            continue
        if not hasattr(owner, "operands") or not owner.operands:
            return False  # a block argument: the model's input
        seen.add(owner)
        stack.extend(owner.operands)
    return True

"""fold-bn: fold an eval-mode BatchNorm into the convolution or linear before it.

Before (the BatchNorm normalizes the conv's output channels with constant
statistics):

    %w = aten.param parameter "conv.weight" : tensor<4x3x3x3xf32>
    %g = aten.param parameter "bn.weight" : tensor<4xf32>
    ...
    %c = aten.op "conv2d.default"(%x, %w) : (...) -> tensor<1x4x6x6xf32>
    %y = aten.op "batch_norm.default"(%c, %g, %b, %mean, %var, false, 0.1, 1.0e-05, false)
           : (...) -> tensor<1x4x6x6xf32>
    func.return %y : tensor<1x4x6x6xf32>

After (two new parameters in the store; the old ones are erased once nothing
uses them, and the store's tensors are never changed in place):

    %w2 = aten.param parameter "conv.weight_folded" : tensor<4x3x3x3xf32>
    %b2 = aten.param parameter "conv.bias_folded" : tensor<4xf32>
    %c = aten.op "conv2d.default"(%x, %w2, %b2) : (...) -> tensor<1x4x6x6xf32>
    func.return %c : tensor<1x4x6x6xf32>

Why: quantization must see the weights the deployed model multiplies by. An
un-folded BatchNorm would be quantized (or left in float) on its own, the
conv's weight observed before the BatchNorm scales it, and the quantizer's
conv + relu unit would never form. With `s = gamma / sqrt(var + eps)` per
output channel, the fold is `w' = w * s` (in the weight's dtype, as QAT's
simulation computes it) and `b' = (b - mean) * s + beta` (in float64, cast back). The numbers are
those of `torch.nn.utils.fusion.fuse_conv_bn_weights`, which however raises
on grouped transposed convolutions; here they fold too.

What folds, and what is left alone:

* producers: `conv{1,2,3}d.*`, `conv_transpose{1,2,3}d.*`, `convolution` /
  `_convolution` (either `transposed` value), and `linear.default`. The
  output channel is axis 0 of the weight for convolutions and linear, and
  axis 1 *per group* for transposed convolutions, whose weight is
  `(in, out / groups, k...)`.
* BatchNorms: `batch_norm` and `native_batch_norm` / `_native_batch_norm_legit`
  with `training=False`, and `_native_batch_norm_legit_no_training` (only
  result 0 may be used); `affine=False` (no weight / bias) included.
* The BatchNorm's channel axis (axis 1 of its input) must be the producer's
  output-channel axis: a convolution folds only on batched input (an unbatched
  conv1d's `(C, L)` output is an `(N, C)` batch to BatchNorm1d), and a linear
  only when its output is 2-D `(N, C)`. On a 3-D linear output BatchNorm1d
  normalizes axis 1, which is not the linear's feature axis: torchao once
  folded that case and produced wrong weights (pytorch/ao#4116).
* The producer's result must have the BatchNorm as its only use, and its
  weight, bias and the BatchNorm's statistics must be `aten.param`s that no
  `aten.param_update` writes. Training-mode BatchNorm is never folded.
* At the observed stage, the form `simulate-bn` gives a QAT program folds too,
  once `set-training{mode=eval}` has made its batch norm eval-mode (`convert`'s
  pipeline): the weight's `obs.fake_quant` then reads the folded weight, with
  its statistics, and the program is the one PTQ gives (`qir.batch_norm`).

Each fold counts as `folded`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.ir import SSAValue
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint

from qir.batch_norm import Simulated, match_simulated, replace_args
from qir.context import params_of
from qir.dialects.obs import QuantSpecAttr
from qir.observation import observer_spec, stats_to_attr
from qir.observers import make_observer
from qir.aliasing import Mutations
from qir.dialects.aten import AtenOp, ParamOp
from qir.params import ParamStore, new_param, param_tensor
from qir.op_families import CONV as CONVS
from qir.op_families import CONV_TRANSPOSE as CONV_TRANSPOSES
from qir.op_families import GENERIC_CONV as GENERIC_CONVS
from qir.op_families import BATCH_NORMS, TRAINING_FLAG_BATCH_NORMS
from qir.pass_manager import QirPass, count



@dataclass(frozen=True)
class _Producer:
    """How a foldable producer lays out its output channels."""

    transposed: bool
    groups: int

    def out_channels(self, weight: torch.Tensor) -> int:
        return weight.shape[1] * self.groups if self.transposed else weight.shape[0]


def _producer_kind(op: AtenOp) -> _Producer | None:
    """The layout of a convolution or linear `op`, or None if `op` is neither (or is symbolic)."""
    name = op.op_name
    if name in CONVS or name == "linear":
        return _Producer(False, 1)
    if name in CONV_TRANSPOSES:
        transposed = True
    elif name in GENERIC_CONVS:
        transposed = op.arg("transposed")
        if not isinstance(transposed, bool):
            return None
    else:
        return None
    groups = op.arg("groups", 1)
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        return None
    return _Producer(transposed, groups)


def fold_weights(weight: torch.Tensor, bias: torch.Tensor | None, mean: torch.Tensor,
                 var: torch.Tensor, gamma: torch.Tensor | None, beta: torch.Tensor | None,
                 eps: float, transposed: bool = False, groups: int = 1
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The folded (weight, bias). Never writes its inputs.

    The weight is computed in its own dtype with the operations QAT's simulated form runs
    (`w * (gamma / sqrt(var + eps))`, `qir.batch_norm`), so that a trained model evaluated and
    the converted one quantize bit-identical weights (at 2 bits, one ulp moves a weight a
    whole step); the bias in float64, then cast."""
    dtype = weight.dtype
    std = torch.sqrt(var.to(dtype) + eps)
    factor = gamma.to(dtype) / std if gamma is not None else torch.reciprocal(std)
    if not transposed:  # (out, in / groups, k...) or linear's (out, in)
        w = weight * factor.reshape(-1, *([1] * (weight.dim() - 1)))
    else:  # (in, out / groups, k...): output channel g * (out / groups) + j sits at [g-th block, j]
        per_group = weight.shape[1]
        w = weight.reshape(groups, weight.shape[0] // groups, per_group, *weight.shape[2:])
        w = w * factor.reshape(groups, 1, per_group, *([1] * (weight.dim() - 2)))
        w = w.reshape(weight.shape)
    var64 = var.double()
    scale = (gamma.double() if gamma is not None else torch.ones_like(var64)) / torch.sqrt(var64 + eps)
    shift = beta.double() if beta is not None else torch.zeros_like(scale)
    b = bias.double() if bias is not None else torch.zeros_like(scale)
    new_bias = (b - mean.double()) * scale + shift
    return w, new_bias.to(dtype)


def _static_dim(value: SSAValue, axis: int) -> int | None:
    """Axis `axis` of `value`'s tensor type, or None when unknown (dynamic or not a tensor)."""
    type_ = value.type
    if not isinstance(type_, TensorType) or axis >= type_.get_num_dims():
        return None
    dim = type_.get_shape()[axis]
    return dim if dim >= 0 else None


@dataclass
class FoldBatchNormPattern(RewritePattern):
    """Folds one eval-mode BatchNorm into its producing convolution or linear."""

    store: ParamStore
    ctx: Context
    mutations: Mutations
    """What is written in place (through any view) or by `aten.param_update`: not constants."""

    def _constant(self, value: Any) -> ParamOp | None:
        """The `aten.param` `value` comes from, if it is a constant tensor."""
        if not isinstance(value, SSAValue) or not isinstance(value.owner, ParamOp):
            return None
        op = value.owner
        return None if self.mutations.written(op.result) else op

    @op_type_rewrite_pattern
    def match_and_rewrite(self, bn: AtenOp, rewriter: PatternRewriter, /):
        if bn.op_name not in BATCH_NORMS or not bn.results:
            return
        if bn.op_name in TRAINING_FLAG_BATCH_NORMS and bn.arg("training") is not False:
            return
        simulated = match_simulated(bn)
        if simulated is not None:
            self._fold_simulated(simulated, rewriter)
            return
        if any(r.uses for r in bn.results[1:]):
            return
        source = bn.arg("input")
        if not isinstance(source, SSAValue) or not isinstance(source.owner, AtenOp):
            return
        producer = source.owner
        kind = _producer_kind(producer)
        if kind is None or len(producer.results) != 1 or not source.has_one_use():
            return
        if source.type != bn.results[0].type:
            return

        # Constants only: the producer's weight and bias, the BatchNorm's statistics.
        weight_op = self._constant(producer.arg("weight"))
        bias_value = producer.arg("bias")
        bias_op = self._constant(bias_value)
        if weight_op is None or (bias_value is not None and bias_op is None):
            return
        stats = {n: bn.arg(n) for n in ("weight", "bias", "running_mean", "running_var")}
        stat_ops = {n: self._constant(v) for n, v in stats.items()}
        if stats["running_mean"] is None or stats["running_var"] is None:
            return
        if any(v is not None and stat_ops[n] is None for n, v in stats.items()):
            return
        eps = bn.arg("eps")
        if not isinstance(eps, float | int) or isinstance(eps, bool):
            return

        weight = param_tensor(weight_op, self.store)
        bias = param_tensor(bias_op, self.store) if bias_op is not None else None
        gamma, beta, mean, var = (
            param_tensor(stat_ops[n], self.store) if stat_ops[n] is not None else None
            for n in ("weight", "bias", "running_mean", "running_var")
        )

        # Shapes: the BatchNorm's channel axis (1) must be the producer's output-channel axis.
        # A linear's output must be (N, C); a convolution's (N, C, ...), i.e. batched (its weight
        # has the output's rank: (out, in, k...)), never the unbatched (C, ...).
        if weight.dim() < 2 or _rank(source) != weight.dim():
            return
        if producer.op_name == "linear" and weight.dim() != 2:
            return
        if kind.transposed and weight.shape[0] % kind.groups:
            return
        channels = kind.out_channels(weight)
        if _static_dim(source, 1) != channels:
            return
        if any(t is not None and (t.shape != (channels,) or not t.is_floating_point())
               for t in (bias, gamma, beta, mean, var)):
            return
        if not weight.is_floating_point():
            return

        new_weight, new_bias = fold_weights(weight, bias, mean, var, gamma, beta, float(eps),
                                            kind.transposed, kind.groups)
        name = weight_op.param_name
        base = name.rpartition(".")[0] if "." in name else name
        w_op = new_param(self.store, f"{base}.weight_folded", new_weight)
        b_op = new_param(self.store, f"{base}.bias_folded", new_bias)
        args, kwargs = replace_args(producer, weight=w_op.result, bias=b_op.result)
        folded = AtenOp(producer.target.data, args, kwargs, [source.type], dict(producer.attributes))
        folded.location = producer.location
        folded.results[0].name_hint = source.name_hint

        rewriter.insert([w_op, b_op, folded], InsertPoint.before(producer))
        rewriter.replace(bn, [], [folded.results[0], *([None] * (len(bn.results) - 1))])
        rewriter.erase(producer)
        for op in {weight_op, bias_op, *stat_ops.values()} - {None}:
            if not op.result.uses:
                rewriter.erase(op)
        count(self.ctx, "folded")


    def _fold_simulated(self, sim: Simulated, rewriter: PatternRewriter) -> None:
        """Fold the form `simulate-bn` left (QAT) once its batch norm is in eval mode: the
        producer gets the folded weight and bias, as PTQ's fold gives them, and the weight's
        fake quantization observes the folded weight."""
        bn, producer = sim.bn, sim.producer
        stats = {n: bn.arg(n) for n in ("weight", "bias", "running_mean", "running_var")}
        stat_ops = {n: self._constant(v) for n, v in stats.items()}
        if self._constant(sim.weight.result) is None or any(
                v is not None and stat_ops[n] is None for n, v in stats.items()):
            return
        if sim.bias is not None and self._constant(sim.bias.result) is None:
            return
        gamma, beta, mean, var = (param_tensor(stat_ops[n], self.store) if stat_ops[n] is not None else None
                                  for n in ("weight", "bias", "running_mean", "running_var"))
        bias = param_tensor(sim.bias, self.store) if sim.bias is not None else None
        weight = param_tensor(sim.weight, self.store)
        transposed = producer.op_name not in CONVS and producer.op_name != "linear"
        new_weight, new_bias = fold_weights(weight, bias, mean, var, gamma, beta, float(bn.arg("eps")), transposed)
        base = sim.weight.param_name.rpartition(".")[0] or sim.weight.param_name
        w_op = new_param(self.store, f"{base}.weight_folded", new_weight)
        b_op = new_param(self.store, f"{base}.bias_folded", new_bias)
        for op in (w_op, b_op):
            if "frozen" in sim.weight.attributes:
                op.attributes["frozen"] = sim.weight.attributes["frozen"]
        rewriter.insert([w_op, b_op], InsertPoint.before(sim.fake_quant))
        dead = [sim.fake_quant.operands[0].owner]
        sim.fake_quant.operands[0] = w_op.result
        if isinstance(sim.fake_quant.spec, QuantSpecAttr):
            observer = make_observer(observer_spec(sim.fake_quant.spec))
            observer(new_weight)
            sim.fake_quant.properties["stats"] = stats_to_attr(observer.stats())
        args, kwargs = replace_args(producer, bias=b_op.result)
        folded = AtenOp(producer.target.data, args, kwargs, [producer.results[0].type], dict(producer.attributes))
        folded.location = producer.location
        folded.results[0].name_hint = producer.results[0].name_hint
        rewriter.insert([folded], InsertPoint.before(producer))
        dead += [v.owner for v in bn.operands] + [producer]
        rewriter.replace(bn, [], [folded.results[0], *([None] * (len(bn.results) - 1))])
        _erase_unused(rewriter, dead)
        count(self.ctx, "folded")


def _erase_unused(rewriter: PatternRewriter, ops: list) -> None:
    """Erase `ops` and what computed their operands, as far as nothing else reads them."""
    stack = list(ops)
    while stack:
        op = stack.pop()
        if not isinstance(op, AtenOp | ParamOp) or any(r.uses for r in op.results) or op.parent is None:
            continue
        operands = [v.owner for v in op.operands]
        rewriter.erase(op)
        stack.extend(operands)


def _rank(value: SSAValue) -> int:
    return value.type.get_num_dims() if isinstance(value.type, TensorType) else -1


@dataclass(frozen=True)
class FoldBatchNorm(QirPass):
    """Fold eval-mode BatchNorms into the convolution / linear weights before them."""

    name = "fold-bn"
    requires = ("float", "observed")

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        if not any(isinstance(o, AtenOp) and o.op_name in BATCH_NORMS for o in op.walk()):
            return  # nothing to fold: no rewrite walk, no aliasing analysis (most converted programs)
        PatternRewriteWalker(
            FoldBatchNormPattern(params_of(ctx), ctx, Mutations.of(op)),
            walk_reverse=False,
            apply_recursively=False,
        ).rewrite_module(op)

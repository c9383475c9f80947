"""fold-bn: fold an eval-mode BatchNorm into the conv or linear before it.

Before:

    %c = aten.op "conv2d.default"(%x, %w, none) : ...
    %y = aten.op "batch_norm.default"(%c, %g, %b, %mean, %var, false, 0.1, 1.0e-05, false) : ...

After (new parameters in the store; the old ones go when nothing uses them):

    %w2 = aten.param parameter "conv.weight_folded" : ...
    %b2 = aten.param parameter "conv.bias_folded" : ...
    %c = aten.op "conv2d.default"(%x, %w2, %b2) : ...

Quantization needs it: the quantizer's conv + relu unit only forms once the
BatchNorm between them is gone, and the weights are observed with their
final values. The fold is `w' = w * g / sqrt(var + eps)` per output channel
and `b' = (b - mean) * g / sqrt(var + eps) + beta`, computed in float64. The
output-channel axis is 0 for convolutions and linear, 1 (per group) for
transposed convolutions. A linear folds only when its output is 2-D: on a
3-D output BatchNorm1d's channel axis is not the linear's feature axis
(torchao once folded that case and produced wrong weights, pytorch/ao#4116).
Training-mode BatchNorm, a producer with other users, or non-constant
weights are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, TensorType
from xdsl.rewriter import InsertPoint
from xdsl.pattern_rewriter import (
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)

from qir.context import params_of
from qir.dialects.aten import AtenOp, ParamOp
from qir.params import ParamStore, new_param, param_tensor
from qir.pass_manager import QirPass, count

CONVS = {"conv1d", "conv2d", "conv3d"}
CONV_TRANSPOSES = {"conv_transpose1d", "conv_transpose2d", "conv_transpose3d"}
BATCH_NORMS = {"batch_norm", "_native_batch_norm_legit_no_training"}


def _constant(value) -> ParamOp | None:
    return value.owner if value is not None and isinstance(value.owner, ParamOp) else None


def _fold(weight: torch.Tensor, bias: torch.Tensor | None, mean, var, gamma, beta, eps: float,
          axis: int, groups: int) -> tuple[torch.Tensor, torch.Tensor]:
    scale = (gamma.double() if gamma is not None else torch.ones_like(var, dtype=torch.float64)) \
        / torch.sqrt(var.double() + eps)
    shift = beta.double() if beta is not None else torch.zeros_like(scale)
    w = weight.double()
    if axis == 0:
        w = w * scale.reshape(-1, *([1] * (w.dim() - 1)))
    else:  # transposed conv: (in, out/groups, k...), output channel = group * out_per_group + j
        per_group = w.shape[1]
        w = w.reshape(groups, w.shape[0] // groups, per_group, *w.shape[2:])
        w = w * scale.reshape(groups, 1, per_group, *([1] * (weight.dim() - 2)))
        w = w.reshape(weight.shape)
    b = bias.double() if bias is not None else torch.zeros_like(scale)
    folded_bias = (b - mean.double()) * scale + shift
    return w.to(weight.dtype), folded_bias.to(weight.dtype)


class FoldBatchNormPattern(RewritePattern):
    def __init__(self, store: ParamStore, ctx: Context):
        self.store = store
        self.ctx = ctx

    @op_type_rewrite_pattern
    def match_and_rewrite(self, bn: AtenOp, rewriter: PatternRewriter, /):
        if bn.op_name not in BATCH_NORMS or not bn.results:
            return
        if bn.op_name == "batch_norm" and bn.arg("training", False):
            return
        if any(r.uses for r in bn.results[1:]):
            return
        source = bn.operands[0] if bn.operands else None
        producer = source.owner if source is not None else None
        if not isinstance(producer, AtenOp) or len(producer.results) != 1 or not source.has_one_use():
            return
        kind = producer.op_name
        if kind in CONVS:
            axis, groups = 0, 1
        elif kind in CONV_TRANSPOSES:
            axis, groups = 1, producer.arg("groups", 1)
        elif kind == "linear" and isinstance(source.type, TensorType) and source.type.get_num_dims() == 2:
            axis, groups = 0, 1
        else:
            return
        weight_op = _constant(producer.arg("weight"))
        bias_value = producer.arg("bias")
        bias_op = _constant(bias_value)
        if weight_op is None or (bias_value is not None and bias_op is None) or len(producer.args.data) < 2:
            return
        stats = [bn.arg(n) for n in ("weight", "bias", "running_mean", "running_var")]
        stat_ops = [_constant(v) if v is not None else None for v in stats]
        if stat_ops[2] is None or stat_ops[3] is None or any(
                v is not None and o is None for v, o in zip(stats, stat_ops)):
            return
        gamma, beta, mean, var = (param_tensor(o, self.store) if o is not None else None for o in stat_ops)
        eps = bn.arg("eps", 1e-5)
        weight = param_tensor(weight_op, self.store)
        bias = param_tensor(bias_op, self.store) if bias_op is not None else None
        if mean.shape[0] != weight.shape[axis] * groups:
            return
        new_weight, new_bias = _fold(weight, bias, mean, var, gamma, beta, eps, axis, groups)
        base = weight_op.param_name.rpartition(".")[0] or weight_op.param_name
        w_op = new_param(self.store, f"{base}.weight_folded", new_weight)
        b_op = new_param(self.store, f"{base}.bias_folded", new_bias)
        rewriter.insert([w_op, b_op], InsertPoint.before(producer))
        args = [producer.value(a) for a in producer.args.data]
        kwargs = {k: producer.value(v) for k, v in (producer.kwargs.data.items() if producer.kwargs else ())}
        args[1] = w_op.result
        if len(args) > 2:
            args[2] = b_op.result
        elif "bias" in kwargs:
            kwargs["bias"] = b_op.result
        else:
            args.append(b_op.result)
        folded = AtenOp(producer.target.data, args, kwargs, [source.type], dict(producer.attributes))
        folded.location = producer.location
        folded.results[0].name_hint = source.name_hint
        rewriter.replace(producer, folded)
        bn.results[0].replace_all_uses_with(folded.results[0])
        rewriter.erase(bn)
        for op in {weight_op, bias_op, *stat_ops} - {None}:
            if not op.result.uses:
                rewriter.erase(op)
        count(self.ctx, "folded")


@dataclass(frozen=True)
class FoldBatchNorm(QirPass):
    name = "fold-bn"
    requires = ("float",)

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        PatternRewriteWalker(FoldBatchNormPattern(params_of(ctx), ctx), apply_recursively=False).rewrite_module(op)

"""A convolution or linear with the batch norm after it, as quantization-aware training sees it.

PTQ folds an eval-mode batch norm into the weights before quantizing them
(`fold-bn`). QAT cannot: the batch norm trains, with batch statistics, and
its running statistics move. It simulates the fold instead, as torchao's
`_fuse_conv_bn_qat` does: the weight is scaled by the batch norm's factor
`f = gamma / sqrt(running_var + eps)` before fake quantization, and the
product is divided by `f` again before the batch norm, so training sees the
quantized folded weight while the batch norm still normalises with batch
statistics:

    %sd = sqrt(running_var + eps);  %f = gamma / %sd
    %ws = mul(%w, reshape(%f, [-1, 1, 1, 1]))
    %wq = obs.fake_quant %ws {...}
    %c  = conv2d(%x, %wq, none, ...)
    %y  = add(div(%c, reshape(%f, [1, -1, 1, 1])), reshape(%b, [1, -1, 1, 1]))
    %bn = batch_norm(%y, gamma, beta, running_mean, running_var, #aten.training<batch_norm>, ...)

In eval mode this is exactly the folded conv with a fake-quantized folded
weight, so `fold-bn` folds it back at convert into the program PTQ gives.
This module holds the shape of that form once: which pairs qualify
(`qat_batch_norm`), how `simulate-bn` builds it (`simulate`), how `fold-bn`
recognises it (`match_simulated`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from xdsl.dialects.builtin import TensorType
from xdsl.ir import Operation, SSAValue

from qir.dialects.aten import AtenOp, ParamOp, TrainingModeAttr
from qir.op_families import BATCH_NORMS, CONV, CONV_TRANSPOSE


def replace_args(op: AtenOp, **values: Any) -> tuple[list[Any], dict[str, Any]]:
    """`op`'s (args, kwargs) as Python values, with the named schema arguments replaced."""
    args = [op.value(a) for a in op.args.data]
    kwargs = {k: op.value(v) for k, v in op.kwargs.data.items()} if op.kwargs is not None else {}
    names = [a.name for a in op.schema.positional]
    for name, value in values.items():
        index = names.index(name)
        if name in kwargs or index > len(args):
            kwargs[name] = value
        elif index == len(args):
            args.append(value)
        else:
            args[index] = value
    return args, kwargs


def _single_user(value: SSAValue) -> Operation | None:
    users = {use.operation for use in value.uses}
    return users.pop() if len(users) == 1 else None


def _param(value: Any) -> ParamOp | None:
    return value.owner if isinstance(value, SSAValue) and isinstance(value.owner, ParamOp) else None


def _channel_axis(producer: AtenOp) -> int | None:
    """The output-channel axis of `producer`'s weight when QAT can simulate a batch norm after it:
    0 for a convolution and a linear, 1 for a transposed convolution of one group."""
    name = producer.op_name
    if name in CONV or name == "linear":
        return 0
    if name in CONV_TRANSPOSE and producer.arg("groups", 1) == 1:
        return 1
    return None


def qat_batch_norm(producer: AtenOp) -> AtenOp | None:
    """The training batch norm (`#aten.training`) that reads `producer`'s output alone and
    normalises its output channels, when QAT simulates it folded into `producer`: a batched
    convolution (a transposed one of one group) or a linear with a 2-D output, constant
    statistics. None otherwise (that batch norm then stays a float batch norm)."""
    axis = _channel_axis(producer)
    if axis is None or len(producer.results) != 1 or len(producer.operands) < 2:
        return None
    source = producer.results[0]
    bn = _single_user(source)
    if not isinstance(bn, AtenOp) or bn.op_name not in BATCH_NORMS or bn.arg("input") is not source:
        return None
    if not isinstance(bn.arg("training"), TrainingModeAttr) or any(r.uses for r in bn.results[1:]):
        return None
    if source.type != bn.results[0].type or not isinstance(bn.arg("eps"), float | int):
        return None
    if _param(bn.arg("running_mean")) is None or _param(bn.arg("running_var")) is None:
        return None
    if any(bn.arg(n) is not None and _param(bn.arg(n)) is None for n in ("weight", "bias")):
        return None
    bias = producer.arg("bias")
    if bias is not None and _param(bias) is None:
        return None
    weight, out = producer.operands[1].type, source.type
    if not isinstance(weight, TensorType) or not isinstance(out, TensorType):
        return None
    rank = len(weight.get_shape())
    if len(out.get_shape()) != rank or (producer.op_name == "linear" and rank != 2):
        return None
    if out.get_shape()[1] != weight.get_shape()[axis] or out.get_shape()[1] < 0:
        return None
    return bn


@dataclass
class Simulated:
    """A simulated conv-BN found by `match_simulated`: what `fold-bn` folds."""

    producer: AtenOp
    bn: AtenOp
    weight: ParamOp
    bias: ParamOp | None
    fake_quant: Operation
    """The op between the scaled weight and the producer (its weight's `obs.fake_quant`)."""


def _op(value: Any, name: str) -> AtenOp | None:
    if isinstance(value, SSAValue) and isinstance(value.owner, AtenOp) and value.owner.op_name == name:
        return value.owner
    return None


def _reshaped_factor(value: Any) -> SSAValue | None:
    reshape = _op(value, "reshape")
    return reshape.arg("self") if reshape is not None else None


def _factor_of(bn: AtenOp, factor: SSAValue) -> bool:
    """Whether `factor` is `gamma / sqrt(running_var + eps)` of `bn` (`1 / sqrt(...)` without gamma)."""
    gamma = bn.arg("weight")
    ratio = _op(factor, "div") if gamma is not None else _op(factor, "reciprocal")
    if ratio is None:
        return False
    if gamma is not None and ratio.arg("self") is not gamma:
        return False
    root = _op(ratio.arg("other") if gamma is not None else ratio.arg("self"), "sqrt")
    shifted = _op(root.arg("self"), "add") if root is not None else None
    return (shifted is not None and shifted.arg("self") is bn.arg("running_var")
            and shifted.arg("other") == bn.arg("eps"))


def match_simulated(bn: AtenOp) -> Simulated | None:
    """The simulated conv-BN whose batch norm is `bn` (see the module docstring), or None."""
    if bn.op_name not in BATCH_NORMS or any(r.uses for r in bn.results[1:]):
        return None
    value = bn.arg("input")
    bias = None
    shifted = _op(value, "add")
    if shifted is not None:
        bias = _param(_reshaped_factor(shifted.arg("other")))
        if bias is None:
            return None
        value = shifted.arg("self")
    divided = _op(value, "div")
    if divided is None:
        return None
    factor = _reshaped_factor(divided.arg("other"))
    producer = divided.arg("self").owner if isinstance(divided.arg("self"), SSAValue) else None
    if factor is None or not isinstance(producer, AtenOp) or _channel_axis(producer) is None:
        return None
    if producer.arg("bias") is not None or len(producer.operands) < 2:
        return None
    fake_quant = producer.operands[1].owner
    scaled = fake_quant.operands[0] if isinstance(fake_quant, Operation) and len(fake_quant.operands) == 1 else None
    multiplied = _op(scaled, "mul")
    if multiplied is None or _reshaped_factor(multiplied.arg("other")) is not factor:
        return None
    weight = _param(multiplied.arg("self"))
    if weight is None or not _factor_of(bn, factor):
        return None
    return Simulated(producer, bn, weight, bias, fake_quant)


def simulate(producer: AtenOp, bn: AtenOp, fake_quant: Operation) -> tuple[list[AtenOp], AtenOp, list[AtenOp]]:
    """The simulated form of `producer` followed by `bn` (`qat_batch_norm(producer) is bn`), whose
    weight `fake_quant` fake-quantizes: (the ops computing the factor and the scaled weight, to
    go before `fake_quant`; `producer` without its bias, reading `fake_quant`; the ops dividing
    its output by the factor and adding the bias back, whose last result is `bn`'s new input).
    `fake_quant` is made to read the scaled weight; the caller puts the ops in place."""
    weight = fake_quant.operands[0]
    out = producer.results[0].type
    element, rank, axis = out.element_type, len(out.get_shape()), _channel_axis(producer)
    channels = out.get_shape()[1]
    provenance = {k: v for k, v in bn.attributes.items() if k in AtenOp.PROVENANCE}

    def op(target: str, args: list, shape: list[int]) -> AtenOp:
        new = AtenOp(target, args, None, [TensorType(element, shape)], provenance)
        new.location = bn.location
        return new

    variance = op("add.Tensor", [bn.arg("running_var"), float(bn.arg("eps"))], [channels])
    std = op("sqrt.default", [variance.results[0]], [channels])
    gamma = bn.arg("weight")
    factor = (op("div.Tensor", [gamma, std.results[0]], [channels]) if gamma is not None
              else op("reciprocal.default", [std.results[0]], [channels]))
    along_weight = [channels if i == axis else 1 for i in range(rank)]
    factor_w = op("reshape.default", [factor.results[0], [-1 if i == axis else 1 for i in range(rank)]], along_weight)
    scaled = AtenOp("mul.Tensor", [weight, factor_w.results[0]], None, [weight.type], provenance)
    scaled.location = bn.location
    scaled.results[0].name_hint = f"{weight.name_hint or 'w'}_bn_scaled"
    fake_quant.operands[0] = scaled.results[0]

    args, kwargs = replace_args(producer, bias=None)
    unbiased = AtenOp(producer.target.data, args, kwargs, [out], dict(producer.attributes))
    unbiased.location = producer.location
    unbiased.results[0].name_hint = producer.results[0].name_hint

    along_output = [1, -1] + [1] * (rank - 2)
    factor_o = op("reshape.default", [factor.results[0], along_output], [1, channels] + [1] * (rank - 2))
    after = [factor_o, op("div.Tensor", [unbiased.results[0], factor_o.results[0]], list(out.get_shape()))]
    bias = producer.arg("bias")
    if bias is not None:
        bias_o = op("reshape.default", [bias, along_output], [1, channels] + [1] * (rank - 2))
        after += [bias_o, op("add.Tensor", [after[-1].results[0], bias_o.results[0]], list(out.get_shape()))]
    after[-1].results[0].name_hint = f"{producer.results[0].name_hint or 'y'}_unscaled"
    return [variance, std, factor, factor_w, scaled], unbiased, after

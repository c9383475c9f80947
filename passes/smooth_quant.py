"""smooth-quant: move the range of a linear's input channels into its weight (SmoothQuant).

A transformer's LayerNorm outputs have a few channels whose values are tens of times larger
than the rest; quantized per tensor, those channels set the scale and the others are left a
handful of levels. SmoothQuant (Xiao et al., 2023) divides each input channel `j` by a scale
`s_j` and multiplies the weight's column `j` by it, which leaves the linear's result as it was
and flattens the input before it is quantized.

Before (calibrated: a smoothed observer has recorded each input channel's range):

    %x_obs = obs.observe %x {id = "obs4", spec = #obs.spec<u8[0:255], affine, minmax, smooth 0.5, group 4>,
                             stats = {min = array<f64: -1.0, -32.0>, max = array<f64: 1.0, 64.0>}} : tensor<3x2xf32>
    %w_obs = obs.observe %w {id = "obs5", spec = #obs.spec<i8[-128:127], symmetric, per_channel_minmax, axis 0, group 5>,
                             stats = {...}} : tensor<4x2xf32>
    %y = aten.op "linear.default"(%x_obs, %w_obs, %b) {module = "fc"} : (...) -> tensor<3x4xf32>

After (two new parameters; the store's tensors are never changed):

    %inv = aten.param constant "fc.smoothing" : tensor<2xf32>
    %xs = aten.op "mul.Tensor"(%x, %inv) {smoothing} : (tensor<3x2xf32>, tensor<2xf32>) -> tensor<3x2xf32>
    %x_obs = obs.observe %xs {id = "obs4", spec = #obs.spec<u8[0:255], affine, minmax, group 4>,
                              stats = {min = ..., max = ...}} : tensor<3x2xf32>
    %ws = aten.param parameter "fc.weight_smoothed" : tensor<4x2xf32>
    %w_obs = obs.observe %ws {id = "obs5", ..., stats = {...of the new weight}} : tensor<4x2xf32>
    %y = aten.op "linear.default"(%x_obs, %w_obs, %b) {module = "fc"} : (...) -> tensor<3x4xf32>

The scales are SmoothQuant's, `s_j = max|x_j|^alpha / max|W_:j|^(1 - alpha)`, with the weight
maximum taken over every linear reading the value (the three projections of an attention
share one observer, so one multiplication, whose constant is named for the module path they
share), and a channel without a range (all zero) keeping 1. Each is rounded to a power of two: dividing and multiplying by one is exact in float, so
the smoothed float program's products are those of the original, and the smoothed channel
ranges are exactly the recorded ones divided, from which the per-tensor range follows without
calibrating again (the minimum and maximum of the divided channel ranges: why a smoothed spec
is observed with min/max). The weights' statistics are taken anew from the new weights. The
division is marked `{smoothing}`: the numeric debugger (`qir.debug`) looks through it to match
the linears with the float model's.

`convert` refuses a smoothed observer: this pass runs between calibration and `convert`
(`qir.convert` runs it; it does nothing to a program without smoothed observers). Lowering
folds a division into the norm before it where it can (`fold-smoothing`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp, StringAttr, UnitAttr
from xdsl.rewriter import InsertPoint, Rewriter

from qir.context import params_of
from qir.dialects.aten import AtenOp, ParamOp
from qir.dialects.obs import FakeQuantOp, ObserveOp, QuantSpecAttr
from qir.errors import OpError
from qir.observation import observer_spec, stats_from_attr, stats_to_attr
from qir.observers import observe_each
from qir.params import ParamStore, new_param, param_tensor
from qir.pass_manager import QirPass, count


@dataclass(frozen=True)
class SmoothQuant(QirPass):
    name = "smooth-quant"
    requires = ("observed",)

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        smoothed = [o for o in op.walk() if isinstance(o, ObserveOp | FakeQuantOp)
                    and isinstance(o.spec, QuantSpecAttr) and o.spec.smoothing is not None]
        if not smoothed:
            return
        store = params_of(ctx)
        ids = {o.obs_id.data for o in op.walk() if isinstance(o, ObserveOp | FakeQuantOp)}
        for obs in smoothed:
            _smooth(obs, store, ids)
            count(ctx, "smoothed inputs")
            count(ctx, "smoothed linears", len({use.operation for use in obs.output.uses}))


def _smooth(obs: ObserveOp, store: ParamStore, ids: set[str]) -> None:
    """Divide the value `obs` observes by the scales its channel ranges and its linears' weights
    give, multiply those weights by them, and leave `obs` a plain per-tensor observer of the
    divided value with the range that follows."""
    if isinstance(obs, FakeQuantOp):
        raise OpError(obs, "a smoothed spec is for post-training quantization, not for training")
    stats = stats_from_attr(obs.stats)
    if not stats:
        raise OpError(obs, f"observer {obs.obs_id.data} saw no data: calibrate the program before smooth-quant")
    low = torch.as_tensor(stats["min"], dtype=torch.float64)
    high = torch.as_tensor(stats["max"], dtype=torch.float64)
    linears = _linears(obs)
    weights = [_weight(linear) for linear in linears]
    tensors = [param_tensor(param, store) for param, _ in weights]
    for (param, _), tensor, linear in zip(weights, tensors, linears):
        if tensor.dim() != 2 or tensor.shape[1] != low.numel():
            raise OpError(linear, f"weight {param.param_name!r} of shape {tuple(tensor.shape)} "
                                  f"does not take the {low.numel()} input channels observer {obs.obs_id.data} saw")
    column_max = torch.stack([t.detach().abs().amax(0).double() for t in tensors]).amax(0)
    scale = smoothing_scales(torch.maximum(low.abs(), high.abs()), column_max, obs.spec.smoothing)

    inverse = new_param(store, f"{_common_module(linears) or obs.input.name_hint or 'input'}.smoothing",
                        (1.0 / scale).float(), "constant")
    divided = AtenOp("mul.Tensor", [obs.input, inverse.result], None, [obs.input.type], {"smoothing": UnitAttr()})
    divided.results[0].name_hint = f"{obs.input.name_hint or 'v'}_smoothed"
    Rewriter.insert_op([inverse, divided], InsertPoint.before(obs))
    obs.operands[0] = divided.results[0]
    obs.properties["spec"] = obs.spec.without_smoothing()
    obs.properties["stats"] = stats_to_attr({"min": float((low / scale).min()), "max": float((high / scale).max())})

    for linear, (param, weight_obs), tensor in zip(linears, weights, tensors):
        _scale_weight(linear, param, weight_obs, (tensor * scale.to(tensor.dtype)), store, ids)


def smoothing_scales(input_max: torch.Tensor, weight_max: torch.Tensor, alpha: float) -> torch.Tensor:
    """SmoothQuant's per-channel scales for inputs of absolute maxima `input_max` and weight
    columns of absolute maxima `weight_max`, each rounded to the nearest power of two (in
    log2), 1 where either maximum is zero or not finite; float64."""
    ratio = input_max.double().pow(alpha) / weight_max.double().pow(1.0 - alpha)
    usable = (input_max > 0) & (weight_max > 0) & torch.isfinite(ratio) & (ratio > 0)
    exponent = torch.where(usable, torch.log2(torch.where(usable, ratio, 1.0)).round(), 0.0)
    return torch.exp2(exponent.clamp(-60, 60))


def _common_module(linears: list[AtenOp]) -> str:
    """The module path the linears share (`encoder.layer.0.attention.self` for an attention's
    three projections, the module itself for one linear), or "" when they have none."""
    paths = [op.attributes.get("module") for op in linears]
    if not all(isinstance(path, StringAttr) for path in paths):
        return ""
    return ".".join(os.path.commonprefix([path.data.split(".") for path in paths]))


def _linears(obs: ObserveOp) -> list[AtenOp]:
    """The linears reading `obs` (as their input, and nothing else)."""
    users = list(dict.fromkeys(use.operation for use in obs.output.uses))
    for user in users:
        if not (isinstance(user, AtenOp) and user.op_name == "linear" and user.operands[0] is obs.output
                and all(operand is not obs.output for operand in user.operands[1:])):
            raise OpError(user, f"observer {obs.obs_id.data} is smoothed, so only linears may "
                                "read it (as their input)")
    return users


def _weight(linear: AtenOp) -> tuple[ParamOp, ObserveOp | None]:
    """The constant weight of `linear` and its observer (None for a float weight)."""
    value = linear.operands[1]
    observer = value.owner if isinstance(value.owner, ObserveOp) else None
    source = observer.input if observer is not None else value
    if not isinstance(source.owner, ParamOp):
        raise OpError(linear, "a smoothed linear needs a constant weight")
    return source.owner, observer


def _scale_weight(linear: AtenOp, param: ParamOp, observer: ObserveOp | None, scaled: torch.Tensor,
                  store: ParamStore, ids: set[str]) -> None:
    """Give `linear` the weight `scaled` in place of `param`, observed anew (by a copy of its
    observer under a fresh id when another op reads that observer too)."""
    new = new_param(store, f"{param.param_name}_smoothed", scaled, param.kind.data)
    if observer is None:
        Rewriter.insert_op(new, InsertPoint.before(linear))
        linear.operands[1] = new.result
    elif len({use.operation for use in observer.output.uses}) > 1:  # a weight read by other ops too
        shared, observer = observer, ObserveOp(new.result, observer.spec, _fresh_id(observer.obs_id.data, ids))
        observer.output.name_hint = shared.output.name_hint
        Rewriter.insert_op([new, observer], InsertPoint.before(linear))
        linear.operands[1] = observer.output
    else:
        Rewriter.insert_op(new, InsertPoint.before(observer))
        observer.operands[0] = new.result
    if not param.result.uses:
        Rewriter.erase_op(param)
    if observer is None:
        return
    (stats,) = observe_each(observer_spec(observer.spec), [scaled])
    if isinstance(stats, ValueError):
        raise OpError(linear, f"cannot observe the smoothed {param.param_name!r}: {stats}") from stats
    observer.properties["stats"] = stats_to_attr(stats)


def _fresh_id(base: str, ids: set[str]) -> str:
    index = 1
    while f"{base}_s{index}" in ids:
        index += 1
    ids.add(f"{base}_s{index}")
    return f"{base}_s{index}"

"""insert-observers: one observer per group of values that share parameters.

Before, propagated annotations name a group per annotated output and input
edge. After, `obs.observe` ops stand on those values, one id per group:

    %r = aten.op "relu.default"(%c) {qout = [#obs.spec<u8[0:255], affine, histogram, group 3>]} : ...
  becomes
    %r = aten.op "relu.default"(%c) : ...
    %r_obs = obs.observe %r {id = "obs3", spec = #obs.spec<u8[0:255], affine, histogram, group 3>} : ...

An output is observed right after its producer, and every consumer reads the
observed value. An input edge whose group differs from its producer's gets an
observer of its own just before the consumer (a requantization, after
convert). Weights are constants: they are observed here, at compile time (the
weights of one spec together, `qir.observers.observe_each`), and their
observers carry their statistics from the start; activation observers get
theirs from calibration. Fixed-range specs get an `obs.observe` too (it needs no
statistics); derived specs (an int32 bias) stay on the op for `convert`.

With `fake-quant` (QAT), the ops are `obs.fake_quant` instead: the same
observers, which also quantize and dequantize in the forward while the model
trains.

A custom module with a quantized replacement (`custom.call custom`) whose boundary is
observed takes its observed form (`custom.call observed`).

A dynamic spec (`#obs.spec<..., dynamic>`) gets an `obs.observe` too, which records
nothing: the value's parameters are chosen when the program runs (`convert` writes
`quant.choose_qparams` there). Input edges reading one value with the same dynamic spec
share it, so the three projections of an attention choose their input's parameters once.
So do input edges reading one value with the same smoothed spec (`, smooth A`): the three
projections then share one set of smoothing scales (`smooth-quant`).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.context import Context
from xdsl.dialects.builtin import ModuleOp
from xdsl.ir import Attribute, Block, Operation, SSAValue
from xdsl.rewriter import InsertPoint, Rewriter

from qir.context import params_of
from qir.dialects.aten import ParamOp
from qir.dialects.custom import CallOp
from qir.dialects.obs import DerivedSpecAttr, FakeQuantOp, ObserveOp, QuantSpecAttr
from qir.errors import OpError
from qir.observation import observer_spec, stats_to_attr
from qir.observers import ObserverSpec, observe_each
from qir.params import param_tensor
from qir.pass_manager import QirPass, count
from qir.quantizer.base import annotation, is_annotated, set_annotation


@dataclass(frozen=True)
class InsertObservers(QirPass):
    name = "insert-observers"
    requires = ("annotated",)
    leaves = "observed"

    fake_quant: bool = False
    """Insert `obs.fake_quant` ops (quantization-aware training) rather than `obs.observe`."""

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        observed: dict[tuple[SSAValue, int], SSAValue] = {}
        weights: list[_Weight] = []

        def observe(value: SSAValue, spec: Attribute, where: InsertPoint, anchor: Operation) -> SSAValue:
            group = spec.group_id
            if group is None:
                raise OpError(anchor, "annotation has no group: run propagate-annotations first")
            dynamic = isinstance(spec, QuantSpecAttr) and spec.is_dynamic and not isinstance(value.owner, ParamOp)
            smoothed = isinstance(spec, QuantSpecAttr) and spec.smoothing is not None
            key = (value, spec.with_group(None)) if dynamic or smoothed else (value, group)
            if key in observed:
                return observed[key]
            if dynamic and self.fake_quant:
                raise OpError(anchor, "a dynamic spec has no fake quantization: its parameters are chosen "
                                      "at run time, from each tensor (quantize for training with static specs)")
            if smoothed and (self.fake_quant or isinstance(value.owner, ParamOp)):
                raise OpError(anchor, "a smoothed spec is for the activation a linear reads in post-training "
                                      "quantization, not for a weight or for training")
            if dynamic:
                count(ctx, "dynamic")
            obs = (FakeQuantOp if self.fake_quant else ObserveOp)(value, spec, f"obs{group}")
            obs.output.name_hint = f"{value.name_hint or 'v'}_obs"
            if isinstance(value.owner, ParamOp) and isinstance(spec, QuantSpecAttr):
                weights.append(_Weight(obs, value.owner, anchor))
            Rewriter.insert_op(obs, where)
            observed[key] = obs.output
            count(ctx, "observers")
            return obs.output

        for block in _blocks(op):
            for o in list(block.ops):
                if not is_annotated(o) or isinstance(o, ObserveOp | FakeQuantOp):
                    continue  # weights, float ops: half the program, nothing to observe
                if isinstance(o, CallOp) and o.form_name == "custom":
                    o.set_form("observed")  # a custom module observed at its boundary runs its observed form
                qin = annotation(o, "qin")
                for i, spec in enumerate(qin):
                    if spec is None or isinstance(spec, DerivedSpecAttr):
                        continue
                    value = o.operands[i]
                    producer = value.owner
                    if isinstance(producer, ObserveOp | FakeQuantOp) and producer.spec.group_id == spec.group_id:
                        continue  # the producer's observer already stands for this group
                    o.operands[i] = observe(value, spec, InsertPoint.before(o), o)
                for result, spec in zip(o.results, annotation(o, "qout")):
                    if spec is None:
                        continue
                    obs_value = observe(result, spec, InsertPoint.after(o), o)
                    result.replace_uses_with_if(obs_value, lambda use: use.operation is not obs_value.owner)
                o.attributes.pop("qout", None)
                set_annotation(o, "qin", [e if isinstance(e, DerivedSpecAttr) else None for e in qin])
        if weights:
            _observe_weights(weights, params_of(ctx))
            count(ctx, "weights observed", len(weights))


@dataclass(frozen=True)
class _Weight:
    """A weight's observer, waiting for its statistics; `anchor` is the op blamed when the spec
    does not fit the weight."""

    observer: ObserveOp | FakeQuantOp
    param: ParamOp
    anchor: Operation


def _observe_weights(weights: list[_Weight], store) -> None:
    """Give each weight's observer its statistics, the weights of one spec observed together
    (`qir.observers.observe_each`); the first weight in program order that its spec does not
    fit (a per-channel axis) is the error."""
    by_spec: dict[ObserverSpec, list[int]] = {}
    for index, weight in enumerate(weights):
        by_spec.setdefault(observer_spec(weight.observer.spec), []).append(index)
    found: list[dict | ValueError] = [{}] * len(weights)
    for spec, indices in by_spec.items():
        tensors = [param_tensor(weights[i].param, store) for i in indices]
        for index, stats in zip(indices, observe_each(spec, tensors)):
            found[index] = stats
    for weight, stats in zip(weights, found):
        if isinstance(stats, ValueError):
            raise OpError(weight.anchor, f"cannot observe {weight.param.param_name!r}: {stats}") from stats
        weight.observer.properties["stats"] = stats_to_attr(stats)


def _blocks(module: ModuleOp) -> list[Block]:
    return [block for fn in module.ops for region in fn.regions for block in region.blocks]


"""convert: observer statistics become quantized types, weights become integers.

Before, `obs.observe` ops (or the `obs.fake_quant` ops of a trained QAT
program, alike here) carry statistics. After, each activation observer
is a quantize/dequantize pair whose type holds the parameters, and each
weight is an integer constant with a dequantize:

    %o = obs.observe %r {id = "obs3", spec = #obs.spec<u8[0:255], affine, histogram, group 3>,
                         stats = {min = 0.0, max = 5.1}} : tensor<1x8xf32>
  becomes
    %q = quant.qcast %r : tensor<1x8xf32> to tensor<1x8x!quant.uniform<u8:f32, 0.02:0>>
    %o = quant.dcast %q : tensor<1x8x!quant.uniform<u8:f32, 0.02:0>> to tensor<1x8xf32>

    %w = aten.param parameter "fc.weight_q" : tensor<8x4x!quant.uniform<i8:f32:0, {...}>>
    %w_dq = quant.dcast %w : ... to tensor<8x4xf32>

Parameters come from the statistics exactly as torch.ao computes them, and
weights are quantized by torch itself (`quantize_per_channel`/`_per_tensor`:
round half to even, then clamp), once, here. A derived spec (an int32 bias)
takes the product of its sources' scales. An observer that saw no data is an
error naming it, and saying why it may not have.

An observer of a dynamic spec (`#obs.spec<..., dynamic>`, which calibration leaves without
statistics) becomes the run-time form: parameters chosen from the value each time the program
runs, one pair per tensor or, with `per_token`, one per row of the last dimension:

    %o = obs.observe %x {id = "obs0", spec = #obs.spec<u8[0:255], affine, minmax, dynamic, group 0>} : tensor<4x8xf32>
  becomes
    %s, %z = quant.choose_qparams %x {quantized_type = !quant.any<u8:f32>} : tensor<4x8xf32> -> (tensor<f32>, tensor<i64>)
    %q = quant.dynamic_qcast %x, %s, %z : (tensor<4x8xf32>, tensor<f32>, tensor<i64>) -> tensor<4x8x!quant.any<u8:f32>>
    %o = quant.dynamic_dcast %q, %s, %z : (...) -> tensor<4x8xf32>

A custom module observed at its boundary (`custom.call observed`) takes its quantized form:

    %y = custom.call quantized "attn"(%x_dq) as (tensor<2x8x!quant.uniform<u8:f32, 0.02:3>>)
           -> tensor<2x8x!quant.uniform<u8:f32, 0.05:0>> : (tensor<2x8xf32>) -> tensor<2x8xf32>

the types it sees (`as`) are those of the dequantize before each input and of the quantize
after each output: the user's quantized module is called with those parameters.

A weight spec with `int16_pairs N` (the x86 quantizer's, for a CPU without VNNI)
gets per-channel scales at which none of the pairs of products its kernel adds
in int16 can overflow for activations up to N (`qir.accumulation.fit_scales`):
a channel none of whose pairs can overflow keeps its scale, the others grow theirs as
little as needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from xdsl.context import Context
from xdsl.dialects.builtin import FunctionType, ModuleOp, TensorType, f32
from xdsl.ir import Attribute, SSAValue
from xdsl.rewriter import InsertPoint, Rewriter
from xdsl.utils.exceptions import VerifyException

from qir.accumulation import fit_weight, reduction_of
from qir.context import params_of
from qir.dialects.aten import AtenOp, ParamOp
from qir.dialects.custom import CallOp
from qir.dialects.obs import CastSpecAttr, DerivedSpecAttr, FakeQuantOp, ObserveOp, QuantSpecAttr
from qir.dialects.quant import (
    AnyQuantizedType,
    ChooseQParamsOp,
    DequantizeCastOp,
    DynamicDequantizeCastOp,
    DynamicQuantizeCastOp,
    QuantizeCastOp,
    UniformQuantizedPerAxisType,
    UniformQuantizedSubChannelType,
    UniformQuantizedType,
)
from qir.errors import OpError
from qir.observation import quantized_types, stats_from_attr
from qir.params import new_param, param_tensor
from qir.tensors import per_axis_tables
from qir.pass_manager import QirPass, count
from qir.qdq import dequantized, quantize_reading
from qir.quantizer.base import annotation


def _decomposed_ops():
    import torch.ao.quantization.fx._decomposed  # noqa: F401  (registers quantized_decomposed)

    return torch.ops.quantized_decomposed


def quantize_tensor(tensor: torch.Tensor, qtype: Attribute) -> torch.Tensor:
    """The integer storage of `tensor` quantized to `qtype`, exactly as the emitted
    `quantized_decomposed` ops (and torchao's convert) compute it: round half to even, clamp."""
    ops = _decomposed_ops()
    storage = getattr(torch, qtype.container_dtype_name)
    x = tensor.detach().float()
    if isinstance(qtype, UniformQuantizedSubChannelType):
        from qir.blockwise import quantize

        return quantize(x, qtype)
    if isinstance(qtype, UniformQuantizedPerAxisType):
        scales, zero_points = per_axis_tables(qtype)
        return ops.quantize_per_channel.default(x, scales.float(), zero_points, qtype.axis, qtype.storage_min,
                                                qtype.storage_max, storage)
    return ops.quantize_per_tensor.default(x, qtype.scale, qtype.zero_point, qtype.storage_min,
                                           qtype.storage_max, storage)


def _quantize_weights(weights: list[tuple[ParamOp, Attribute]], store) -> list[torch.Tensor]:
    """The integer storage of each weight `(param, qtype)`, in order. Weights quantized per
    channel along axis 0 with the same storage and shape of rows are quantized in one
    `quantize_per_channel` call, stacked (800 calls on 64x64 weights cost 800 times the
    dispatch and its decomposition's Python; the arithmetic is per element, so each weight's
    integers are those of its own call); the others one by one."""
    quantized: list = [None] * len(weights)
    stacks: dict[tuple, list[tuple[int, Attribute, torch.Tensor]]] = {}
    for index, (param, qtype) in enumerate(weights):
        tensor = param_tensor(param, store)
        if (type(qtype) is UniformQuantizedPerAxisType and qtype.axis == 0 and tensor.dim() >= 1
                and tensor.dtype == torch.float32):
            key = (qtype.storage_name, qtype.storage_min, qtype.storage_max, tuple(tensor.shape[1:]))
            stacks.setdefault(key, []).append((index, qtype, tensor))
        else:
            quantized[index] = quantize_tensor(tensor, qtype)
    for (_, qmin, qmax, _), members in stacks.items():
        tables = [per_axis_tables(qtype) for _, qtype, _ in members]
        scales, zero_points = torch.cat([s for s, _ in tables]), torch.cat([z for _, z in tables])
        stacked = _decomposed_ops().quantize_per_channel.default(
            torch.cat([tensor.detach() for _, _, tensor in members]), scales.float(), zero_points, 0, qmin, qmax,
            getattr(torch, members[0][1].container_dtype_name))
        parts = stacked.split([tensor.shape[0] for _, _, tensor in members])
        for (index, _, _), part in zip(members, parts):
            quantized[index] = part.clone()  # a tensor of its own: the store saves each apart
    return quantized


def _why_no_data(obs: ObserveOp) -> str:
    """Why an observer may have recorded nothing, from what it observes."""
    from xdsl.dialects.builtin import AnyFloat

    element = getattr(obs.input.type, "element_type", None)
    if not isinstance(element, AnyFloat):
        return (f"it observes a {obs.input.type}, and observers record floating-point values only "
                "(an annotation put it on an integer value, which cannot be quantized)")
    return ("calibrate before convert (call the module qir.prepare returned on representative inputs); "
            "observers also skip empty tensors and non-finite values, and an op the calibration "
            "inputs never reach records nothing")


def _with_element(type_: TensorType, element: Attribute) -> TensorType:
    """`type_` holding `element`s: its shape attribute reused, not rebuilt from integers."""
    return TensorType.new((type_.shape, element, type_.encoding))


def _element(dtype: torch.dtype) -> Attribute:
    from qir.tensors import element_type

    return element_type(dtype)


def _torch_dtype_name(type_: Attribute) -> str:
    from qir.tensors import torch_dtype

    return str(torch_dtype(type_.element_type)).removeprefix("torch.")


@dataclass(frozen=True)
class Convert(QirPass):
    name = "convert"
    requires = ("observed",)
    leaves = "quantized"

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        store = params_of(ctx)
        observers, annotated, calls = [], [], []  # one walk finds what each step rewrites
        for o in op.walk():
            if isinstance(o, ObserveOp | FakeQuantOp):
                if isinstance(o.spec, QuantSpecAttr) and o.spec.smoothing is not None:
                    raise OpError(o, f"observer {o.obs_id.data} is smoothed: run smooth-quant before convert")
                observers.append(o)
                continue
            if "qin" in o.attributes:
                annotated.append(o)
            if isinstance(o, CallOp) and o.form_name == "observed":
                calls.append(o)
        computed = self._quantized_types(observers)
        types: dict[str, Attribute] = {}
        quantized = []  # (observer, its type), in order
        for obs in observers:
            if isinstance(obs.spec, CastSpecAttr) or (isinstance(obs.spec, QuantSpecAttr) and obs.spec.is_dynamic
                                                      and not isinstance(obs.input.owner, ParamOp)):
                quantized.append((obs, None))
                continue
            qtype = types.get(obs.obs_id.data)
            if qtype is None:
                qtype = computed[obs.obs_id.data]
                if isinstance(obs.spec, QuantSpecAttr) and qtype is None:
                    raise OpError(obs, f"observer {obs.obs_id.data} saw no data: {_why_no_data(obs)}")
                if isinstance(qtype, ValueError):
                    raise OpError(obs, f"observer {obs.obs_id.data}: {qtype}") from qtype
                if isinstance(obs.spec, QuantSpecAttr) and obs.spec.int16_pairs.data:
                    qtype = self._fit_int16_pairs(ctx, obs, qtype, store)
                types[obs.obs_id.data] = qtype
            quantized.append((obs, qtype))
        of_weights = [(obs, qtype) for obs, qtype in quantized
                      if qtype is not None and isinstance(obs.input.owner, ParamOp)]
        weights = dict(zip((obs for obs, _ in of_weights),
                           _quantize_weights([(obs.input.owner, qtype) for obs, qtype in of_weights], store)))
        for obs, qtype in quantized:
            if qtype is not None:
                self._replace(obs, qtype, store, weights)
                count(ctx, "observers converted")
            elif isinstance(obs.spec, CastSpecAttr):
                self._cast(obs, store)
                count(ctx, "cast")
            else:
                self._replace_dynamic(obs)
                count(ctx, "dynamic")

        for o in annotated:
            for index, spec in enumerate(annotation(o, "qin")):
                if isinstance(spec, DerivedSpecAttr):
                    self._derive(o, index, spec, store)
                    count(ctx, "derived")
            o.attributes.pop("qin")

        for call in calls:
            self._quantize_custom(call)
            count(ctx, "custom modules")

    @staticmethod
    def _quantized_types(observers: list) -> dict:
        """The quantized type of each observer id that gets one (or the ValueError saying why it
        cannot), all computed together: the histograms' range searches run side by side. None
        for an observer of a quantization spec that saw no data."""
        wanted, computed = [], {}
        for obs in observers:
            spec, obs_id = obs.spec, obs.obs_id.data
            if obs_id in computed or isinstance(spec, CastSpecAttr) or (
                    isinstance(spec, QuantSpecAttr) and spec.is_dynamic and not isinstance(obs.input.owner, ParamOp)):
                continue  # observers of one id share the first one's type
            stats = stats_from_attr(obs.stats)
            computed[obs_id] = None
            if isinstance(spec, QuantSpecAttr) and not stats:
                continue
            shape = obs.input.type.get_shape() if isinstance(obs.input.type, TensorType) else None
            wanted.append((obs_id, (spec, stats, shape)))
        computed.update(zip((obs_id for obs_id, _ in wanted), quantized_types([request for _, request in wanted])))
        return computed

    @staticmethod
    def _fit_int16_pairs(ctx: Context, obs: ObserveOp, qtype: Attribute, store) -> Attribute:
        """The weight's type with per-channel scales at which its kernel's int16 pairs cannot
        saturate (the spec's `int16_pairs` is the largest activation storage value)."""
        reduction = reduction_of(obs.results[0]) if isinstance(obs.input.owner, ParamOp) else None
        if reduction is None:
            return qtype
        tensor = param_tensor(obs.input.owner, store)
        per_axis = isinstance(qtype, UniformQuantizedPerAxisType)

        def typed(scales: torch.Tensor) -> Attribute:
            values = scales.float().tolist()
            if per_axis:
                return UniformQuantizedPerAxisType.get(qtype.storage_name, values,
                                                       list(qtype.zero_points), 0, storage_min=qtype.storage_min,
                                                       storage_max=qtype.storage_max)
            return UniformQuantizedType.get(qtype.storage_name, values[0], qtype.zero_point,
                                            storage_min=qtype.storage_min, storage_max=qtype.storage_max)

        scales = qtype.scales if per_axis else [qtype.scale]
        zero_points = qtype.zero_points if per_axis else [qtype.zero_point]
        try:
            fitted = fit_weight(tensor, list(scales), list(zero_points), qtype.axis if per_axis else None,
                                qtype.storage_min, qtype.storage_max, getattr(torch, qtype.storage_dtype_name),
                                reduction, obs.spec.int16_pairs.data)
        except ValueError as err:
            raise OpError(obs, f"observer {obs.obs_id.data}: {err}") from err
        if fitted is None:
            return qtype
        scales = torch.tensor(scales, dtype=torch.float64)
        grown = int((fitted != scales).sum())
        if grown:
            count(ctx, "channels rescaled for int16 pairs", grown)
        return typed(fitted)

    @staticmethod
    def _replace(obs: ObserveOp, qtype: Attribute, store, weights: dict) -> None:
        value = obs.input
        float_type = value.type
        expressed = getattr(qtype, "expressed_type", None)
        if expressed is not None and getattr(float_type, "element_type", expressed) != expressed:
            raise OpError(obs, f"observes a {float_type.element_type} value, but its quantized type "
                               f"{qtype} expresses {expressed}: quantize only {expressed} values")
        qtensor_type = _with_element(float_type, qtype)
        if isinstance(value.owner, ParamOp):
            param = value.owner
            tensor = weights[obs]
            new = new_param(store, param.param_name + "_q", tensor, param.kind.data, qtensor_type)
            Rewriter.insert_op(new, InsertPoint.before(obs))
            quantized: SSAValue = new.result
        else:
            qcast = QuantizeCastOp(value, qtensor_type)
            qcast.results[0].name_hint = f"{value.name_hint or 'v'}_q"
            Rewriter.insert_op(qcast, InsertPoint.before(obs))
            quantized = qcast.results[0]
        dcast = DequantizeCastOp(quantized, float_type)
        dcast.results[0].name_hint = f"{value.name_hint or 'v'}_dq"
        Rewriter.replace_op(obs, dcast)
        if isinstance(value.owner, ParamOp) and not value.uses:
            Rewriter.erase_op(value.owner)

    @staticmethod
    def _replace_dynamic(obs: ObserveOp) -> None:
        """`quant.choose_qparams` and run-time casts in place of a dynamic spec's observer."""
        value, spec = obs.input, obs.spec
        float_type = value.type
        element = getattr(float_type, "element_type", None)
        if not isinstance(float_type, TensorType) or element != f32:
            raise OpError(obs, f"a dynamic spec quantizes f32 tensors, not {float_type}")
        if spec.per_token and not float_type.get_shape():
            raise OpError(obs, "a per-token spec needs a tensor with rows (rank 1 or more)")
        qtype = AnyQuantizedType.get(spec.storage.data, storage_min=spec.qmin.data, storage_max=spec.qmax.data)
        choose = ChooseQParamsOp(value, qtype, symmetric=spec.symmetric, per_token=spec.per_token)
        hint = value.name_hint or "v"
        choose.scale.name_hint, choose.zero_point.name_hint = f"{hint}_scale", f"{hint}_zero_point"
        try:
            choose.verify()
        except VerifyException as err:
            raise OpError(obs, f"observer {obs.obs_id.data}: {err}") from err
        qcast = DynamicQuantizeCastOp(value, choose.scale, choose.zero_point, _with_element(float_type, qtype))
        qcast.results[0].name_hint = f"{hint}_q"
        Rewriter.insert_op([choose, qcast], InsertPoint.before(obs))
        dcast = DynamicDequantizeCastOp(qcast.results[0], choose.scale, choose.zero_point, float_type)
        dcast.results[0].name_hint = f"{hint}_dq"
        Rewriter.replace_op(obs, dcast)

    @staticmethod
    def _cast(obs: ObserveOp, store) -> None:
        """A cast spec (`#obs.cast<f16>`): a weight becomes the float16 (bfloat16) parameter it
        rounds to, read through a conversion back to its own type; an activation is rounded to it
        and back (`_to_copy` twice, as PT2E's float16 specs are)."""
        from qir.dialects.aten import DTypeAttr

        value = obs.input
        dtype = {"f16": torch.float16, "bf16": torch.bfloat16}[obs.spec.dtype.data]
        float_dtype = DTypeAttr(_torch_dtype_name(value.type))
        if isinstance(value.owner, ParamOp):
            param = value.owner
            narrow = param_tensor(param, store).detach().to(dtype)
            stored = new_param(store, f"{param.param_name}_{obs.spec.dtype.data}", narrow, param.kind.data)
            Rewriter.insert_op(stored, InsertPoint.before(obs))
            source: SSAValue = stored.result
        else:
            down = AtenOp("_to_copy.default", [value], {"dtype": DTypeAttr(str(dtype).removeprefix("torch."))},
                          [_with_element(value.type, _element(dtype))])
            down.results[0].name_hint = f"{value.name_hint or 'v'}_{obs.spec.dtype.data}"
            Rewriter.insert_op(down, InsertPoint.before(obs))
            source = down.results[0]
        up = AtenOp("_to_copy.default", [source], {"dtype": float_dtype}, [value.type])
        up.results[0].name_hint = f"{value.name_hint or 'v'}_dq"
        Rewriter.replace_op(obs, up)
        if isinstance(value.owner, ParamOp) and not value.uses:
            Rewriter.erase_op(value.owner)

    @staticmethod
    def _quantize_custom(call: CallOp) -> None:
        """A custom module observed at its boundary takes its quantized form, which sees each input
        as the dequantize before it gives it and each output as the quantize after it takes it."""
        def seen(value: SSAValue, quantized: SSAValue | None) -> Attribute:
            qtype = getattr(quantized.type, "element_type", None) if quantized is not None else None
            return _with_element(value.type, qtype) if isinstance(qtype, UniformQuantizedType) else value.type

        inputs = [seen(v, dequantized(v)) for v in call.operands]
        outputs = [seen(r, q.result if (q := quantize_reading(r)) is not None else None) for r in call.results]
        call.set_form("quantized", FunctionType.from_lists(inputs, outputs))

    @staticmethod
    def _derive(op, index: int, spec: DerivedSpecAttr, store) -> None:
        value = op.operands[index]
        if not isinstance(value.owner, ParamOp):
            raise OpError(op, f"operand {index} has a derived spec but is not a constant")
        scales = None
        for source in spec.sources:
            producer = op.operands[source].owner
            if not isinstance(producer, DequantizeCastOp):
                raise OpError(op, f"derived spec: operand {source} is not quantized")
            qtype = producer.quantized_type
            s = torch.tensor(qtype.scales if isinstance(qtype, UniformQuantizedPerAxisType) else [qtype.scale],
                             dtype=torch.float64)
            scales = s if scales is None else scales * s
        tensor = param_tensor(value.owner, store)
        storage, qmin, qmax = spec.storage.data, spec.qmin.data, spec.qmax.data
        if scales.numel() == 1:
            qtype = UniformQuantizedType.get(storage, float(scales[0]), 0, storage_min=qmin, storage_max=qmax)
        else:
            qtype = UniformQuantizedPerAxisType.get(storage, scales.tolist(), [0] * scales.numel(), 0,
                                                    storage_min=qmin, storage_max=qmax)
        qtensor_type = _with_element(value.type, qtype)
        param = value.owner
        new = new_param(store, param.param_name + "_q", quantize_tensor(tensor, qtype), param.kind.data,
                        qtensor_type)
        dcast = DequantizeCastOp(new.result, value.type)
        dcast.results[0].name_hint = f"{new.result.name_hint}_dq"
        Rewriter.insert_op([new, dcast], InsertPoint.before(op))
        op.operands[index] = dcast.results[0]
        if not param.result.uses:
            Rewriter.erase_op(param)


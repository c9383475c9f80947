"""The numeric debugger: which quantized op loses the accuracy, and in which layer.

    records = qir.debug.compare(model, qir.convert(prepared), example_inputs)
    print(qir.debug.format_table(records, limit=10))      # worst first
    quantizer.set_module_name(records[0].module, None)    # leave that layer in float

`compare` runs the float model and the quantized (Q/DQ) module on the same
inputs and reports, for every quantized `aten.op`, how far its output is from
the float op it came from, with the provenance the importer kept on the op
(module path, module type) so that the answer is a layer a quantizer can be
told about. Two figures per op, both signal-to-quantization-noise ratios in dB
(`10 log10(sum(ref²) / sum((ref - out)²))`, inf when equal):

* `sqnr`: the op's output in the quantized model against float. Errors
  accumulate along the graph, so every op after a bad layer looks bad too; this
  is what the model computes at that point.
* `local_sqnr`: the op alone. The quantized module is run again with every
  matched op's output replaced by its float value, so each op sees float inputs
  quantized exactly as the quantized model quantizes them (input, weight and
  output quantization of that op only). This is what ranks the layers: records
  come sorted by it, worst first.

What the float side is. The quantized program descends from the float export
through the float-stage passes of `qir.prepare` (canonicalize, fold-bn), which
remove ops and merge a BatchNorm into the convolution before it, keeping the
convolution's op and provenance. The float reference is therefore the float
model exported and run through those same passes: it computes what the model
computes (fold-bn is exact up to float rounding), and a folded convolution's
float value is the BatchNorm's output, which is what its quantized output
stands for. A BatchNorm folded away has no row of its own; its convolution's
row covers both.

How ops are matched. SSA names are no identity (xDSL strips `_N` suffixes
from name hints, so `%conv2d` and `%conv2d_1` share one), so ops are matched
by dataflow: the function arguments correspond by position, and a quantized op
corresponds to the first unmatched float op with the same ATen overload, module
path, arguments and corresponding activation operands (looking through
`quant.qcast`/`quant.dcast`; weights match any parameter). Ops the quantized
program added, or whose operands do not correspond, have no row.

`saturating_layers(quantized, target)` answers another question: which layers x86's int8
kernels would compute differently on a CPU without VNNI (their weights have pairs of products
that can leave int16 there), most at risk first.

Lowered modules are refused: a fused kernel (`x86.conv2d_relu`) carries the
convolution's provenance but outputs the ReLU's value, and nothing in the IR
says which float op a kernel's output stands for. Compare the module
`qir.convert` returned; the backends are tested to compute what it computes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.fx as fx
from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Operation, SSAValue

from qir.dialects.aten import AtenOp, ParamOp
from qir.dialects.custom import CallOp
from qir.dialects.quant import (
    DequantizeCastOp,
    DynamicDequantizeCastOp,
    DynamicQuantizeCastOp,
    QuantizeCastOp,
    StorageCastOp,
)
from qir.emitter import Emitter
from qir.errors import QirError
from qir.program import Program
from qir.qdq import is_dequantized, output_casts, quantize_reading

__all__ = ["LayerRecord", "SaturationRecord", "as_dicts", "compare", "format_table", "saturating_layers", "sqnr"]


@dataclass(frozen=True)
class LayerRecord:
    """One quantized op: where it comes from and how far its output is from float."""

    name: str
    """The op's result as `print(quantized.qir_program)` names it (`conv2d_1`)."""
    op: str
    """The ATen overload (`conv2d.default`)."""
    module: str
    """The nn.Module path it was called in (`layer1.0.conv1`), "" at the top level:
    what `set_module_name` takes."""
    module_type: str
    """That module's class (`torch.nn.modules.conv.Conv2d`), "" at the top level."""
    sqnr: float
    """dB, its output in the quantized model against float (errors of earlier ops included)."""
    local_sqnr: float
    """dB, this op alone, on float inputs quantized as the model quantizes them."""
    max_abs_error: float
    """The largest |float - quantized| of its output in the quantized model."""
    numel: int
    """Elements of its output."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-able: non-finite figures become the strings "inf", "-inf", "nan" (JSON has no
        infinities, and None would not tell an exact op from a broken one)."""
        return {k: _json_number(v) for k, v in asdict(self).items()}


def sqnr(reference: torch.Tensor, actual: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio of `actual` against `reference`, in dB: inf when they
    are equal, -inf when the reference is zero and they are not. Positions where both hold the
    same value count as exact, non-finite ones included (a masked score of -inf in both); a
    position where they differ and either is not finite is infinite noise (-inf)."""
    return _figures(reference, actual)[0]


def _figures(reference: torch.Tensor, actual: torch.Tensor) -> tuple[float, float]:
    """(SQNR in dB, max |reference - actual|), from one difference (at least float32, sums in
    float64: a whole ResNet's activations are compared twice per run, so the common case, all
    finite, is told by the sums themselves)."""
    if reference.numel() == 0:
        return math.inf, 0.0
    dtype = torch.promote_types(torch.promote_types(reference.dtype, actual.dtype), torch.float32)
    ref, act = reference.detach().to(dtype), actual.detach().to(dtype)
    diff = ref - act
    noise = float(torch.linalg.vector_norm(diff, dtype=torch.float64)) ** 2
    signal = float(torch.linalg.vector_norm(ref, dtype=torch.float64)) ** 2
    if not (math.isfinite(noise) and math.isfinite(signal)):  # positions that agree are exact
        same = (ref == act) | (ref.isnan() & act.isnan())
        diff = torch.where(same, 0.0, torch.where(diff.isnan(), math.inf, diff))
        noise = float(torch.linalg.vector_norm(diff, dtype=torch.float64)) ** 2
        signal = float(torch.linalg.vector_norm(torch.where(ref.isfinite(), ref, 0.0), dtype=torch.float64)) ** 2
    max_error = float(diff.abs().max())
    if noise == 0:
        return math.inf, max_error
    if signal == 0 or not math.isfinite(noise):
        return -math.inf, max_error
    return 10 * math.log10(signal / noise), max_error


def compare(float_model, quantized, inputs=(), *, kwargs: dict | None = None) -> list[LayerRecord]:
    """Run `float_model` (an nn.Module, an ExportedProgram or a float-stage `qir.Program`) and
    `quantized` (what `qir.convert` returns, or a quantized-stage Program) on `inputs` (the
    positional inputs of one call: a tuple, or one tensor) and `kwargs` (its keyword inputs, as
    a Hugging Face model takes `input_ids=...`); one record per quantized op, worst `local_sqnr`
    first. See the module docstring for what is compared with what."""
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    kwargs = kwargs or {}
    q_program = _quantized_program(quantized)
    kept = sorted({op.callee.data for op in q_program.module.walk() if isinstance(op, CallOp)})
    f_program = _float_program(float_model, args, _in_program_order(q_program, kwargs), kept)
    matched = _match(f_program, q_program)
    if not any(_is_quantized(op) for op in matched):
        if any(_is_quantized(op) for op in q_program.forward.body.ops if isinstance(op, AtenOp)):
            raise QirError("no quantized op of the quantized program matches an op of the float model: "
                           "is it the model it was quantized from?")
        return []  # every op was left in float: nothing to report

    f_em, q_em = _emitted(f_program), _emitted(q_program)
    pairs: list[tuple[fx.Node, fx.Node]] = []  # (quantized, float) nodes of corresponding results
    for q_op, f_op in matched.items():
        for q_res, f_res in zip(q_op.results, f_op.results):
            q_node, f_node = q_em.nodes.get(q_res), f_em.nodes.get(f_res)
            if isinstance(q_node, fx.Node) and isinstance(f_node, fx.Node):
                pairs.append((q_node, f_node))
    chains = {q_op: _output_chain(q_op, q_em) for q_op in matched if _is_quantized(q_op) and q_op.results}
    f_inputs, q_inputs = _flat_inputs(f_em.gm, args, kwargs), _flat_inputs(q_em.gm, args, kwargs)
    expected = _Recorder(f_em.gm, (f for _, f in pairs)).run(*f_inputs)
    actual = _Recorder(q_em.gm, [*(q for q, _ in pairs), *(n for c in chains.values() for n in c)]).run(*q_inputs)
    substitutes = {q: expected[f] for q, f in pairs
                   if isinstance(expected[f], torch.Tensor) and _same_kind(expected[f], actual[q])}
    isolated = _Recorder(q_em.gm, substitutes, substitutes)
    computed = isolated.run(*q_inputs)

    names = _printed_names(q_program)
    records = []
    for order, q_op in enumerate(q_program.forward.body.ops):
        q_node = q_em.nodes.get(q_op.results[0]) if q_op in chains else None
        reference = substitutes.get(q_node)
        if reference is None or not reference.is_floating_point():
            continue
        chain = chains[q_op]
        output = actual[chain[-1]] if chain else actual[q_node]
        local = isolated.through(chain, computed[q_node])
        db, max_error = _figures(reference, output)
        records.append((order, LayerRecord(
            name=names[q_op.results[0]], op=q_op.target.data, module=_attr(q_op, "module"),
            module_type=_attr(q_op, "module_type"), sqnr=db, local_sqnr=sqnr(reference, local),
            max_abs_error=max_error, numel=reference.numel())))
    records.sort(key=lambda r: (r[1].local_sqnr, r[0]))
    return [r for _, r in records]


def format_table(records: Sequence[LayerRecord], limit: int | None = None) -> str:
    """The records as an aligned text table, in their order (worst first as `compare` returns
    them); `limit` keeps the first rows and says how many were left out."""
    shown = list(records if limit is None else records[:limit])
    header = ("local dB", "SQNR dB", "max |err|", "op", "module", "type", "value")
    rows = [(_db(r.local_sqnr), _db(r.sqnr), f"{r.max_abs_error:.3g}", r.op, r.module or "(top)",
             r.module_type.rpartition(".")[2] or "-", f"%{r.name}") for r in shown]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = 3  # the first three columns are numbers: right-aligned
    lines = ["  ".join(c.rjust(w) if i < numeric else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths)))
             .rstrip() for row in [header, *rows]]
    if limit is not None and len(records) > limit:
        lines.append(f"... {len(records) - limit} more ops")
    return "\n".join(lines)


def as_dicts(records: Iterable[LayerRecord]) -> list[dict[str, Any]]:
    """The records as JSON-able dicts (see `LayerRecord.as_dict`)."""
    return [r.as_dict() for r in records]


# -- the two programs -------------------------------------------------------------------------


def _quantized_program(quantized) -> Program:
    program = quantized if isinstance(quantized, Program) else getattr(quantized, "qir_program", None)
    if not isinstance(program, Program):
        raise QirError("compare expects what qir.convert returns (a module with .qir_program) or a "
                       f"quantized-stage qir.Program, got {type(quantized).__name__}")
    if program.stage != "quantized":
        raise QirError(f"compare needs the quantized (Q/DQ) program that qir.convert returns, got one at stage "
                       f"{program.stage!r}: a fused kernel does not say which float op its output stands for")
    return program


def _in_program_order(program: Program, kwargs: dict) -> dict:
    """`kwargs` in the order of the program's keyword inputs: the float model is exported with
    them, and the two programs' inputs correspond by position."""
    from qir.pytree_text import spec_from_text

    attr = program.forward.attributes.get("qir.in_spec")
    spec = spec_from_text(attr.data) if isinstance(attr, StringAttr) and kwargs else None
    if spec is None or len(spec.children_specs) != 2 or not isinstance(spec.children_specs[1].context, list):
        return kwargs
    order = [key for key in spec.children_specs[1].context if key in kwargs]
    return {**{key: kwargs[key] for key in order}, **kwargs}


def _flat_inputs(gm: fx.GraphModule, args: tuple, kwargs: dict) -> list:
    """The values of `gm`'s placeholders for a call `gm(*args, **kwargs)`: the inputs flattened as
    the program's calling convention says (`torch.export`'s input spec), or `args` as they are for
    a program that has none (one parsed from text without it)."""
    codegen = gm.graph._codegen
    spec = getattr(getattr(codegen, "pytree_info", None), "in_spec", None)
    if spec is None:
        if kwargs:
            raise QirError("the program has no calling convention for keyword inputs: pass them positionally")
        return list(args)
    import torch.fx._pytree as fx_pytree

    try:
        return fx_pytree.tree_flatten_spec((args, kwargs), spec)
    except Exception as err:  # noqa: BLE001 - the inputs do not fit the program's signature
        raise QirError(f"the inputs do not fit the program's signature ({type(err).__name__}: {err})") from None


def _float_program(model, args: tuple, kwargs: dict, kept: Sequence[str] = ()) -> Program:
    """The float model as a program; the modules the quantized program keeps (`kept`: custom
    modules, each one `custom.call`) are kept in float as they are."""
    from qir.api import PREPARE_PIPELINE
    from qir.custom_modules import CustomModules
    from qir.importer import export, import_program
    from qir.pass_manager import PassManager

    if isinstance(model, Program):
        if model.stage != "float":
            raise QirError(f"compare needs the float model, got a program at stage {model.stage!r}")
        program = model
    elif isinstance(model, torch.export.ExportedProgram):
        program = import_program(model)
    elif isinstance(model, torch.nn.Module):
        program = export(model, args, kwargs, custom_modules=CustomModules().keep_float(*kept) if kept else None)
    else:
        raise QirError("compare expects the float model as an nn.Module, an ExportedProgram or a float-stage "
                       f"qir.Program, got {type(model).__name__}")
    float_passes = PREPARE_PIPELINE[:PREPARE_PIPELINE.index("annotate")]  # what the quantized program went through
    return PassManager(list(float_passes)).run(program)


# -- matching ---------------------------------------------------------------------------------

_PARAM = object()
"""An operand key standing for any parameter: weights are renamed and quantized by convert."""

_CASTS = (QuantizeCastOp, DequantizeCastOp, StorageCastOp, DynamicQuantizeCastOp, DynamicDequantizeCastOp)


def _source(value: SSAValue) -> SSAValue:
    """The float value behind quantize/dequantize casts and SmoothQuant's division (`smooth-quant`)."""
    while isinstance(value.owner, _CASTS) or (isinstance(value.owner, AtenOp) and "smoothing" in value.owner.attributes):
        value = value.owner.operands[0]
    return value


def _operand_keys(op: AtenOp, mapping: dict[SSAValue, SSAValue] | None) -> tuple | None:
    """The op's operands as matching keys: parameters as `_PARAM`, activations as the float
    value they correspond to (through `mapping`; the value itself on the float side). None
    when an activation has no counterpart."""
    keys = []
    for value in op.operands:
        source = _source(value)
        if isinstance(source.owner, ParamOp):
            keys.append(_PARAM)
        elif mapping is None:
            keys.append(source)
        elif source in mapping:
            keys.append(mapping[source])
        else:
            return None
    return tuple(keys)


def _key(op: AtenOp | CallOp, operands: tuple) -> tuple:
    name = op.target.data if isinstance(op, AtenOp) else f"custom.call {op.callee.data}"
    return name, _attr(op, "module"), operands


def _match(f_program: Program, q_program: Program) -> dict[AtenOp, AtenOp]:
    """Each quantized-program aten.op with its float counterpart (see the module docstring).
    Kept modules (`custom.call`) are matched too, so the ops after them are, but have no record."""
    f_args, q_args = f_program.forward.body.block.args, q_program.forward.body.block.args
    if len(f_args) != len(q_args):
        raise QirError(f"the float model takes {len(f_args)} inputs and the quantized one {len(q_args)}: "
                       "is it the model it was quantized from?")
    candidates: dict[tuple, list[AtenOp]] = {}
    for op in f_program.forward.body.ops:
        if isinstance(op, AtenOp | CallOp):
            candidates.setdefault(_key(op, _operand_keys(op, None)), []).append(op)
    mapping: dict[SSAValue, SSAValue] = dict(zip(q_args, f_args))
    matched: dict[AtenOp, AtenOp] = {}
    for op in q_program.forward.body.ops:
        if not isinstance(op, AtenOp | CallOp):
            continue
        operands = _operand_keys(op, mapping)
        if operands is None:
            continue
        options = candidates.get(_key(op, operands), [])
        found = next((f for f in options if f.args == op.args
                      and getattr(f, "kwargs", None) == getattr(op, "kwargs", None)), None)
        if found is None:
            continue
        options.remove(found)
        if isinstance(op, AtenOp):
            matched[op] = found
        mapping.update(zip(op.results, found.results))
    return matched


def _is_quantized(op: Operation) -> bool:
    """An op the quantizer touched: it reads a dequantized value or its output is quantized."""
    reads = any(is_dequantized(v) for v in op.operands)
    return reads or bool(op.results) and quantize_reading(op.results[0]) is not None


def _output_chain(op: AtenOp, em: Emitter) -> list[fx.Node]:
    """The quantize and dequantize nodes the op's output goes through, if any."""
    casts = output_casts(op.results[0])
    return [em.nodes[cast.result] for cast in casts] if casts is not None else []


# -- running ----------------------------------------------------------------------------------


@dataclass
class _Emitted:
    gm: fx.GraphModule
    nodes: dict[SSAValue, Any]
    """Each SSA value's FX node (or the Python value it was emitted as)."""


def _emitted(program: Program) -> _Emitted:
    """The program as the emitter builds it, keeping the value → node map the records need.
    (No backend finalization: both programs here are Q/DQ or float ATen.)"""
    em = Emitter(program)
    gm = em.run()
    return _Emitted(gm, em.nodes)


class _Recorder(fx.Interpreter):
    """Runs a module, keeping each watched node's value as it is produced, and optionally
    replacing some nodes' values by given ones (`substitutes`; then `recorded` holds what the
    node itself computed). Values a later in-place op (`relu_`) may write are copied."""

    def __init__(self, gm: fx.GraphModule, watch: Iterable[fx.Node],
                 substitutes: dict[fx.Node, torch.Tensor] | None = None):
        super().__init__(gm, garbage_collect_values=False)
        self.watch = set(watch)
        self.substitutes = substitutes or {}
        self.recorded: dict[fx.Node, Any] = {}
        self.written = _written_later(gm.graph)

    def run(self, *inputs) -> dict[fx.Node, Any]:
        """Run on the placeholders' values (`_flat_inputs`)."""
        with torch.no_grad():
            super().run(*inputs, enable_io_processing=False)
        return self.recorded

    def run_node(self, node: fx.Node) -> Any:
        value = super().run_node(node)
        copy = node in self.written
        if node in self.watch:
            self.recorded[node] = value.clone() if copy and isinstance(value, torch.Tensor) else value
        if node in self.substitutes:
            return self.substitutes[node].clone() if copy else self.substitutes[node]
        return value

    def through(self, chain: list[fx.Node], value: Any) -> Any:
        """`value` through the quantize → dequantize `chain` (its other arguments as they ran:
        constants, never written in place)."""
        for node in chain:
            args = fx.node.map_arg(node.args, lambda a: self.env[a])
            kwargs = fx.node.map_arg(node.kwargs, lambda a: self.env[a])
            with torch.no_grad():
                value = node.target(value, *args[1:], **kwargs)
        return value


def _written_later(graph: fx.Graph) -> set[fx.Node]:
    """Nodes whose tensor a later op may write in place: an operand of a mutating op, or of a
    view (an alias) of such a node."""
    written: set[fx.Node] = set()
    for node in reversed(graph.nodes):
        for user in node.users:
            schema = getattr(user.target, "_schema", None)
            if schema is None:
                continue
            aliases = bool(schema.returns) and schema.returns[0].alias_info is not None
            if schema.is_mutable or aliases and user in written:
                written.add(node)
                break
    return written


def _same_kind(expected: torch.Tensor, actual: Any) -> bool:
    return isinstance(actual, torch.Tensor) and actual.shape == expected.shape and actual.dtype == expected.dtype


# -- small helpers ----------------------------------------------------------------------------


def _attr(op: Operation, name: str) -> str:
    attr = op.attributes.get(name)
    return attr.data if isinstance(attr, StringAttr) else ""


def _printed_names(program: Program) -> dict[SSAValue, str]:
    """The names xDSL's printer gives the values of @forward (hint, then hint_1, hint_2, ...;
    unnamed values numbered), so that records name values as `print(program)` shows them."""
    counts: dict[str, int] = {}
    names: dict[SSAValue, str] = {}
    unnamed = 0
    block = program.forward.body.block
    values = [*block.args, *(r for op in block.ops for r in op.results)]
    for value in values:
        if value.name_hint:
            n = counts.get(value.name_hint, 0)
            names[value] = value.name_hint + (f"_{n}" if n else "")
            counts[value.name_hint] = n + 1
        else:
            names[value] = str(unnamed)
            unnamed += 1
    return names


def _db(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else str(value)


def _json_number(value: Any) -> Any:
    return str(value) if isinstance(value, float) and not math.isfinite(value) else value


@dataclass(frozen=True)
class SaturationRecord:
    """A conv or linear whose int8 kernels could saturate on a target: how much of it could."""

    module: str
    op: str
    kernel: str
    """The kernel family whose pairs are counted (`fbgemm`, `onednn`)."""
    channels_at_risk: int
    channels: int
    pairs_at_risk: int
    pairs: int


def saturating_layers(quantized, target: str = "x86-avx2") -> list[SaturationRecord]:
    """The layers of a quantized program (what `qir.convert` returns) that x86's kernels would
    compute differently on `target`, most pairs at risk first: their weights have pairs whose
    uint8 x int8 products can leave int16 there. Empty on a target whose kernels are exact, and
    for a program quantized for the target (its weights are fitted). `qir.lower(quantized,
    "reference", target=...)` measures what that costs on real inputs."""
    from qir.accumulation import Reduction, risky_pairs
    from qir.dialects import ref
    from qir.params import constant_tensor
    from qir.pass_manager import PassManager

    program = PassManager(["reference-rewrite", f"emulate-target{{target={target}}}"]).run(
        _quantized_program(quantized))
    records = []
    for op in program.module.walk():
        if not isinstance(op, ref.ConvOp | ref.ConvAddOp | ref.LinearOp) or "saturate" not in op.properties:
            continue
        kind = op.saturate.data
        weight = constant_tensor(op.weight, program.params)
        groups = op.groups.value.data if not isinstance(op, ref.LinearOp) else 1
        reduction = Reduction(tuple(weight.shape), groups)
        qin = ref.per_tensor(op.input)
        table = risky_pairs(weight, reduction, kind, qin.storage_min, qin.storage_max)
        pairs = reduction.pair_indices(kind).shape[0] * reduction.out_channels
        records.append(SaturationRecord(_attr(op, "module"), op.name, kind, int(table[:, 0].unique().numel()),
                                        reduction.out_channels, int(table.shape[0]), pairs))
    return sorted(records, key=lambda r: -r.pairs_at_risk / max(r.pairs, 1))

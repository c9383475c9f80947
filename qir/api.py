"""The modeling user's flow: prepare → calibrate → convert, as PT2E's, on the IR.

    prepared = qir.prepare(model, example_inputs, X86Quantizer())
    for batch in calibration_data:
        prepared(*batch)
    quantized = qir.convert(prepared)

Each step is a pipeline of passes over a `qir.Program`; the modules returned
keep theirs reachable as `.qir_program`, so every stage can be printed,
saved, and resumed with `qir-opt`.
"""

from __future__ import annotations

import warnings

import torch
import torch.fx as fx

from qir.errors import QirError
from qir.gc_pause import paused_gc
from qir.importer import import_program
from qir.pass_manager import PassManager
from qir.program import Program
from qir.recurrent import decomposed_for
from qir.quantizer import Quantizer
from qir.registry import available_passes
from qir.target import TargetError, parse_target

PREPARE_PIPELINE = ("canonicalize", "cse", "normalize-linear", "fold-constants", "fold-bn", "annotate",
                    "propagate-annotations", "insert-observers")


def _program_of(model, example_inputs, kwargs, dynamic_shapes, warn_training: bool = True,
                custom_modules=None, quantizer: Quantizer | None = None) -> Program:
    """The float program of `model`; RNN layers `quantizer` configures as their cells' linears
    (`qir.recurrent`)."""
    if custom_modules and not isinstance(model, torch.nn.Module):
        raise TypeError("custom_modules names submodules of an nn.Module: give the module, not "
                        f"{type(model).__name__}")
    if isinstance(model, Program):
        return model
    if isinstance(model, torch.export.ExportedProgram):
        return decomposed_for(model, import_program(model), quantizer)
    if isinstance(model, torch.nn.Module):
        training = [name or type(model).__name__ for name, m in model.named_modules() if m.training]
        if training and warn_training:
            warnings.warn(f"qir.prepare: {type(model).__name__} is in training mode ({training[0]}"
                          f"{f' and {len(training) - 1} more modules' if len(training) > 1 else ''}): it is "
                          "exported as it trains (dropout drops, batch norm uses the batch's statistics); "
                          "call model.eval() first for post-training quantization", UserWarning, stacklevel=3)
        args = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
        if custom_modules:
            from qir.custom_modules import export

            return export(model, args, kwargs, dynamic_shapes, custom_modules)
        ep = torch.export.export(model, args, kwargs or {}, dynamic_shapes=dynamic_shapes)
        return decomposed_for(ep, import_program(ep), quantizer)
    raise TypeError(f"expected an nn.Module, an ExportedProgram or a qir.Program, got {type(model).__name__}")


@paused_gc()  # the whole call builds objects and frees few: collections only cost time
def prepare(model, example_inputs=(), quantizer: Quantizer | None = None, *, kwargs: dict | None = None,
            dynamic_shapes=None, custom_modules=None, timing: bool = False) -> fx.GraphModule:
    """Export (if needed), annotate with `quantizer` and insert observers.

    Returns the calibration module: call it on representative inputs, then
    `convert` it. `custom_modules` (a `qir.CustomModules`) names submodules kept as they
    are: in float, or replaced by the user's quantized form. `model` is never changed."""
    from qir.quantizer import X86Quantizer

    quantizer = quantizer or X86Quantizer()
    program = _program_of(model, example_inputs, kwargs, dynamic_shapes, custom_modules=custom_modules,
                          quantizer=quantizer)
    annotate = available_passes()["annotate"]()  # by name: the core does not import passes
    passes = [annotate(quantizer=quantizer) if p == "annotate" else p for p in PREPARE_PIPELINE]
    # a program imported here is the passes' to rewrite (imported again only to blame a failure)
    fresh = None if isinstance(model, Program) else (
        lambda: _program_of(model, example_inputs, kwargs, dynamic_shapes, warn_training=False,
                            custom_modules=custom_modules, quantizer=quantizer))
    prepared = PassManager(passes, timing=timing).run(program, fresh=fresh)
    gm = prepared.to_fx()
    return gm


QAT_PIPELINE = ("canonicalize{keep-detach=true}", "cse", "normalize-linear{keep-tied=true}", "set-training{mode=module}",
                "annotate", "propagate-annotations", "insert-observers{fake-quant=true}", "simulate-bn")
"""`prepare_qat`'s passes: PTQ's, less the folds (the weights and batch norms train), with the
training mode left to the module and fake quantization in place of observers."""

CONVERT_PIPELINE = ("set-training{mode=eval}", "fold-bn", "smooth-quant", "convert", "canonicalize", "cse")


def prepare_qat(model, example_inputs=(), quantizer: Quantizer | None = None, *, kwargs: dict | None = None,
                dynamic_shapes=None, custom_modules=None, timing: bool = False) -> fx.GraphModule:
    """Export `model` as it trains, annotate it with `quantizer` (a QAT config: x86's
    `X86Quantizer(x86_config(is_qat=True))` by default) and insert fake quantization.

    Returns a trainable module: its parameters are the model's (those the model does not train
    stay frozen), `.train()`/`.eval()` switch dropout and batch norm, a convolution or linear
    with a batch norm after it trains as their folded form. `convert` it when trained.
    `model` is never changed."""
    from qir.quantizer import X86Quantizer, x86_config

    quantizer = quantizer or X86Quantizer(x86_config(is_qat=True))
    if isinstance(model, torch.nn.Module):
        with _training(model):
            program = _program_of(model, example_inputs, kwargs, dynamic_shapes, warn_training=False,
                                  custom_modules=custom_modules, quantizer=quantizer)
    else:
        program = _program_of(model, example_inputs, kwargs, dynamic_shapes, custom_modules=custom_modules,
                              quantizer=quantizer)
    annotate = available_passes()["annotate"]()
    passes = [annotate(quantizer=quantizer) if p == "annotate" else p for p in QAT_PIPELINE]
    prepared = PassManager(passes, timing=timing).run(program).to_fx()
    _start_learned(prepared, example_inputs, kwargs)
    # Under DistributedDataParallel each rank's observers keep their own statistics (merged by
    # qir.synchronize): DDP must not broadcast rank 0's histogram buffers over them.
    observed = [name for name, _ in prepared.named_buffers() if name.startswith("observers.")]
    torch.nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(prepared, observed)
    return prepared


def _start_learned(prepared: fx.GraphModule, example_inputs, kwargs) -> None:
    """Learned scales (LSQ) start from the example inputs' ranges, in eval mode (nothing else
    changes): every process of a distributed run starts from the same parameters."""
    from qir.fake_quant import FakeQuantize

    learned = [m for m in prepared.modules() if isinstance(m, FakeQuantize) and m.learned]
    if not learned:
        return
    args = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    for module in learned:
        module.starting = True
    try:
        with torch.no_grad():
            prepared.eval()(*args, **(kwargs or {}))
    finally:
        for module in learned:
            module.starting = False
        prepared.train()


class _training:
    """`model` in training mode for the duration, each submodule's own mode restored after."""

    def __init__(self, model: torch.nn.Module):
        self.model = model
        self.modes = [(m, m.training) for m in model.modules()]

    def __enter__(self):
        self.model.train()

    def __exit__(self, *exc):
        for module, mode in self.modes:
            module.training = mode


def observed_program(prepared: torch.nn.Module) -> Program:
    """The observed program of a calibration module (`prepare`) or of a module being trained
    (`prepare_qat`, perhaps inside `DistributedDataParallel`) as it is now: the statistics its
    observers gathered, its parameters and buffers as training left them, which fake
    quantizations and batch norms are frozen. Printed, saved and parsed back, it emits the
    same module again (training resumes from it)."""
    module, program = _calibrated(prepared)
    program = program.clone()
    _read_calibration(module, program)
    return program


def _calibrated(prepared: torch.nn.Module) -> tuple[torch.nn.Module, Program]:
    """The calibration (or training) module `prepared` wraps, and the observed program it was emitted from."""
    module = getattr(prepared, "module", prepared) if not hasattr(prepared, "qir_program") else prepared
    program = getattr(module, "qir_program", None)
    if not isinstance(program, Program) or program.stage != "observed":
        raise QirError("convert expects the module returned by qir.prepare or qir.prepare_qat")
    return module, program


def _read_calibration(module: torch.nn.Module, program: Program) -> None:
    """What calibration or training left in `module` into `program` (a copy of its own)."""
    changed = _read_tensors(module, program)
    _read_observers(module, program, changed)
    if program.modules:  # custom modules as calibration or training left them
        from qir.custom_modules import read_modules

        read_modules(module, program)


def _read_tensors(module: torch.nn.Module, program: Program) -> set[str]:
    """The module's parameters and buffers (trained, running statistics updated) into the store;
    the names of those that changed."""
    changed = set()
    # one walk of the module's tensors, rather than a walk down each target's path
    tensors = dict(module.named_buffers(remove_duplicate=False))
    tensors.update(module.named_parameters(remove_duplicate=False))  # a parameter first, as get_parameter
    for name, target in getattr(module, "qir_param_targets", {}).items():
        tensor = tensors.get(target)
        if tensor is None:
            continue
        if not torch.equal(tensor, program.params[name]):
            program.params[name] = tensor.detach().clone()
            changed.add(name)
    return changed


def _read_observers(module: torch.nn.Module, program: Program, changed: set[str]) -> None:
    """The observers' statistics into the IR. A weight's statistics are its own: observed again
    when the weight changed (trained, or set by the user) or has none yet; an observed weight's
    unchanged statistics are kept as the IR has them (observing 800 weights again cost a tenth
    of convert)."""
    from xdsl.dialects.builtin import ArrayAttr, StringAttr, UnitAttr

    from qir.dialects.aten import ParamOp
    from qir.dialects.obs import FakeQuantOp, ObserveOp, QuantSpecAttr
    from qir.observation import observer_spec, stats_to_attr
    from qir.observers import Observer, make_observer
    from qir.params import param_tensor

    observers = getattr(module, "observers", None)
    for op in program.module.walk():
        if not isinstance(op, ObserveOp | FakeQuantOp):
            continue
        observer = getattr(observers, op.obs_id.data, None)
        if isinstance(op, FakeQuantOp) and observer is not None:
            for flag, on in (("frozen", not observer.observing), ("disabled", not observer.quantizing)):
                if on:
                    op.properties[flag] = UnitAttr()
                else:
                    op.properties.pop(flag, None)
        if isinstance(op.input.owner, ParamOp) and isinstance(op.spec, QuantSpecAttr):
            if isinstance(op, ObserveOp) and op.stats is not None and op.input.owner.param_name not in changed:
                continue
            weight = make_observer(observer_spec(op.spec))  # a weight's statistics are its own
            weight(param_tensor(op.input.owner, program.params))
            stats = weight.stats(tensors=True)
        elif isinstance(op, FakeQuantOp) or op.stats is None:
            stats = {} if observer is None else (
                observer.stats(tensors=True) if isinstance(observer, Observer) else observer.stats())
        else:
            continue
        if stats:
            op.properties["stats"] = stats_to_attr(stats)
    switches = getattr(module, "switches", None)
    frozen = [name for name, switch in (switches.named_children() if switches is not None else ())
              if getattr(switch, "frozen", False)]
    if frozen:
        program.module.attributes["qir.frozen_switches"] = ArrayAttr([StringAttr(n) for n in frozen])
    else:
        program.module.attributes.pop("qir.frozen_switches", None)


@paused_gc()  # the whole call builds objects and frees few: collections only cost time
def convert(prepared: torch.nn.Module, *, timing: bool = False) -> fx.GraphModule:
    """The Q/DQ module: `quantized_decomposed` quantize/dequantize around float ATen ops,
    weights stored as integers, from a calibrated (`prepare`) or trained (`prepare_qat`)
    module: for inference, trained batch norms folded as PTQ folds them. Its program stays
    reachable as `.qir_program`; its FX graph is built when the module is first used
    (`qir.emitter.DeferredModule`), so a module that is only lowered never builds one (unless it
    calls custom modules, whose quantized forms are made as it is built, here)."""
    from qir.emitter import DeferredModule

    module, observed = _calibrated(prepared)
    # the statistics are read into the pass manager's own copy: one copy of the program, not two
    program = PassManager(list(CONVERT_PIPELINE), timing=timing).run(
        observed, setup=lambda copy: _read_calibration(module, copy))
    if program.modules:  # custom modules' quantized forms are made when the module is built: now
        return program.to_fx()
    return DeferredModule(program)


def _quantized_program(quantized) -> Program:
    program = quantized if isinstance(quantized, Program) else getattr(quantized, "qir_program", None)
    if not isinstance(program, Program) or program.stage not in ("quantized", "reference"):
        raise QirError("lower expects what qir.convert returns, or a qir.Program at the quantized or "
                       "reference stage")
    return program


def lowering_pipeline(program: Program, backend: str, target=None) -> list:
    """The passes that take `program` (quantized or reference stage) to `backend`'s kernels, for
    `target` (a `qir.target` name or Target; None: the one the program records, else the host)."""
    from qir.registry import get_backend

    chosen = get_backend(backend)
    option = str(parse_target(target)) if target is not None else ""
    passes: list = ["fold-smoothing"]  # SmoothQuant's divisions into the norms before them, where they can
    if program.stage == "quantized" and "quantized" not in chosen.requires:
        passes.append(available_passes()["reference-rewrite"]()(backend=backend, target=option))
    if backend == "reference" and option:  # the reference asked to compute what the target's kernels would
        passes.append(available_passes()["emulate-target"]()(target=option))
    return passes + [chosen.lower_pass()(target=option), "canonicalize", "cse"]


@paused_gc()  # the whole call builds objects and frees few: collections only cost time
def lower(quantized, backend: str = "x86", *, target=None, timing: bool = False) -> fx.GraphModule:
    """The module calling `backend`'s native kernels, from what `convert` returned (or a
    quantized/reference-stage Program), for `target` (a `qir.target` name: `"x86-avx2"`,
    `"x86-avx512-vnni"`, ...; by default the one the program was quantized for, else the host).
    The `reference` backend is exact integer arithmetic; given a target, it emulates what the
    x86 backend's kernels would compute there (`emulate-target`), saturation included.
    Its program stays reachable as `.qir_program`."""
    program = _quantized_program(quantized)
    try:
        pipeline = lowering_pipeline(program, backend, target)
    except (KeyError, TargetError) as err:
        raise QirError(err.args[0]) from None
    return PassManager(pipeline, timing=timing).run(program).to_fx()


def quantize(model, example_inputs=(), quantizer: Quantizer | None = None, *, calibration=None,
             backend: str = "x86", target=None, kwargs: dict | None = None, dynamic_shapes=None,
             custom_modules=None, timing: bool = False) -> fx.GraphModule:
    """prepare → calibrate → convert → lower in one call.

    `quantizer=None` takes the backend's own (derived from its capability table, for `target`:
    a `qir.target` name, the host by default); `calibration` is an iterable of batches (a tuple
    of positional inputs, or an `(args, kwargs)` pair); None calibrates on the example inputs
    alone."""
    from qir.registry import get_backend

    try:
        chosen = get_backend(backend)
        for_target = parse_target(target)
    except (KeyError, TargetError) as err:
        raise QirError(err.args[0]) from None
    prepared = prepare(model, example_inputs, quantizer or chosen.quantizer(for_target), kwargs=kwargs,
                       dynamic_shapes=dynamic_shapes, custom_modules=custom_modules, timing=timing)
    args = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    batches = calibration if calibration is not None else [(args, kwargs or {})]
    kept = []  # the first batches, to check the lowered module with
    with torch.no_grad():
        for index, batch in enumerate(batches):
            if index < 2:
                kept.append(batch)
            batch_args, batch_kwargs = _batch(batch)
            try:
                prepared(*batch_args, **batch_kwargs)
            except Exception as err:  # torch's own message, from deep inside the calibration module
                problem = _calibration_problem(prepared, batch_args, batch_kwargs, err)
                raise QirError(f"calibration batch {index}: {problem}") from err
    quantized = convert(prepared, timing=timing)
    lowered = lower(quantized, backend, target=target, timing=timing)
    if backend != "reference":
        float_model = model.to_fx() if isinstance(model, Program) else (
            model.module() if isinstance(model, torch.export.ExportedProgram) else _unchanged(model))
        for line in check_against_reference(float_model, quantized, lowered, kept):
            warnings.warn(f"qir.quantize: {line}", UserWarning, stacklevel=2)
    return lowered


def _unchanged(model: torch.nn.Module) -> torch.nn.Module:
    """`model`, or a copy of it when running it could change it (a module in training mode updates
    its batch norm statistics): the caller's model is never changed."""
    import copy

    return copy.deepcopy(model) if any(m.training for m in model.modules()) else model


LOWERING_TOLERANCE_DB = 1.0
"""How much less accurate than its reference a lowered program may be before it is reported."""


def check_against_reference(float_model, quantized, lowered, batches) -> list[str]:
    """Compare a lowered module with the reference lowering of the same quantized program on
    `batches` (each checked against `float_model`): a line for each floating-point output whose
    SQNR against float is more than `LOWERING_TOLERANCE_DB` below the reference's (a kernel
    computing something else than the program says: saturation, a wrong kernel), worst first.
    Empty when the lowered program computes what its reference does."""
    from torch.utils._pytree import tree_leaves

    from qir.debug import sqnr

    reference = lower(quantized, "reference")
    program = lowered.qir_program
    backend = program.module.attributes.get("qir.backend")
    target = program.module.attributes.get("qir.target")
    worst: dict[int, tuple[float, float]] = {}
    with torch.no_grad():
        for batch in batches:
            args, kwargs = _batch(batch)
            outputs = [tree_leaves(m(*args, **kwargs)) for m in (float_model, reference, lowered)]
            for index, (e, r, l) in enumerate(zip(*outputs)):
                if not (isinstance(e, torch.Tensor) and e.is_floating_point()):
                    continue
                gap = (sqnr(e, l), sqnr(e, r))
                if index not in worst or gap[1] - gap[0] > worst[index][1] - worst[index][0]:
                    worst[index] = gap
    lines = []
    for index, (got, want) in sorted(worst.items(), key=lambda item: item[1][0] - item[1][1]):
        if got < want - LOWERING_TOLERANCE_DB:
            lines.append(f"output {index} of the {getattr(backend, 'data', '?')} program (lowered for "
                         f"{getattr(target, 'data', '?')}) is {want - got:.1f} dB less accurate than its reference "
                         f"({got:.1f} dB against float, the reference {want:.1f} dB): its kernels compute "
                         "something else than the quantized program says")
    return lines


def _calibration_problem(prepared: fx.GraphModule, args: tuple, kwargs: dict, err: Exception) -> str:
    """Why the calibration module failed on a batch: the first input that does not fit the
    program's input types when the batch flattens to as many inputs, else torch's reason."""
    from torch.utils._pytree import tree_leaves

    from qir.tensors import tensor_matches_type

    block = prepared.qir_program.forward.body.block
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    reason = f"{type(err).__name__}: {lines[0] if lines else ''}"
    leaves = tree_leaves((args, kwargs))
    if len(leaves) != len(block.args):
        return f"{len(leaves)} inputs where the model takes {len(block.args)} ({reason})"
    for position, (value, arg) in enumerate(zip(leaves, block.args)):
        problem = tensor_matches_type(value, arg.type) if isinstance(value, torch.Tensor) else None
        if problem:
            return f"input {position}: {problem} (the example inputs' shapes and dtypes, dynamic dimensions aside)"
    return f"the calibration module failed on it: {reason}"


def _batch(batch) -> tuple[tuple, dict]:
    """A calibration batch as (args, kwargs): `(args, kwargs)` pairs, tuples of inputs, or one tensor."""
    if isinstance(batch, tuple) and len(batch) == 2 and isinstance(batch[0], tuple) and isinstance(batch[1], dict):
        return batch
    if isinstance(batch, tuple | list):
        return tuple(batch), {}
    return (batch,), {}

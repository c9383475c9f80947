"""qir-quantize: the main job, from a model to native int8 kernels, with a report.

    qir-quantize resnet18
    qir-quantize model.pt2 --backend onednn --calibration batches.pt -o out/
    qir-quantize model.mlir --report json > report.json
    qir-quantize transformer --scheme dynamic

MODEL is a built-in example (`qir.examples`: resnet18, mobilenet_v2,
transformer), a `.pt2` file saved by `torch.export.save`, or a `.mlir` file
qir wrote (its weights beside it). A float program goes through static
post-training quantization (prepare, calibrate, convert: the Q/DQ form) and is
lowered to a backend's kernels (`--backend`, x86 by default, with the
backend's own quantizer unless `--quantizer` names one). A quantized-stage
`.mlir` is only lowered; a lowered one is reported as it is.

`--scheme` says how (`SCHEMES` maps each name to its quantizer): `static` (the default:
activations and weights int8, activation ranges from calibration); `dynamic`
(`qir.quantizer.DynamicQuantizer`: every linear's input quantized when the program runs, per
token, its weight int8 per channel); `weight-int8`, `weight-int4`, `weight-fp16`
(`qir.quantizer.WeightOnlyQuantizer`: linears' weights int8 per output channel, int4 per group
of 32 inputs, or float16, embedding tables per row; activations stay float). Only `static`
calibrates. `--dynamic-modules REGEX` mixes schemes: the linears under modules whose whole path
matches REGEX read their input quantized per token at run time (affine int8, as
`dynamic_config(symmetric=False)`), and the rest is quantized as the scheme says (MiniLM's mixed
recipe: `--dynamic-modules '.*intermediate[.]dense'`). `--smooth-modules REGEX` applies
SmoothQuant (`QuantizationConfig.smoothing`, `--smoothing ALPHA`, 0.5 by default) to the static
linears under the modules matching REGEX: their inputs' outlier channels move into their weights
(MiniLM's smoothed recipe: `--smooth-modules '.*(intermediate[.]dense|attention[.]self[.].*)'`).

Calibration: `--calibration FILE` is a list of input tuples saved with
`torch.save` (or of tensors, for a model with one input), checked against the
model's input types before anything runs. Without it, random batches shaped
like the example inputs, which calibrate ranges poorly: the report says so.
`--batches N` takes the first N batches (default: all of the file, or 4).

The report goes to stdout, as text or as one JSON document (`--report
json`): each stage's time, the size of the weights before and after (at their storage width:
`qir.blockwise.weight_bytes`, a 4-bit value half a byte, scales and zero points included), float and
quantized latency and the speed-up, the SQNR of the outputs against float, and
`qir.debug`'s per-op table, worst first (text: the first 10 rows; JSON: all).
Outputs are compared on one batch: a random one calibration did not see, or
the first calibration batch when a file gives them. The progress bar goes to
stderr when stderr is a terminal.

`-o DIR` writes DIR/model.mlir with its weights (DIR/model.safetensors), which
`qir.load` reads back and runs, and DIR/model.pt2, the Q/DQ module saved with
`torch.export.save`, when it exports. They are written last, after
everything else succeeded: a run that fails writes nothing.

Errors are one line on stderr. A problem with the input (the command line, a
file, a float model that does not run on its inputs, a pass that refuses the
program) is `qir-quantize: error: ...`, or `file:line:col: error: ...` for IR
text, with exit status 1. Anything else is a bug of qir's (a pass that crashed
or left invalid IR, a quantized module that fails where its float model ran):
one line saying so, exit status 2; QIR_TRACEBACK=1 shows the traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from qir.tools.messages import one_line, stdout_closed
from qir.tools.quantize_inputs import InputError, Model, load_calibration, load_model, random_batch, random_batches
from qir.tools.quantize_report import Report, jsonable

RANDOM_BATCHES = 4
RANDOM_NOTE = "random data calibrates ranges poorly: give --calibration FILE with real inputs"


@dataclass(frozen=True)
class Scheme:
    """A quantization scheme `--scheme` names: its quantizer for a target (None: the backend's own),
    and why it needs no calibration (None: activation ranges come from calibration)."""

    quantizer: Callable[[Any], Any] | None
    description: str
    uncalibrated: str | None = None

    @property
    def calibrates(self) -> bool:
        return self.uncalibrated is None


def _dynamic_quantizer(target):
    from qir.quantizer import DynamicQuantizer

    return DynamicQuantizer(target=target)


def _weight_only_quantizer(name: str) -> Callable[[Any], Any]:
    def quantizer(target):  # weight-only numerics do not depend on the CPU
        from qir.quantizer import weight_only_by_name

        return weight_only_by_name(name)

    return quantizer


_AT_RUN_TIME = "none needed: activations are quantized at run time"
_FLOAT_ACTIVATIONS = "none needed: activations stay float, weights are quantized from themselves"

SCHEMES: dict[str, Scheme] = {
    "static": Scheme(None, "int8 activations and weights, activation ranges from calibration"),
    "dynamic": Scheme(_dynamic_quantizer, "linears: activations quantized at run time (per token), "
                                          "int8 per-channel weights", _AT_RUN_TIME),
    "weight-int8": Scheme(_weight_only_quantizer("weight-int8"), "weight-only: int8 per-channel linear weights, "
                                                                 "int8 per-row embedding tables", _FLOAT_ACTIVATIONS),
    "weight-int4": Scheme(_weight_only_quantizer("weight-int4"), "weight-only: int4 linear weights per group of 32 "
                                                                 "inputs (asymmetric), int8 per-row embedding tables",
                          _FLOAT_ACTIVATIONS),
    "weight-fp16": Scheme(_weight_only_quantizer("weight-fp16"), "weight-only: float16 linear weights and embedding "
                                                                 "tables", _FLOAT_ACTIVATIONS),
}
"""`--scheme NAME` → how the model is quantized. A scheme is a quantizer for the target; one that does
not calibrate gets no calibration batches (its activations are quantized at run time, or not at all)."""


def _arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qir-quantize", description=__doc__.split("\n\n")[0])
    parser.error = _usage_error  # one line, status 1, like every other input error
    parser.add_argument("model", help="a built-in example (resnet18, mobilenet_v2, transformer), a .pt2 or a .mlir file")
    parser.add_argument("--backend", metavar="NAME",
                        help="the backend to lower to: x86 (default), onednn, qnnpack, reference, inductor, or an "
                             "installed one")
    parser.add_argument("--scheme", choices=tuple(SCHEMES), default="static",
                        help="; ".join(f"{name}: {scheme.description}" for name, scheme in SCHEMES.items())
                        + " (default static)")
    parser.add_argument("--quantizer", metavar="NAME", help="x86 or xnnpack (default: the backend's own, or the "
                                                            "scheme's)")
    parser.add_argument("--target", metavar="CPU", help="the CPU to quantize and lower for: host (default), x86-avx2, "
                                                      "x86-avx512, x86-avx512-vnni, x86-amx, ... (see the README)")
    parser.add_argument("--dynamic-modules", metavar="REGEX",
                        help="the linears under modules whose path matches REGEX quantized dynamically per token, "
                             "the rest as the scheme says (a mixed recipe)")
    parser.add_argument("--smooth-modules", metavar="REGEX",
                        help="SmoothQuant on the static linears under modules whose path matches REGEX")
    parser.add_argument("--smoothing", type=float, default=0.5, metavar="ALPHA",
                        help="SmoothQuant's migration strength for --smooth-modules, in [0, 1] (default 0.5)")
    parser.add_argument("--calibration", metavar="FILE", help="input batches saved with torch.save")
    parser.add_argument("--batches", type=int, metavar="N", help=f"calibration batches (default: the file's, or {RANDOM_BATCHES})")
    parser.add_argument("-o", "--output-dir", metavar="DIR", help="write DIR/model.mlir (and weights), DIR/model.pt2")
    parser.add_argument("--report", choices=("text", "json"), default="text", help="the report's form (default text)")
    return parser


def _usage_error(message: str) -> NoReturn:
    print(f"qir-quantize: error: {message} (see qir-quantize --help)", file=sys.stderr)
    sys.exit(1)


def main(argv: list[str] | None = None) -> int:
    args = _arguments().parse_args(argv)
    if args.batches is not None and args.batches < 1:
        _usage_error(f"--batches must be at least 1, not {args.batches}")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = _run(args)
        report.warnings = _warning_lines(caught)
        print(json.dumps(jsonable(report.as_json()), indent=2, allow_nan=False) if args.report == "json"
              else report.as_text())
    except BrokenPipeError:
        return stdout_closed()
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # noqa: BLE001 - the tool reports, it never shows a traceback
        user_error = _is_input_error(err)
        print(_diagnostic(err, user_error), file=sys.stderr)
        if os.environ.get("QIR_TRACEBACK") and not user_error:
            raise
        return 1 if user_error else 2
    return 0


def _is_input_error(err: BaseException) -> bool:
    """Errors qir reports about its input; a pass that crashed or left invalid IR (a
    `PassFailure` caused by anything but a `QirError`) is a bug of qir's, whatever its input."""
    from qir.errors import PassFailure, QirError

    if isinstance(err, PassFailure) and err.__cause__ is not None and not isinstance(err.__cause__, QirError):
        return False
    return isinstance(err, InputError | QirError | OSError)


def _diagnostic(err: BaseException, user_error: bool) -> str:
    """The one line an exception becomes."""
    from qir.errors import ParseFailure, QirError

    if isinstance(err, OSError):
        where = f"{err.filename}: " if getattr(err, "filename", None) else ""
        return f"qir-quantize: error: {where}{err.strerror or err}"
    message = one_line(str(err))
    if isinstance(err, ParseFailure):
        return message  # file:line:col: error: ...
    if not user_error:
        if not isinstance(err, QirError):  # a QirError (a failed pass) already says what failed
            message = f"internal error: {type(err).__name__}: {message}"
        message += " (a bug of qir's, please report it; QIR_TRACEBACK=1 shows where)"
    return f"qir-quantize: error: {message}"


def _warning_lines(caught: list) -> list[str]:
    """What Python warned about, once each. torch 2.13 deprecates the quantized tensors the
    x86 kernels run on: known, and said in the docs, so not repeated here."""
    lines: list[str] = []
    for w in caught:
        text = one_line(str(w.message))
        if "quantized tensor creation functions" not in text and text not in lines:
            lines.append(text)
    return lines


# -- the flow ---------------------------------------------------------------------------------


class _Stages:
    """Times each stage (and says which one runs, when stderr is a terminal)."""

    def __init__(self, report: Report):
        self.report = report
        self.tty = sys.stderr.isatty()

    def run(self, name: str, fn, *args, **kwargs):
        if self.tty:
            print(f"qir-quantize: {name} ...", file=sys.stderr)
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        self.report.stages[name] = time.perf_counter() - start
        return result


def _run(args: argparse.Namespace) -> Report:
    from qir.quantizer import quantizer_by_name
    from qir.registry import get_backend
    from qir.target import parse_target

    try:
        backend = get_backend(args.backend or "x86")
        parse_target(args.target)
        scheme = SCHEMES[args.scheme]
        if args.quantizer and scheme.quantizer is not None:
            raise ValueError(f"--quantizer and --scheme {args.scheme} both say how to quantize: give one")
        if args.quantizer:
            quantizer = quantizer_by_name(args.quantizer, args.target)
        else:
            quantizer = scheme.quantizer(args.target) if scheme.quantizer is not None else None
        if args.smooth_modules:
            quantizer = _smoothed(args.smooth_modules, args.smoothing, args.scheme,
                                  quantizer or backend.quantizer(parse_target(args.target)))
        if args.dynamic_modules:
            quantizer = _mixed(args.dynamic_modules, quantizer or backend.quantizer(parse_target(args.target)),
                               args.target)
    except (KeyError, ValueError) as err:
        raise InputError(err.args[0]) from None
    out_dir = Path(args.output_dir) if args.output_dir else None
    if out_dir is not None and out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a directory")

    report = Report(model={}, backend=backend.name)
    stages = _Stages(report)
    model = stages.run("load" if args.model.endswith((".pt2", ".mlir")) else "export", load_model, args.model)
    stage = model.program.stage
    report.model = {"name": model.name, "kind": model.kind, "description": model.description, "stage": stage}
    if stage == "float":
        written = _float_flow(args, model, backend, quantizer, stages, report)
    elif stage in ("quantized", "reference"):
        written = _quantized_flow(args, model, backend, stages, report)
    elif stage == "lowered":
        written = _lowered_flow(args, model, backend, report)
    else:
        raise InputError(f"{model.name} is at stage {stage!r}: qir-quantize takes a float, quantized or lowered "
                         "program (an observed one with statistics converts with qir-opt -p convert)")
    if out_dir is not None:
        report.outputs = stages.run("write", _write_outputs, out_dir, *written)
    return report


def _smoothed(pattern: str, alpha: float, scheme: str, quantizer):
    """`--smooth-modules`: `quantizer` with SmoothQuant (`alpha`) on the linears under modules
    matching `pattern`, for the static scheme (the only one whose inputs have a calibrated range)."""
    from dataclasses import replace

    from qir.quantizer import ConfigurableQuantizer

    if scheme != "static":
        raise ValueError(f"--smooth-modules smooths statically quantized inputs; --scheme {scheme} has none")
    config = getattr(quantizer, "global_config", None)
    if not isinstance(quantizer, ConfigurableQuantizer) or config is None:
        raise ValueError(f"--smooth-modules needs a quantizer configurable per module; {type(quantizer).__name__} is not")
    return quantizer.set_module_name_regex(pattern, replace(config, smoothing=alpha))


def _mixed(pattern: str, rest, target):
    """`--dynamic-modules`: the linears under modules matching `pattern` dynamic per token (affine
    int8), everything else as `rest` quantizes it."""
    from qir.quantizer import ComposableQuantizer, DynamicQuantizer, dynamic_config

    dynamic = DynamicQuantizer(target=target).set_global(None)
    return ComposableQuantizer([dynamic.set_module_name_regex(pattern, dynamic_config(symmetric=False)), rest])


def _float_flow(args, model: Model, backend, quantizer, stages: _Stages, report: Report) -> tuple:
    """prepare → calibrate → convert → lower, then measure and compare against float."""
    from tqdm import tqdm

    import qir
    import qir.debug

    scheme = SCHEMES[args.scheme]
    chosen = quantizer.quantizers[-1] if args.dynamic_modules else quantizer  # `_mixed` puts the scheme's last
    report.quantizer = args.quantizer or (f"the {backend.name} backend's own" if scheme.quantizer is None
                                          else f"{type(chosen).__name__} (--scheme {args.scheme})")
    if args.smooth_modules:
        report.quantizer += f", with SmoothQuant (alpha {args.smoothing}) for modules matching {args.smooth_modules!r}"
    if args.dynamic_modules:
        report.quantizer += f", with DynamicQuantizer per token for modules matching {args.dynamic_modules!r}"
    report.scheme = args.scheme
    if not scheme.calibrates:
        batches = (load_calibration(args.calibration, model.program, 1) if args.calibration
                   else [random_batch(model, seed=0)])
        report.calibration = {"source": scheme.uncalibrated, "batches": 0, "note": None}
        test = batches[0] if args.calibration else random_batch(model, seed=1000)
        report.evaluated_on = "the first batch of the file" if args.calibration else "a random batch"
    elif args.calibration:
        batches = load_calibration(args.calibration, model.program, args.batches)
        report.calibration = {"source": f"batches from {args.calibration}", "batches": len(batches), "note": None}
        test = batches[0]
        report.evaluated_on = "the first calibration batch"
    else:
        batches = random_batches(model, args.batches or RANDOM_BATCHES)
        report.calibration = {"source": "random batches shaped like the model's inputs", "batches": len(batches),
                              "note": RANDOM_NOTE}
        test = random_batch(model, seed=1000)
        report.evaluated_on = "a random batch calibration did not see"
    float_module = model.program.to_fx()
    expected = _call(float_module, test, "the evaluation batch", internal=False)  # before any work: it must run

    prepared = stages.run("prepare", qir.prepare, model.program, batches[0],
                          quantizer or backend.quantizer(args.target))

    def calibrate():
        for i, batch in enumerate(tqdm(batches, desc="calibrating", unit="batch", file=sys.stderr, disable=None)):
            _call(prepared, batch, f"calibration batch {i}", internal=False)

    if scheme.calibrates:
        stages.run("calibrate", calibrate)
    quantized = stages.run("convert", qir.convert, prepared)  # a dynamic spec's observers need no data
    lowered = stages.run(f"lower ({backend.name})", qir.lower, quantized, backend.name, target=args.target)

    report.sqnr = {
        backend.name: _output_sqnr(expected, _call(lowered, test, "the evaluation batch", internal=True)),
        "Q/DQ": _output_sqnr(expected, _call(quantized, test, "the evaluation batch", internal=True)),
    }
    target = lowered.qir_program.module.attributes.get("qir.target")
    report.target = target.data if target is not None else None
    if backend.name != "reference":
        checked = stages.run("check against the reference", qir.check_against_reference, float_module, quantized,
                             lowered, batches[:2])
        report.warnings.extend(checked)
    report.layers = stages.run("compare (qir.debug)", qir.debug.compare, model.program, quantized, test)
    if not report.layers:
        report.notes.append("no op was quantized: there is no per-op table")
    report.program = lowered.qir_program.summary()
    report.size = _sizes("float", model.program, backend.name, lowered.qir_program)
    report.latency = _latencies("float", float_module, backend.name, lowered, test)
    return lowered.qir_program, quantized, test


def _quantized_flow(args, model: Model, backend, stages: _Stages, report: Report) -> tuple:
    """A quantized (or reference) program: lowered, and the kernels compared with the Q/DQ form."""
    import qir

    if args.calibration:
        test = load_calibration(args.calibration, model.program, 1)[0]
        report.evaluated_on = "the first calibration batch"
    else:
        test = random_batch(model, seed=1000)
        report.evaluated_on = "a random batch"
    quantized = model.program.to_fx()
    expected = _call(quantized, test, "the evaluation batch", internal=False)  # before any work: it must run
    lowered = stages.run(f"lower ({backend.name})", qir.lower, model.program, backend.name)
    report.sqnr = {f"{backend.name} against {model.program.stage}": _output_sqnr(
        expected, _call(lowered, test, "the evaluation batch", internal=True))}
    report.notes.append(f"the program is already {model.program.stage}: it was lowered, not calibrated; the SQNR "
                        "against float and the per-op table need the float model")
    report.program = lowered.qir_program.summary()
    report.size = _sizes(model.program.stage, model.program, backend.name, lowered.qir_program)
    report.latency = _latencies(model.program.stage, quantized, backend.name, lowered, test)
    return lowered.qir_program, quantized if model.program.stage == "quantized" else None, test


def _lowered_flow(args, model: Model, backend, report: Report) -> tuple:
    """A lowered program: nothing to do but say what it is (and write it again with -o)."""
    from xdsl.dialects.builtin import StringAttr

    target = model.program.module.attributes.get("qir.backend")
    target = target.data if isinstance(target, StringAttr) else None
    if args.backend and target and args.backend != target:
        raise InputError(f"{model.name} is already lowered for {target}, not {args.backend}")
    report.backend = target or backend.name
    report.program = model.program.summary()
    report.notes.append(f"the program is already lowered for {report.backend}: reported, not changed")
    return model.program, None, None


def _call(module, batch: tuple, what: str, internal: bool):
    """Run `module` on `batch`. A failure of the float model (or of calibration, which runs it)
    is the input's (IR or data that does not fit); a failure of what qir built from a model
    that ran is qir's own."""
    import torch

    from qir.errors import QirError

    try:
        with torch.no_grad():
            return module(*batch)
    except QirError:
        raise
    except Exception as err:
        if internal:
            raise
        raise InputError(f"the model does not run on {what}: {type(err).__name__}: {one_line(str(err))}") \
            from None


def _output_sqnr(expected, actual) -> float:
    """SQNR over every floating-point output tensor, as one signal."""
    import torch
    import torch.utils._pytree as pytree

    from qir.debug import sqnr

    pairs = [(e, a) for e, a in zip(pytree.tree_leaves(expected), pytree.tree_leaves(actual))
             if isinstance(e, torch.Tensor) and e.is_floating_point()]
    if not pairs:
        return math.nan
    return sqnr(torch.cat([e.reshape(-1) for e, _ in pairs]), torch.cat([a.reshape(-1) for _, a in pairs]))


def _sizes(before: str, before_program, after: str, after_program) -> dict[str, Any]:
    """The bytes of each program's weights at their storage width (`qir.blockwise.weight_bytes`:
    a 4-bit value is half a byte, as kernels pack them; scales and zero points count)."""
    from qir.blockwise import weight_bytes

    b, a = weight_bytes(before_program), weight_bytes(after_program)
    return {"before": before, "before_bytes": b, "after": after, "after_bytes": a, "ratio": b / a if a else math.nan}


def _latencies(before: str, before_module, after: str, after_module, batch: tuple) -> dict[str, Any]:
    import torch

    b, a = _call_times_ms(before_module, batch), _call_times_ms(after_module, batch)
    b_ms, a_ms = statistics.median(b), statistics.median(a)
    return {"before": before, "before_ms": b_ms, "before_best_ms": min(b), "after": after, "after_ms": a_ms,
            "after_best_ms": min(a), "speedup": b_ms / a_ms if a_ms else math.nan, "runs": min(len(b), len(a)),
            "threads": torch.get_num_threads()}


def _call_times_ms(module, batch: tuple, budget_s: float = 2.0, runs: tuple[int, int] = (5, 20)) -> list[float]:
    """The times of single calls (after three warm-up calls: inductor compiles on the first, and a
    qir module generates its Python code by the third, `qir.graph_runner`), as many as fit in
    `budget_s`, at least `runs[0]`, at most `runs[1]`. The report gives their median and the
    fastest: on a busy machine the median measures the scheduler too."""
    import torch

    with torch.no_grad():
        for _ in range(3):
            module(*batch)
        times: list[float] = []
        deadline = time.perf_counter() + budget_s
        while len(times) < runs[1] and (len(times) < runs[0] or time.perf_counter() < deadline):
            start = time.perf_counter()
            module(*batch)
            times.append((time.perf_counter() - start) * 1e3)
    return times


# -- writing ----------------------------------------------------------------------------------


def _write_outputs(out_dir: Path, program, quantized, batch) -> dict[str, Any]:
    """DIR/model.mlir (+ .safetensors) and, when the Q/DQ module exports, DIR/model.pt2: made
    in a scratch folder beside DIR, then moved in, so that a failure leaves DIR as it was.
    Files of an earlier run that this one did not write are removed (they would not match)."""
    import torch

    names = ("model.mlir", "model.safetensors", "model.pt2")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    scratch.chmod(0o777 & ~umask)  # mkdtemp's is private; DIR is an ordinary folder
    pt2_error = None
    try:
        program.save(scratch / "model.mlir")
        if quantized is not None:
            try:
                torch.export.save(torch.export.export(quantized, batch), scratch / "model.pt2")
            except Exception as err:  # noqa: BLE001 - a module that does not export is reported, not fatal
                pt2_error = f"{type(err).__name__}: {one_line(str(err))}"
        if not out_dir.exists():
            scratch.rename(out_dir)
        else:
            for name in names:
                if (scratch / name).exists():
                    os.replace(scratch / name, out_dir / name)
                elif (out_dir / name).exists():
                    (out_dir / name).unlink()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    def written(name: str) -> str | None:
        return str(out_dir / name) if (out_dir / name).exists() else None

    return {"mlir": written("model.mlir"), "weights": written("model.safetensors"), "pt2": written("model.pt2"),
            "pt2_error": pt2_error}


if __name__ == "__main__":
    sys.exit(main())

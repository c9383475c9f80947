"""The command-line tools, run as users run them (subprocesses): one-line errors for bad
input, weights beside files, qir-translate on a `.pt2`, a fast `--help`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

import qir
from helpers import run_tool

ONE_ERROR = re.compile(r"^(.+:\d+:\d+: error: |qir-opt: error: |qir-translate: error: )")


def _run(tool: str, *args, stdin: str | None = None, env=None) -> subprocess.CompletedProcess:
    return run_tool(tool, *args, stdin=stdin, env=env, timeout=300)


def _assert_one_error(result: subprocess.CompletedProcess, pattern: str = "") -> None:
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert ONE_ERROR.match(lines[0]), lines[0]
    assert re.search(pattern, lines[0]), lines[0]


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
        torch.nn.Flatten(), torch.nn.Linear(144, 5),
    ).eval()


def _ir(body: str, stage: str = "float") -> str:
    return (f'builtin.module attributes {{qir.stage = "{stage}"}} {{\n'
            "  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {\n"
            + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n  }\n}\n")


RELU = '%0 = aten.op "relu.default"(%x) : (tensor<2xf32>) -> tensor<2xf32>\nfunc.return %0 : tensor<2xf32>'

# name -> (file contents (str or bytes), extra arguments, regex the one error line must match)
BAD = {
    "malformed": ("builtin.module {\n  func.func @forward( {\n", [], r"^\S+bad\.mlir:2:\d+: error: "),
    "truncated": (_ir('%0 = aten.op "relu.de')[:-20], [], r"bad\.mlir:\d+:\d+: error: "),
    "unterminated_string": (_ir('%0 = aten.op "relu.default(%x) : (tensor<2xf32>) -> tensor<2xf32>\n'
                                "func.return %0 : tensor<2xf32>"), [],
                            r"bad\.mlir:3:\d+: error: .*string literal"),
    "unknown_op": ('builtin.module {\n  "foo.bar"() : () -> ()\n}\n', [], r"bad\.mlir:2:\d+: error: "),
    "unknown_operator": (_ir(RELU.replace("relu.default", "nosuch.default")), [],
                         r"bad\.mlir:3:5: error: .*no such operator overload"),
    "signed_hex_float": (_ir(RELU.replace('"relu.default"(%x)', '"add.Scalar"(%x, -0x3F800000 : f32)')), [],
                         r"bad\.mlir:3:\d+: error: a hexadecimal float literal has no sign"),
    "wrong_arity": (_ir(RELU.replace("(%x)", "(%x, 1, 2)")), [], r"bad\.mlir:3:5: error: .*at most 1"),
    "wrong_kind": (_ir('%0 = aten.op "mean.dim"(%x, "one") : (tensor<2xf32>) -> tensor<2xf32>\n'
                       "func.return %0 : tensor<2xf32>"), [], r"bad\.mlir:3:5: error: .*expects int\[\]"),
    "undeclared_value": (_ir(RELU.replace("(%x)", "(%y)")), [],
                         r"bad\.mlir:3:\d+: error: use of undeclared SSA value %y"),
    "invalid_type": (_ir(RELU.replace("-> tensor<2xf32>", "-> tensor<2xfoo>")), [], r"bad\.mlir:3:\d+: error: "),
    "bad_quant_type": (_ir("%q = quant.qcast %x : tensor<2xf32> to tensor<2x!quant.uniform<i8:f32, -1.0:0>>\n"
                           "%d = quant.dcast %q : tensor<2x!quant.uniform<i8:f32, -1.0:0>> to tensor<2xf32>\n"
                           "func.return %d : tensor<2xf32>"), [], r"bad\.mlir:3:\d+: error: "),
    "missing_weights": (_ir('%w = aten.param parameter "w" : tensor<2xf32>\nfunc.return %x : tensor<2xf32>'), [],
                        r"bad\.mlir:3:5: error: aten.param 'w': no such tensor"),
    "unknown_stage": (_ir("func.return %x : tensor<2xf32>", stage="calibrated"), [],
                      r"bad\.mlir:1:1: error: qir.stage must be one of"),
    "deeply_nested": ("builtin.module {" + "[" * 5000, [], r"bad\.mlir:1:\d+: error: "),
    "deeply_nested_regions": ('"t.op"() ({\n' * 3000 + "}) : () -> ()\n" * 3000, ["--allow-unregistered-dialect"],
                              r"bad\.mlir:1:1: error: input is nested too deeply"),
    "binary": (b"\x00\x01\x02garbage\xff", [], r"bad\.mlir:1:1: error: input is binary"),
    "not_utf8": (b"builtin.module {\n  // caf\xe9\n}\n", [], r"bad\.mlir:2:9: error: input is not UTF-8"),
    "unknown_pass": (_ir(RELU), ["-p", "nosuch-pass"], r"^qir-opt: error: unknown pass 'nosuch-pass'"),
    "bad_pass_option": (_ir(RELU), ["-p", "canonicalize{bogus=1}"], r"^qir-opt: error: pass 'canonicalize': bad options"),
    "bad_pipeline_syntax": (_ir(RELU), ["-p", "canonicalize{"], r"^qir-opt: error: cannot parse pipeline"),
    "misordered_stages": (_ir(RELU), ["-p", "convert"],
                          r"bad\.mlir:1:1: error: pass 'convert' needs a program at stage 'observed'.*'float'"),
    "failing_pass": (_ir('%o = obs.observe %x {id = "o0", spec = #obs.spec<u8[0:255], affine, minmax, group 0>} '
                         ": tensor<2xf32>\nfunc.return %o : tensor<2xf32>", stage="observed"), ["-p", "convert"],
                     r"bad\.mlir:3:5: error: pass 'convert' failed: observer o0 saw no data"),
    "unknown_flag": (_ir(RELU), ["--no-such-flag"], r"^qir-opt: error: unrecognized arguments: --no-such-flag"),
}


# Each bad input costs two qir-opt processes (each imports torch): the fast tier keeps four (the parser,
# the weights, the pipeline, a pass).
FAST_BAD = {"malformed", "missing_weights", "unknown_pass", "failing_pass"}


@pytest.fixture(scope="module")
def bad_results(request, tmp_path_factory):
    """Every selected bad input through qir-opt, in parallel (each run imports torch)."""
    selected = {item.callspec.params["name"] for item in request.session.items
                if item.originalname == "test_bad_input_is_one_located_line"}

    def one(name):
        folder = tmp_path_factory.mktemp(name)
        content, args, _ = BAD[name]
        path = folder / "bad.mlir"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        (folder / "keep.mlir").write_text("previous output\n")
        result = _run("qir_opt", path, *args, "-o", folder / "out.mlir")
        again = _run("qir_opt", path, *args, "-o", folder / "keep.mlir")
        return name, (folder, result, again)

    tmp_path_factory.getbasetemp()  # made once, here: threads making it at once each make their own
    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(one, sorted(selected)))


@pytest.mark.parametrize("name", [n if n in FAST_BAD else pytest.param(n, marks=pytest.mark.slow) for n in sorted(BAD)])
def test_bad_input_is_one_located_line(bad_results, name):
    folder, result, again = bad_results[name]
    _assert_one_error(result, BAD[name][2])
    assert result.stdout == ""
    assert not (folder / "out.mlir").exists() and not (folder / "out.safetensors").exists()
    assert (folder / "keep.mlir").read_text() == "previous output\n", "an existing -o file was overwritten"
    assert again.returncode == 1


def test_missing_file_and_directory(tmp_path):
    _assert_one_error(_run("qir_opt", tmp_path / "does-not-exist.mlir"),
                      r"^qir-opt: error: .*does-not-exist\.mlir: No such file or directory$")
    _assert_one_error(_run("qir_opt", tmp_path), r"^qir-opt: error: .*: Is a directory$")


def test_unreadable_weights_file(tmp_path):
    (tmp_path / "m.mlir").write_text(_ir(RELU))
    (tmp_path / "m.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{garbage")
    _assert_one_error(_run("qir_opt", tmp_path / "m.mlir"), r"^qir-opt: error: .*m\.safetensors: cannot read weights")


# -- failures inside passes, located at the op the pass names -----------------------------

PLUGIN = '''
import sys
from dataclasses import dataclass
from xdsl.dialects.builtin import StringAttr
from qir.errors import OpError
from qir.pass_manager import QirPass
from qir.registry import register_pass

def relus(module):
    return [op for op in module.walk() if op.name == "aten.op" and op.target.data == "relu.default"]

@register_pass
@dataclass(frozen=True)
class Refuse(QirPass):
    name = "test-refuse-relu"
    def apply(self, ctx, module):
        raise OpError(relus(module)[0], "relu is not allowed here")

@register_pass
@dataclass(frozen=True)
class Break(QirPass):
    name = "test-break-ir"
    def apply(self, ctx, module):
        relus(module)[0].properties["target"] = StringAttr("nosuch.default")

@register_pass
@dataclass(frozen=True)
class Crash(QirPass):
    name = "test-crash"
    def apply(self, ctx, module):
        {}["boom"]

from qir.tools.qir_opt import main
sys.exit(main(sys.argv[1:]))
'''


@pytest.mark.parametrize("pipeline,pattern", [
    ("test-refuse-relu", r"m\.mlir:4:5: error: pass 'test-refuse-relu' failed: relu is not allowed here"),
    pytest.param("test-break-ir", r"m\.mlir:4:5: error: pass 'test-break-ir' failed: left invalid IR: .*nosuch\.default",
                 marks=pytest.mark.slow),
    pytest.param("test-crash", r"m\.mlir:1:1: error: pass 'test-crash' failed: internal error: KeyError: 'boom'",
                 marks=pytest.mark.slow),
])
def test_failing_pass_is_located_at_its_op(tmp_path, pipeline, pattern):
    path = tmp_path / "m.mlir"
    path.write_text(_ir('%n = aten.op "neg.default"(%x) : (tensor<2xf32>) -> tensor<2xf32>\n'
                        + RELU.replace("(%x)", "(%n)")))
    result = subprocess.run([sys.executable, "-c", PLUGIN, str(path), "-p", pipeline, "-o", str(tmp_path / "o.mlir")],
                            capture_output=True, text=True, timeout=300)
    _assert_one_error(result, pattern)
    assert not (tmp_path / "o.mlir").exists()


# -- weights beside files ------------------------------------------------------------------


@pytest.mark.parametrize("pipeline", [pytest.param("", marks=pytest.mark.slow), "canonicalize"])
def test_weights_beside_files_give_bit_identical_outputs(tmp_path, pipeline):
    model, x = _model(), torch.randn(2, 3, 8, 8)
    program = qir.export(model, (x,))
    program.save(tmp_path / "m.mlir")
    # A tensor the IR does not name stays behind: the output's weights are the ones it names.
    from safetensors.torch import load_file, save_file

    stored = load_file(tmp_path / "m.safetensors")
    save_file({**stored, "not.named": torch.zeros(3)}, tmp_path / "m.safetensors")
    result = _run("qir_opt", tmp_path / "m.mlir", *(["-p", pipeline] if pipeline else []), "-o", tmp_path / "out.mlir")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""
    out = qir.load(tmp_path / "out.mlir")
    assert set(load_file(tmp_path / "out.safetensors")) == out.param_names()
    assert torch.equal(out.to_fx()(x), model(x))


def test_qir_opt_folds_batch_norm_from_files(tmp_path):
    model, x = _model(), torch.randn(1, 3, 8, 8)
    qir.export(model, (x,)).save(tmp_path / "m.mlir")
    result = _run("qir_opt", tmp_path / "m.mlir", "-p", "canonicalize,fold-bn", "-o", tmp_path / "out.mlir")
    assert result.returncode == 0, result.stderr
    folded = qir.load(tmp_path / "out.mlir")
    assert "batch_norm" not in str(folded)
    torch.testing.assert_close(folded.to_fx()(x), model(x), rtol=1e-5, atol=1e-6)


def test_stdin_with_explicit_weights(tmp_path):
    model, x = _model(), torch.randn(2, 3, 8, 8)
    qir.export(model, (x,)).save(tmp_path / "m.mlir")
    text = (tmp_path / "m.mlir").read_text()
    _assert_one_error(_run("qir_opt", stdin=text), r"^<stdin>:\d+:\d+: error: aten.param '.*': no such tensor")
    result = _run("qir_opt", "--weights", tmp_path / "m.safetensors", "-o", tmp_path / "out.mlir", stdin=text)
    assert result.returncode == 0, result.stderr
    assert torch.equal(qir.load(tmp_path / "out.mlir").to_fx()(x), model(x))


def test_observed_ir_with_statistics_converts_with_qir_opt(tmp_path):
    """The calibrated IR is text: saved, converted by qir-opt, it gives what qir.convert gives."""
    from qir.quantizer import X86Quantizer

    model, x = _model(), torch.randn(2, 3, 8, 8)
    prepared = qir.prepare(model, (x,), X86Quantizer())
    prepared(x)
    observed = qir.observed_program(prepared)
    assert "stats = {min = " in str(observed)
    observed.save(tmp_path / "observed.mlir")
    result = _run("qir_opt", tmp_path / "observed.mlir", "-p", "convert", "-o", tmp_path / "quantized.mlir")
    assert result.returncode == 0, result.stderr
    from_text = qir.load(tmp_path / "quantized.mlir").to_fx()
    assert torch.equal(from_text(x), qir.convert(prepared)(x))


# -- qir-translate --------------------------------------------------------------------------


def test_qir_translate_imports_a_pt2(tmp_path):
    model, x = _model(), torch.randn(2, 3, 8, 8)
    torch.export.save(torch.export.export(model, (x,)), tmp_path / "m.pt2")
    result = _run("qir_translate", "--import-pt2", tmp_path / "m.pt2", "-o", tmp_path / "m.mlir")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert (tmp_path / "m.safetensors").exists()
    assert torch.equal(qir.load(tmp_path / "m.mlir").to_fx()(x), model(x))


@pytest.mark.slow  # a qir-translate process per bad input; test_qir_translate_imports_a_pt2 stays in the fast tier
def test_qir_translate_errors(tmp_path):
    (tmp_path / "junk.pt2").write_bytes(b"not a zip at all")
    import zipfile

    with zipfile.ZipFile(tmp_path / "empty.pt2", "w") as z:
        z.writestr("something/else.txt", "x")
    cases = [
        ([tmp_path / "missing.pt2"], r"missing\.pt2: No such file or directory"),
        ([tmp_path / "junk.pt2"], r"junk\.pt2: not a \.pt2 archive"),
        ([tmp_path / "empty.pt2"], r"empty\.pt2: cannot load a torch\.export program: "),
    ]
    for args, pattern in cases:
        result = _run("qir_translate", "--import-pt2", *args, "-o", tmp_path / "out.mlir")
        _assert_one_error(result, r"^qir-translate: error: .*" + pattern)
        assert not (tmp_path / "out.mlir").exists()
    _assert_one_error(_run("qir_translate", tmp_path / "junk.pt2"), r"^qir-translate: error: .*--import-pt2")


# -- a closed stdout ---------------------------------------------------------------------------


@pytest.mark.parametrize("tool", ["qir_opt", pytest.param("qir_translate", marks=pytest.mark.slow)])
def test_a_closed_stdout_ends_the_tool_quietly(tmp_path, tool):
    """`qir-opt m.mlir | head -1`: once the reader has gone the tool stops without a message,
    with the status of a tool killed by SIGPIPE (128 + 13), not an error about its input."""
    model, x = _model(), torch.randn(2, 3, 8, 8)
    torch.export.save(torch.export.export(model, (x,)), tmp_path / "m.pt2")
    assert _run("qir_translate", "--import-pt2", tmp_path / "m.pt2", "-o", tmp_path / "m.mlir").returncode == 0
    args = [tmp_path / "m.mlir"] if tool == "qir_opt" else ["--import-pt2", tmp_path / "m.pt2"]
    process = subprocess.Popen([sys.executable, "-m", f"qir.tools.{tool}", *map(str, args)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()  # gone before the tool writes (as `| true`)
    stderr = process.stderr.read()
    assert process.wait(timeout=300) == 141
    assert stderr == b""


# -- startup ----------------------------------------------------------------------------------


def test_help_does_not_import_torch():
    probe = ("import sys\nfrom qir.tools.qir_opt import main\n"
             "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
             "print('IMPORTED', sorted(m for m in ('torch', 'qir.program', 'qir.dialects.aten') if m in sys.modules),"
             " file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert "usage: qir-opt" in result.stdout and "--print-ir-after-all" in result.stdout
    assert "fold-bn" in re.sub(r"\s+", "", result.stdout), "the registered passes are listed"
    assert "IMPORTED []" in result.stderr, result.stderr


# -- mlir-opt's expected-* annotations ----------------------------------------------------


def test_expectation_designators():
    from qir.tools.qir_opt import expectations

    chunk = "\n".join([
        "%0 = op // expected-error {{same line}}",
        "// expected-error@+2 {{two below}}",
        "// expected-error @-1 {{one above}}",
        "// expected-warning @above {{previous}}",
        "// expected-remark@below {{next}}",
        "// expected-error-re {{value {{[0-9]+}} too big}}",
        "// expected-note {{nested {{braces}} kept}}",
    ])
    found = expectations(chunk, 10, "f.mlir")
    assert [(e.kind, e.line, e.message) for e in found] == [
        ("error", 11, "same line"), ("error", 14, "two below"), ("error", 12, "one above"),
        ("warning", 13, "previous"), ("remark", 16, "next"),
        ("error", 16, "value {{[0-9]+}} too big"), ("note", 17, "nested {{braces}} kept"),
    ]
    assert found[5].matches("error", 16, "the value 300 too big for i8")
    assert not found[5].matches("error", 16, "the value x too big")
    assert not found[0].matches("error", 12, "same line")


# -- qir-quantize (in-process: each subprocess would pay ~3 s of torch import) ---------------

QUANTIZE_ERROR = re.compile(r"^(\S.*:\d+:\d+: error: |qir-quantize: error: )")


def _quantize(*args) -> tuple[int, str, str]:
    """`qir-quantize ARGS` in this process: (exit status, stdout, stderr)."""
    import contextlib
    import io

    from qir.tools.qir_quantize import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main([str(a) for a in args])
        except SystemExit as exit_:  # argparse's usage errors
            status = exit_.code
    return status, out.getvalue(), err.getvalue()


def _assert_quantize_error(result: tuple[int, str, str], pattern: str, status: int = 1) -> None:
    code, out, err = result
    assert code == status, (code, err)
    assert out == "", out
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert QUANTIZE_ERROR.match(lines[0]), lines[0]
    assert re.search(pattern, lines[0]), lines[0]


def _batch(seed: int, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The small conv/BN/linear model as every MODEL kind, calibration files, and the modules the
    Python API makes from the same model and calibration batches (what the CLI must write)."""
    from qir.registry import get_backend

    folder = tmp_path_factory.mktemp("models")
    model, x = _model(), _batch(0)
    torch.export.save(torch.export.export(model, (x,)), folder / "m.pt2")
    program = qir.export(model, (x,))
    program.save(folder / "float.mlir")
    batches = [(_batch(i),) for i in range(1, 4)]
    torch.save(batches, folder / "calib.pt")
    torch.save([b for (b,) in batches], folder / "calib_tensors.pt")
    prepared = qir.prepare(program, (x,), get_backend("x86").quantizer())
    for batch in batches:
        prepared(*batch)
    observed = qir.observed_program(prepared)
    observed.save(folder / "observed.mlir")
    quantized = qir.convert(prepared)
    quantized.qir_program.save(folder / "quantized.mlir")
    lowered = qir.lower(quantized, "x86")
    lowered.qir_program.save(folder / "lowered.mlir")
    return {"folder": folder, "model": model, "quantized": quantized, "lowered": lowered}


@pytest.mark.slow
def test_quantize_example_text_report():
    code, out, err = _quantize("transformer")
    assert code == 0, err
    assert err == ""
    lines = out.splitlines()
    assert lines[0].startswith("model: transformer: BERT-style encoder")
    assert any(line.startswith("calibration: 4 random batches") and "calibrates ranges poorly" in line
               for line in lines)
    stages = next(line for line in lines if line.startswith("stages: "))
    for stage in ("export", "prepare", "calibrate", "convert", "lower (x86)", "compare (qir.debug)"):
        assert f"{stage} " in stages, stages
    assert re.search(r"^size of the weights: float \d+\.\d\d MB -> x86 \d+\.\d\d MB \(\d+\.\d\dx smaller\)$", out, re.M)
    assert re.search(r"^latency: float [\d.]+ ms -> x86 [\d.]+ ms \([\d.]+x; medians of \d+ runs, fastest [\d.]+ -> [\d.]+ ms",
                     out, re.M)
    sqnr = re.search(r"^output SQNR: x86 ([\d.]+) dB, Q/DQ ([\d.]+) dB", out, re.M)
    assert sqnr and float(sqnr.group(1)) > 30
    header = lines.index(next(line for line in lines if line.startswith("per-op SQNR against float, worst first")))
    table = lines[header + 1:header + 13]
    assert table[0].split()[:4] == ["local", "dB", "SQNR", "dB"]
    rows = table[1:11]
    assert [float(r.split()[0]) for r in rows] == sorted(float(r.split()[0]) for r in rows), "worst first"
    assert re.match(r"^\.\.\. \d+ more ops$", table[11])


def test_quantize_pt2_json_report_with_calibration_file(models):
    folder = models["folder"]
    code, out, err = _quantize(folder / "m.pt2", "--calibration", folder / "calib.pt", "--report", "json")
    assert code == 0, err
    assert err == ""
    report = json.loads(out)
    assert set(report) == {"model", "backend", "quantizer", "scheme", "calibration", "evaluated_on", "stages",
                           "program", "size", "latency", "sqnr", "target", "layers", "notes", "outputs", "warnings"}
    assert report["scheme"] == "static"
    assert report["model"] == {"name": str(folder / "m.pt2"), "kind": "pt2", "description": "a torch.export program",
                               "stage": "float"}
    assert report["calibration"]["batches"] == 3 and report["calibration"]["note"] is None
    assert list(report["stages"]) == ["load", "prepare", "calibrate", "convert", "lower (x86)", "check against the reference",
                                     "compare (qir.debug)"]
    assert report["size"]["before_bytes"] > 3 * report["size"]["after_bytes"]
    latency = report["latency"]
    assert latency["speedup"] > 0 and latency["before_best_ms"] <= latency["before_ms"] and latency["runs"] >= 5
    # evaluated on the first calibration batch: the figure is the API's
    x = _batch(1)
    with torch.no_grad():
        expected = models["model"](x)
        assert report["sqnr"]["x86"] == pytest.approx(qir.debug.sqnr(expected, models["lowered"](x)), abs=1e-9)
    layers = report["layers"]
    assert {r["module"] for r in layers} == {"0", "2", "3", "4"}  # conv (+ folded BN), relu, flatten, linear
    assert all(set(r) == {"name", "op", "module", "module_type", "sqnr", "local_sqnr", "max_abs_error", "numel"}
               for r in layers)
    assert layers == qir.debug.as_dicts(qir.debug.compare(models["model"], models["quantized"], (x,)))


def test_quantize_float_mlir_round_trips_through_o(models, tmp_path):
    """model.mlir runs as the lowered module does and model.pt2 as the Q/DQ module does, bit for
    bit (the PTQ tutorial's save/load check), on a batch none of them saw."""
    folder = models["folder"]
    code, out, err = _quantize(folder / "float.mlir", "--calibration", folder / "calib_tensors.pt",
                               "-o", tmp_path / "out")
    assert code == 0, err
    assert f"wrote {tmp_path / 'out' / 'model.mlir'}, {tmp_path / 'out' / 'model.safetensors'}, " in out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.mlir", "model.pt2", "model.safetensors"]
    x = _batch(99, batch=2)
    with torch.no_grad():
        assert torch.equal(qir.load(tmp_path / "out" / "model.mlir").to_fx()(x), models["lowered"](x))
        assert torch.equal(torch.export.load(tmp_path / "out" / "model.pt2").module()(x), models["quantized"](x))


def test_quantize_is_deterministic(models, tmp_path):
    folder = models["folder"]
    for out in ("a", "b"):
        code, _, err = _quantize(folder / "m.pt2", "-o", tmp_path / out)
        assert code == 0, err
    for name in ("model.mlir", "model.safetensors"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_quantize_quantized_and_lowered_mlir(models, tmp_path):
    folder = models["folder"]
    code, out, err = _quantize(folder / "quantized.mlir", "--backend", "onednn", "-o", tmp_path / "q")
    assert code == 0, err
    assert "[quantized]" in out and "lowered, not calibrated" in out
    assert re.search(r"^output SQNR: onednn against quantized [\d.]+ dB", out, re.M)
    x = _batch(5)
    with torch.no_grad():
        want = qir.lower(models["quantized"], "onednn")(x)
        assert torch.equal(qir.load(tmp_path / "q" / "model.mlir").to_fx()(x), want)
        assert torch.equal(torch.export.load(tmp_path / "q" / "model.pt2").module()(x), models["quantized"](x))

    code, out, err = _quantize(folder / "lowered.mlir", "--report", "json", "-o", tmp_path / "l")
    assert code == 0, err
    report = json.loads(out)
    assert report["model"]["stage"] == "lowered" and report["backend"] == "x86"
    assert report["notes"] == ["the program is already lowered for x86: reported, not changed"]
    assert report["outputs"]["pt2"] is None
    assert (tmp_path / "l" / "model.mlir").read_text() == (folder / "lowered.mlir").read_text()
    _assert_quantize_error(_quantize(folder / "lowered.mlir", "--backend", "onednn"),
                           r"lowered\.mlir is already lowered for x86, not onednn$")


@pytest.mark.parametrize("backend", ["qnnpack", "reference", "onednn"])
def test_quantize_other_backends(models, backend):
    code, out, err = _quantize(models["folder"] / "float.mlir", "--backend", backend, "--quantizer", "x86",
                               "--batches", "2")
    assert code == 0, err
    assert f"backend: {backend}, quantizer: x86" in out and "calibration: 2 random batches" in out


def _expected_weight_bytes(model: torch.nn.Module, scheme: str) -> int:
    """The bytes of `model`'s weights under a weight-only `scheme`, counted from its parameters'
    shapes alone: a linear's weight at 1 byte (int8) or half a byte (int4) a value, plus a float32
    scale and a zero point at the storage width per output channel (int8) or per group of 32
    inputs (int4); an embedding table at 1 byte a value plus one scale and zero point per row;
    float16 2 bytes a value; everything else (biases, norms) float32. The example's position table
    is read at the constant ids `arange(32)`: fold-constants makes that lookup a 32-row float32
    constant before anything is quantized."""
    total = 0.0
    for module_name, module in model.named_modules():
        for name, p in module.named_parameters(recurse=False):
            rows = p.shape[0] if p.dim() == 2 else 0
            if module_name == "positions":
                total += 32 * p.shape[1] * 4
            elif scheme == "weight-fp16" and name == "weight" and isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
                total += p.numel() * 2
            elif scheme == "weight-int4" and name == "weight" and isinstance(module, torch.nn.Linear):
                total += p.numel() * 0.5 + p.numel() // 32 * (4 + 0.5)
            elif name == "weight" and isinstance(module, (torch.nn.Linear, torch.nn.Embedding)) \
                    and scheme != "weight-fp16":
                total += p.numel() + rows * (4 + 1)
            else:
                total += p.numel() * 4
    return int(total)


@pytest.mark.parametrize("scheme, kernel, min_db", [pytest.param("weight-int8", "x86.weight_only_linear", 40,
                                                                 marks=pytest.mark.slow),
                                                    pytest.param("weight-int4", "x86.weight_only_linear", 20,
                                                                 marks=pytest.mark.slow),
                                                    pytest.param("weight-fp16", "x86.linear_fp16", 60,
                                                                 marks=pytest.mark.slow)])
def test_quantize_weight_only_schemes_report_real_sizes(scheme, kernel, min_db):
    """`--scheme weight-*` quantizes with WeightOnlyQuantizer, calibrates nothing, and reports the
    weights' bytes as an independent count from the model's parameter shapes gives them, and the
    float and quantized latency with their ratio."""
    from qir.examples import example

    code, out, err = _quantize("transformer", "--scheme", scheme, "--report", "json")
    assert code == 0, err
    report = json.loads(out)
    assert report["scheme"] == scheme and report["quantizer"] == f"WeightOnlyQuantizer (--scheme {scheme})"
    assert report["calibration"]["batches"] == 0 and "calibrate" not in report["stages"]
    assert f"{kernel} x24" in report["program"] and "x86.embedding_lookup" in _lowered_ops(scheme)
    model = example("transformer").build()
    size = report["size"]
    assert size["before_bytes"] == sum(p.numel() * 4 for p in model.parameters())
    assert size["after_bytes"] == _expected_weight_bytes(model, scheme)
    assert size["ratio"] == pytest.approx(size["before_bytes"] / size["after_bytes"])
    latency = report["latency"]
    assert latency["before"] == "float" and latency["after"] == "x86"
    assert latency["speedup"] == pytest.approx(latency["before_ms"] / latency["after_ms"])
    assert 0 < latency["before_best_ms"] <= latency["before_ms"] and 0 < latency["after_best_ms"] <= latency["after_ms"]
    assert report["sqnr"]["x86"] > min_db


def _lowered_ops(scheme: str) -> set[str]:
    """The ops of the transformer example lowered to x86 under a weight-only scheme, by the API."""
    from qir.examples import example
    from qir.quantizer import weight_only_by_name

    ex = example("transformer")
    lowered = qir.quantize(ex.build(), ex.inputs(2), quantizer=weight_only_by_name(scheme), backend="x86")
    return {op.name for op in lowered.qir_program.module.walk()}


@pytest.mark.slow
def test_quantize_weight_int4_text_report():
    """The text report gives the int4 weights' size (half a byte a value) and the speed-up."""
    from qir.examples import example

    code, out, err = _quantize("transformer", "--scheme", "weight-int4")
    assert code == 0, err
    assert "scheme: weight-int4" in out
    assert "calibration: none needed: activations stay float" in out
    expected = _expected_weight_bytes(example("transformer").build(), "weight-int4")
    assert re.search(rf"^size of the weights: float 13\.79 MB -> x86 {expected / 1e6:.2f} MB \(5\.\d\dx smaller\)$",
                     out, re.M), out
    assert re.search(r"^latency: float [\d.]+ ms -> x86 [\d.]+ ms \([\d.]+x; medians of \d+ runs", out, re.M)


def _write_bad(folder: Path, models_folder: Path, kind: str) -> list:
    """The arguments of one bad run of kind `kind`, its files made in `folder`."""
    import shutil
    import zipfile

    float_model, float_text = models_folder / "float.mlir", (models_folder / "float.mlir").read_text()
    pt2 = (models_folder / "m.pt2").read_bytes()

    def put(name: str, content: str | bytes) -> Path:
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
        return folder / name

    def mlir(content: str | bytes, weights: bytes | None = None) -> Path:
        """bad.mlir, with the float model's weights beside it (or `weights` as that file)."""
        if weights is None:
            shutil.copy(models_folder / "float.safetensors", folder / "bad.safetensors")
        elif weights:
            put("bad.safetensors", weights)
        return put("bad.mlir", content)

    def data(obj) -> Path:
        torch.save(obj, folder / "data.pt")
        return folder / "data.pt"

    def empty_pt2() -> Path:
        with zipfile.ZipFile(folder / "empty.pt2", "w") as z:
            z.writestr("something/else.txt", "x")
        return folder / "empty.pt2"

    cases = {
        "malformed": lambda: [mlir("builtin.module {\n  func.func @forward( {\n")],
        "truncated": lambda: [mlir(float_text[: len(float_text) // 2])],
        "binary": lambda: [mlir(b"\x00\x01\x02garbage\xff")],
        "not_utf8": lambda: [mlir(b"builtin.module {\n  // caf\xe9\n}\n")],
        "no_forward": lambda: [mlir("builtin.module {\n}\n")],
        "deeply_nested": lambda: [mlir("builtin.module {" + "[" * 5000)],
        "not_a_module": lambda: [mlir('"t.op"() : () -> ()\n')],
        "missing_weights": lambda: [mlir(float_text, weights=b"")],
        "bad_weights": lambda: [mlir(float_text, weights=b"\x08\0\0\0\0\0\0\0{garbage")],
        "junk.pt2": lambda: [put("junk.pt2", b"not a zip at all")],
        "empty.pt2": lambda: [empty_pt2()],
        "truncated.pt2": lambda: [put("cut.pt2", pt2[: len(pt2) // 2])],
        "binary_weights_as_model": lambda: [models_folder / "float.safetensors"],
        "missing_model": lambda: [folder / "nope.mlir"],
        "unknown_example": lambda: ["resnet999"],
        "unknown_backend": lambda: [float_model, "--backend", "tpu"],
        "unknown_quantizer": lambda: [float_model, "--quantizer", "int3"],
        "observed_stage": lambda: [models_folder / "observed.mlir"],
        "missing_calibration": lambda: [float_model, "--calibration", folder / "nope.pt"],
        "garbage_calibration": lambda: [float_model, "--calibration", put("g.pt", b"garbage")],
        "calibration_not_a_list": lambda: [float_model, "--calibration", data({"x": torch.zeros(1)})],
        "calibration_empty": lambda: [float_model, "--calibration", data([])],
        "calibration_shape": lambda: [float_model, "--calibration", data([(torch.zeros(1, 3, 8, 8),)])],
        "calibration_dtype": lambda: [float_model, "--calibration", data([(torch.zeros(2, 3, 8, 8).double(),)])],
        "calibration_arity": lambda: [float_model, "--calibration", data([(_batch(0), _batch(1))])],
        "calibration_not_tensor": lambda: [float_model, "--calibration", data([("text",)])],
        "bad_batches": lambda: [float_model, "--batches", "0"],
        "bad_report": lambda: [float_model, "--report", "xml"],
        "output_is_a_file": lambda: [float_model, "-o", put("file", "x")],
    }
    return cases[kind]()


BAD_QUANTIZE = {
    "malformed": r"bad\.mlir:2:\d+: error: ",
    "truncated": r"bad\.mlir:\d+:\d+: error: ",
    "binary": r"bad\.mlir:1:1: error: input is binary",
    "not_utf8": r"bad\.mlir:2:9: error: input is not UTF-8",
    "no_forward": r"bad\.mlir:1:1: error: the module has no func\.func @forward",
    "deeply_nested": r"bad\.mlir:1:\d+: error: ",
    "not_a_module": r"bad\.mlir:1:7: error: Operation t\.op is not registered$",
    "missing_weights": r"bad\.mlir:\d+:\d+: error: aten\.param '.*': no such tensor",
    "bad_weights": r"^qir-quantize: error: .*bad\.safetensors: cannot read weights",
    "junk.pt2": r"^qir-quantize: error: .*junk\.pt2: not a \.pt2 archive",
    "empty.pt2": r"^qir-quantize: error: .*empty\.pt2: cannot load a torch\.export program",
    "truncated.pt2": r"^qir-quantize: error: .*cut\.pt2: (not a \.pt2 archive|cannot load)",
    "binary_weights_as_model": r"^qir-quantize: error: .*float\.safetensors: not a model qir-quantize reads",
    "missing_model": r"^qir-quantize: error: .*nope\.mlir: No such file or directory$",
    "unknown_example": r"^qir-quantize: error: 'resnet999' is neither a file nor a built-in example "
                       r"\(resnet18, mobilenet_v2, transformer\)$",
    "unknown_backend": r"^qir-quantize: error: unknown backend 'tpu' \(backends: .*x86",
    # qir's own quantizers first, then every installed backend's (`bmm-int8`, `onednn`, ...).
    "unknown_quantizer": r"^qir-quantize: error: unknown quantizer 'int3' \(available: x86, xnnpack, x86-qat, "
                         r"xnnpack-qat(, [\w-]+)*, onednn(, [\w-]+)*\)$",
    "observed_stage": r"^qir-quantize: error: .*observed\.mlir is at stage 'observed'",
    "missing_calibration": r"^qir-quantize: error: .*nope\.pt: No such file or directory$",
    "garbage_calibration": r"^qir-quantize: error: .*g\.pt: cannot read calibration data saved with torch\.save",
    "calibration_not_a_list": r"data\.pt: expected a non-empty list of input tuples \(or of tensors\), got a dict$",
    "calibration_empty": r"data\.pt: expected a non-empty list .*got a list$",
    "calibration_shape": r"data\.pt: batch 0, input 0: tensor of shape \(1, 3, 8, 8\) does not match "
                         r"tensor<2x3x8x8xf32>$",
    "calibration_dtype": r"data\.pt: batch 0, input 0: tensor of dtype torch\.float64 does not match",
    "calibration_arity": r"data\.pt: batch 0 has 2 inputs, the model takes 1$",
    "calibration_not_tensor": r"data\.pt: batch 0, input 0: expected a tensor \(tensor<2x3x8x8xf32>\), got a str$",
    "bad_batches": r"^qir-quantize: error: --batches must be at least 1, not 0",
    "bad_report": r"^qir-quantize: error: argument --report: invalid choice: 'xml'",
    "output_is_a_file": r"^qir-quantize: error: .*file: exists and is not a directory$",
}


@pytest.mark.parametrize("kind", sorted(BAD_QUANTIZE))
def test_quantize_bad_input_is_one_line_and_writes_nothing(models, tmp_path, kind):
    args = _write_bad(tmp_path, models["folder"], kind)
    out_dir = tmp_path / "out"
    if "-o" not in args:
        args += ["-o", out_dir]
    _assert_quantize_error(_quantize(*args), BAD_QUANTIZE[kind])
    assert not out_dir.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")], "scratch folder left behind"


def test_quantize_model_that_does_not_run_on_its_inputs(tmp_path):
    """IR that parses and verifies but fails in torch (a view to the wrong size) is the input's
    fault: one line naming where it failed."""
    text = _ir('%0 = aten.op "view.default"(%x, [3]) : (tensor<2xf32>) -> tensor<2xf32>\n'
               "func.return %0 : tensor<2xf32>")
    (tmp_path / "m.mlir").write_text(text)
    _assert_quantize_error(_quantize(tmp_path / "m.mlir", "-o", tmp_path / "out"),
                           r"^qir-quantize: error: the model does not run on the evaluation batch: RuntimeError: "
                           r"shape '\[3\]' is invalid")
    assert not (tmp_path / "out").exists()


def _raise_type_error(*args):
    raise TypeError("boom")


@pytest.mark.parametrize("target,pattern", [
    ("qir.debug.compare", r"internal error: TypeError: boom"),
    ("qir.passes.fold_bn.FoldBatchNorm.apply", r"pass 'fold-bn' failed: internal error: TypeError: boom"),
])
def test_quantize_internal_error_is_one_line_with_status_2(models, tmp_path, monkeypatch, target, pattern):
    """A bug of qir's (here: a function or a pass that raises) is one line saying so, status 2."""
    monkeypatch.setattr(target, _raise_type_error)
    _assert_quantize_error(_quantize(models["folder"] / "float.mlir", "-o", tmp_path / "out"),
                           rf"^qir-quantize: error: {pattern} \(a bug of qir's, please report it; "
                           r"QIR_TRACEBACK=1 shows where\)$", status=2)
    assert not (tmp_path / "out").exists()


def test_quantize_replaces_an_earlier_output(models, tmp_path):
    """Into an existing DIR: this run's files replace the earlier ones, and an earlier model.pt2
    this run does not write (a lowered input has no Q/DQ module) is removed."""
    folder, out = models["folder"], tmp_path / "out"
    out.mkdir()
    (out / "model.pt2").write_text("stale")
    (out / "notes.txt").write_text("mine")
    code, _, err = _quantize(folder / "lowered.mlir", "-o", out)
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["model.mlir", "model.safetensors", "notes.txt"]


def _mutations():
    from hypothesis import strategies as st

    junk = st.one_of(st.binary(min_size=1, max_size=8),
                     st.sampled_from([b"}", b"{", b"%", b'"', b"(", b"tensor<", b"!quant.uniform<i8:f32, -1.0>",
                                      b"\x00", b"\xff", b"\n", b"0x", b"[" * 200, b"aten.op", b"-> "]))
    return st.tuples(st.sampled_from(["truncate", "replace", "insert", "delete", "digit", "digit"]),
                     st.floats(0, 1), junk, st.integers(1, 40))


def _mutate(data: bytes, mutation) -> bytes:
    """One mutation: cut the file, overwrite, insert or delete bytes, or change a digit (which
    mostly still parses: a shape, an index, a scale that no longer fits)."""
    kind, where, junk, length = mutation
    i = int(where * len(data))
    if kind == "digit":
        match = re.compile(rb"\d").search(data, i) or re.compile(rb"\d").search(data)
        if match is None:
            return data
        digit = (int(data[match.start():match.end()]) + length) % 10
        return data[:match.start()] + str(digit).encode() + data[match.end():]
    if kind == "truncate":
        return data[:i]
    if kind == "replace":
        return data[:i] + junk + data[i + len(junk):]
    if kind == "insert":
        return data[:i] + junk + data[i:]
    return data[:i] + data[i + length:]


def test_quantize_survives_mutated_mlir(models):
    """Whatever the bytes of a valid float-stage file become: success, or one line on stderr, a
    non-zero status and nothing written to -o; never a traceback."""
    import shutil
    import tempfile

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    original = (models["folder"] / "float.mlir").read_bytes()

    @settings(max_examples=30, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(_mutations(), min_size=1, max_size=3))
    def check(mutations):
        data = original
        for mutation in mutations:
            data = _mutate(data, mutation)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "m.mlir"
            path.write_bytes(data)
            shutil.copy(models["folder"] / "float.safetensors", Path(folder) / "m.safetensors")
            code, out, err = _quantize(path, "--batches", "1", "--report", "json", "-o", Path(folder) / "out")
            assert "Traceback" not in err
            if code == 0:
                json.loads(out)
                assert (Path(folder) / "out" / "model.mlir").exists()
            else:
                assert code in (1, 2) and out == ""
                assert len(err.strip().splitlines()) == 1 and QUANTIZE_ERROR.match(err), err
                assert not (Path(folder) / "out").exists()

    check()


def test_quantize_dynamic_modules_mixes_schemes(tmp_path):
    """`--dynamic-modules REGEX`: the linears under matching modules (the transformer example's
    four `ffn1`) run per token on the dynamic kernel, the rest as the scheme says (static here),
    the report says which; the written program holds exactly those four; a bad pattern is one
    error line."""
    code, out, err = _quantize("transformer", "--dynamic-modules", "layers[.][0-9]+[.]ffn1", "--report", "json",
                               "-o", tmp_path)
    assert code == 0, err
    report = json.loads(out)
    assert report["quantizer"] == ("the x86 backend's own, with DynamicQuantizer per token for modules matching "
                                   "'layers[.][0-9]+[.]ffn1'")
    program = (tmp_path / "model.mlir").read_text()
    dynamic = [line for line in program.splitlines() if "x86.dynamic_linear" in line]
    assert len(dynamic) == 4 and all("ffn1" in line for line in dynamic)
    assert "x86.linear_fp32" in program  # the other linears, static
    assert report["sqnr"]["x86"] > 30
    _assert_quantize_error(_quantize("transformer", "--dynamic-modules", "layers[.]("),
                           r"'layers\[\.\]\(' is not a regular expression")


def test_quantize_smooth_modules_smooths_those_linears(tmp_path):
    """`--smooth-modules REGEX`: SmoothQuant on the static linears under matching modules (the
    transformer example's four `ffn1`): one division each in the written program, the report says
    which, the per-op comparison still finds the smoothed linears; a scheme without static inputs
    or a bad alpha is one error line."""
    code, out, err = _quantize("transformer", "--smooth-modules", "layers[.][0-9]+[.]ffn1", "--smoothing", "0.75",
                               "--report", "json", "-o", tmp_path)
    assert code == 0, err
    report = json.loads(out)
    assert report["quantizer"] == ("the x86 backend's own, with SmoothQuant (alpha 0.75) for modules matching "
                                   "'layers[.][0-9]+[.]ffn1'")
    program = (tmp_path / "model.mlir").read_text()
    assert len([line for line in program.splitlines() if "{smoothing}" in line]) == 4
    assert report["sqnr"]["x86"] > 30
    assert sum("ffn1" in str(record) for record in report["layers"]) >= 4
    _assert_quantize_error(_quantize("transformer", "--scheme", "dynamic", "--smooth-modules", ".*"),
                           "--smooth-modules smooths statically quantized inputs; --scheme dynamic has none")
    _assert_quantize_error(_quantize("transformer", "--smooth-modules", ".*", "--smoothing", "2"),
                           r"smoothing takes a migration strength in \[0, 1\]")

"""The command-line tools, run as users run them (subprocesses): one-line errors for bad
input, weights beside files, qir-translate on a `.pt2`, a fast `--help`."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

import qir

ONE_ERROR = re.compile(r"^(.+:\d+:\d+: error: |qir-opt: error: |qir-translate: error: )")


def _run(tool: str, *args, stdin: str | None = None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", f"qir.tools.{tool}", *map(str, args)],
                          input=stdin, capture_output=True, text=True, timeout=300, env=env)


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


@pytest.fixture(scope="module")
def bad_results(tmp_path_factory):
    """Every bad input through qir-opt, in parallel (each run imports torch)."""

    def one(name):
        folder = tmp_path_factory.mktemp(name)
        content, args, _ = BAD[name]
        path = folder / "bad.mlir"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        (folder / "keep.mlir").write_text("previous output\n")
        result = _run("qir_opt", path, *args, "-o", folder / "out.mlir")
        again = _run("qir_opt", path, *args, "-o", folder / "keep.mlir")
        return name, (folder, result, again)

    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(one, BAD))


@pytest.mark.parametrize("name", sorted(BAD))
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
    ("test-break-ir", r"m\.mlir:4:5: error: pass 'test-break-ir' failed: left invalid IR: .*nosuch\.default"),
    ("test-crash", r"m\.mlir:1:1: error: pass 'test-crash' failed: internal error: KeyError: 'boom'"),
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


@pytest.mark.parametrize("pipeline", ["", "canonicalize"])
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


# -- startup ----------------------------------------------------------------------------------


def test_help_does_not_import_torch():
    probe = ("import sys\nfrom qir.tools.qir_opt import main\n"
             "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
             "print('IMPORTED', sorted(m for m in ('torch', 'qir.program', 'qir.dialects.aten') if m in sys.modules),"
             " file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert "usage: qir-opt" in result.stdout and "--print-ir-after-all" in result.stdout
    assert "fold-bn" in result.stdout, "the registered passes are listed"
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

"""The command-line tools: weights beside files, and one-line errors for bad input."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch

import qir

LOCATED = re.compile(r"^(\S+:\d+:\d+: error: |qir-(opt|translate): error: )")


def _run(tool: str, *args, cwd=None):
    return subprocess.run([sys.executable, "-m", f"qir.tools.{tool}", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU()).eval()


def test_qir_opt_reads_and_writes_weights_beside_files(tmp_path):
    model, x = _model(), torch.randn(1, 3, 8, 8)
    qir.export(model, (x,)).save(tmp_path / "m.mlir")
    result = _run("qir_opt", tmp_path / "m.mlir", "-p", "canonicalize,fold-bn", "-o", tmp_path / "out.mlir")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.safetensors").exists()
    folded = qir.load(tmp_path / "out.mlir")
    assert "batch_norm" not in str(folded)
    torch.testing.assert_close(folded.to_fx()(x), model(x), rtol=1e-5, atol=1e-6)


def test_qir_translate_imports_a_pt2(tmp_path):
    model, x = _model(), torch.randn(1, 3, 8, 8)
    torch.export.save(torch.export.export(model, (x,)), tmp_path / "m.pt2")
    result = _run("qir_translate", tmp_path / "m.pt2", "--import-pt2", "-o", tmp_path / "m.mlir")
    assert result.returncode == 0, result.stderr
    assert torch.equal(qir.load(tmp_path / "m.mlir").to_fx()(x), model(x))


BAD_INPUTS = {
    "malformed": "builtin.module {\n  func.func @forward( {\n",
    "truncated": 'builtin.module {\n  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {\n    %0 = aten.op "relu.de',
    "unknown_op": 'builtin.module {\n  %0 = "foo.bar"() : () -> ()\n}\n',
    "unknown_aten": ('builtin.module {\n  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {\n'
                     '    %0 = aten.op "nosuch.default"(%x) : (tensor<2xf32>) -> tensor<2xf32>\n'
                     '    func.return %0 : tensor<2xf32>\n  }\n}\n'),
    "bad_quant_type": ('builtin.module {\n  func.func @forward(%x: tensor<2xf32>) -> tensor<2xf32> {\n'
                       '    %q = quant.qcast %x : tensor<2xf32> to tensor<2x!quant.uniform<i8:f32, -1.0:0>>\n'
                       '    %d = quant.dcast %q : tensor<2x!quant.uniform<i8:f32, -1.0:0>> to tensor<2xf32>\n'
                       '    func.return %d : tensor<2xf32>\n  }\n}\n'),
    "deeply_nested": "builtin.module {" + "[" * 5000,
    "binary": "\x00\x01\x02garbage\xff",
}


@pytest.mark.parametrize("name", sorted(BAD_INPUTS))
def test_bad_input_gives_one_located_line(tmp_path, name):
    path = tmp_path / "bad.mlir"
    path.write_bytes(BAD_INPUTS[name].encode("utf-8", "surrogateescape") if name != "binary"
                     else b"\x00\x01\x02garbage\xff")
    result = _run("qir_opt", path, "-o", tmp_path / "out.mlir")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert LOCATED.match(result.stderr), result.stderr
    assert not (tmp_path / "out.mlir").exists()


@pytest.mark.parametrize("args", [["-p", "nosuch-pass"], ["-p", "convert"], ["-p", "canonicalize{"]])
def test_bad_pipelines_are_one_line_errors(tmp_path, args):
    path = tmp_path / "m.mlir"
    qir.export(_model(), (torch.randn(1, 3, 8, 8),)).save(path)
    result = _run("qir_opt", path, *args)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and LOCATED.match(result.stderr), result.stderr


def test_missing_file():
    result = _run("qir_opt", "does/not/exist.mlir")
    assert result.returncode == 1 and result.stderr.startswith("qir-opt: error:"), result.stderr


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

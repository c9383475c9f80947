"""A backend in a package of its own: `examples/qir_bmm_backend`, installed with pip.

`scripts/setup.sh` installs it (`pip install -e examples/qir_bmm_backend`); nothing in qir
names it. These tests pin what the backend contract promises a backend author: the package is
found through its `qir.backends` entry point (in this process and in `qir-opt`'s), its own
quantizer annotates torch.ao's custom-backend RFC units (a bmm, and a bmm + softmax as one
unit), `lower-bmm-int8` runs them as its kernels (`torch._int_mm` underneath), the lowered
model computes what qir's reference computes, and the package imports only qir's public
modules.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections import Counter
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import torch
from torch import nn
from xdsl.dialects.builtin import f32

import qir
from helpers import run_tool
from peers import sqnr

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "examples" / "qir_bmm_backend"
NAME = "bmm-int8"

PUBLIC_MODULES = {"qir", "qir.quantizer", "qir.lowering", "qir.lowering.rules", "qir.dialects",
                  "qir.dialects.aten", "qir.dialects.quant", "qir.dialects.obs", "qir.dialects.ref",
                  "qir.dialects.kernel"}
"""qir's public modules (`qir.lowering`'s docstring, `docs/backends.md`)."""


def _entry_point():
    found = [ep for ep in entry_points(group="qir.backends") if ep.name == NAME]
    if not found:
        pytest.fail(f"the {NAME!r} backend is not installed: pip install -e examples/qir_bmm_backend "
                    "(scripts/setup.sh does)")
    return found[0]


class Attention(nn.Module):
    """One attention head as the RFC's example writes it, with `torch.bmm`: q/k/v projections,
    `softmax(q @ k^T)` (the 1/sqrt(d) scale folded into q's weights), `@ v`, an out projection.
    The linears stay float: the backend runs bmm only."""

    def __init__(self, dim: int = 16):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(dim, dim) for _ in range(4))
        with torch.no_grad():
            self.q.weight.mul_(dim ** -0.5)
            self.q.bias.mul_(dim ** -0.5)

    def forward(self, x):
        attn = torch.softmax(torch.bmm(self.q(x), self.k(x).transpose(1, 2)), dim=-1)
        return self.o(torch.bmm(attn, self.v(x)))


def _inputs(seed: int) -> tuple[torch.Tensor]:
    return (torch.randn(2, 6, 16, generator=torch.Generator().manual_seed(seed)),)


BATCHES = [_inputs(seed) for seed in range(1, 9)]


@pytest.fixture(scope="module")
def flow():
    """The model quantized for the backend in one call (its own quantizer, found by name), and the
    same quantized program lowered to qir's reference emulation."""
    _entry_point()
    torch.manual_seed(0)
    model = Attention().eval()
    prepared = qir.prepare(model, _inputs(0), qir.get_quantizer(NAME))
    with torch.no_grad():
        for batch in BATCHES:
            prepared(*batch)
    quantized = qir.convert(prepared)
    lowered = qir.lower(quantized, NAME)
    return model, quantized, lowered, qir.lower(quantized, "reference")


def _ops(program: qir.Program) -> Counter:
    return Counter(getattr(op, "target", None) and op.target.data or op.name for op in program.forward.body.walk())


def test_installed_and_found_through_entry_points():
    """The package is installed (its distribution names the entry point), qir finds it by name
    without being told where, and its pass, quantizer and dialect are known by their names."""
    import qir_bmm_backend

    ep = _entry_point()
    assert ep.value == "qir_bmm_backend:BACKEND" and ep.dist.name == "qir-bmm-backend"
    backend = qir.get_backend(NAME)
    assert backend is qir_bmm_backend.BACKEND and backend.dialect_names == {"qbmm"}
    # What is installed is this example (editable or copied), not some other package of its name.
    assert Path(qir_bmm_backend.__file__).read_text() == (PACKAGE / "qir_bmm_backend" / "__init__.py").read_text()
    from qir.registry import available_passes

    assert f"lower-{NAME}" in available_passes() and NAME in qir.available_quantizers()
    # Another process, as a user has it: qir-opt lists the pass.
    listed = subprocess.run([sys.executable, "-m", "qir.tools.qir_opt", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert f"lower-{NAME}" in re.sub(r"\s+", "", listed.stdout)


def test_the_fused_kernel_is_what_runs(flow):
    """The first bmm, its softmax and the quantize after it are one `qbmm.bmm_softmax` kernel, the
    second bmm (read in float by the out projection) is `qbmm.bmm` to a float result; no ref op,
    float bmm or float softmax is left."""
    _, quantized, lowered, _ = flow
    program = lowered.qir_program
    ops = _ops(program)
    assert program.module.attributes["qir.backend"].data == NAME
    assert ops["qbmm.bmm_softmax"] == 1 and ops["qbmm.bmm"] == 1
    assert not any(name.startswith("ref.") for name in ops)
    assert "softmax.int" not in ops and "bmm.default" not in ops
    assert ops["linear.default"] == 4  # the backend has no linear: the projections stay float
    (bmm,) = [op for op in program.forward.body.walk() if op.name == "qbmm.bmm"]
    assert bmm.output.type.element_type == f32
    targets = Counter(n.target for n in lowered.graph.nodes if n.op == "call_function")
    assert targets[torch.ops.qbmm.bmm_softmax.default] == 1 and targets[torch.ops.qbmm.bmm.default] == 1
    assert not any("softmax" in str(t) and "qbmm" not in str(t) for t in targets)
    # Its quantizer annotated the RFC's units: the quantized program has a quantize on each bmm
    # operand and after the softmax, none between the first bmm and its softmax.
    q_ops = _ops(quantized.qir_program)
    assert q_ops["quant.qcast"] == 4 and q_ops["bmm.default"] == 2


def test_quantize_in_one_call_is_the_same(flow):
    """`qir.quantize(backend=...)` with no quantizer takes the backend's own: the same program."""
    model, _, lowered, _ = flow
    again = qir.quantize(model, _inputs(0), calibration=BATCHES, backend=NAME)
    assert again.qir_program.text() == lowered.qir_program.text()


def test_agrees_with_the_reference(flow):
    """The kernels compute exactly what qir's reference defines (int8 products accumulated in
    int32 by `torch._int_mm`, scaled and rounded as the reference does): the lowered model's
    outputs are bit-identical to the reference emulation's, on inputs it was not calibrated on."""
    _, _, lowered, reference = flow
    with torch.no_grad():
        for seed in (100, 101, 102):
            inputs = _inputs(seed)
            assert torch.equal(lowered(*inputs), reference(*inputs))


def test_accuracy_against_float(flow):
    """Against float on ten unseen inputs, as accurate as the Q/DQ program it was lowered from
    (measured: 140.9-144.9 dB between the two, float rounding only) and, against float, 31.9 to
    43.7 dB, median 42.4 (8 calibration batches; int8 operands of both bmms, int8
    probabilities; the one input at 31.9 dB has logits beyond the calibrated range)."""
    model, quantized, lowered, _ = flow
    against_float = []
    for seed in range(100, 110):
        inputs = _inputs(seed)
        with torch.no_grad():
            expected, ours = model(*inputs), lowered(*inputs)
            assert sqnr(quantized(*inputs), ours) >= 120
        against_float.append(sqnr(expected, ours))
    against_float.sort()
    assert against_float[0] >= 30 and against_float[5] >= 40, [f"{db:.1f}" for db in against_float]


def _qir_opt(*args) -> str:
    result = run_tool("qir_opt", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_qir_opt_on_text(flow, tmp_path):
    """The whole flow on the text form, with `qir-opt` in processes of its own, which know the
    backend only through its entry point: annotate with its quantizer, observe, calibrate (in
    torch), convert, rewrite to reference ops for it and lower to it. The lowered text runs and
    computes what the Python flow's module computes."""
    model, _, lowered, _ = flow
    qir.export(model, _inputs(0)).save(tmp_path / "float.mlir")
    observed = _qir_opt(tmp_path / "float.mlir", "-p",
                        f"canonicalize,cse,annotate{{quantizer={NAME}}},propagate-annotations,insert-observers",
                        "-o", tmp_path / "observed.mlir")
    assert observed == ""
    text = (tmp_path / "observed.mlir").read_text()
    assert text.count("obs.observe") == 4, text  # q, k^T, v and the softmax's output
    calibrating = qir.load(tmp_path / "observed.mlir").to_fx()
    with torch.no_grad():
        for batch in BATCHES:
            calibrating(*batch)
    qir.observed_program(calibrating).save(tmp_path / "calibrated.mlir")
    _qir_opt(tmp_path / "calibrated.mlir", "-p",
             f"convert,canonicalize,cse,reference-rewrite{{backend={NAME}}},lower-{NAME},canonicalize,cse",
             "-o", tmp_path / "lowered.mlir")
    text = (tmp_path / "lowered.mlir").read_text()
    assert "qbmm.bmm_softmax(" in text and "qbmm.bmm(" in text and "ref." not in text
    program = qir.load(tmp_path / "lowered.mlir")
    assert program.stage == "lowered"
    inputs = _inputs(7)
    with torch.no_grad():
        assert torch.equal(program.to_fx()(*inputs), lowered(*inputs))


def _qir_imports(path: Path) -> list[tuple[int, str]]:
    """Every module of qir a Python file imports (`import qir.x`, `from qir.x import y`, and
    `from qir import y` where `y` is a submodule), by line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "qir"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "qir":
            found.append((node.lineno, node.module))
            for alias in node.names:
                try:
                    __import__(f"{node.module}.{alias.name}")
                except ImportError:
                    continue  # a name, not a module
                found.append((node.lineno, f"{node.module}.{alias.name}"))
    return found


def test_imports_only_public_modules():
    """A grep of the package's sources: every `import`/`from ... import` of qir names one of qir's
    public modules (the same lines read as Python say the same, `from qir import x` included)."""
    sources = sorted(PACKAGE.rglob("*.py"))
    assert {p.name for p in sources} >= {"__init__.py", "dialect.py", "emission.py", "kernels.py", "quantizer.py"}
    grep = subprocess.run(["grep", "-rnE", r"^\s*(from|import)\s+qir(\.[a-z_]+)*(\s|$)", "--include=*.py", str(PACKAGE)],
                          capture_output=True, text=True)
    lines = grep.stdout.splitlines()
    assert lines, "the package builds on qir"
    grepped = {re.search(r"(?:from|import)\s+(qir[\w.]*)", line).group(1) for line in lines}
    assert grepped <= PUBLIC_MODULES, sorted(grepped - PUBLIC_MODULES)
    parsed = {module for path in sources for _, module in _qir_imports(path)}
    assert grepped <= parsed and parsed <= PUBLIC_MODULES, sorted(parsed - PUBLIC_MODULES)
    print("qir modules imported:", ", ".join(sorted(parsed)))


def test_qir_does_not_know_it():
    """Nothing in qir names the package, its backend or its dialect: it touches nothing in qir."""
    for folder in ("qir", "dialects", "passes", "lowering", "tools"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in (".py", ".rules", ".lark", ".toml"):
                text = path.read_text()
                assert "qir_bmm_backend" not in text and NAME not in text and "qbmm" not in text, path
    assert NAME not in (ROOT / "pyproject.toml").read_text()

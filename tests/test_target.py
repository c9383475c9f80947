"""Targets: names, host detection, and what a target changes in quantization and lowering.

Everything here runs on any host: programs are quantized and lowered *for* a target by name,
and the integer weights are checked against the saturation rule with plain integer arithmetic
(`_worst_pair`), independent of `qir.accumulation`. Running the kernels is left to the
backend tests, which compare them with the reference on whatever CPU runs the suite.
"""

from __future__ import annotations

import pytest
import torch

import qir
import qir.target as target_module
from peers import sqnr
from qir.dialects import ref
from qir.errors import QirError
from qir.quantizer import X86Quantizer
from qir.target import Target, TargetError, parse_target


@pytest.mark.parametrize("name, features, saturates", [
    ("x86-avx2", {"avx2"}, True),
    ("x86-avx512", {"avx2", "avx512"}, True),
    ("x86-avx512-vnni", {"avx2", "avx512", "avx512_vnni"}, False),
    ("x86-amx", {"avx2", "avx512", "avx512_vnni", "amx"}, False),
    ("x86-avx2+avx_vnni", {"avx2", "avx_vnni"}, True),
    ("x86-avx512-vnni-avx512_vnni", {"avx2", "avx512"}, True),
    ("arm64-dotprod", {"neon", "dotprod"}, False),
])
def test_target_names_parse_to_features_and_print_back(name, features, saturates):
    target = parse_target(name)
    assert target.features == frozenset(features)
    assert target.pairs_saturate is saturates
    assert parse_target(target.name) == target


@pytest.mark.parametrize("bad", ["x86-avx3", "x86-avx2+sse9", "vnni"])
def test_an_unknown_target_names_the_known_ones(bad):
    with pytest.raises(TargetError, match="unknown (target|feature)"):
        parse_target(bad)


@pytest.mark.skipif(target_module.platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="fbgemm's switch narrows x86 hosts only")
def test_the_host_is_what_the_int8_libraries_are_told_to_use(monkeypatch):
    target_module.host.cache_clear()
    try:
        monkeypatch.setenv("FBGEMM_ENABLE_INSTRUCTIONS", "AVX2")
        narrowed = target_module.host()
        assert "avx512_vnni" not in narrowed.features and narrowed.pairs_saturate
    finally:
        target_module.host.cache_clear()
    monkeypatch.delenv("FBGEMM_ENABLE_INSTRUCTIONS")
    assert target_module.host().arch in ("x86_64", "aarch64")


class _Net(torch.nn.Module):
    """Convs with odd and even channel counts, a depthwise conv and a linear: full-range
    uniform weights (PyTorch's default init) make many int16 pairs overflow at 8 bits."""

    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.c2 = torch.nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.c3 = torch.nn.Conv2d(16, 32, 1)
        self.fc = torch.nn.Linear(32 * 8 * 8, 10)

    def forward(self, x):
        x = torch.relu(self.c1(x))
        x = torch.relu(self.c2(x))
        x = torch.relu(self.c3(x))
        return self.fc(x.flatten(1))


def _quantized(target: str):
    torch.manual_seed(0)
    model = _Net().eval()
    x = torch.randn(2, 3, 8, 8)
    prepared = qir.prepare(model, (x,), X86Quantizer(target=target))
    for _ in range(3):
        prepared(torch.randn(2, 3, 8, 8))
    return model, x, qir.convert(prepared)


def _weights(program: qir.Program):
    """(name, int weight, groups) of each conv and linear weight of a quantized program."""
    from qir.dialects.aten import AtenOp

    found = []
    for op in program.module.walk():
        if isinstance(op, AtenOp) and op.op_name in ("conv2d", "linear"):
            cast = op.operands[1].owner
            param = cast.input.owner
            groups = int(op.arg("groups", 1)) if op.op_name == "conv2d" else 1
            found.append((param.param_name, program.params[param.param_name].to(torch.int64), groups))
    return found


def _worst_pair(weight: torch.Tensor, groups: int) -> int:
    """The largest |sum of same-sign weights| over the pairs x86's kernels form (consecutive
    elements of the reduction, taps outside and channels inside; and consecutive channels of
    one tap), by plain loops."""
    w = weight if weight.dim() == 2 else weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1, weight.shape[1])
    worst = 0
    for row in w:
        orders = [row.reshape(-1).tolist()] + ([tap.tolist() for tap in row] if row.dim() == 2 else [])
        for values in orders:
            for i in range(0, len(values), 2):
                pair = values[i:i + 2]
                worst = max(worst, sum(v for v in pair if v > 0), -sum(v for v in pair if v < 0))
    return worst


def test_a_program_quantized_for_avx2_has_no_weight_pair_that_can_saturate():
    model, x, for_avx2 = _quantized("x86-avx2")
    _, _, for_vnni = _quantized("x86-avx512-vnni")
    pairs = [_worst_pair(w, g) for _, w, g in _weights(for_avx2.qir_program) if g == 1]  # grouped: oneDNN, exact
    assert max(pairs) * 255 <= 32767, pairs
    assert max(_worst_pair(w, g) for _, w, g in _weights(for_vnni.qir_program)) * 255 > 32767  # the same net at full range
    with torch.no_grad():
        expected = model(x)
        assert sqnr(expected, for_avx2(x)) > sqnr(expected, for_vnni(x)) - 8
    assert for_avx2.qir_program.module.attributes["qir.target"].data == "x86-avx2"


def test_lowering_for_avx2_runs_only_what_cannot_saturate_and_records_the_target():
    _, _, for_vnni = _quantized("x86-avx512-vnni")
    refused = qir.PassManager(["reference-rewrite{backend=x86 target=x86-avx2}"]).run(for_vnni.qir_program)
    accepted = qir.PassManager(["reference-rewrite{backend=x86 target=x86-avx512-vnni}"]).run(for_vnni.qir_program)

    def convs(p):
        return sum(isinstance(op, ref.ConvOp | ref.LinearOp) for op in p.module.walk())

    assert convs(accepted) == 4
    assert convs(refused) < 4  # the full-range weights that could saturate stay in the Q/DQ form
    lowered = qir.PassManager(["lower-x86{target=x86-avx2}"]).run(refused)
    assert lowered.module.attributes["qir.target"].data == "x86-avx2"
    assert "qir.requires" not in lowered.module.attributes


def test_a_program_lowered_for_vnni_refuses_to_build_on_a_host_without_it(monkeypatch):
    _, x, for_vnni = _quantized("x86-avx512-vnni")
    lowered = qir.PassManager(["reference-rewrite{backend=x86 target=x86-avx512-vnni}",
                               "lower-x86{target=x86-avx512-vnni}"]).run(for_vnni.qir_program)
    assert lowered.module.attributes["qir.requires"].data == "avx512_vnni"
    monkeypatch.setattr(target_module, "host", lambda: Target("x86_64", frozenset({"avx2"})))
    with pytest.raises(QirError, match="lowered for x86-avx512-vnni and needs avx512_vnni.*lower the quantized"):
        lowered.to_fx()


def test_qir_lower_takes_a_target_and_defaults_to_the_one_quantized_for():
    _, x, for_avx2 = _quantized("x86-avx2")
    lowered = qir.lower(for_avx2, "x86")
    assert lowered.qir_program.module.attributes["qir.target"].data == "x86-avx2"
    with pytest.raises(QirError, match="unknown target"):
        qir.lower(for_avx2, "x86", target="pentium")


def test_inductor_runs_in_float_what_its_kernels_would_saturate_on_the_target():
    _, x, for_vnni = _quantized("x86-avx512-vnni")
    on_avx2 = qir.PassManager(["lower-inductor{target=x86-avx2}"]).run(for_vnni.qir_program)
    float_weights = [op for op in on_avx2.module.walk() if getattr(op, "param_name", "").endswith("_float")]
    assert float_weights  # the weights that could saturate are float constants: no int8 kernel for them
    assert "qir.requires" not in on_avx2.module.attributes
    with torch.no_grad():
        assert sqnr(for_vnni(x), on_avx2.to_fx()(x)) > 35  # compiled by inductor: what the Q/DQ module computes
    lowered = qir.PassManager(["lower-inductor{target=x86-avx512-vnni}"]).run(for_vnni.qir_program)
    assert lowered.module.attributes["qir.requires"].data == "avx512_vnni"
    _, _, for_avx2 = _quantized("x86-avx2")
    fitted = qir.PassManager(["lower-inductor{target=x86-avx2}"]).run(for_avx2.qir_program)
    assert "qir.requires" not in fitted.module.attributes
    assert not [op for op in fitted.module.walk() if getattr(op, "param_name", "").endswith("_float")]


def test_quantize_checks_against_the_reference_without_changing_a_training_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU())  # training mode
    x = torch.randn(2, 3, 8, 8)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.warns(UserWarning, match="training mode"):
        qir.quantize(model, (x,), calibration=[(x,)], backend="x86")
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())

"""The int16-pair model of x86's int8 kernels (`qir.accumulation`), against plain loops and
against the kernels themselves.

Without AVX-512 VNNI, fbgemm and oneDNN add pairs of uint8 x int8 storage products in int16
with saturation. The emulation (`conv_saturation`, `linear_saturation`: what saturation
subtracts from the exact accumulator) is checked three ways:

* against a brute-force count by Python loops over every output, pair and tap (any host);
* against the real kernels told to behave as on an AVX2 CPU (`FBGEMM_ENABLE_INSTRUCTIONS=AVX2`,
  `ONEDNN_MAX_CPU_ISA=AVX2`), in a subprocess: any x86 CPU with AVX2 runs this, VNNI or not;
* through the reference backend (`emulate-target`), on a model quantized for VNNI: the
  emulated program is measurably worse than the exact one, and the same model quantized for
  AVX2 loses nothing to saturation.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

import qir
from helpers import avx2_env, x86_with_avx2
from peers import sqnr
from qir.accumulation import Reduction, channels_at_risk, conv_saturation, linear_saturation, risky_pairs
from qir.quantizer import X86Quantizer


def _brute_force_conv(x, w, zp, stride, padding, groups, kind):
    """The kernel's accumulator by loops: for each output, the pairs of the family's order over
    (tap, channel), each pair's raw products summed and clamped to int16, minus zp * sum(w)."""
    n, c, h, wd = x.shape
    oc, icg, kh, kw = w.shape
    pad = zp if kind == "fbgemm" else 0
    xp = torch.full((n, c, h + 2 * padding, wd + 2 * padding), pad, dtype=torch.int64)
    xp[:, :, padding:padding + h, padding:padding + wd] = x.to(torch.int64)
    valid = torch.zeros_like(xp, dtype=torch.bool)
    valid[:, :, padding:padding + h, padding:padding + wd] = True
    oh, ow = (h + 2 * padding - kh) // stride + 1, (wd + 2 * padding - kw) // stride + 1
    out = torch.zeros(n, oc, oh, ow, dtype=torch.int64)
    for b in range(n):
        for o in range(oc):
            g = o // (oc // groups)
            for i in range(oh):
                for j in range(ow):
                    terms, exact_zero = [], 0
                    for t in range(kh * kw):
                        r, s = divmod(t, kw)
                        for ch in range(icg):
                            y, z = i * stride + r, j * stride + s
                            raw = int(xp[b, g * icg + ch, y, z])
                            weight = int(w[o, ch, r, s])
                            terms.append(raw * weight)
                            exact_zero += (zp if valid[b, g * icg + ch, y, z] or kind == "fbgemm" else 0) * weight
                    if kind == "fbgemm":
                        groups_of_two = [terms[k:k + 2] for k in range(0, len(terms), 2)]
                    else:  # channels of one tap
                        groups_of_two = [terms[t * icg + k: t * icg + min(k + 2, icg)]
                                         for t in range(kh * kw) for k in range(0, icg, 2)]
                    total = sum(max(-32768, min(32767, sum(p))) for p in groups_of_two)
                    out[b, o, i, j] = total - exact_zero
    return out


def _exact_conv(x, w, zp, stride, padding, groups):
    centered = torch.nn.functional.pad(x.double() - zp, [padding] * 4)
    return torch.nn.functional.conv2d(centered, w.double(), None, stride, 0, 1, groups).round().to(torch.int64)


@pytest.mark.parametrize("kind", ["fbgemm", "onednn"])
@pytest.mark.parametrize("shape, groups, stride, padding", [
    ((3, 3, 3, 3), 1, 1, 1),   # odd channels: fbgemm's pairs cross taps
    ((4, 4, 3, 3), 1, 2, 1),
    ((4, 1, 3, 3), 4, 1, 1),   # depthwise: pairs of taps
    ((4, 2, 1, 1), 2, 1, 0),
])
def test_emulated_saturation_equals_a_brute_force_count(kind, shape, groups, stride, padding):
    generator = torch.Generator().manual_seed(7)
    oc, icg = shape[:2]
    x = torch.randint(120, 256, (1, icg * groups, 5, 5), generator=generator, dtype=torch.uint8)
    magnitude = torch.randint(60, 128, shape, generator=generator)  # large: most pairs can overflow
    sign = torch.randint(0, 2, shape, generator=generator) * 2 - 1
    w = (magnitude * sign).to(torch.int8)
    zp = 9
    table = risky_pairs(w, Reduction(tuple(w.shape), groups), kind, 0, 255)
    emulated = _exact_conv(x, w, zp, stride, padding, groups) + conv_saturation(
        x, table, oc, list(shape[2:]), [stride] * 2, [padding] * 2, [1, 1],
        groups, zp if kind == "fbgemm" else 0).to(torch.int64)
    expected = _brute_force_conv(x, w, zp, stride, padding, groups, kind)
    assert table.shape[0] > 0 or (kind == "onednn" and icg == 1)  # one channel per group: no pairs
    assert torch.equal(emulated, expected)


def test_risk_is_exactly_the_pairs_that_can_overflow():
    reduction = Reduction((3, 4))
    weight = torch.tensor([[128 // 2 + 1, 64, 0, 0], [64, 64, 64, 64], [-128, -1, 127, -128]], dtype=torch.int8)
    assert channels_at_risk(weight, reduction, 0, 255).tolist() == [True, False, True]
    assert channels_at_risk(weight, reduction, 0, 127).tolist() == [False, False, False]


_KERNEL_CHECK = textwrap.dedent("""
    import torch, warnings
    warnings.filterwarnings("ignore")
    from qir.accumulation import Reduction, conv_saturation, linear_saturation, risky_pairs
    g = torch.Generator().manual_seed(3)
    O = torch.ops.onednn
    worst = {}
    def note(name, kernel, exact, emulated):
        worst[name] = (int((kernel - emulated).abs().max()), int((kernel - exact).abs().max()))
    # linear: oneDNN (qlinear_pointwise) and fbgemm (float output), read back exactly
    for k in (7, 64, 301, 515):
        x = torch.randint(150, 256, (4, k), generator=g, dtype=torch.uint8)
        w = torch.randint(-128, 128, (5, k), generator=g, dtype=torch.int8)
        zp = 200
        exact = (x.long() - zp) @ w.long().t()
        packed = O.qlinear_prepack(w, list(x.shape))
        y = O.qlinear_pointwise(x, 1.0, zp, packed, torch.ones(5), torch.zeros(5, dtype=torch.long), None,
                                1.0, 0, torch.float32, "none", [], "").double().round().long()
        table = risky_pairs(w, Reduction(tuple(w.shape)), "%s", 0, 255)  # oneDNN's linear pairs on this ISA
        note(f"onednn linear K={k}", y, exact, exact + linear_saturation(x, table, 5).long())
        torch.backends.quantized.engine = "fbgemm"
        qw = torch._make_per_channel_quantized_tensor(w, torch.ones(5, dtype=torch.double),
                                                      torch.zeros(5, dtype=torch.long), 0)
        pk = torch.ops.quantized.linear_prepack(qw, None)
        y = torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32(x.float() - zp, 1.0, zp, pk)
        table = risky_pairs(w, Reduction(tuple(w.shape)), "fbgemm", 0, 255)
        note(f"fbgemm linear K={k}", y.double().round().long(), exact, exact + linear_saturation(x, table, 5).long())
    # conv: oneDNN's float-output kernel
    for shape, groups, stride, padding in (((4, 5, 3, 3), 1, 1, 1), ((4, 16, 3, 3), 1, 2, 1), ((4, 3, 7, 7), 1, 2, 3)):
        x = torch.randint(150, 256, (1, shape[1] * groups, 9, 9), generator=g, dtype=torch.uint8)
        w = torch.randint(-128, 128, shape, generator=g, dtype=torch.int8)
        zp = 200
        exact = torch.nn.functional.conv2d(x.double() - zp, w.double(), None, stride, padding, 1, groups).round().long()
        packed = O.qconv_prepack(w, torch.ones(4), 1.0, zp, [stride] * 2, [padding] * 2, [1, 1], groups, list(x.shape))
        y = O.qconv_pointwise(x, 1.0, zp, packed, torch.ones(4), torch.zeros(4, dtype=torch.long), None, [stride] * 2,
                              [padding] * 2, [1, 1], groups, 1.0, 0, torch.float32, "none", [], "")
        table = risky_pairs(w, Reduction(tuple(w.shape), groups), "onednn", 0, 255)
        emulated = exact + conv_saturation(x, table, 4, list(shape[2:]), [stride] * 2, [padding] * 2, [1, 1], groups, 0).long()
        note(f"onednn conv {shape}", y.contiguous().double().round().long(), exact, emulated)
    print(worst)
""")


@pytest.mark.skipif(not x86_with_avx2(), reason="needs an x86 CPU with AVX2 (the kernels emulated are x86's)")
def test_emulation_equals_the_kernels_run_as_on_an_avx2_cpu():
    env = avx2_env()
    run = subprocess.run([sys.executable, "-c", _KERNEL_CHECK % "onednn"], capture_output=True, text=True, env=env,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    worst = eval(run.stdout.strip().splitlines()[-1])  # noqa: S307 - our own subprocess's dict
    for name, (against_emulation, against_exact) in worst.items():
        assert against_emulation == 0, f"{name}: the kernel is {against_emulation} from the emulation"
    assert max(e for _, e in worst.values()) > 1000  # the cases do saturate


@pytest.mark.slow  # the AVX2 run above stays in the fast tier
@pytest.mark.skipif(not x86_with_avx2() or torch.backends.cpu.get_cpu_capability() != "AVX512",
                    reason="needs an x86 CPU with AVX-512 (run as one without VNNI)")
def test_emulation_equals_the_kernels_run_as_on_an_avx512_cpu_without_vnni():
    """AVX-512 without VNNI (Skylake-X) saturates the same pairs, but oneDNN's AVX-512 gemm pairs a
    linear's features consecutively where its AVX2 one restarts per K block."""
    env = dict(os.environ, FBGEMM_ENABLE_INSTRUCTIONS="AVX512", ONEDNN_MAX_CPU_ISA="AVX512_CORE")
    run = subprocess.run([sys.executable, "-c", _KERNEL_CHECK % "fbgemm"], capture_output=True, text=True, env=env,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    worst = eval(run.stdout.strip().splitlines()[-1])  # noqa: S307 - our own subprocess's dict
    assert all(against_emulation == 0 for against_emulation, _ in worst.values()), worst
    assert max(e for _, e in worst.values()) > 1000


class _Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = torch.nn.Conv2d(3, 32, 3, padding=1)
        self.c2 = torch.nn.Conv2d(32, 32, 3, padding=1)
        self.fc = torch.nn.Linear(32 * 8 * 8, 16)

    def forward(self, x):
        x = torch.relu(self.c2(torch.relu(self.c1(x))))
        return self.fc(x.flatten(1))


def test_the_reference_emulates_a_target_and_a_program_fitted_for_it_loses_nothing():
    torch.manual_seed(0)
    model = _Small().eval()
    x = torch.rand(2, 3, 8, 8) * 4

    def quantized(target):
        prepared = qir.prepare(model, (x,), X86Quantizer(target=target))
        prepared(x)
        return qir.convert(prepared)

    with torch.no_grad():
        expected = model(x)
        for_vnni, for_avx2 = quantized("x86-avx512-vnni"), quantized("x86-avx2")
        exact = qir.lower(for_vnni, "reference")(x)
        on_avx2 = qir.lower(for_vnni, "reference", target="x86-avx2")
        assert any(op.name.startswith("ref.") and "saturate" in op.properties
                   for op in on_avx2.qir_program.module.walk())
        assert sqnr(expected, on_avx2(x)) < sqnr(expected, exact) - 1  # saturation costs accuracy
        fitted = qir.lower(for_avx2, "reference")(x)
        torch.testing.assert_close(qir.lower(for_avx2, "reference", target="x86-avx2")(x), fitted, rtol=0, atol=0)
        assert qir.lower(for_vnni, "reference", target="x86-avx512-vnni")(x).equal(exact)
        # the check qir.quantize makes: a module computing what the saturating kernels compute is named
        worse = qir.check_against_reference(model, for_vnni, on_avx2, [(x,)])
        assert len(worse) == 1 and "output 0 of the reference program (lowered for x86-avx2)" in worse[0]
        assert qir.check_against_reference(model, for_vnni, qir.lower(for_vnni, "x86"), [(x,)]) == []


@pytest.mark.parametrize("second", [0.02, 0.5, 1.0, -1.0])
def test_fitted_scales_grow_only_as_much_as_a_pair_needs(second):
    from qir.accumulation import fit_scales

    weight = torch.tensor([[1.0, second, 0.0, 0.0], [0.1, -0.1, 0.05, 0.0]])
    scales = weight.abs().amax(1).double() / 127.5

    def quantize(trial, rows):
        part = weight if rows is None else weight[rows]
        return torch.clamp(torch.round(part / trial.float()[:, None]), -128, 127).to(torch.int8)

    fitted = fit_scales(scales, quantize, Reduction((2, 4)), 255)
    ints = quantize(fitted, None).to(torch.int64)
    assert int(ints[0, :2].clamp(min=0).sum()) <= 128 and int(ints[0, :2].clamp(max=0).sum()) >= -128
    assert fitted[1] == scales[1]  # a channel that cannot overflow keeps its scale
    if second == 0.02:
        assert int(ints[0, 0]) >= 125  # a pair just over the bound loses a level or two, not a bit


def test_a_wide_depthwise_conv_runs_exactly_on_x86():
    """torch's x86 engine gives depthwise convs of more than 100 channels to fbgemm, whose
    depthwise kernel saturates pairs of taps even on VNNI CPUs; the x86 backend packs grouped
    convs for oneDNN instead (exact on every CPU)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(128, 128, 3, padding=1, groups=128), torch.nn.ReLU(),
                                torch.nn.Conv2d(128, 8, 1)).eval()
    x = torch.rand(1, 128, 16, 16) * 4
    prepared = qir.prepare(model, (x,), X86Quantizer())
    prepared(x)
    quantized = qir.convert(prepared)
    with torch.no_grad():
        reference = qir.lower(quantized, "reference")(x)
        lowered = qir.lower(quantized, "x86")(x)
    assert sqnr(reference, lowered) > 50


def test_the_debugger_names_the_layers_that_would_saturate():
    import qir.debug

    torch.manual_seed(0)
    model = _Small().eval()
    x = torch.rand(2, 3, 8, 8) * 4
    prepared = qir.prepare(model, (x,), X86Quantizer(target="x86-avx512-vnni"))
    prepared(x)
    records = qir.debug.saturating_layers(qir.convert(prepared), "x86-avx2")
    assert {r.module for r in records} <= {"c1", "c2", "fc"} and records
    assert all(0 < r.pairs_at_risk <= r.pairs and r.channels_at_risk <= r.channels for r in records)
    assert qir.debug.saturating_layers(qir.convert(prepared), "x86-avx512-vnni") == []
    fitted = qir.prepare(model, (x,), X86Quantizer(target="x86-avx2"))
    fitted(x)
    assert {r.module for r in qir.debug.saturating_layers(qir.convert(fitted), "x86-avx2")} <= {"fc"}  # left full range

"""The lowering API and its contracts, on the built-in backends (x86, reference, inductor).

`qir.lower` takes what `qir.convert` returns, or a Program at the quantized or reference stage,
and nothing else; `qir.quantize` without a quantizer uses the backend's own; neither ever
changes what the caller passed; a lowered program is text that saves, loads and runs the same;
a misordered pipeline fails before it runs; and the graphs torchao's documented flow cannot take
(a ReLU module used twice) or that it does not aim at (a dynamic batch) lower and run. Numbers
are checked against float and against the `reference` emulation, never against the backend itself.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

import qir
from peers import sqnr, torchao_available, torchao_x86
from qir.examples import BasicBlock
from qir.pass_manager import QirPass
from qir.registry import get_backend


class _Net(nn.Module):
    """conv + relu, an adaptive pool, a linear read in float: what every built-in backend runs."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.relu(self.conv(x))), 1))


def _x(batch: int = 2, seed: int = 0, shape=(3, 8, 8)) -> torch.Tensor:
    return torch.randn(batch, *shape, generator=torch.Generator().manual_seed(seed))


def _batches(n: int = 4, **kw) -> list[tuple[torch.Tensor]]:
    return [(_x(seed=10 + i, **kw),) for i in range(n)]


def _model() -> _Net:
    torch.manual_seed(0)
    return _Net().eval()


@pytest.fixture(scope="module")
def model():
    return _model()


@pytest.fixture(scope="module")
def converted(model):
    """The Q/DQ module of `_Net` under the x86 quantizer, calibrated on four batches."""
    prepared = qir.prepare(model, (_x(),), get_backend("x86").quantizer())
    for batch in _batches():
        prepared(*batch)
    return qir.convert(prepared)


# -- what lower accepts ------------------------------------------------------------------------


def test_lower_accepts_convert_output_and_quantized_or_reference_programs(converted):
    """The module `convert` returns, its program, and that program after
    `reference-rewrite{backend=x86}` all lower to the same IR; the reference stage skips the
    rewrite it already had."""
    from_module = qir.lower(converted, "x86").qir_program
    from_program = qir.lower(converted.qir_program, "x86").qir_program
    reference_stage = qir.PassManager("reference-rewrite{backend=x86}").run(converted.qir_program)
    assert reference_stage.stage == "reference"
    from_reference = qir.lower(reference_stage, "x86").qir_program
    assert from_module.text() == from_program.text() == from_reference.text()
    assert from_module.stage == "lowered" and from_module.module.attributes["qir.backend"].data == "x86"
    assert any(op.name == "x86.conv2d_relu" for op in from_module.module.walk())


@pytest.mark.parametrize("what", ["float program", "float module", "exported program", "calibration module",
                                  "lowered program"])
def test_lower_rejects_anything_else_with_a_clear_error(model, converted, what):
    """Anything but the quantized or reference stage is refused by `lower` itself, with one message
    that says what it takes, rather than by a pass deep in the pipeline."""
    if what == "lowered program":
        given = qir.lower(converted, "reference").qir_program
    elif what == "float program":
        given = qir.export(model, (_x(),))
    elif what == "float module":
        given = model
    elif what == "exported program":
        given = torch.export.export(model, (_x(),))
    else:
        given = qir.prepare(model, (_x(),))
    with pytest.raises(qir.QirError, match="lower expects what qir.convert returns, or a qir.Program at the "
                                           "quantized or reference stage"):
        qir.lower(given, "x86")


def test_unknown_backend_names_the_known_ones(model, converted):
    """A misspelt backend is a QirError that lists what is registered, from `lower` and from
    `quantize` alike (before any export or calibration is spent)."""
    for call in (lambda: qir.lower(converted, "nope"), lambda: qir.quantize(model, (_x(),), backend="nope")):
        with pytest.raises(qir.QirError) as err:
            call()
        message = str(err.value)
        assert "unknown backend 'nope'" in message
        for known in ("inductor", "reference", "x86"):
            assert known in message


def test_inductor_takes_the_quantized_stage_only(converted):
    """The inductor backend compiles the Q/DQ form: a reference-stage program is refused up front,
    naming the pass and the stage."""
    reference_stage = qir.PassManager("reference-rewrite").run(converted.qir_program)
    with pytest.raises(qir.QirError, match=r"pass 'lower-inductor' needs a program at stage 'quantized', "
                                           r"but it would run on stage 'reference'"):
        qir.lower(reference_stage, "inductor")


# -- quantize and the derived quantizer ----------------------------------------------------------


@pytest.mark.parametrize("backend", ["x86", "reference"])
def test_quantize_without_quantizer_uses_the_backends_own(model, backend):
    """`quantize(quantizer=None)` is prepare with `get_backend(name).quantizer()`, calibrate,
    convert, lower: byte for byte the same IR."""
    batches = _batches()
    one_call = qir.quantize(model, (_x(),), calibration=batches, backend=backend)
    prepared = qir.prepare(model, (_x(),), get_backend(backend).quantizer())
    with torch.no_grad():
        for batch in batches:
            prepared(*batch)
    by_hand = qir.lower(qir.convert(prepared), backend)
    assert one_call.qir_program.text() == by_hand.qir_program.text()
    assert torch.equal(one_call(_x(seed=5)), by_hand(_x(seed=5)))


def test_the_callers_module_and_program_are_never_changed(converted):
    """Quantizing works on an export, lowering on a copy: the float model keeps its weights, mode
    and outputs, and the quantized program its text and tensors, whatever is lowered from it."""
    model = _model()
    state = copy.deepcopy(model.state_dict())
    x = _x(seed=3)
    before = model(x).detach()
    qir.quantize(model, (x,), calibration=_batches(), backend="x86")
    assert model.training is False
    assert state.keys() == model.state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert torch.equal(model(x), before)

    program = converted.qir_program
    text, params = program.text(), dict(program.params.items())
    for backend in ("x86", "reference", "inductor"):
        qir.lower(converted, backend)
        qir.lower(program, backend)
    assert program.text() == text and program.stage == "quantized"
    assert params.keys() == dict(program.params.items()).keys()
    assert all(torch.equal(params[k], v) for k, v in program.params.items())


# -- the lowered program as text -----------------------------------------------------------------


@pytest.mark.parametrize("backend", ["x86", "reference"])
def test_lowered_program_prints_saves_loads_and_runs_bit_identically(converted, backend, tmp_path):
    """Everything a lowered program needs is in its text and the weights beside it: x86 prepacks
    at emission, so the loaded program rebuilds its packed weights from the saved int8 storage."""
    lowered = qir.lower(converted, backend)
    program = lowered.qir_program
    text = str(program)
    assert f'qir.backend = "{backend}"' in text and 'qir.stage = "lowered"' in text
    program.save(tmp_path / "lowered.mlir")
    assert (tmp_path / "lowered.safetensors").exists()
    loaded = qir.load(tmp_path / "lowered.mlir")
    assert loaded.text() == text
    for seed in (0, 1):
        x = _x(seed=seed)
        with torch.no_grad():
            assert torch.equal(loaded.to_fx()(x), lowered(x))


@pytest.mark.parametrize("backend", ["x86", "reference", "inductor"])
def test_lowering_twice_gives_byte_identical_ir(converted, backend):
    """Same input, same IR text, locations included: diffs of lowered IR (and FileCheck tests
    written from it) show changes of the compiler, never noise of the run."""
    first = qir.lower(converted, backend).qir_program
    second = qir.lower(converted, backend).qir_program
    assert first.text() == second.text()
    assert first.text(debuginfo=True) == second.text(debuginfo=True)


# -- pipeline stage checks ------------------------------------------------------------------------


class _Spy(QirPass):
    """A pass that only records that it ran."""

    name = "spy"
    ran: list = []

    def apply(self, ctx, op) -> None:
        _Spy.ran.append(True)


def test_lower_without_reference_rewrite_fails_before_running(converted):
    """lower-x86 takes the reference stage: on a quantized program the whole pipeline is refused
    before its first pass runs, naming the pass and the stage."""
    _Spy.ran.clear()
    with pytest.raises(qir.PipelineError, match=r"pass 'lower-x86' needs a program at stage 'reference', "
                                                r"but it would run on stage 'quantized'"):
        qir.PassManager([_Spy(), "lower-x86"]).run(converted.qir_program)
    assert _Spy.ran == []
    with pytest.raises(qir.PipelineError, match=r"pass 'lower-x86' .* stage 'lowered'"):
        qir.PassManager("reference-rewrite{backend=x86},lower-x86,lower-x86").run(converted.qir_program)
    ok = qir.PassManager("reference-rewrite{backend=x86},lower-x86").run(converted.qir_program)
    assert ok.stage == "lowered"


# -- graphs torchao's flow does not take ------------------------------------------------------------


class _MiniResNet(nn.Module):
    """A stem and two of qir.examples' ResNet-18 BasicBlocks (each applies its one `self.relu`
    module twice, as torchvision's do), a pool and a classifier."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.layer = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 16, stride=2))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layer(self.stem(x))), 1))


def test_resnet_block_with_a_reused_relu_lowers_to_x86():
    """torchvision's BasicBlock applies one `self.relu` twice; torchao's PT2E flow matches on
    module partitions and raises on it. qir matches dataflow, so each use fuses where it
    is: into the first conv, and into the residual conv+add kernel."""
    torch.manual_seed(0)
    model = _MiniResNet().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    x, batches = _x(shape=(3, 16, 16)), _batches(shape=(3, 16, 16))
    prepared = qir.prepare(model, (x,), get_backend("x86").quantizer())
    relus = [op for op in prepared.qir_program.module.walk()
             if getattr(op, "target", None) and op.target.data.startswith("relu")
             and op.attributes["module"].data == "layer.0.relu"]
    assert len(relus) == 2  # one module, two calls
    for batch in batches:
        prepared(*batch)
    quantized = qir.convert(prepared)
    lowered, reference = qir.lower(quantized, "x86"), qir.lower(quantized, "reference")
    names = [op.name for op in lowered.qir_program.module.walk()]
    assert names.count("x86.conv2d_add_relu") == 2 and names.count("x86.conv2d_relu") == 3
    with torch.no_grad():
        for seed in (0, 1):
            x = _x(seed=seed, shape=(3, 16, 16))
            expected, ours, emulated = model(x), lowered(x), reference(x)
            assert sqnr(expected, ours) >= 35, f"{sqnr(expected, ours):.1f} dB against float"
            assert sqnr(emulated, ours) >= 60, f"{sqnr(emulated, ours):.1f} dB from the reference"

    if torchao_available():  # the peer's documented flow, on the same model
        with pytest.raises(ValueError, match="more than one output node"):
            torchao_x86(model, (x,), {}, [(b, {}) for b in batches])


def test_dynamic_batch_lowers_to_x86_and_runs_at_two_batch_sizes(model):
    """A batch dimension exported as dynamic stays `?` through lowering; the kernels take any batch,
    including sizes not seen at calibration."""
    batch = torch.export.Dim("batch", min=1, max=64)
    prepared = qir.prepare(model, (_x(),), get_backend("x86").quantizer(), dynamic_shapes={"x": {0: batch}})
    for b in (1, 3, 5):
        prepared(_x(batch=b, seed=b))
    quantized = qir.convert(prepared)
    lowered, reference = qir.lower(quantized, "x86"), qir.lower(quantized, "reference")
    assert "tensor<?x3x8x8xf32>" in lowered.qir_program.text()
    with torch.no_grad():
        for b in (1, 7):
            x = _x(batch=b, seed=20 + b)
            ours, emulated, expected = lowered(x), reference(x), model(x)
            assert ours.shape == (b, 5)
            assert sqnr(emulated, ours) >= 60, f"batch {b}: {sqnr(emulated, ours):.1f} dB from the reference"
            assert sqnr(expected, ours) >= 35, f"batch {b}: {sqnr(expected, ours):.1f} dB against float"


# -- inductor ----------------------------------------------------------------------------------------


def test_inductor_compiles_and_matches_the_q_dq_module(converted):
    """One small model: a compile takes seconds. Inductor's freezing folds the weights'
    dequantization; the compiled module computes what the Q/DQ module does."""
    lowered = qir.lower(converted, "inductor")
    assert lowered.qir_program.module.attributes["qir.backend"].data == "inductor"
    x = _x(seed=9)
    with torch.no_grad():
        expected, actual = converted(x), lowered(x)
    assert lowered.compiled._compiled is not None  # it ran compiled
    assert actual.shape == expected.shape
    assert float((actual - expected).abs().max()) <= 1e-4 * float(expected.abs().max())


class _FeedForward(nn.Module):
    """A transformer's feed-forward block: linear -> gelu -> linear, and a linear -> relu head,
    all read in float under the X86 recipe."""

    def __init__(self, approximate: str):
        super().__init__()
        self.up, self.down, self.head = nn.Linear(16, 48), nn.Linear(48, 16), nn.Linear(16, 8)
        self.approximate = approximate

    def forward(self, x):
        y = self.down(torch.nn.functional.gelu(self.up(x), approximate=self.approximate))
        return torch.relu(self.head(y + x))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_x86_float_linears_fuse_their_gelu_and_relu_and_match_the_reference(approximate):
    """Float-output linears run as oneDNN kernels with the gelu / relu after them fused, reading
    the storage of their quantized input; the result is the reference emulation's up to float
    rounding (the int32 accumulation is exact), except where a float value quantized on the way
    (the head's input) lands one step apart (torch rounds `x * (1 / scale)` in float32, the
    reference `x / scale` exactly)."""
    torch.manual_seed(0)
    model = _FeedForward(approximate).eval()
    x = torch.randn(2, 6, 16, generator=torch.Generator().manual_seed(1))
    prepared = qir.prepare(model, (x,), get_backend("x86").quantizer())
    for i in range(4):
        prepared(torch.randn(2, 6, 16, generator=torch.Generator().manual_seed(20 + i)))
    converted = qir.convert(prepared)
    lowered, reference = qir.lower(converted, "x86"), qir.lower(converted, "reference")
    calls = [n for n in lowered.graph.nodes if n.target is torch.ops.onednn.qlinear_pointwise.default]
    assert sorted(n.args[10] for n in calls) == ["gelu", "relu"]
    (gelu,) = [n for n in calls if n.args[10] == "gelu"]
    assert gelu.args[12] == approximate
    assert gelu.args[9] is None  # uint8 out: `down` reads it quantized, and nothing else reads it
    (add,) = [n for n in lowered.graph.nodes if n.target is torch.ops.onednn.qlinear_pointwise.binary]
    assert add.args[13] == "add"  # into the caller's `x`: never in place
    x_before = x.clone()
    assert not [n for n in lowered.graph.nodes if n.target in (torch.ops.aten.gelu.default, torch.ops.aten.relu.default)]
    with torch.no_grad():
        expected, got = reference(x), lowered(x)
    assert torch.equal(x, x_before)
    off = (got - expected).abs() > 1e-4 * float(expected.abs().max())
    assert float(off.double().mean()) < 0.1
    assert float((got - expected).abs().max()) < 0.01 * float(expected.abs().max())
    assert sqnr(model(x), got) > 25


class _Residuals(nn.Module):
    """Float linears plus residuals, each addend a different case for an in-place sum."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c, self.d = (nn.Linear(16, 16) for _ in range(4))
        self.ln = nn.LayerNorm(16)

    def forward(self, x):
        h = self.ln(x)
        h = self.ln(self.a(h) + h)  # `h` is fresh and the add its last reader: summed in place
        y = self.b(h) + x           # the caller's input: added
        z = self.c(y) + y           # `y` is returned too: added
        e = self.ln(z)
        view = e.view(2, 6, 16)     # a view of `e`, read after the add: added
        w = self.d(e) + e
        return w, z, y, view * 2


def test_x86_residual_adds_fuse_into_float_linears_and_sum_in_place_only_into_dead_tensors():
    """A float linear's residual add is oneDNN's binary post op. It sums into the addend's buffer
    only when the module made that tensor, nothing reads it afterwards and no view of it is
    live; every other addend is left as it was. Numerics against the reference emulation."""
    torch.manual_seed(0)
    model = _Residuals().eval()
    x = torch.randn(2, 6, 16, generator=torch.Generator().manual_seed(1))
    prepared = qir.prepare(model, (x,), get_backend("x86").quantizer())
    for i in range(4):
        prepared(torch.randn(2, 6, 16, generator=torch.Generator().manual_seed(30 + i)))
    converted = qir.convert(prepared)
    lowered, reference = qir.lower(converted, "x86"), qir.lower(converted, "reference")
    adds = [n.args[13] for n in lowered.graph.nodes if n.target is torch.ops.onednn.qlinear_pointwise.binary]
    assert adds == ["sum", "add", "add", "add"]
    assert not [n for n in lowered.graph.nodes if n.target is torch.ops.aten.add.Tensor]
    x_before = x.clone()
    with torch.no_grad():
        expected, first, again = reference(x), lowered(x), lowered(x)
        floats = model(x)
    assert torch.equal(x, x_before)
    for e, g, h, f in zip(expected, first, again, floats):
        assert torch.equal(g, h)
        assert sqnr(e, g) > 40, sqnr(e, g)
        assert sqnr(f, g) > 25, sqnr(f, g)


class _Attention(nn.Module):
    """BERT's eager self-attention: per-head q @ k^T scaled, an additive mask, softmax, @ v."""

    def __init__(self, dim: int = 32, heads: int = 4):
        super().__init__()
        self.q, self.k, self.v, self.out = (nn.Linear(dim, dim) for _ in range(4))
        self.heads = heads

    def forward(self, x, mask):
        b, n, d = x.shape

        def split(y):
            return y.view(b, n, self.heads, d // self.heads).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) * (d // self.heads) ** -0.5 + mask
        context = torch.matmul(torch.softmax(scores, dim=-1), v)
        return self.out(context.transpose(1, 2).reshape(b, n, d))


@pytest.mark.parametrize("backend", ["x86", "onednn", "qnnpack"])
def test_float_attention_runs_as_one_fused_call_and_matches_the_reference(backend):
    """The reference backend keeps the eager chain: the fused kernel must compute the same up to
    float rounding (and a quantized value on the way landing one step apart, see above)."""
    torch.manual_seed(0)
    model = _Attention().eval()
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(2, 6, 32, generator=generator)
    mask = torch.zeros(2, 1, 1, 6)
    mask[1, ..., 4:] = torch.finfo(torch.float32).min  # padding of the second sequence
    prepared = qir.prepare(model, (x, mask), get_backend(backend).quantizer())
    for _ in range(4):
        prepared(torch.randn(2, 6, 32, generator=generator), mask)
    converted = qir.convert(prepared)
    lowered, reference = qir.lower(converted, backend), qir.lower(converted, "reference")
    fused = [n for n in lowered.graph.nodes if n.target is torch.ops.qir.attention.default]
    assert len(fused) == 1
    assert not [n for n in lowered.graph.nodes if n.target in (torch.ops.aten.softmax.int, torch.ops.aten._softmax.default)]
    with torch.no_grad():
        expected, got = reference(x, mask), lowered(x, mask)
        assert sqnr(model(x, mask), got) > 25
    assert sqnr(expected, got) > 40, sqnr(expected, got)


class _SiluNet(nn.Module):
    """YOLO-style conv + silu blocks (the X86 recipe leaves each conv's result float for the silu),
    a conv1d read in float, and a conv + gelu whose gelu oneDNN does not fuse."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.c = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, 2, 1), nn.Conv2d(8, 4, 1)
        self.t = nn.Conv1d(4, 4, 3)

    def forward(self, x):
        y = torch.nn.functional.gelu(self.c(torch.nn.functional.silu(self.b(torch.nn.functional.silu(self.a(x))))))
        return self.t(y.flatten(2))


def test_x86_float_convs_run_as_onednn_kernels_and_match_the_reference():
    """A conv + silu read by the next conv leaves that conv's uint8 input itself (one rounding,
    no float tensor between them); the last conv, read by a float gelu, leaves float."""
    torch.manual_seed(0)
    model = _SiluNet().eval()
    x = _x(shape=(3, 12, 12))
    prepared = qir.prepare(model, (x,), get_backend("x86").quantizer())
    for batch in _batches(shape=(3, 12, 12)):
        prepared(*batch)
    converted = qir.convert(prepared)
    lowered, reference = qir.lower(converted, "x86"), qir.lower(converted, "reference")
    targets = [n.target for n in lowered.graph.nodes if n.op == "call_function"]
    assert targets.count(torch.ops.onednn.qconv2d_pointwise.default) == 3
    assert targets.count(torch.ops.onednn.qconv1d_pointwise.default) == 1
    convs = [n for n in lowered.graph.nodes if n.target is torch.ops.onednn.qconv2d_pointwise.default]
    assert [n.args[13] for n in convs] == [None, None, torch.float32]  # a, b leave the next conv's uint8 input
    assert torch.ops.aten.silu.default not in targets
    assert not {torch.ops.aten.conv2d.default, torch.ops.aten.conv1d.default} & set(targets)
    with torch.no_grad():
        expected, got = reference(x), lowered(x)
        assert sqnr(model(x), got) > 25
    assert sqnr(expected, got) > 40, sqnr(expected, got)


def test_residual_summed_in_place_runs_with_autograd_on():
    """x86 adds a linear into its residual's buffer (oneDNN's in-place sum); a module called
    without `torch.no_grad()` has residuals computed from trainable float parameters (a layer
    norm's), which autograd tracks and an in-place write refuses: the kernel is given the buffer
    detached (the int8 sum has no gradient), and computes the same as under no_grad."""
    torch.manual_seed(0)
    model = torch.nn.TransformerEncoderLayer(16, 2, 32, batch_first=True, dropout=0.0).eval()
    x = torch.randn(2, 5, 16)
    lowered = qir.quantize(model, (x,), calibration=[(torch.randn(2, 5, 16),) for _ in range(4)], backend="x86")
    assert "x86.linear_add_fp32" in {op.name for op in lowered.qir_program.module.walk()}
    got = lowered(x)
    with torch.no_grad():
        assert torch.equal(got, lowered(x))
        assert sqnr(model(x), got) > 30


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape, mask", [((2, 4, 8, 16), "float"), ((16, 12, 32, 32), "float"),
                                         ((4, 8, 160, 32), "float"), ((2, 4, 8, 16), None),
                                         ((2, 4, 8, 16), "bool")])
def test_qir_attention_is_float_attention_on_either_path(threads, shape, mask, monkeypatch):
    """`qir::attention` gives float attention (against float64) whichever path it takes, and
    takes torch's fused kernel exactly when `qir.torch_ops` says: one thread, scores above
    `EAGER_SCORES_BYTES` (the third shape: 3.3 MB), or a boolean mask; its gradients are the
    fused kernel's."""
    import torch.nn.functional as F

    from qir.torch_ops import EAGER_SCORES_BYTES

    fused_calls = []
    sdpa = F.scaled_dot_product_attention
    monkeypatch.setattr(F, "scaled_dot_product_attention", lambda *a, **k: fused_calls.append(1) or sdpa(*a, **k))
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        g = torch.Generator().manual_seed(0)
        b, h, s, d = shape
        q, k, v = (torch.randn(b, h, s, d, generator=g, requires_grad=True) for _ in range(3))
        m = None
        if mask == "float":
            m = torch.zeros(b, 1, 1, s)
            m[..., s * 3 // 4:] = torch.finfo(torch.float32).min
        elif mask == "bool":
            m = torch.ones(b, 1, 1, s, dtype=torch.bool)
            m[..., s * 3 // 4:] = False
        got = torch.ops.qir.attention(q, k, v, m, d ** -0.5)
        scores = q.double() @ k.double().transpose(-2, -1) * d ** -0.5
        if m is not None:
            scores = scores + m.double() if m.is_floating_point() else scores.masked_fill(~m, float("-inf"))
        expected = torch.softmax(scores, -1) @ v.double()
        assert (got.double() - expected).abs().max() < 1e-5
        fused = threads == 1 or b * h * s * s * 4 > EAGER_SCORES_BYTES or mask == "bool"
        assert len(fused_calls) == int(fused)
        grads = torch.autograd.grad(got.sum(), (q, k, v))
        want = torch.autograd.grad(sdpa(q, k, v, m, 0.0, False, scale=d ** -0.5).sum(), (q, k, v))
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(grads, want))
    finally:
        torch.set_num_threads(previous)

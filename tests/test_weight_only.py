"""Weight-only quantization (issue 13): float16, int8 per channel and int4 group-wise weights,
embedding tables per row; activations stay float.

Numerics are checked against independent references (the float model, torch's own
`quantized_decomposed` ops, exact float64 arithmetic on the integer storage), never against
wall-clock time, and on both kinds of CPU (the kernels' test also runs as an AVX2 host).
"""

from __future__ import annotations

import array

import pytest
import torch
from xdsl.parser import Parser
from xdsl.utils.exceptions import VerifyException

from qir.context import make_context
from qir.dialects.quant import UniformQuantizedSubChannelType


# --------------------------------------------------------------------------
# The sub-channel type
# --------------------------------------------------------------------------


def _parse_type(text: str):
    return Parser(make_context(), text).parse_attribute()


def test_subchannel_type_prints_mlir_syntax_and_round_trips():
    t = UniformQuantizedSubChannelType.get("u4", [0.02, 0.03, 0.01, 0.04], [8, 7, 8, 0], [2, 2], {0: 1, 1: 32})
    text = "!quant.uniform<u4:f32:{0:1, 1:32}, {{2.000000e-02:8, 3.000000e-02:7}, {1.000000e-02:8, 4.000000e-02}}>"
    assert str(t) == text
    assert _parse_type(text) == t
    assert t.scale_table_shape == (2, 2) and t.block_sizes == {0: 1, 1: 32}
    assert t.scales == (0.02, 0.03, 0.01, 0.04) and t.zero_points == (8, 7, 8, 0)
    assert t.block_shape((2, 64)) == (1, 32)
    assert t.container_dtype_name == "uint8" and t.storage_dtype_name == "uint4"


def test_subchannel_type_from_bytes_is_the_same_type():
    scales = torch.tensor([[0.5, 0.25], [1.0, 2.0]], dtype=torch.float64)
    zeros = torch.tensor([[0, -1], [3, -8]], dtype=torch.int64)
    a = UniformQuantizedSubChannelType.get("i4", scales.numpy().tobytes(), zeros.numpy().tobytes(), [2, 2], {0: 1, 1: 16})
    b = UniformQuantizedSubChannelType.get("i4", scales.flatten().tolist(), zeros.flatten().tolist(), [2, 2], {0: 1, 1: 16})
    assert a == b and hash(a) == hash(b)
    assert list(array.array("d", a.scales_bytes)) == scales.flatten().tolist()


def test_subchannel_scale_keeps_every_digit():
    scale = 0.1 + 2 ** -40
    t = UniformQuantizedSubChannelType.get("u4", [scale], [3], [1, 1], {0: 1, 1: 8})
    assert _parse_type(str(t)).scales == (scale,)


@pytest.mark.parametrize(("scales", "zeros", "message"), [
    ([float("nan")], [0], "positive and finite"),
    ([0.0], [0], "positive and finite"),
    ([0.1], [16], "outside the storage range"),
])
def test_subchannel_type_verifies_its_table(scales, zeros, message):
    with pytest.raises(VerifyException, match=message):
        UniformQuantizedSubChannelType.get("u4", scales, zeros, [1, 1], {0: 1, 1: 8})


# --------------------------------------------------------------------------
# Quantizer, convert, reference: numerics against independent references
# --------------------------------------------------------------------------

import qir  # noqa: E402
from qir.quantizer import ComposableQuantizer, WeightOnlyQuantizer, X86Quantizer  # noqa: E402


class TinyLM(torch.nn.Module):
    """An embedding, two linears (one without bias) and a product of activations."""

    def __init__(self, vocab: int = 40, width: int = 64, hidden: int = 96):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, width)
        self.up = torch.nn.Linear(width, hidden)
        self.down = torch.nn.Linear(hidden, width, bias=False)
        self.head = torch.nn.Linear(width, vocab, bias=False)

    def forward(self, ids):
        h = self.embed(ids)
        h = h + self.down(torch.nn.functional.silu(self.up(h)))
        return self.head(h)


def _model_and_inputs(seed: int = 0):
    torch.manual_seed(seed)
    model = TinyLM().eval()
    return model, (torch.randint(0, 40, (2, 7)),)


def _stored(program, name: str) -> tuple[torch.Tensor, object]:
    """The integer storage of the quantized parameter named `name` and its element type."""
    from qir.dialects.aten import ParamOp

    op = next(o for o in program.module.walk() if isinstance(o, ParamOp) and o.param_name == name)
    return program.tensor(op), op.result.type.element_type


def test_int8_weights_are_torch_ao_per_channel_symmetric():
    model, inputs = _model_and_inputs()
    converted = qir.convert(qir.prepare(model, inputs, WeightOnlyQuantizer(bits=8)))
    storage, qtype = _stored(converted.qir_program, "up.weight_q")
    observer = torch.ao.quantization.PerChannelMinMaxObserver(ch_axis=0, dtype=torch.qint8,
                                                              qscheme=torch.per_channel_symmetric)
    observer(model.up.weight)
    scales, zero_points = observer.calculate_qparams()
    expected = torch.quantize_per_channel(model.up.weight.detach(), scales, zero_points, 0, torch.qint8)
    assert torch.equal(storage, expected.int_repr())
    assert list(qtype.scales) == scales.tolist() and not any(qtype.zero_points)


@pytest.mark.parametrize("symmetric", [False, True])
def test_int4_group_weights_are_torchaos_affine_quantization(symmetric):
    quant_primitives = pytest.importorskip("torchao.quantization.quant_primitives")
    model, inputs = _model_and_inputs()
    converted = qir.convert(qir.prepare(model, inputs, WeightOnlyQuantizer(bits=4, group_size=32,
                                                                           symmetric=symmetric)))
    storage, qtype = _stored(converted.qir_program, "up.weight_q")
    assert str(qtype).startswith(f"!quant.uniform<{'i4' if symmetric else 'u4'}:f32:{{0:1, 1:32}}, {{")
    weight = model.up.weight.detach()
    mapping = quant_primitives.MappingType.SYMMETRIC if symmetric else quant_primitives.MappingType.ASYMMETRIC
    qmin, qmax = (-8, 7) if symmetric else (0, 15)
    scale, zero_point = quant_primitives.choose_qparams_affine(
        weight, mapping, (1, 32), torch.int8 if symmetric else torch.uint8, qmin, qmax,
        eps=torch.finfo(torch.float32).eps, scale_dtype=torch.float32, zero_point_dtype=torch.int64)
    expected = quant_primitives.quantize_affine(weight, (1, 32), scale, zero_point,
                                                torch.int8 if symmetric else torch.uint8, qmin, qmax)
    from qir.blockwise import table

    scales, zero_points = table(qtype)
    assert torch.equal(scales, scale.reshape(scales.shape)) and torch.equal(zero_points, zero_point.reshape(zero_points.shape))
    assert torch.equal(storage, expected)


def _dequantized_reference(model, program, inputs):
    """The model run in float64 with each weight replaced by what its storage stands for,
    computed here from the storage and the type's parameters."""
    import copy

    from qir.dialects.aten import ParamOp

    reference = copy.deepcopy(model).double()
    for op in program.module.walk():
        if isinstance(op, ParamOp) and op.param_name.endswith(("_q", "_f16")):
            name = op.param_name.rsplit("_", 1)[0]
            storage, element = program.tensor(op), op.result.type.element_type
            if hasattr(element, "scales_bytes"):
                scales, zero_points = (torch.frombuffer(bytearray(b), dtype=d).reshape(element.scale_table_shape)
                                       for b, d in ((element.scales_bytes, torch.float64),
                                                    (element.zero_points_bytes, torch.int64)))
                group = storage.shape[1] // scales.shape[1]
                value = ((storage.double().reshape(storage.shape[0], -1, group) - zero_points[..., None])
                         * scales.float().double()[..., None]).reshape(storage.shape)
            elif hasattr(element, "scales"):
                value = ((storage.double() - torch.tensor(element.zero_points, dtype=torch.float64)[:, None])
                         * torch.tensor(element.scales, dtype=torch.float32).double()[:, None])
            else:
                value = storage.double()
            reference.get_parameter(name).data = value
    return reference(*inputs)


@pytest.mark.parametrize("quantizer", [WeightOnlyQuantizer(bits=8), WeightOnlyQuantizer(bits=4, group_size=32),
                                       WeightOnlyQuantizer(bits=4, group_size=64, symmetric=True),
                                       WeightOnlyQuantizer.float16()],
                         ids=["int8", "int4-g32", "int4-g64-sym", "fp16"])
def test_weight_only_program_computes_its_dequantized_weights(quantizer):
    model, inputs = _model_and_inputs()
    converted = qir.convert(qir.prepare(model, inputs, quantizer))
    expected = _dequantized_reference(model, converted.qir_program, inputs)
    got = converted(*inputs)
    assert torch.allclose(got.double(), expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())
    reference = qir.lower(converted, "reference")
    assert torch.equal(reference(*inputs), got)  # the reference is the Q/DQ arithmetic, exactly
    assert {op.name for op in reference.qir_program.module.walk()} >= {"ref.weight_only_linear",
                                                                        "ref.weight_only_embedding"}
    cosine = torch.nn.functional.cosine_similarity(got.flatten(), model(*inputs).flatten(), 0)
    assert cosine > (0.999 if "int4" not in quantizer.description else 0.99)


def test_float16_weights_are_the_rounded_weights():
    model, inputs = _model_and_inputs()
    converted = qir.convert(qir.prepare(model, inputs, WeightOnlyQuantizer.float16()))
    storage, element = _stored(converted.qir_program, "up.weight_f16")
    assert storage.dtype == torch.float16 and torch.equal(storage, model.up.weight.detach().half())


def test_weight_only_program_saves_and_loads(tmp_path):
    model, inputs = _model_and_inputs()
    converted = qir.convert(qir.prepare(model, inputs, WeightOnlyQuantizer(bits=4, group_size=32)))
    lowered = qir.lower(converted, "reference")
    for module in (converted, lowered):
        path = tmp_path / f"{module.qir_program.stage}.mlir"
        module.qir_program.save(path)
        reloaded = qir.load(path)
        assert reloaded.text() == module.qir_program.text()
        assert torch.equal(reloaded.to_fx()(*inputs), module(*inputs))


def test_weight_only_composes_with_static_quantization_and_module_names():
    model, inputs = _model_and_inputs()
    static = X86Quantizer().set_module_name("head", None).set_module_name("embed", None).set_module_name("down", None)
    quantizer = ComposableQuantizer([static, WeightOnlyQuantizer(bits=8).set_module_name("down", None)])
    prepared = qir.prepare(model, inputs, quantizer)
    prepared(*inputs)  # calibrates the static part
    converted = qir.convert(prepared)
    reference = qir.lower(converted, "reference").qir_program
    by_module = {op.attributes["module"].data: op.name for op in reference.module.walk() if "module" in op.attributes
                 and op.name.startswith("ref.")}
    assert by_module["up"] == "ref.linear"  # static int8 (X86)
    assert by_module["head"] == "ref.weight_only_linear" and by_module["embed"] == "ref.weight_only_embedding"
    assert "down" not in by_module  # left in float by both quantizers' configurations


# --------------------------------------------------------------------------
# The kernels (qir.lowering.weight_only_kernels) and the x86 lowering
# --------------------------------------------------------------------------

import subprocess  # noqa: E402
import sys  # noqa: E402

from helpers import avx2_env, x86_with_avx2  # noqa: E402
from qir.lowering.weight_only_kernels import kernels  # noqa: E402


def _random_weight(n: int, k: int, bits: int, signed: bool, group: int | None, generator):
    lo, hi = (-(1 << bits - 1), (1 << bits - 1) - 1) if signed else (0, (1 << bits) - 1)
    groups = 1 if group is None else k // group
    storage = torch.randint(lo, hi + 1, (n, k), generator=generator).to(torch.int8 if signed else torch.uint8)
    scales = torch.rand(n, groups, generator=generator) * 0.1 + 0.01
    zero_points = torch.randint(lo, hi + 1, (n, groups), generator=generator)
    size = k if group is None else group
    dequantized = ((storage.double().reshape(n, groups, size) - zero_points.double()[..., None])
                   * scales.double()[..., None]).reshape(n, k)
    return storage, scales, zero_points, dequantized


# (out, in, bits, signed, group): int32 lanes of 4 and 8 values, and sizes they do not divide (one per byte)
KERNEL_CASES = [(48, 64, 8, True, None), (48, 64, 8, False, None), (48, 64, 4, False, 32), (48, 64, 4, True, 16),
                (48, 64, 8, False, 32), (48, 64, 4, False, None), (30, 64, 4, False, 32), (24, 30, 8, True, None)]


@pytest.mark.parametrize("case", KERNEL_CASES, ids=lambda c: "x".join(map(str, c)))
def test_packed_weight_dequantizes_exactly(case):
    n, k, bits, signed, group = case
    storage, scales, zero_points, expected = _random_weight(n, k, bits, signed, group, torch.Generator().manual_seed(0))
    packed = kernels.pack(storage, scales, zero_points, bits, signed, group)
    # float32 (q - zp) * s, as the reference computes it: exactly the float64 product rounded once
    assert torch.equal(kernels.dequantize(packed), expected.float())


@pytest.mark.parametrize("rows", [1, 12])  # a generated kernel (at most GEMV_ROWS rows), the float matmul
@pytest.mark.parametrize("case", KERNEL_CASES, ids=lambda c: "x".join(map(str, c)))
def test_generated_linear_computes_the_dequantized_matmul(case, rows):
    n, k, bits, signed, group = case
    generator = torch.Generator().manual_seed(1)
    storage, scales, zero_points, weight = _random_weight(n, k, bits, signed, group, generator)
    packed = kernels.pack(storage, scales, zero_points, bits, signed, group)
    x, bias = torch.randn(rows, k, generator=generator), torch.randn(n, generator=generator)
    expected = x.double() @ weight.t() + bias.double()
    got = kernels.linear(x, packed, bias)
    # float32 sums in another order than float64's: a few units of float32 rounding of the largest value
    assert (got.double() - expected).abs().max() <= 1e-5 * expected.abs().max()
    assert torch.equal(kernels.linear(x[None], packed, bias)[0], got)  # any leading dimensions


def test_generated_linear_takes_strided_rows_after_contiguous_ones():
    """A kernel is compiled for the first call's rows; a later input of the same shape that is a
    strided view (ViT reads its class token as `hidden[:, 0]`: rows 17 x 64 floats apart) ran the
    contiguous kernel and failed its stride check, and the other way round."""
    n, k, bits, signed, group = KERNEL_CASES[2]
    generator = torch.Generator().manual_seed(3)
    storage, scales, zero_points, weight = _random_weight(n, k, bits, signed, group, generator)
    packed = kernels.pack(storage, scales, zero_points, bits, signed, group)
    tokens = torch.randn(2, 17, k, generator=generator)
    first = tokens[:, 0]  # stride (17 * k, 1)
    for x in (first.contiguous(), first, tokens.transpose(0, 1)[0]):
        assert torch.equal(kernels.linear(x, packed), kernels.linear(first.clone(), packed))


def test_embedding_lookup_is_the_reference_exactly():
    generator = torch.Generator().manual_seed(2)
    for bits, signed in ((8, False), (8, True), (4, False), (4, True)):
        storage, scales, zero_points, _ = _random_weight(40, 16, bits, signed, None, generator)
        table = kernels.pack_table(storage, scales.reshape(-1), zero_points.reshape(-1), bits, signed)
        ids = torch.randint(0, 40, (3, 5), generator=generator)
        expected = (storage.float() - zero_points.float()) * scales  # float32, as ref.weight_only_embedding
        assert torch.equal(kernels.embedding(ids, table), torch.nn.functional.embedding(ids, expected))
        if bits == 4:
            assert table.data.shape == (40, 8)  # two values per byte


_SCHEMES = {"int8": dict(bits=8), "int4-g32": dict(bits=4, group_size=32),
            "int4-g16-sym-emb4": dict(bits=4, group_size=16, symmetric=True, embedding_bits=4),
            "fp16": dict(dtype=torch.float16)}


@pytest.mark.parametrize("scheme", list(_SCHEMES))
def test_x86_lowering_computes_the_reference(scheme):
    model, _ = _model_and_inputs()
    token = (torch.randint(0, 40, (1, 1)),)
    free = {"ids": {0: torch.export.Dim("batch", max=8), 1: torch.export.Dim("tokens", max=32)}}
    converted = qir.convert(qir.prepare(model, (torch.randint(0, 40, (2, 3)),), WeightOnlyQuantizer(**_SCHEMES[scheme]),
                                        dynamic_shapes=free))
    reference, lowered = qir.lower(converted, "reference"), qir.lower(converted, "x86")
    kernels_used = {op.name for op in lowered.qir_program.module.walk() if op.name.startswith("x86.")}
    assert "x86.embedding_lookup" in kernels_used
    assert ("x86.linear_fp16" if scheme == "fp16" else "x86.weight_only_linear") in kernels_used
    assert not any(op.name.startswith(("ref.", "quant.")) for op in lowered.qir_program.module.walk())
    for ids in (token[0], torch.randint(0, 40, (2, 9))):  # 1 row (the generated kernels), 18 rows (float matmul)
        expected, got = reference(ids), lowered(ids)
        assert (got - expected).abs().max() <= 1e-5 * expected.abs().max(), scheme


@pytest.mark.parametrize("backend", ["onednn", "qnnpack"])
@pytest.mark.parametrize("scheme", list(_SCHEMES) + ["int4-per-channel"])
def test_other_backends_keep_the_qdq_form_and_compute_the_reference(backend, scheme):
    """onednn and qnnpack have no weight-only kernels: linears and tables stay in the Q/DQ form
    (the weight dequantized exactly, then float arithmetic: what `ref.weight_only_linear` and
    `ref.weight_only_embedding` define), never an error, whatever the weight's type (a group-wise
    int4 weight has no torch quantized tensor: it stays a `quant.dcast` of its storage)."""
    model, _ = _model_and_inputs()
    config = _SCHEMES.get(scheme, dict(bits=4, group_size=None, embedding_bits=4))
    free = {"ids": {0: torch.export.Dim("batch", max=8), 1: torch.export.Dim("tokens", max=32)}}
    converted = qir.convert(qir.prepare(model, (torch.randint(0, 40, (2, 3)),), WeightOnlyQuantizer(**config),
                                        dynamic_shapes=free))
    reference, lowered = qir.lower(converted, "reference"), qir.lower(converted, backend)
    assert not any(op.name.startswith("ref.") for op in lowered.qir_program.module.walk())
    for ids in (torch.randint(0, 40, (1, 1)), torch.randint(0, 40, (2, 9))):
        expected, got = reference(ids), lowered(ids)
        assert (got - expected).abs().max() <= 1e-6 * expected.abs().max(), (backend, scheme)


def test_lowered_weight_only_program_reloads_and_pickles(tmp_path):
    import pickle

    model, _ = _model_and_inputs()
    token = (torch.randint(0, 40, (1, 1)),)
    lowered = qir.quantize(model, token, quantizer=WeightOnlyQuantizer(bits=4, group_size=32), backend="x86")
    path = tmp_path / "lowered.mlir"
    lowered.qir_program.save(path)
    assert torch.equal(qir.load(path).to_fx()(*token), lowered(*token))
    assert torch.equal(pickle.loads(pickle.dumps(lowered))(*token), lowered(*token))


@pytest.mark.slow
@pytest.mark.skipif(not x86_with_avx2(), reason="needs an x86 CPU with AVX2")
def test_generated_kernels_and_x86_lowering_on_an_avx2_cpu():
    """The same checks with torch (and inductor's generated code) limited to AVX2, as on the
    suite's AVX2-only machines."""
    env = avx2_env()
    run = subprocess.run([sys.executable, "-m", "pytest", __file__, "-q", "-p", "no:cacheprovider", "-x",
                          "-k", "generated_linear or x86_lowering_computes or embedding_lookup"],
                         capture_output=True, text=True, env=env, timeout=1500)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "passed" in run.stdout


def test_weight_bytes_counts_four_bit_values_as_half_bytes():
    from qir.blockwise import weight_bytes

    model, inputs = _model_and_inputs()
    float_program = qir.prepare(model, inputs, WeightOnlyQuantizer(bits=8)).qir_program
    floats = sum(p.numel() * 4 for p in model.parameters())
    converted = qir.convert(qir.prepare(model, inputs, WeightOnlyQuantizer(bits=4, group_size=32, embedding_bits=4)))
    int4 = weight_bytes(converted.qir_program)
    # values at 4 bits; per group of 32 (per row of the table) a float32 scale and a 4-bit zero point
    linears = (96 * 64 + 64 * 96 + 40 * 64)
    expected = linears // 2 + linears // 32 * 4.5 + 40 * 64 // 2 + 40 * 4.5 + 96 * 4  # + the float bias
    assert int4 == int(expected) and floats / int4 > 5
    assert weight_bytes(float_program) == floats


def test_a_kernel_inductor_cannot_compile_is_tried_once_and_warned_about_once():
    """`qir.lowering.inductor_kernels.compiled`: a build that fails gives None (its caller runs
    the eager arithmetic) with one warning, and is not tried again; one that works is built once."""
    import warnings

    from qir.lowering.inductor_kernels import compiled

    builds = []

    def failing():
        builds.append("failing")
        raise RuntimeError("no C++ compiler\nmore")

    with pytest.warns(RuntimeWarning, match="could not compile it \\(RuntimeError: no C\\+\\+ compiler\\)"):
        assert compiled(("test", "failing"), failing, "a test kernel") is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert compiled(("test", "failing"), failing, "a test kernel") is None
        kernel = compiled(("test", "working"), lambda: builds.append("working") or abs, "a test kernel")
        assert kernel is abs and compiled(("test", "working"), lambda: None, "a test kernel") is abs
    assert builds == ["failing", "working"]

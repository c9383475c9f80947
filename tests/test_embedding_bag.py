"""Weight-only embedding bags (`nn.EmbeddingBag`, issue 13's per-row tables): the table stored
uint8 (or 4-bit) per row, the bags summed, averaged or maximized over the dequantized rows.

References: the float model, torch.ao's per-row affine observer for the stored table, and ATen's
own `embedding_bag` over the table dequantized independently from the stored integers. Nothing
here depends on the CPU's int8 features (a gather, a dequantization and ATen's float bags)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import qir
from qir.dialects.aten import ParamOp
from qir.lowering.weight_only_kernels import kernels
from qir.quantizer import WeightOnlyQuantizer


def _sqnr(expected: torch.Tensor, got: torch.Tensor) -> float:
    return (10 * torch.log10(expected.pow(2).mean() / (expected - got).pow(2).mean())).item()


# --------------------------------------------------------------------------
# The kernel: the rows gathered and dequantized, then bagged, as over the whole table
# --------------------------------------------------------------------------


def _close(got: torch.Tensor, expected: torch.Tensor) -> bool:
    """Equal up to float32 rounding (the bags' float operations are left to the kernels)."""
    return got.dtype == torch.float32 and bool((got.double() - expected).abs().max() <= 1e-5 * expected.abs().max())


@pytest.mark.parametrize(("bits", "signed"), [(8, False), (8, True), (4, False), (4, True)])
@pytest.mark.parametrize("mode", [0, 1, 2])
@pytest.mark.parametrize("index_dtype", [torch.int64, torch.int32])
def test_bags_of_gathered_rows_are_the_bags_of_the_dequantized_table(bits, signed, mode, index_dtype):
    generator = torch.Generator().manual_seed(bits + mode)
    lo, hi = (-(1 << bits - 1), (1 << bits - 1) - 1) if signed else (0, (1 << bits) - 1)
    storage = torch.randint(lo, hi + 1, (30, 12), generator=generator).to(torch.int8 if signed else torch.uint8)
    scales = torch.rand(30, generator=generator) * 0.1 + 0.01
    zero_points = torch.randint(lo, hi + 1, (30,), generator=generator)
    table = kernels.pack_table(storage, scales, zero_points, bits, signed)
    dequantized = (storage.double() - zero_points.double()[:, None]) * scales.double()[:, None]  # exact
    indices = torch.randint(0, 30, (17,), generator=generator).to(index_dtype)
    indices[[2, 9]] = 7
    indices[11:14] = 7  # a bag of padding only
    for offsets in ([0, 3, 3, 11, 14], [0, 5, 11, 17]):  # an empty bag; the last offset ending the last bag
        offsets = torch.tensor(offsets, dtype=index_dtype)
        last = offsets[-1].item() == indices.numel()
        weights = torch.rand(17, generator=generator) if mode == 0 else None
        for padding_idx in (None, 7):
            expected = F.embedding_bag(indices, dequantized, offsets, mode=("sum", "mean", "max")[mode],
                                       per_sample_weights=None if weights is None else weights.double(),
                                       include_last_offset=last, padding_idx=padding_idx)
            got = kernels.embedding_bag(indices, offsets, weights, table, mode, last, padding_idx)
            assert _close(got, expected), (offsets.tolist(), padding_idx)
            if bits == 8 and mode < 2:
                packed = kernels.pack_rows_for_fbgemm(storage, scales, zero_points, signed)
                got = kernels.embedding_bag_rowwise(indices, offsets, weights, packed, mode, last, padding_idx)
                assert _close(got, expected), ("rowwise", offsets.tolist(), padding_idx)


# --------------------------------------------------------------------------
# Through the flow: quantizer, convert, reference and x86
# --------------------------------------------------------------------------


class Bags(torch.nn.Module):
    """The forms `nn.EmbeddingBag` takes: 1-D indices with offsets (a mean, with a padding row),
    2-D indices (fixed-size bags: a max), per-sample weights (a sum), and a linear after them."""

    def __init__(self):
        super().__init__()
        self.mean = torch.nn.EmbeddingBag(60, 32, mode="mean", padding_idx=0)
        self.max = torch.nn.EmbeddingBag(60, 32, mode="max")
        self.sum = torch.nn.EmbeddingBag(60, 32, mode="sum", include_last_offset=True)
        self.head = torch.nn.Linear(96, 8)

    def forward(self, ids, offsets, grid, weights):
        bags = (self.mean(ids, offsets), self.max(grid), self.sum(ids, torch.cat([offsets, offsets.new_tensor([ids.numel()])]),
                                                                   per_sample_weights=weights))
        return (*bags, self.head(torch.cat(bags, -1)))


def _bags_and_inputs():
    torch.manual_seed(0)
    ids = torch.randint(0, 60, (20,))
    ids[:3] = 0  # padding entries: neither summed nor counted by the mean
    return Bags().eval(), (ids, torch.tensor([0, 4, 4, 11]), torch.randint(0, 60, (4, 5)), torch.rand(20))


def _table(program, name: str) -> tuple[torch.Tensor, object]:
    op = next(o for o in program.module.walk() if isinstance(o, ParamOp) and o.param_name == name)
    return program.tensor(op), op.result.type.element_type


@pytest.mark.parametrize("embedding_bits", [8, 4])
def test_bags_lower_to_row_lookups_that_compute_the_reference(embedding_bits):
    model, inputs = _bags_and_inputs()
    before = copy.deepcopy(model.state_dict())
    converted = qir.convert(qir.prepare(model, inputs, WeightOnlyQuantizer(bits=8, embedding_bits=embedding_bits)))
    reference, lowered = qir.lower(converted, "reference"), qir.lower(converted, "x86")
    ref_ops = [op.name for op in reference.qir_program.module.walk() if op.name.startswith("ref.")]
    assert ref_ops.count("ref.weight_only_embedding_bag") == 3
    x86_ops = [op.name for op in lowered.qir_program.module.walk()]
    assert not any(n.startswith(("ref.", "quant.")) for n in x86_ops)
    # the sum and the mean of an 8-bit table are fbgemm's; the max, and 4-bit tables, gather rows
    rowwise = 2 if embedding_bits == 8 else 0
    assert x86_ops.count("x86.embedding_bag_rowwise") == rowwise
    assert x86_ops.count("x86.embedding_bag_lookup") == 3 - rowwise

    expected, ref_out, got = model(*inputs), reference(*inputs), lowered(*inputs)
    for bag in range(3):  # the bags: the reference's up to float32 rounding, close to float
        assert _close(got[bag], ref_out[bag].double())
        assert _sqnr(expected[bag], got[bag]) > (38 if embedding_bits == 8 else 18)
    assert _sqnr(expected[3], got[3]) > (35 if embedding_bits == 8 else 15)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())

    # the mean's bags, from the stored integers dequantized here: (q - zp) * s per row
    storage, qtype = _table(converted.qir_program, "mean.weight_q")
    assert qtype.storage_width == embedding_bits and storage.shape == (60, 32)
    scales = torch.tensor(qtype.scales, dtype=torch.float32)[:, None]
    zero_points = torch.tensor(qtype.zero_points, dtype=torch.float32)[:, None]
    dequantized = (storage.double() - zero_points.double()) * scales.double()
    assert _close(got[0], F.embedding_bag(inputs[0], dequantized, inputs[1], mode="mean", padding_idx=0))


def test_stored_table_is_torch_ao_per_row_affine_uint8():
    model, inputs = _bags_and_inputs()
    converted = qir.convert(qir.prepare(model, inputs, WeightOnlyQuantizer(bits=8)))
    storage, qtype = _table(converted.qir_program, "max.weight_q")
    observer = torch.ao.quantization.PerChannelMinMaxObserver(ch_axis=0, dtype=torch.quint8,
                                                              qscheme=torch.per_channel_affine)
    observer(model.max.weight)
    scales, zero_points = observer.calculate_qparams()
    expected = torch.quantize_per_channel(model.max.weight.detach(), scales, zero_points, 0, torch.quint8)
    assert torch.equal(storage, expected.int_repr())
    assert list(qtype.scales) == scales.tolist() and list(qtype.zero_points) == zero_points.tolist()


def test_bags_whose_bookkeeping_is_read_keep_atens_op_on_the_dequantized_table():
    """`aten._embedding_bag` also returns which bag each index went to; a program reading that
    keeps the op (on the dequantized table), and computes the same bags."""

    class Bookkept(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.table = torch.nn.Parameter(torch.randn(40, 16))

        def forward(self, ids, offsets):
            bags, bag_of, _, _ = torch.ops.aten._embedding_bag(self.table, ids, offsets, False, 1)
            return bags, bag_of

    torch.manual_seed(1)
    model, inputs = Bookkept().eval(), (torch.randint(0, 40, (12,)), torch.tensor([0, 5, 9]))
    lowered = qir.quantize(model, inputs, quantizer=WeightOnlyQuantizer(bits=8), backend="x86")
    names = [op.name for op in lowered.qir_program.module.walk()]
    assert "x86.embedding_bag_lookup" not in names and "x86.dequantize" in names
    (bags, bag_of), (float_bags, float_bag_of) = lowered(*inputs), model(*inputs)
    assert torch.equal(bag_of, float_bag_of) and _sqnr(float_bags, bags) > 38

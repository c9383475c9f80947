"""How x86's int8 kernels accumulate without VNNI, and which weights they compute exactly.

Without AVX-512 VNNI, fbgemm's and oneDNN's uint8 x int8 kernels multiply the
activations' storage values (0..255, the zero point not yet subtracted) by the
int8 weights with `vpmaddubsw`: each PAIR of adjacent products of the
reduction is added in int16 and saturates there, then the pair sums are
accumulated in int32. Which two products form a pair is fixed by the kernel's
packed weight layout (found by experiment on torch 2.13, see
`tests/test_accumulation.py`):

* linear: consecutive input features, (0, 1), (2, 3), ...;
* convolution: the reduction flattened with the kernel taps outside and the
  input channels inside (fbgemm's im2col order), paired from the start; oneDNN
  pairs consecutive input channels of one tap. Both pairings are checked (they
  agree when the channel count is even);
* grouped and depthwise convolutions: the x86 backends run them on oneDNN,
  whose grouped kernels are exact (fbgemm's depthwise kernel pairs taps, and
  saturates even with VNNI).

A pair of weights (w0, w1) can leave int16 when some activations in the
storage range [lo, hi] make `a0 w0 + a1 w1` exceed it: with lo = 0, hi = 255,
when the positive weights of a pair add up to more than 128 or the negative
ones to less than -128. This module answers, for a weight tensor, which output
channels have such a pair (`channels_at_risk`), chooses per-channel scales at
which none has (`fit_scales`, what `convert` does for a spec with
`int16_pairs`), and computes what a saturating kernel adds to the exact
accumulator (`conv_saturation`, `linear_saturation`: the reference backend's
emulation of a target).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from qir.dialects import ref
from qir.dialects.aten import AtenOp
from qir.op_families import CONV, CONV_TRANSPOSE, GENERIC_CONV, LINEAR
from qir.params import constant_tensor
from qir.qdq import dequantized
from qir.target import INT16_MAX, INT16_MIN


@dataclass(frozen=True)
class Reduction:
    """The layout of a conv or linear weight: what its kernel sums over for one output channel.

    `weight_shape` is torch's: [out, in/groups, *kernel] for convs and linears ([out, in]),
    [in, out/groups, *kernel] for transposed convs."""

    weight_shape: tuple[int, ...]
    groups: int = 1
    transposed: bool = False

    @property
    def out_channels(self) -> int:
        if self.transposed:
            return self.weight_shape[1] * self.groups
        return self.weight_shape[0]

    def per_output_channel(self, weight: torch.Tensor) -> torch.Tensor:
        """`weight` as [out, taps, in/groups]: each output channel's reduction, taps outside."""
        w = weight
        if self.transposed:
            cin, cout_g, *kernel = w.shape
            w = w.reshape(self.groups, cin // self.groups, cout_g, *kernel).transpose(1, 2)
            w = w.reshape(self.groups * cout_g, cin // self.groups, *kernel)
        if w.dim() == 2:
            return w.unsqueeze(1)
        out, cin_g = w.shape[:2]
        return w.reshape(out, cin_g, -1).transpose(1, 2)

    @property
    def taps_and_channels(self) -> tuple[int, int]:
        """The kernel taps and the input channels per group each output channel sums over."""
        if len(self.weight_shape) == 2:
            return 1, self.weight_shape[1]
        taps = 1
        for k in self.weight_shape[2:]:
            taps *= k
        channels = self.weight_shape[0] // self.groups if self.transposed else self.weight_shape[1]
        return taps, channels

    def pair_indices(self, kind: str) -> torch.Tensor:
        """The pairs kernel family `kind` adds in int16, as [pairs, 2] indices into an output
        channel's reduction flattened taps outside, channels inside (-1: no partner):

        * `fbgemm`: consecutive elements of that order (its im2col; a linear's features);
        * `onednn`: a conv's consecutive channels of one tap; a linear's consecutive features
          within each block of K its gemm driver runs (K <= 256: one block; up to 768: two
          halves of (K+1)//2, so an odd half shifts the pairs of the next; then blocks of 384)."""
        taps, channels = self.taps_and_channels
        if kind == "fbgemm":
            return _consecutive(range(taps * channels))
        if kind != "onednn":
            raise ValueError(f"unknown kernel family {kind!r}")
        if taps == 1 and len(self.weight_shape) == 2:
            block = channels if channels <= 256 else (channels + 1) // 2 if channels < 768 else 384
            return torch.cat([_consecutive(range(b, min(b + block, channels))) for b in range(0, channels, block)])
        return torch.cat([_consecutive(range(t * channels, (t + 1) * channels)) for t in range(taps)])

    def paired(self, weight: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """The weights of the pairs `index` (from `pair_indices`) of every output channel in
        `weight` (all of them, or some of axis 0), as [out, pairs, 2]; 0 for no partner."""
        per_channel = self.per_output_channel(weight)
        flat = per_channel.reshape(per_channel.shape[0], -1)
        padded = torch.cat([flat, flat.new_zeros(flat.shape[0], 1)], dim=1)
        return padded[:, torch.where(index < 0, flat.shape[1], index)]

    def pairings(self, weight: torch.Tensor) -> list[torch.Tensor]:
        """The weights of each pair x86's kernels may form, as [out, pairs, 2], for each of the
        two kernel families whose pairs differ (fbgemm's and oneDNN's)."""
        fbgemm, onednn = self.pair_indices("fbgemm"), self.pair_indices("onednn")
        indices = [fbgemm] if torch.equal(fbgemm, onednn) else [fbgemm, onednn]
        return [self.paired(weight, index) for index in indices]


def _consecutive(indices) -> torch.Tensor:
    """(i0, i1), (i2, i3), ... of `indices`; an odd last one pairs with -1."""
    order = list(indices)
    if len(order) % 2:
        order.append(-1)
    return torch.tensor(order, dtype=torch.long).reshape(-1, 2)


def pair_ranges(pairs: torch.Tensor, lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The least and greatest `a0 w0 + a1 w1` over activations in [lo, hi], per pair (int32:
    8-bit products of pairs are far inside it)."""
    pairs = pairs.to(torch.int32)
    positive, negative = pairs.clamp(min=0).sum(-1), pairs.clamp(max=0).sum(-1)
    if lo == 0:
        return negative * hi, positive * hi
    return positive * lo + negative * hi, positive * hi + negative * lo


def channels_at_risk(weight: torch.Tensor, reduction: Reduction, lo: int, hi: int) -> torch.Tensor:
    """Which output channels have a pair of integer weights whose int16 sum can saturate
    for activation storage values in [lo, hi] (a bool tensor, one per output channel)."""
    risk = None
    for pairs in reduction.pairings(weight):
        least, greatest = pair_ranges(pairs, lo, hi)
        found = ((greatest > INT16_MAX) | (least < INT16_MIN)).any(-1)
        risk = found if risk is None else risk | found
    return risk


def fit_scales(scales: torch.Tensor, quantize, reduction: Reduction, bound: int,
               levels: float = 127.5) -> torch.Tensor:
    """Scales at which no pair of quantized weights can saturate in int16 for activations in
    [0, bound]: each channel's own scale if it is safe, else the smallest growth of it that is.
    A channel's largest weight magnitude is searched (bisection) between `levels` and
    `INT16_MAX // (2 bound)`, where every pair fits; only what can overflow loses precision.

    `scales` holds one scale per output channel (axis 0) or one for the tensor;
    `quantize(s, rows)` is the integer weight of output channels `rows` (None: all) at scales
    `s` (one per row), computed as convert computes it, so that the check is of the very
    integers the kernel will get."""
    per_tensor = scales.numel() == 1
    scales = scales.to(torch.float64).clone()

    def safe(trial: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        risk = channels_at_risk(quantize(trial, rows), reduction, 0, bound)
        return ~risk.any(0, keepdim=True) if per_tensor else ~risk

    rows = None if per_tensor else torch.nonzero(~safe(scales, None)).flatten()
    if (per_tensor and bool(safe(scales, None).all())) or (rows is not None and rows.numel() == 0):
        return scales
    own = scales if rows is None else scales[rows]
    absmax = own * levels
    low = torch.full_like(own, float(INT16_MAX // (2 * bound)))  # a level every pair fits at
    high = torch.full_like(own, float(math.ceil(levels)))        # a level that overflows (integer: bisection ends)
    while bool((high - low > 1).any()):
        middle = torch.floor((low + high) / 2)
        ok = safe(absmax / middle, rows)
        low, high = torch.where(ok, middle, low), torch.where(ok, high, middle)
    while True:  # safety is not quite monotone in the level near rounding ties
        ok = safe(absmax / low, rows)
        if bool(ok.all()):
            break
        low = torch.where(ok, low, low - 1)
        if bool((low < 1).any()):
            raise ValueError(f"no scale keeps the int16 pairs of activations up to {bound} from saturating")
    if rows is None:
        return absmax / low
    scales[rows] = absmax / low
    return scales


def fit_weight(weight: torch.Tensor, scales: list[float], zero_points: list[int], axis: int | None,
               qmin: int, qmax: int, storage: torch.dtype, reduction: Reduction, bound: int) -> torch.Tensor | None:
    """`fit_scales` for a float `weight` quantized (round half to even, clamp, as `convert` and
    the emitted kernels do) per channel along `axis` or per tensor (None): the scales (float64,
    one per channel or one) at which none of its pairs saturates for activations up to `bound`;
    None when the scales are not fitted (per channel along another axis than the output
    channels'). `convert` fits the final weights with it, QAT's fake quantization each step's."""
    per_channel = axis is not None
    if per_channel and (axis != 0 or reduction.transposed):
        return None
    import torch.ao.quantization.fx._decomposed  # noqa: F401  (registers quantized_decomposed)

    ops = torch.ops.quantized_decomposed
    x = weight.detach().float()
    zeros = torch.tensor(zero_points, dtype=torch.int64)

    def quantize(trial: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        if per_channel:
            part, z = (x, zeros) if rows is None else (x[rows], zeros[rows])
            return ops.quantize_per_channel.default(part, trial.float(), z, 0, qmin, qmax, storage)
        return ops.quantize_per_tensor.default(x, float(trial.float()[0]), zero_points[0], qmin, qmax, storage)

    return fit_scales(torch.tensor(scales, dtype=torch.float64), quantize, reduction, bound, levels=(qmax - qmin) / 2)


def reduction_of(weight) -> Reduction | None:
    """The reduction of the conv or linear (an `aten.op` or a `ref` op) that reads the SSA value
    `weight` as its weight, or None when nothing does."""
    shape = tuple(weight.type.get_shape())
    for use in weight.uses:
        op = use.operation
        if isinstance(op, ref.ConvOp | ref.ConvAddOp) and use.index == 1:
            transposed = isinstance(op, ref.ConvOp) and op.is_transposed
            return Reduction(shape, op.groups.value.data, transposed)
        if isinstance(op, ref.LinearOp) and use.index == 1:
            return Reduction(shape)
        if isinstance(op, AtenOp) and use.index == 1:
            family = op.target.data.split(".")[0]
            if family in LINEAR:
                return Reduction(shape)
            if family in CONV | CONV_TRANSPOSE:
                return Reduction(shape, int(op.arg("groups", 1)), family in CONV_TRANSPOSE)
            if family in GENERIC_CONV:
                return Reduction(shape, int(op.arg("groups", 1)), bool(op.arg("transposed", False)))
    return None


def saturating_operands(qin, qweight) -> bool:
    """Whether an input and weight of these quantized types run on x86's uint8 x int8 kernels,
    the ones whose pairs saturate: an unsigned 8-bit per-tensor input, an 8-bit weight."""
    return (qin is not None and qweight is not None and not qin.is_signed and qin.storage_width == 8
            and qweight.storage_width == 8)


def _at_risk(weight: torch.Tensor | None, reduction: Reduction, qin) -> bool:
    """Whether a weight (None: not a constant, so unknown) has a pair that can overflow for
    inputs over `qin`'s storage range. Grouped convs never do: the backends pack them for
    oneDNN, whose grouped kernels are exact (`conv_engine` in the x86 rules)."""
    if reduction.groups > 1 and not reduction.transposed:
        return False
    if weight is None:
        return True
    return bool(channels_at_risk(weight, reduction, qin.storage_min, qin.storage_max).any())


@dataclass(frozen=True)
class _StorageRange:
    storage_min: int
    storage_max: int


def may_saturate(op, store) -> bool:
    """Whether a `ref.conv` / `ref.conv_add` / `ref.linear` / `ref.dynamic_linear` can leave int16
    in a pair of its kernel's products on a CPU without VNNI, as the x86 backends run it: it
    reads uint8 by int8, and its weight is not a constant or one of its channels has a pair that
    can (for input storage values over the input type's whole storage range). A dynamic linear's
    int8 input runs as uint8 `q + 128` (`x86.dynamic_linear` shifts it so)."""
    if isinstance(op, ref.DynamicLinearOp):
        qin, qweight = ref.quantized(op.input), ref.quantized(op.weight)
        if qin.storage_width != 8 or qweight is None or qweight.storage_width != 8:
            return False
        shift = 128 if qin.is_signed else 0
        reduction = Reduction(tuple(op.weight.type.get_shape()))
        return _at_risk(constant_tensor(op.weight, store), reduction,
                        _StorageRange(qin.storage_min + shift, qin.storage_max + shift))
    qin = ref.per_tensor(op.input)
    if not saturating_operands(qin, ref.quantized(op.weight)):
        return False
    groups = op.groups.value.data if isinstance(op, ref.ConvOp | ref.ConvAddOp) else 1
    transposed = isinstance(op, ref.ConvOp) and op.is_transposed
    reduction = Reduction(tuple(op.weight.type.get_shape()), groups, transposed)
    return _at_risk(constant_tensor(op.weight, store), reduction, qin)


# --------------------------------------------------------------------------
# Emulation: what a saturating kernel adds to the exact accumulator.
# --------------------------------------------------------------------------

_CHUNK = 1 << 22
"""Elements of pair sums computed at once by the emulation."""


def risky_pairs(weight: torch.Tensor, reduction: Reduction, kind: str, lo: int, hi: int) -> torch.Tensor:
    """The pairs of kernel family `kind` that can leave int16 for activation storage values in
    [lo, hi], as an int64 [R, 5] table: output channel, group, the two reduction indices (taps
    outside, channels inside; a missing partner is index 0 with weight 0) and the two weights."""
    index = reduction.pair_indices(kind)
    pairs = reduction.paired(weight.to(torch.int64), index)
    least, greatest = pair_ranges(pairs, lo, hi)
    channel, pair = torch.nonzero((greatest > INT16_MAX) | (least < INT16_MIN), as_tuple=True)
    per_group = reduction.out_channels // reduction.groups
    first, second = index[pair, 0], index[pair, 1].clamp(min=0)
    return torch.stack([channel, channel // per_group, first, second, pairs[channel, pair, 0],
                        pairs[channel, pair, 1]], dim=1)


def _add_saturation(out: torch.Tensor, columns: torch.Tensor, table: torch.Tensor) -> None:
    """`out[:, c, :] += clamp16(p) - p` for each pair of `table`, p from `columns` [N, G, K, L]."""
    n, _, _, positions = columns.shape
    step = max(1, _CHUNK // max(1, n * positions))
    for start in range(0, table.shape[0], step):
        rows = table[start:start + step]
        channel, group, first, second, w0, w1 = rows.unbind(1)
        p = columns[:, group, first] * w0[None, :, None] + columns[:, group, second] * w1[None, :, None]
        out.index_add_(1, channel, p.clamp(INT16_MIN, INT16_MAX) - p)


def linear_saturation(x: torch.Tensor, table: torch.Tensor, out_channels: int) -> torch.Tensor:
    """What a saturating linear kernel adds to the exact accumulator, for raw storage `x`
    [..., K] (float64 [..., out_channels])."""
    rows = x.reshape(-1, x.shape[-1]).to(torch.int64)
    out = torch.zeros(1, out_channels, rows.shape[0], dtype=torch.int64)
    _add_saturation(out, rows.t()[None, None], table)
    return out[0].t().reshape(*x.shape[:-1], out_channels).to(torch.float64)


def conv_saturation(x: torch.Tensor, table: torch.Tensor, out_channels: int, kernel: list[int],
                    stride: list[int], padding: list[int], dilation: list[int], groups: int,
                    pad_value: int) -> torch.Tensor:
    """What a saturating convolution kernel adds to the exact accumulator, for raw storage `x`
    [N, C, *spatial] whose padding holds `pad_value` (float64 [N, out_channels, *out])."""
    rank = len(kernel)
    pads = [p for axis in reversed(range(rank)) for p in (padding[axis], padding[axis])]
    cols = torch.nn.functional.pad(x.to(torch.int64), pads, value=pad_value)
    for axis in range(rank):
        cols = cols.unfold(2 + axis, dilation[axis] * (kernel[axis] - 1) + 1, stride[axis])
    cols = cols[(Ellipsis, *[slice(None, None, d) for d in dilation])]
    n, channels = cols.shape[:2]
    out_spatial = list(cols.shape[2:2 + rank])
    taps = 1
    for k in kernel:
        taps *= k
    positions = 1
    for s in out_spatial:
        positions *= s
    # [N, C, *out, *kernel] → [N, G, taps, C/G, L] → the reduction with taps outside, channels inside
    cols = cols.reshape(n, channels, positions, taps).permute(0, 1, 3, 2)
    cols = cols.reshape(n, groups, channels // groups, taps, positions).transpose(2, 3)
    cols = cols.reshape(n, groups, taps * (channels // groups), positions)
    out = torch.zeros(n, out_channels, positions, dtype=torch.int64)
    _add_saturation(out, cols, table)
    return out.reshape(n, out_channels, *out_spatial).to(torch.float64)


def qdq_may_saturate(op, store) -> bool:
    """`may_saturate` for a conv or linear of the Q/DQ form (an `aten.op` reading a dequantized
    uint8 input and a dequantized int8 weight), as inductor's oneDNN kernels run it."""
    if len(op.operands) < 2:
        return False
    source, weight = dequantized(op.operands[0]), dequantized(op.operands[1])
    if source is None or weight is None:
        return False
    qin = ref.per_tensor(source)
    reduction = reduction_of(op.operands[1])
    if reduction is None or not saturating_operands(qin, ref.quantized(weight)):
        return False
    return _at_risk(constant_tensor(weight, store), reduction, qin)

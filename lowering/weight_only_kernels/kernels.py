"""The kernels a weight-only linear runs on: the ones inductor generates from its arithmetic.

A weight-only linear computes `y = x @ dequantize(W).T + b` with float activations, where
`dequantize(W)[n, k] = (q[n, k] - zp) * s` with the scale and zero point of `W`'s row `n` (per
channel) or of its block (group-wise). Decoding a language model runs it on one row of `x` (a
matrix-vector product): the whole weight is read once per call, so its time is the time to
read the weight, and a weight a quarter or an eighth the size of float32's can be read that
much faster, if the kernel keeps up. torch's own kernels for it do not on x86
(`aten._weight_int8pack_mm`, `aten._weight_int4pack_mm_for_cpu` are several times slower than
the float matmul at one row: `bench/weight_only_kernels.py`), so the kernels here are generated
by inductor from the arithmetic, written so that its C++ code generator vectorizes the inner
loop with full-width loads (on AVX2, its partial loads of int8 vectors are 10x slower):

* the integer values are packed into int32 lanes, `L = 32 / bits` per lane (4 int8, 8 int4),
  value `j` of lane `l` being element `j * (size / L) + l` of the packed dimension, so that
  extracting value `j` of every lane (`(w >> bits*j) & mask`, or the arithmetic shifts that
  sign-extend signed storage) gives a contiguous slice;
* `rows` (a scale per output channel): the storage `[N, K]` packed along `K` to `[N, K / L]`;
  `acc[m, n] = sum_j sum_l x[m, j*K/L + l] * value_j(w[n, l])`, one vectorized reduction per
  output, then `y = (acc - zp[n] * sum_k x[m, k]) * s[n] + b`;
* `groups` (a scale per group of `g` inputs): the storage transposed to `[G, g, N]` and packed
  along `N`; `part[m, G, n] = sum_{i < g} x[m, G*g + i] * q[G*g + i, n]` vectorized along the
  outputs, then `y = sum_G (part - zp[G, n] * sum_i x[m, G*g + i]) * s[G, n] + b`.

Both factor the scale out of the sums, so they equal the reference (dequantize, then a float
matmul) up to the rounding of float32 sums, which no two matmul kernels share either. A size the
lanes do not divide keeps one value per byte (the same arithmetic, slower loads).

A kernel is compiled once per shape, layout and thread count (`torch._inductor.compile`, a few
seconds; inductor's cache keeps it for the next process) when the module first runs it. With
more than `GEMV_ROWS` rows these kernels would read the weight once per row, so the weight is
dequantized instead and multiplied by the float matmul. Where inductor cannot compile (no C++
compiler), every call takes the eager arithmetic, with a warning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from qir.lowering.inductor_kernels import compiled

GEMV_ROWS = 8
"""Calls with at most this many rows of activations run the generated kernels."""

@dataclass(frozen=True)
class PackedWeight:
    """A quantized weight `[N, K]` in a kernel's layout (`pack`), with float32 scales and zero
    points (`[N]` for `rows`; `[G, N]` for `groups`)."""

    layout: str
    """`rows` or `groups`."""
    data: torch.Tensor
    scales: torch.Tensor
    zero_points: torch.Tensor
    bits: int
    signed: bool
    lanes: int
    """Values per int32 (1: one value per byte, not packed)."""
    group: int
    out_features: int
    in_features: int
    has_zero_points: bool = True
    """Whether a zero point is not 0 (else the kernels skip their `zp * sum(x)` term)."""
    calls: dict = field(default_factory=dict, compare=False, repr=False)
    """The compiled kernel for each (rows, bias, threads) this weight was called with: the running
    module looks it up here, not in the process-wide cache."""

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.data, self.scales, self.zero_points))


def pack(storage: torch.Tensor, scales: torch.Tensor, zero_points: torch.Tensor, bits: int, signed: bool,
         group: int | None = None) -> PackedWeight:
    """Pack an integer weight `[N, K]` (one value per byte) with its scales and zero points
    (`[N]` per channel, or `[N, K / group]` per group) for the kernels."""
    n, k = storage.shape
    lanes = 32 // bits
    if group is None or group == k:
        packed_dim = k
        layout, values = "rows", storage
        s, zp = scales.reshape(-1), zero_points.reshape(-1)
        group = k
    else:
        layout, values = "groups", storage.t().reshape(k // group, group, n)
        s, zp = scales.reshape(n, -1).t(), zero_points.reshape(n, -1).t()
        packed_dim = n
    if packed_dim % lanes:
        lanes = 1
        data = values.contiguous()
    else:
        # value j of lane l is element j * (size / lanes) + l of the packed (last) dimension
        parts = values.to(torch.int32).reshape(*values.shape[:-1], lanes, packed_dim // lanes)
        mask = (1 << bits) - 1
        data = torch.zeros(*values.shape[:-1], packed_dim // lanes, dtype=torch.int32)
        for j in range(lanes):
            data |= (parts[..., j, :] & mask) << (bits * j)
    return PackedWeight(layout, data, s.float().contiguous(), zp.float().contiguous(), bits, signed, lanes,
                        group, n, k, bool(zp.any()))


def _value(w: torch.Tensor, j: int, bits: int, lanes: int, signed: bool) -> torch.Tensor:
    """Value `j` of every int32 lane of `w`, as float."""
    if signed:
        return ((w << (32 - bits * (j + 1))) >> (32 - bits)).float()
    shifted = w >> (bits * j) if j else w  # arithmetic: the mask drops the sign bits of the top value
    return (shifted & ((1 << bits) - 1)).float()


def _rows(x, w, s, zp, b, *, bits: int, lanes: int, signed: bool, has_zp: bool):
    m, k = x.shape
    if lanes == 1:
        acc = (x[:, None, :] * w.float()).sum(-1)
    else:
        xl = x.reshape(m, lanes, 1, k // lanes)
        acc = sum(xl[:, j] * _value(w, j, bits, lanes, signed) for j in range(lanes)).sum(-1)
    if has_zp:
        acc = acc - x.sum(-1, keepdim=True) * zp
    y = acc * s
    return y + b if b is not None else y


def _groups(x, w, s, zp, b, *, bits: int, lanes: int, signed: bool, has_zp: bool, group: int):
    m = x.shape[0]
    xg = x.reshape(m, -1, group, 1)
    if lanes == 1:
        part = (xg * w.float()).sum(2)
    else:
        part = torch.cat([(xg * _value(w, j, bits, lanes, signed)).sum(2) for j in range(lanes)], -1)
    if has_zp:
        part = part - zp * xg.sum(2)
    y = (part * s).sum(1)
    return y + b if b is not None else y


def dequantize(packed: PackedWeight) -> torch.Tensor:
    """The float32 weight `[N, K]` a packed weight stands for, `(q - zp) * s`."""
    w = packed.data
    if packed.lanes > 1:
        w = torch.cat([_value(w, j, packed.bits, packed.lanes, packed.signed) for j in range(packed.lanes)], -1)
    if packed.layout == "rows":
        return (w.float() - packed.zero_points[:, None]) * packed.scales[:, None]
    w = (w.float() - packed.zero_points[:, None, :]) * packed.scales[:, None, :]  # [G, g, N]
    return w.reshape(packed.in_features, packed.out_features).t()


def linear(x: torch.Tensor, packed: PackedWeight, bias: torch.Tensor | None = None) -> torch.Tensor:
    """`x @ dequantize(packed).T + bias` for a float `x` of any rank (the last dimension K)."""
    x2 = x.reshape(-1, x.shape[-1])
    if x2.dtype != torch.float32:
        x2 = x2.float()
    rows = x2.shape[0]
    if rows > GEMV_ROWS:
        y = torch.nn.functional.linear(x2, dequantize(packed), bias)
    else:  # a kernel is compiled for contiguous rows: a strided view (`x[:, 0]`) is copied first
        args = [x2.contiguous(), packed.data, packed.scales, packed.zero_points] + ([bias] if bias is not None else [])
        call = (rows, bias is not None, torch.get_num_threads())
        kernel = packed.calls.get(call)
        if kernel is None:
            static = dict(bits=packed.bits, lanes=packed.lanes, signed=packed.signed, has_zp=packed.has_zero_points)
            if packed.layout == "groups":
                static["group"] = packed.group
            fn = _bind(_rows if packed.layout == "rows" else _groups, bias is not None, static)
            key = (packed.layout, *((tuple(t.shape), t.dtype) for t in args), tuple(sorted(static.items())), call[2])
            kernel = packed.calls[call] = _compiled(key, fn, args) or fn
        y = kernel(*args)
    return y.reshape(*x.shape[:-1], y.shape[-1])


def _bind(fn: Callable, with_bias: bool, static: dict) -> Callable:
    """`fn` with its static arguments bound, taking the tensors (and the bias, if any) only."""
    if with_bias:
        return lambda x, w, s, zp, b: fn(x, w, s, zp, b, **static)
    return lambda x, w, s, zp: fn(x, w, s, zp, None, **static)


def _compiled(key: tuple, fn: Callable, args: list) -> Callable | None:
    """`fn` compiled by inductor for these argument shapes (once per key), or None."""
    def build() -> Callable:
        from torch.fx.experimental.proxy_tensor import make_fx

        with torch.no_grad():
            return torch._inductor.compile(make_fx(fn)(*args), list(args))

    return compiled(("weight_only", *key), build, f"weight-only kernel ({key[0]})")


# --------------------------------------------------------------------------
# Embedding tables: gather the rows, then dequantize them.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class PackedTable:
    """A table `[V, D]` for `embedding`: integer rows (4-bit ones two values per byte, the low
    nibble column `d`, the high one `d + D/2`; stored unsigned, signed ones offset by 8 with their
    zero points) with a float32 scale and zero point per row, or float16 / bfloat16 rows."""

    data: torch.Tensor
    scales: torch.Tensor | None
    zero_points: torch.Tensor | None
    nibbles: bool

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.data, self.scales, self.zero_points) if t is not None)


def pack_table(storage: torch.Tensor, scales: torch.Tensor | None, zero_points: torch.Tensor | None,
               bits: int | None, signed: bool) -> PackedTable:
    """Pack a table's storage (one value per byte, or float16 rows when `scales` is None) with
    its per-row (or one) scale and zero point."""
    if scales is None:
        return PackedTable(storage.contiguous(), None, None, False)
    rows, width = storage.shape
    s = scales.float().reshape(-1).expand(rows).contiguous()
    zp = zero_points.float().reshape(-1).expand(rows).contiguous()
    if bits == 4 and width % 2 == 0:
        values = storage.to(torch.int16)
        if signed:
            values, zp = values + 8, zp + 8
        values = values.to(torch.uint8)
        data = (values[:, : width // 2] | (values[:, width // 2:] << 4)).contiguous()
        return PackedTable(data, s, zp, True)
    return PackedTable(storage.contiguous(), s, zp, False)


def embedding(indices: torch.Tensor, table: PackedTable) -> torch.Tensor:
    """`W[indices]` with `W = (float32(q) - zp) * s` (or the float16 rows widened), computing only
    the rows gathered."""
    rows = torch.nn.functional.embedding(indices, table.data)
    if table.scales is None:
        return rows.float()
    if table.nibbles:
        rows = torch.cat([rows & 15, rows >> 4], -1)
    zp = torch.nn.functional.embedding(indices, table.zero_points[:, None])
    s = torch.nn.functional.embedding(indices, table.scales[:, None])
    return (rows.float() - zp) * s


def _bags(indices: torch.Tensor, offsets: torch.Tensor, include_last_offset: bool,
          padding_idx: int | None) -> tuple[torch.Tensor, int]:
    """The bag of each index (`bags` for one no bag counts: a padding index, or one after the
    last offset when that offset ends the last bag) and the number of bags."""
    starts = offsets[:-1] if include_last_offset else offsets
    bags = starts.numel()
    positions = torch.arange(indices.numel(), dtype=offsets.dtype)
    bag_of = torch.searchsorted(starts, positions, right=True) - 1
    if include_last_offset:
        bag_of.masked_fill_(positions >= offsets[-1], bags)
    if padding_idx is not None:
        bag_of.masked_fill_(indices == padding_idx, bags)
    return bag_of, bags


def _means(sums: torch.Tensor, bag_of: torch.Tensor, bags: int) -> torch.Tensor:
    """Each bag's sum divided by its size (the indices it counts); an empty bag's mean is 0."""
    sizes = torch.bincount(bag_of, minlength=bags + 1)[:bags].clamp_(min=1)
    return sums.div_(sizes.to(sums.dtype)[:, None])


def embedding_bag(indices: torch.Tensor, offsets: torch.Tensor, per_sample_weights: torch.Tensor | None,
                  table: PackedTable, mode: int, include_last_offset: bool, padding_idx: int | None) -> torch.Tensor:
    """`embedding_bag` of the dequantized table (`mode` 0 sum, 1 mean, 2 max), dequantizing only
    the rows its bags read (`embedding`). Sums and means add those rows with ATen's sum over a
    table of one row per index (a padding index's row zeroed); maxima reduce them per bag
    (`scatter_reduce`). ATen's own bags with a padding row, and its maxima, leave its fast
    kernel (`bench/embedding_bag.py`)."""
    rows = embedding(indices, table)
    if mode == 2:
        bag_of, bags = _bags(indices, offsets, include_last_offset, padding_idx)
        maxima = rows.new_zeros(bags + 1, rows.shape[-1])  # an empty bag's maximum is 0, as ATen's
        return maxima.scatter_reduce_(0, bag_of[:, None].expand_as(rows), rows, "amax", include_self=False)[:bags]
    if padding_idx is not None:
        rows.masked_fill_((indices == padding_idx)[:, None], 0.0)
    positions = torch.arange(indices.numel(), dtype=indices.dtype)
    sums = torch.ops.aten.embedding_bag.padding_idx(rows, positions, offsets, False, 0, False, per_sample_weights,
                                                    include_last_offset, None)[0]
    return sums if mode == 0 else _means(sums, *_bags(indices, offsets, include_last_offset, padding_idx))


def pack_rows_for_fbgemm(storage: torch.Tensor, scales: torch.Tensor, zero_points: torch.Tensor,
                         signed: bool) -> torch.Tensor:
    """A table of 8-bit rows in fbgemm's rowwise layout (`quantized.embedding_bag_byte_prepack`'s):
    each row its uint8 values, then its float32 scale and bias, so that the row is `q * s + b`;
    here `b = -zp * s` (rounded to float32 once), so the row is the table's `(q - zp) * s` up to
    float32 rounding. Signed rows are stored `q + 128` with `zp + 128`, the same values."""
    rows = storage.shape[0]
    values = storage.to(torch.int16)
    zp = zero_points.reshape(-1).expand(rows).to(torch.float32)
    if signed:
        values, zp = values + 128, zp + 128
    s = scales.reshape(-1).expand(rows).to(torch.float32)
    bias = -zp * s
    return torch.cat([values.to(torch.uint8), s[:, None].contiguous().view(torch.uint8),
                      bias[:, None].contiguous().view(torch.uint8)], 1)


def embedding_bag_rowwise(indices: torch.Tensor, offsets: torch.Tensor, per_sample_weights: torch.Tensor | None,
                          packed: torch.Tensor, mode: int, include_last_offset: bool,
                          padding_idx: int | None) -> torch.Tensor:
    """Sums (`mode` 0) or means (1) of bags of a table packed by `pack_rows_for_fbgemm`, by
    fbgemm's fused rowwise kernel (each looked-up row dequantized in registers, nothing gathered
    into memory). The kernel only adds (its means and padding are not ATen's): a padding index is
    given a weight of 0, and a mean is the sum divided by the bag's size."""
    if padding_idx is not None:
        kept = (indices != padding_idx).to(torch.float32)
        per_sample_weights = kept if per_sample_weights is None else per_sample_weights * kept
    sums = torch.ops.quantized.embedding_bag_byte_rowwise_offsets(packed, indices, offsets, False, 0, False,
                                                                  per_sample_weights, None, include_last_offset)
    if mode == 0:
        return sums
    return _means(sums, *_bags(indices, offsets, include_last_offset, padding_idx))

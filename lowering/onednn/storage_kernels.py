"""The torch functions a lowered `onednn` module calls for what oneDNN has no kernel for, and
the oneDNN calls that need more than their arguments (the in-place sums).

Each takes integer storage tensors (uint8 / int8) and the constants its op's types imply
(computed once, at emission: multipliers, bounds, tables) and returns storage, or float32.
They are plain ATen calls, chained in place on the intermediate each made itself, so that
a rescaling costs a handful of passes over the tensor. The forms were chosen by measuring
the alternatives on ResNet-18 and BERT-sized tensors (2 threads), e.g.: a float32 add of two
16x32x384 uint8 tensors 0.23 ms, against 0.42 ms through `quantized_decomposed`
dequantize/add/quantize and 0.17 ms in int32 fixed point (which rounds ties up, not to
even: float32 was kept, it agrees with the reference far more often); a max-pool of a
channels-last 1x64x112x112 tensor 0.09 ms, against 4.7 ms for torch's contiguous uint8
kernel (its channels-last one refuses the tensor); a lookup table indexed with int32
(`index_select`) as fast as the float32 function on 200k elements, and exact.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_onednn = torch.ops.onednn


def quantize(x: torch.Tensor, inv_scale: float, zero_point: int, lo: int, hi: int, dtype: torch.dtype) -> torch.Tensor:
    """`quantized_decomposed.quantize_per_tensor`'s arithmetic, the same operations in place."""
    return to_storage(torch.mul(x, inv_scale).round_().add_(zero_point).clamp_(lo, hi), dtype)


def to_storage(y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Integral float32 values within the storage range, as storage. Through int16: torch's
    float32-to-uint8 conversion is not vectorized (41 us for 150k values against 18 us for
    the two steps), and the values are exact integers in range, so the result is the same."""
    return y.to(torch.int16).to(dtype)


def dequantize(q: torch.Tensor, scale: float, zero_point: int) -> torch.Tensor:
    """`(q - z) * s` in float32, contiguous whatever the storage's layout."""
    x = q.to(torch.float32, memory_format=torch.contiguous_format)
    if zero_point:
        x.sub_(zero_point)
    return x.mul_(scale)


def finish(y: torch.Tensor, multiplier: float, zero_point: int, lo: int, hi: int, dtype: torch.dtype) -> torch.Tensor:
    """A float32 intermediate (`y`, owned by the caller) requantized: `clamp(round(y * m) + z)`."""
    if multiplier != 1.0:
        y.mul_(multiplier)
    y.round_()
    if zero_point:
        y.add_(zero_point)
    return to_storage(y.clamp_(lo, hi), dtype)


def centered(q: torch.Tensor, zero_point: int) -> torch.Tensor:
    """`q - z` in float32 (exact: integers below 2^24)."""
    return torch.sub(q, float(zero_point))


def requantize(q: torch.Tensor, zero_point: int, multiplier: float, out_zero_point: int, lo: int, hi: int,
               dtype: torch.dtype) -> torch.Tensor:
    return finish(centered(q, zero_point), multiplier, out_zero_point, lo, hi, dtype)


def add(a: torch.Tensor, b: torch.Tensor, ma: float, mb: float, offset: float, zero_point: int, lo: int, hi: int,
        dtype: torch.dtype) -> torch.Tensor:
    """`clamp(round(a * ma + b * mb + offset) + zy)`, `offset = -za * ma - zb * mb`, broadcasting:
    the input zero points folded into one addition (the fewest passes of the forms measured).
    The result's zero point is added after rounding, as the definition does: rounding half to
    even does not commute with adding an odd integer."""
    y = torch.add(torch.mul(a, ma), b, alpha=mb)
    if offset:
        y.add_(offset)
    return finish(y, 1.0, zero_point, lo, hi, dtype)


def mul(a: torch.Tensor, b: torch.Tensor, za: int, zb: int, multiplier: float, zero_point: int, lo: int, hi: int,
        dtype: torch.dtype) -> torch.Tensor:
    return finish(torch.mul(centered(a, za), centered(b, zb)), multiplier, zero_point, lo, hi, dtype)


def matmul(a: torch.Tensor, b: torch.Tensor, za: int, zb: int, multiplier: float, zero_point: int, lo: int, hi: int,
           dtype: torch.dtype) -> torch.Tensor:
    return finish(torch.matmul(centered(a, za), centered(b, zb)), multiplier, zero_point, lo, hi, dtype)


def matmul_float(a: torch.Tensor, b: torch.Tensor, za: int, zb: int, scale: float) -> torch.Tensor:
    return torch.matmul(centered(a, za), centered(b, zb)).mul_(scale)


def avg_pool(q: torch.Tensor, zero_point: int, kernel: list[int], stride: list[int], padding: list[int],
             ceil_mode: bool, count_include_pad: bool, divisor: int | None, multiplier: float, out_zero_point: int,
             lo: int, hi: int, dtype: torch.dtype) -> torch.Tensor:
    """The window mean of the centered storage (padding counts as real zero), requantized."""
    x = centered(q, zero_point)
    spatial = len(kernel)
    if spatial == 1 and divisor is not None:  # avg_pool1d has no divisor_override: a unit-height 2-D pool
        mean = F.avg_pool2d(x.unsqueeze(-2), [1, *kernel], [1, *stride], [0, *padding], ceil_mode,
                            count_include_pad, divisor).squeeze(-2)
    elif spatial == 1:
        mean = F.avg_pool1d(x, kernel, stride, padding, ceil_mode, count_include_pad)
    else:
        pool = F.avg_pool2d if spatial == 2 else F.avg_pool3d
        mean = pool(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor)
    return finish(mean, multiplier, out_zero_point, lo, hi, dtype)


def global_avg_pool(q: torch.Tensor, zero_point: int, spatial: int, multiplier: float, out_zero_point: int,
                    lo: int, hi: int, dtype: torch.dtype) -> torch.Tensor:
    """An adaptive pool to size 1: the exact int32 sum of each channel, centered, divided once by
    the count (a correctly rounded quotient keeps the definition's ties) and rescaled."""
    dims = tuple(range(-spatial, 0))
    total = torch.sum(q, dims, keepdim=True, dtype=torch.int32)
    count = math.prod(q.shape[-spatial:])
    if multiplier == 1.0 and zero_point == out_zero_point:
        # The parameters kept (the usual pool): round(sum / n - z) + z is round(sum / n), a mean of
        # storage values, which needs no clamp.
        return to_storage(total.to(torch.float32).div_(count).round_(), dtype)
    if zero_point:
        total.sub_(zero_point * count)
    return finish(total.to(torch.float32).div_(count), multiplier, out_zero_point, lo, hi, dtype)


def adaptive_avg_pool(q: torch.Tensor, zero_point: int, size: list[int], multiplier: float, out_zero_point: int,
                      lo: int, hi: int, dtype: torch.dtype) -> torch.Tensor:
    pool = (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d)[len(size) - 1]
    return finish(pool(centered(q, zero_point), size), multiplier, out_zero_point, lo, hi, dtype)


def max_pool(q: torch.Tensor, kernel: list[int], stride: list[int], padding: list[int], dilation: list[int],
             ceil_mode: bool, fill: int) -> torch.Tensor:
    """`max_pool{1,2,3}d` of storage, one spatial dimension at a time (a window's maximum is
    the maximum of its rows' maxima), each as the elementwise maximum of the strided slices
    at the kernel's offsets. Nothing is padded: an offset that falls in the padding for some
    outputs only updates the others (torch pads with -inf; `fill`, the storage minimum, is
    used only when a window lies wholly in the padding). The output sizes are torch's (with
    `ceil_mode` a last window must start inside the input or its left padding), the result
    keeps a channels-last input's layout, and it is exact: a maximum of integers."""
    spatial = len(kernel)
    layout = _layout(q)
    x = q
    for axis in range(spatial):
        dim = q.dim() - spatial + axis
        n, k, s, p, d = x.shape[dim], kernel[axis], stride[axis], padding[axis], dilation[axis]
        span = d * (k - 1) + 1
        o = (n + 2 * p - span + ((s - 1) if ceil_mode else 0)) // s + 1
        if ceil_mode and (o - 1) * s >= n + p:
            o -= 1
        x = _max_along(x, dim, n, k, s, p, d, o, fill, layout)
    return x


def _max_along(x, dim, n, k, s, p, d, o, fill, layout):
    """One dimension of `max_pool`: output `j` is the maximum of inputs `j * s - p + i * d`, `i < k`."""
    pieces = []
    for i in range(k):
        offset = i * d - p
        first = max(0, -(offset // s))  # the first output whose input index is >= 0
        last = min(o, (n - 1 - offset) // s + 1)
        if last > first:
            pieces.append((first, last, offset))
    out = None
    rest = []
    for first, last, offset in pieces:
        if out is None and first == 0 and last == o:
            out = _strided(x, dim, offset, o, s).clone(memory_format=layout)
        else:
            rest.append((first, last, offset))
    if out is None:
        shape = list(x.shape)
        shape[dim] = o
        out = torch.full(shape, fill, dtype=x.dtype).contiguous(memory_format=layout)
    for first, last, offset in rest:
        target = out.narrow(dim, first, last - first)
        torch.maximum(target, _strided(x, dim, first * s + offset, last - first, s), out=target)
    return out


def _strided(x: torch.Tensor, dim: int, start: int, count: int, step: int) -> torch.Tensor:
    """Elements `start, start + step, ...` (`count` of them) of `x` along `dim`, as a view."""
    window = x.narrow(dim, start, (count - 1) * step + 1)
    if step == 1:
        return window
    index = [slice(None)] * x.dim()
    index[dim] = slice(None, None, step)
    return window[tuple(index)]


def _layout(q: torch.Tensor) -> torch.memory_format:
    if q.dim() == 4 and q.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    if q.dim() == 5 and q.is_contiguous(memory_format=torch.channels_last_3d):
        return torch.channels_last_3d
    return torch.contiguous_format


def lookup(q: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """`table[q]`: `table` is indexed by the storage's bits read as unsigned (an int8 table is
    stored rotated by 128 for that), so no offset is subtracted."""
    index = q.reshape(-1)
    if index.dtype == torch.int8:
        index = index.view(torch.uint8)
    return table.index_select(0, index.to(torch.int32)).view(q.shape)


def clamp(q: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    return torch.clamp(q, lo, hi)


def qconv2d_sum(qx, x_scale, x_zero_point, packed, w_scales, w_zero_points, accum, bias, stride, padding,
                dilation, groups, scale, zero_point, accum_scale, accum_zero_point, unary, copy: bool):
    """oneDNN's conv2d + sum (+ relu). oneDNN sums into the accumulator's buffer, which must be
    channels-last: `copy` (decided at emission) protects an accumulator that is read again,
    may alias another value, or is the conv's own input; otherwise a channels-last accumulator
    is summed into in place and any other is made channels-last (a new buffer) first."""
    if copy:
        accum = accum.clone(memory_format=torch.channels_last)
    else:
        accum = accum.contiguous(memory_format=torch.channels_last)
    return _onednn.qconv2d_pointwise.binary(qx, x_scale, x_zero_point, packed, w_scales, w_zero_points, accum,
                                            bias, stride, padding, dilation, groups, scale, zero_point, None,
                                            accum_scale, accum_zero_point, "sum", 1.0, unary, [], "")


def qlinear_sum(qx, x_scale, x_zero_point, packed, w_scales, w_zero_points, other, bias, scale, zero_point,
                other_scale, other_zero_point, unary, copy: bool):
    """oneDNN's linear + sum (+ relu), summed into `other`'s buffer (see `qconv2d_sum`)."""
    other = other.clone(memory_format=torch.contiguous_format) if copy else other.contiguous()
    return _onednn.qlinear_pointwise.binary(qx, x_scale, x_zero_point, packed, w_scales, w_zero_points, other,
                                            bias, scale, zero_point, None, other_scale, other_zero_point, "sum",
                                            1.0, unary, [], "")

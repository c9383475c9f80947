"""normalize-linear: every linear layer with a constant weight becomes `linear.default`.

`torch.export` writes a linear layer in several forms. `nn.Linear` gives
`linear.default(x, W, b)` with `W` laid out `(out, in)`; a model that multiplies
by its own parameter gives `matmul` (`x @ W`, `x @ W.t()`, then perhaps `+ b`),
`mm` or `addmm`; Hugging Face's `Conv1D` (GPT-2's projections) keeps its weight
`(in, out)` and flattens the leading dimensions around an `addmm`:

    %w = aten.param parameter "h.0.attn.c_attn.weight" : tensor<64x192xf32>
    %b = aten.param parameter "h.0.attn.c_attn.bias" : tensor<192xf32>
    %v = aten.op "view.default"(%x, [-1, 64]) {module = "h.0.attn.c_attn", module_type = "...Conv1D"}
           : (tensor<2x16x64xf32>) -> tensor<32x64xf32>
    %a = aten.op "addmm.default"(%b, %v, %w) {...} : (...) -> tensor<32x192xf32>
    %y = aten.op "view.default"(%a, [2, 16, 192]) {...} : (tensor<32x192xf32>) -> tensor<2x16x192xf32>

The quantizers, `convert`, `reference-rewrite` and every backend know one
linear: `linear.default` with an `aten.param` weight of shape `(out, in)`. A
layer in any other form stays float (GPT-2's 8 projections did: 3 quantized ops
in the whole 2-layer model, 11 with this pass). After this pass (one new parameter, the transposed weight; the store's
tensors are never changed):

    %wt = aten.param parameter "h.0.attn.c_attn.weight_t" : tensor<192x64xf32>
    %b = aten.param parameter "h.0.attn.c_attn.bias" : tensor<192xf32>
    %y = aten.op "linear.default"(%x, %wt, %b) {module = "h.0.attn.c_attn", module_type = "...Conv1D"}
           : (tensor<2x16x64xf32>, tensor<192x64xf32>, tensor<192xf32>) -> tensor<2x16x192xf32>

What is rewritten (each counted under its own name):

* `addmm(b, x, W)`: `linear(x, W', b)`, when `beta` and `alpha` are both 1 (the
  defaults), or `beta` is 0 and `alpha` 1 (torch then ignores `b`, NaN included:
  `linear(x, W')`). Any other `beta`/`alpha` stays an `addmm`: folding them into
  the weight and bias would round differently. The bias must be a constant of
  shape `(N)` (or `(1, N)`, reshaped into a new parameter).
* `mm(x, W)`: `linear(x, W')`.
* `einsum` of `x` and `W` whose equation is a linear layer's: `x`'s last subscript contracted
  with one of `W`'s two, the output `x`'s other subscripts (or `...`) in order then `W`'s other
  one (`"bsk,nk->bsn"`, `"...k,kn->...n"`): `linear(x, W')`.
* `matmul(x, W)` with `x` of rank >= 2 and `W` 2-D: `linear(x, W')`.
* `linear(x, W)` whose weight is a transposed view of a constant: `linear(x, W')`.
* `view(linear(view(x, [-1, K]), W, b), [d0, ..., N])`, when the two views only
  flatten and unflatten `x`'s leading dimensions: `linear(x, W, b)` (counted as
  `leading-dims`). `view`, `reshape` and `_unsafe_view` all qualify. Static sizes
  are checked on the types; dynamic ones are `sym_size(u, i)` operands, often of
  another value than `x` (GPT-2 takes them from the token ids), so the pass
  tracks which dimensions are equal (`_Dims`: through elementwise ops, layer
  norms, linears, embeddings, `arange` and reshapes) and folds only when `x`'s
  are known to be those.
* `bmm(x, expand(W, [B, K, N]))`, every batch multiplied by the same constant
  matrix (the form torch's decompositions give a 3-D `matmul` by a weight: `nn.LSTM`'s
  and `nn.GRU`'s input projection after `run_decompositions()`), the expanded
  matrix perhaps seen through reshapes that keep its shape: `linear(x, W')`
  (counted as `bmm`).
* `add(linear(x, W), b)` (`x @ W + b`) with `b` a constant of shape `(N)`
  (or `(1, ..., 1, N)`) of the linear's dtype, the add not broadcasting the
  linear's result, no `alpha`: `linear(x, W, b)` (counted as `bias-add`).

Here `W` is the matrix the model multiplies by, `x @ W`, of shape `(K, N)`; it
is an `aten.param`, possibly seen through `t`, `transpose` or `permute` views.
`W'` is its transpose, the `(N, K)` weight `linear` takes: the parameter itself
when the model read it through a transposing view (`x @ P.t()`), otherwise a new
parameter `<name>_t` holding `P.t().contiguous()` (one per parameter, however many
layers share it; counted as `transposed-weight`). Views and parameters left
unused are erased. The new `linear` keeps the original op's attributes
(`module`, `module_type`): `set_module_name` and `set_object_type` (Hugging Face's
`transformers.pytorch_utils.Conv1D` included) find it as they found the `addmm`.

Left alone: a product of two activations (`bmm`/`matmul` in attention), a
constant on the left (`W @ x`), a weight of rank other than 2 or not floating
point, a weight or bias some `aten.param_update` writes or some in-place op may
write, a bias that is not a constant of the right shape, `addmm` with other
`beta`/`alpha`, a 1-D `x`.

Numerics: torch's `linear` computes `x @ W'.t() + b` with the `gemm` the `addmm`,
`mm` or `matmul` it replaces called (`W'.t()` of the contiguous transposed copy
has the original weight's strides), so the values are the same up to float
rounding: bit for bit for 2-D inputs and most others, a last-bit difference where
a separate `+ b` becomes the gemm's bias or where `linear` adds the bias apart
(a 3-D input of batch one).

`keep-tied=true` (the QAT pipeline): a weight that something else also reads
(tied weights) gets no transposed copy, since training the copy would untie it;
its layer stays as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xdsl.context import Context
from xdsl.dialects.builtin import DYNAMIC_INDEX as DYNAMIC, AnyFloat, ModuleOp, TensorType
from xdsl.ir import Operation, OpResult, SSAValue
from xdsl.pattern_rewriter import (
    GreedyRewritePatternApplier,
    PatternRewriter,
    PatternRewriteWalker,
    RewritePattern,
    op_type_rewrite_pattern,
)
from xdsl.rewriter import InsertPoint

from qir.aliasing import Mutations
from qir.context import params_of
from qir.dialects.aten import AtenOp, ParamOp, is_pure
from qir.params import ParamStore, new_param, param_tensor
from qir.pass_manager import QirPass, count

FROZEN = "frozen"
"""The attribute of a parameter the model does not train (see `qir.emitter.FROZEN`)."""

_TRANSPOSES = {"t.default", "transpose.int", "permute.default"}
_RESHAPES = {"view.default", "reshape.default", "_unsafe_view.default"}


def _tensor(value: SSAValue) -> TensorType | None:
    return value.type if isinstance(value.type, TensorType) else None


def _swaps(op: AtenOp) -> bool | None:
    """Whether a view of a 2-D tensor swaps its two dimensions (None: not a 2-D transposition)."""
    target = op.target.data
    if target == "t.default":
        return True
    if target == "transpose.int":
        a, b = op.arg("dim0"), op.arg("dim1")
        if not isinstance(a, int) or not isinstance(b, int):
            return None
        return a % 2 != b % 2
    if target == "permute.default":
        dims = op.arg("dims")
        if not isinstance(dims, list) or len(dims) != 2 or not all(isinstance(d, int) for d in dims):
            return None
        dims = [d % 2 for d in dims]
        return {(1, 0): True, (0, 1): False}.get(tuple(dims))
    return None


@dataclass(frozen=True)
class _Constant:
    """A 2-D matrix read from a parameter: `param`, transposed or not, through `views`."""

    param: ParamOp
    transposed: bool
    views: tuple[AtenOp, ...]


@dataclass
class _State:
    store: ParamStore
    ctx: Context
    mutations: Mutations
    keep_tied: bool
    copies: dict[str, ParamOp] = field(default_factory=dict[str, ParamOp])
    """Transposed copies made so far, by the name of the parameter they copy."""
    dims: "_Dims" = field(default_factory=lambda: _Dims())

    def constant(self, value: SSAValue, dtype) -> ParamOp | None:
        """The `aten.param` behind `value` if it is a float constant of element type `dtype` that
        nothing writes (in place, through a view, or by `aten.param_update`)."""
        owner = value.owner
        type_ = _tensor(value)
        if (not isinstance(owner, ParamOp) or self.mutations.written(owner.result) or type_ is None
                or not isinstance(type_.element_type, AnyFloat) or type_.element_type != dtype):
            return None
        return owner

    def matrix(self, value: SSAValue, dtype) -> _Constant | None:
        """The 2-D constant `value` is, seen through transposing views."""
        views: list[AtenOp] = []
        transposed = False
        while isinstance(value, OpResult) and isinstance(value.owner, AtenOp):
            view = value.owner
            swaps = _swaps(view) if view.target.data in _TRANSPOSES and len(view.results) == 1 else None
            if swaps is None or _tensor(value) is None or len(_tensor(value).get_shape()) != 2:
                return None
            views.append(view)
            transposed ^= swaps
            value = view.arg(0)
            if not isinstance(value, SSAValue):
                return None
        param = self.constant(value, dtype)
        if param is None:
            return None
        shape = param.result.type.get_shape()
        if len(shape) != 2 or any(d < 0 for d in shape):
            return None
        return _Constant(param, transposed, tuple(views))

    def weight(self, matrix: _Constant, out_in: bool, rewriter: PatternRewriter) -> SSAValue | None:
        """The `(out, in)` weight of the layer that reads `matrix` as `(out, in)` (`out_in`, as
        `linear` does) or as `(in, out)` (`x @ W`): the parameter itself, or its transposed copy."""
        if matrix.transposed != out_in:
            return matrix.param.result
        source = matrix.param
        copy = self.copies.get(source.param_name)
        if copy is None:
            if self.keep_tied and self._tied(source):
                return None
            tensor = param_tensor(source, self.store)
            copy = new_param(self.store, f"{source.param_name}_t", tensor.t().contiguous(), source.kind.data)
            if FROZEN in source.attributes:
                copy.attributes[FROZEN] = source.attributes[FROZEN]
            rewriter.insert(copy, InsertPoint.after(source))
            self.copies[source.param_name] = copy
            count(self.ctx, "transposed-weight")
        return copy.result

    @staticmethod
    def _tied(param: ParamOp) -> bool:
        """Whether anything but one layer (directly or through views) reads `param`."""
        readers: set[Operation] = set()
        stack = [param.result]
        while stack:
            value = stack.pop()
            for use in value.uses:
                user = use.operation
                if isinstance(user, AtenOp) and user.target.data in _TRANSPOSES:
                    stack.extend(user.results)
                else:
                    readers.add(user)
        return len(readers) > 1 or any(r.name != "aten.op" or r.op_name not in _LAYER_OPS for r in readers)

    def bias(self, value: SSAValue | None, features: int, dtype, rewriter: PatternRewriter,
             anchor: Operation) -> SSAValue | None | bool:
        """The `(N)` bias for a constant `value` of shape `(N)` or `(1, ..., 1, N)`; False when
        `value` cannot be one."""
        param = self.constant(value, dtype) if isinstance(value, SSAValue) else None
        if param is None:
            return False
        shape = param.result.type.get_shape()
        if not shape or shape[-1] != features or any(d != 1 for d in shape[:-1]):
            return False
        if len(shape) == 1:
            return param.result
        tensor = param_tensor(param, self.store).reshape(features)
        row = new_param(self.store, f"{param.param_name}_1d", tensor.clone(), param.kind.data)
        if FROZEN in param.attributes:
            row.attributes[FROZEN] = param.attributes[FROZEN]
        rewriter.insert(row, InsertPoint.before(anchor))
        return row.result


_LAYER_OPS = {"addmm", "mm", "matmul", "linear", "einsum"}


def _einsum_weight_layout(equation: Any) -> bool | None:
    """How the equation of an `einsum` of `x` and `W` reads `W` when it is a linear layer:
    True for `(out, in)` (`"...k,nk->...n"`), False for `(in, out)` (`"...k,kn->...n"`); None
    when it is anything else (a contraction over other subscripts, a diagonal, a transpose of
    the output, a sum over a subscript)."""
    if not isinstance(equation, str) or equation.count("->") != 1:
        return None
    inputs, output = equation.replace(" ", "").split("->")
    operands = inputs.split(",")
    if len(operands) != 2:
        return None
    x, w = operands
    if len(w) != 2 or w[0] == w[1] or not w.isalpha() or not x or x[-1] not in w:
        return None
    inner, leading = x[-1], x[:-1]
    out = w.replace(inner, "")
    letters = leading.replace("...", "", 1)
    if (output != leading + out or not all(c.isalpha() for c in letters) or len(set(letters)) != len(letters)
            or inner in letters or out in letters):
        return None
    return w == out + inner


def _linear(x: SSAValue, weight: SSAValue, bias: SSAValue | None, result_type, source: AtenOp) -> AtenOp:
    args = [x, weight] if bias is None else [x, weight, bias]
    new = AtenOp("linear.default", args, None, [result_type], dict(source.attributes))
    new.location = source.location
    new.results[0].name_hint = "linear"
    return new


def _erase_unused(rewriter: PatternRewriter, ops) -> None:
    """Erase `ops` and what computed their operands, as far as nothing reads them and they are pure."""
    stack = [op for op in ops if isinstance(op, Operation)]
    while stack:
        op = stack.pop()
        if (op.parent is None or any(r.uses for r in op.results) or not isinstance(op, AtenOp | ParamOp)
                or not is_pure(op)):
            continue
        owners = [v.owner for v in op.operands]
        rewriter.erase(op)
        stack.extend(o for o in owners if isinstance(o, Operation))


@dataclass
class LayerForms(RewritePattern):
    """`addmm`, `mm`, `matmul` with a constant right-hand matrix, and `linear` with a transposed
    view for a weight, become `linear(x, W', b)`."""

    state: _State

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AtenOp, rewriter: PatternRewriter, /):
        name = op.op_name
        if name not in _LAYER_OPS or op.target.data != f"{name}.default" or len(op.results) != 1:
            return
        result = _tensor(op.results[0])
        if result is None:
            return
        if name == "addmm":
            x, w, b = op.arg("mat1"), op.arg("mat2"), op.arg("self")
            beta, alpha = op.arg("beta", 1), op.arg("alpha", 1)
            if alpha != 1 or isinstance(alpha, bool) or isinstance(beta, bool) or beta not in (0, 1):
                return
            if beta == 0:
                b = None
        elif name == "linear":
            x, w, b = op.arg("input"), op.arg("weight"), op.arg("bias")
        elif name == "einsum":
            tensors, layout = op.arg("tensors"), _einsum_weight_layout(op.arg("equation"))
            if layout is None or not isinstance(tensors, list | tuple) or len(tensors) != 2:
                return
            (x, w), b = tensors, None
        else:
            x, w, b = op.arg("self"), op.arg("mat2" if name == "mm" else "other"), None
        if not isinstance(x, SSAValue) or not isinstance(w, SSAValue) or _tensor(x) is None:
            return
        rank = len(_tensor(x).get_shape())
        if rank < 2 or (name in ("addmm", "mm") and rank != 2):
            return
        dtype = result.element_type
        if _tensor(x).element_type != dtype:
            return
        matrix = self.state.matrix(w, dtype)
        if matrix is None or (name == "linear" and not matrix.views):
            return
        out_in = name == "linear" or (name == "einsum" and layout)
        out, inner = matrix.param.result.type.get_shape()
        if matrix.transposed == out_in:
            out, inner = inner, out  # the parameter is laid out (in, out)
        if result.get_shape()[-1] not in (out, DYNAMIC) or _tensor(x).get_shape()[-1] not in (inner, DYNAMIC):
            return
        bias = b  # a linear keeps its bias as it is
        if b is not None and name == "addmm":
            bias = self.state.bias(b, out, dtype, rewriter, op)
            if bias is False:
                return
        weight = self.state.weight(matrix, out_in, rewriter)
        if weight is None:
            return
        dropped = [v.owner for v in op.operands]
        new = _linear(x, weight, bias, result, op)
        rewriter.replace(op, new)
        _erase_unused(rewriter, dropped)
        count(self.state.ctx, name)


def _bias_free_linear(value: SSAValue) -> AtenOp | None:
    """The `linear` without bias that computes `value`, if this is its only use."""
    op = value.owner
    if (isinstance(op, AtenOp) and op.target.data == "linear.default" and op.arg("bias") is None
            and value.has_one_use()):
        return op
    return None


@dataclass
class BiasAdd(RewritePattern):
    """`add(linear(x, W), b)` with a constant `(N)` bias: `linear(x, W, b)`."""

    state: _State

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AtenOp, rewriter: PatternRewriter, /):
        if op.target.data != "add.Tensor" or len(op.results) != 1 or op.arg("alpha", 1) != 1:
            return
        a, b = op.arg("self"), op.arg("other")
        if not isinstance(a, SSAValue) or not isinstance(b, SSAValue):
            return
        linear, bias = _bias_free_linear(a), b
        if linear is None:
            linear, bias = _bias_free_linear(b), a
        if linear is None or _tensor(linear.results[0]) is None:
            return
        result = linear.results[0].type
        if op.results[0].type != result:
            return  # the add broadcasts the linear's result, or promotes its dtype
        bias_type = _tensor(bias)
        if bias_type is None or len(bias_type.get_shape()) > len(result.get_shape()):
            return
        new_bias = self.state.bias(bias, result.get_shape()[-1], result.element_type, rewriter, linear)
        if new_bias is False:
            return
        x, w = linear.arg("input"), linear.arg("weight")
        new = _linear(x, w, new_bias, result, linear)
        rewriter.insert(new, InsertPoint.before(linear))
        rewriter.replace(op, [], [new.results[0]])
        rewriter.erase(linear)
        _erase_unused(rewriter, [bias.owner])
        count(self.state.ctx, "bias-add")


@dataclass
class LeadingDims(RewritePattern):
    """`view(linear(view(x, [-1, K]), W, b), [d0, ..., N])`, the views flattening and unflattening
    `x`'s leading dimensions: `linear(x, W, b)`."""

    state: _State

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AtenOp, rewriter: PatternRewriter, /):
        if op.target.data not in _RESHAPES or len(op.results) != 1:
            return
        inner = op.arg(0)
        if not isinstance(inner, SSAValue):
            return
        linear = inner.owner
        if (not isinstance(linear, AtenOp) or linear.target.data != "linear.default"
                or not inner.has_one_use()):
            return
        flat = linear.arg("input")
        if not isinstance(flat, OpResult) or not isinstance(flat.owner, AtenOp) \
                or flat.owner.target.data not in _RESHAPES:
            return
        flatten = flat.owner
        x = flatten.arg(0)
        if not isinstance(x, SSAValue):
            return
        x_type, flat_type, y_type, out_type = _tensor(x), _tensor(flat), _tensor(inner), _tensor(op.results[0])
        if None in (x_type, flat_type, y_type, out_type):
            return
        x_shape, flat_shape = x_type.get_shape(), flat_type.get_shape()
        y_shape, out_shape = y_type.get_shape(), out_type.get_shape()
        features = x_shape[-1] if x_shape else -1
        if len(x_shape) < 2 or len(flat_shape) != 2 or features < 0 or flat_shape[-1] != features:
            return  # the first view must keep the last dimension (then it flattens the others)
        if len(out_shape) != len(x_shape) or len(y_shape) != 2 or out_shape[-1] != y_shape[-1] or y_shape[-1] < 0:
            return
        if not _same_leading_dims(x, op, self.state.dims):
            return
        new = _linear(x, linear.arg("weight"), linear.arg("bias"), out_type, linear)
        rewriter.replace(op, new)
        rewriter.erase(linear)
        _erase_unused(rewriter, [flatten, *[v.owner for v in op.operands[1:]]])
        count(self.state.ctx, "leading-dims")


def _broadcast_matrix(value: SSAValue) -> SSAValue | None:
    """The 2-D value `value` repeats over its batch dimension, `expand(m, [B, K, N])` seen through
    reshapes that keep its shape, or None."""
    while isinstance(value, OpResult) and isinstance(value.owner, AtenOp) and value.owner.target.data in _RESHAPES:
        source = value.owner.arg(0)
        if not isinstance(source, SSAValue) or _tensor(source) is None or _tensor(source) != _tensor(value):
            return None
        value = source
    expand = value.owner
    if not isinstance(expand, AtenOp) or expand.target.data != "expand.default" or _tensor(value) is None:
        return None
    matrix, sizes = expand.arg(0), expand.arg("size")
    if not isinstance(matrix, SSAValue) or _tensor(matrix) is None or not isinstance(sizes, list) or len(sizes) != 3:
        return None
    shape = _tensor(matrix).get_shape()
    if len(shape) != 2 or any(s not in (d, -1) for s, d in zip(sizes[1:], shape)):
        return None
    return matrix


@dataclass
class BroadcastWeight(RewritePattern):
    """`bmm(x, expand(W, [B, K, N]))` with `W` a constant `(K, N)` matrix: `linear(x, W')`."""

    state: _State

    @op_type_rewrite_pattern
    def match_and_rewrite(self, op: AtenOp, rewriter: PatternRewriter, /):
        if op.target.data != "bmm.default" or len(op.results) != 1:
            return
        x, w, result = op.arg("self"), op.arg("mat2"), _tensor(op.results[0])
        if not isinstance(x, SSAValue) or not isinstance(w, SSAValue) or result is None or _tensor(x) is None:
            return
        source = _broadcast_matrix(w)
        matrix = self.state.matrix(source, result.element_type) if source is not None else None
        if matrix is None or _tensor(x).element_type != result.element_type:
            return
        inner, out = matrix.param.result.type.get_shape()
        if matrix.transposed:
            inner, out = out, inner
        if result.get_shape()[-1] != out or _tensor(x).get_shape()[-1] not in (inner, DYNAMIC):
            return
        weight = self.state.weight(matrix, False, rewriter)
        if weight is None:
            return
        dropped = [v.owner for v in op.operands]
        rewriter.replace(op, _linear(x, weight, None, result, op))
        _erase_unused(rewriter, dropped)
        count(self.state.ctx, "bmm")


_ELEMENTWISE = {
    "add", "sub", "mul", "div", "rsub", "pow", "maximum", "minimum", "where", "masked_fill", "clamp",
    "relu", "gelu", "tanh", "sigmoid", "silu", "hardswish", "hardtanh", "hardsigmoid", "elu", "leaky_relu",
    "neg", "abs", "exp", "log", "sqrt", "rsqrt", "erf", "reciprocal", "dropout", "clone", "contiguous",
    "alias", "detach", "to", "_to_copy", "type_as", "softmax", "_softmax", "log_softmax", "layer_norm",
    "rms_norm",
}
"""Ops whose result has the broadcast shape of their tensor operands."""


@dataclass
class _Dims:
    """Which dimensions of which values are equal, as far as the program shows it: each dimension
    gets a key, the same for two dimensions only when they are equal whenever the program runs.

    A static dimension's key is its size. A dynamic one's is that of the dimension it comes from:
    through elementwise ops (broadcasting: only when every operand that may decide it agrees),
    `linear` and `embedding` (leading dimensions), `unsqueeze`, `arange(end)` (its length is
    `end`), `view`/`reshape`/`expand` to sizes given as `sym_size(u, d)` (a `-1` when every
    other size is the source's); otherwise the dimension itself. That is how a dynamic batch and
    sequence length are known to be the same at GPT-2's every projection."""

    keys: dict[SSAValue, tuple] = field(default_factory=dict[SSAValue, tuple])

    def key(self, value: SSAValue, dim: int):
        if value not in self.keys:
            self.keys[value] = self.compute(value)
        return self.keys[value][dim]

    def size_key(self, size):
        """The key of a size argument: an int, or `sym_size(u, d)`; None when unknown."""
        if isinstance(size, int) and not isinstance(size, bool):
            return ("static", size) if size >= 0 else None
        if isinstance(size, OpResult) and isinstance(size.owner, AtenOp) and size.owner.target.data == "sym_size.int":
            source, dim = size.owner.arg("self"), size.owner.arg("dim")
            if isinstance(source, SSAValue) and _tensor(source) is not None and isinstance(dim, int):
                rank = len(_tensor(source).get_shape())
                if rank and -rank <= dim < rank:
                    return self.key(source, dim % rank)
        return None

    def compute(self, value: SSAValue) -> tuple:
        """The keys of `value`'s dimensions."""
        type_ = _tensor(value)
        if type_ is None:
            return ()
        shape = type_.get_shape()
        own = [("static", d) if d >= 0 else (value, i) for i, d in enumerate(shape)]
        op = value.owner
        if not isinstance(op, AtenOp) or all(d >= 0 for d in shape):
            return tuple(own)
        rank = len(shape)
        for i, d in enumerate(shape):
            if d < 0:
                derived = self._derived(op, value, i, rank)
                if derived is not None:
                    own[i] = derived
        return tuple(own)

    def _derived(self, op: AtenOp, value: SSAValue, i: int, rank: int):
        name = op.op_name
        if name in _ELEMENTWISE and value is op.results[0]:
            found = set()
            for operand in op.operands:
                operand_type = _tensor(operand)
                if operand_type is None:
                    continue
                if len(operand_type.get_shape()) > rank:
                    return None
                axis = i - (rank - len(operand_type.get_shape()))
                if axis < 0 or operand_type.get_shape()[axis] == 1:
                    continue  # broadcast along this dimension
                found.add(self.key(operand, axis))
            return found.pop() if len(found) == 1 else None
        if name == "linear" and i < rank - 1:
            source = op.arg("input")
        elif name == "embedding":
            source = op.arg("indices")
        elif op.target.data in _RESHAPES or op.target.data == "expand.default":
            sizes, source = op.arg(1), op.arg(0)
            if not isinstance(sizes, list) or len(sizes) != rank or not isinstance(source, SSAValue):
                return None
            if sizes[i] != -1:
                return self.size_key(sizes[i])
            source_rank = len(_tensor(source).get_shape())
            if op.target.data == "expand.default":  # -1: the source's size
                shift = rank - source_rank
                return self.key(source, i - shift) if i >= shift else None
            # A reshape to the source's rank whose other sizes are the source's: this one too
            # (the element counts are equal).
            if source_rank != rank or any(
                    j != i and (self.size_key(size) is None or self.size_key(size) != self.key(source, j))
                    for j, size in enumerate(sizes)):
                return None
            source = op.arg(0)
        elif op.target.data == "unsqueeze.default":
            source, at = op.arg(0), op.arg(1)
            if not isinstance(at, int) or i == at % rank:
                return None
            i = i if i < at % rank else i - 1
        elif op.target.data in ("arange.default", "arange.start") and i == 0:
            start = 0 if op.target.data == "arange.default" else op.arg("start")
            step = op.arg("step", 1) if op.target.data == "arange.start" else 1
            return self.size_key(op.arg("end")) if start == 0 and step == 1 else None
        else:
            return None
        if not isinstance(source, SSAValue) or _tensor(source) is None or i >= len(_tensor(source).get_shape()):
            return None
        return self.key(source, i)


def _same_leading_dims(x: SSAValue, view: AtenOp, dims: _Dims) -> bool:
    """Whether the result of `view` has `x`'s leading dimensions: its sizes are `x`'s, as static
    sizes or `sym_size`s of dimensions known to be equal to them (one of them perhaps `-1`)."""
    x_shape = x.type.get_shape()
    out_shape = view.results[0].type.get_shape()
    rank = len(x_shape)
    if all(d >= 0 for d in x_shape[:-1]) and list(x_shape[:-1]) == list(out_shape[:-1]):
        return True
    sizes = view.arg(1)
    if not isinstance(sizes, list) or len(sizes) != rank:
        return False
    inferred = 0
    for i, size in enumerate(sizes[:-1]):
        if size == -1 and isinstance(size, int):
            inferred += 1
            continue
        key = dims.size_key(size)
        if key is None or key != dims.key(x, i):
            return False
    return inferred <= 1 and (sizes[-1] == out_shape[-1] or (sizes[-1] == -1 and not inferred))


@dataclass(frozen=True)
class NormalizeLinear(QirPass):
    """Rewrite `addmm`/`mm`/`matmul` with a constant weight (and GPT-2's flattening `Conv1D`) into
    `linear.default` with an `(out, in)` parameter, so the whole pipeline sees an `nn.Linear`.

    See the module docstring for the IR before and after, what is rewritten and what is
    left alone. `keep-tied` leaves layers whose weight something else also reads (QAT)."""

    name = "normalize-linear"
    requires = ("float",)

    keep_tied: bool = False

    def apply(self, ctx: Context, op: ModuleOp) -> None:
        state = _State(params_of(ctx), ctx, Mutations.of(op), self.keep_tied)
        for inner in op.walk():  # in program order, so that no dimension's key recurses deeply
            for result in inner.results:  # (a static shape's keys are its sizes: no recursion)
                if isinstance(result.type, TensorType) and not result.type.has_static_shape():
                    state.dims.keys.setdefault(result, state.dims.compute(result))
        PatternRewriteWalker(
            GreedyRewritePatternApplier([LayerForms(state), BroadcastWeight(state), BiasAdd(state),
                                         LeadingDims(state)]),
            walk_reverse=False,
        ).rewrite_module(op)

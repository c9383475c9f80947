"""The xDSL context every qir tool parses and rewrites in.

It knows qir's dialects (loaded lazily, so that `qir-opt --help` never imports
torch) and carries the parameter store: the weights that the IR names with
`aten.param` but does not hold inline. Passes that read or rewrite weights
(fold-bn, convert, lowering) find them through `params_of(ctx)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from xdsl.context import Context

if TYPE_CHECKING:
    from qir.params import ParamStore


def _aten():
    from qir.dialects.aten import Aten

    return Aten


def _quant():
    from qir.dialects.quant import Quant

    return Quant


def _obs():
    from qir.dialects.obs import Obs

    return Obs


def _ref():
    from qir.dialects.ref import Ref

    return Ref


def _custom():
    from qir.dialects.custom import Custom

    return Custom


def _builtin():
    from xdsl.dialects.builtin import Builtin

    return Builtin


def _func():
    from xdsl.dialects.func import Func

    return Func


QIR_DIALECTS = {
    "builtin": _builtin,
    "func": _func,
    "aten": _aten,
    "quant": _quant,
    "obs": _obs,
    "ref": _ref,
    "custom": _custom,
}


@dataclass
class QirContext(Context):
    """An xDSL `Context` that also owns the parameter store of the module it parses."""

    params: "ParamStore | None" = field(default=None)

    def clone(self) -> "QirContext":
        clone = QirContext(
            self.allow_unregistered,
            self._loaded_dialects.copy(),
            self._loaded_ops.copy(),
            self._loaded_attrs.copy(),
            self._loaded_types.copy(),
            self._registered_dialects.copy(),
        )
        clone.params = self.params
        return clone


def register_dialects(ctx: Context) -> None:
    """Register qir's dialects and every backend's (lazily) with any xDSL context."""
    from qir.registry import available_backends, get_backend

    loaders = dict(QIR_DIALECTS)
    for name in available_backends():
        loaders.setdefault(name, lambda name=name: get_backend(name).load_dialect())
    for name, loader in loaders.items():
        if name not in ctx.registered_dialect_names:
            ctx.register_dialect(name, loader)


def make_context(params: "ParamStore | None" = None) -> QirContext:
    """A fresh context with every qir dialect registered and `params` attached."""
    ctx = QirContext()
    register_dialects(ctx)
    if params is None:
        from qir.params import ParamStore

        params = ParamStore()
    ctx.params = params
    return ctx


def params_of(ctx: Context) -> "ParamStore":
    """The parameter store of `ctx`; a plain xDSL context gets an empty one attached."""
    store = getattr(ctx, "params", None)
    if store is None:
        from qir.params import ParamStore

        store = ParamStore()
        ctx.params = store  # type: ignore[attr-defined]
    return store

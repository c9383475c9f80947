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
    """An xDSL `Context` that also owns the parameter store of the module it parses.

    It knows the backends' dialects too: the first time it is asked for an op, type, attribute
    or dialect of a dialect it does not know, it registers every backend's (`qir.registry`), so
    IR naming `x86.conv2d` or a third-party backend's ops parses, whatever the backends are
    called, and nothing of a backend is imported before IR needs it."""

    params: "ParamStore | None" = field(default=None)
    backends_registered: bool = field(default=False)
    """Whether the backends' dialects are registered (done once, on the first unknown name)."""

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
        clone.backends_registered = self.backends_registered
        return clone

    def register_backend_dialects(self) -> None:
        """Register every backend's dialects (those this context does not have already)."""
        if self.backends_registered:
            return
        self.backends_registered = True
        from qir.registry import backend_dialects

        for name, dialect in backend_dialects().items():
            if name not in self._registered_dialects and name not in self._loaded_dialects:
                self.register_dialect(name, lambda dialect=dialect: dialect)

    def _knows(self, dialect: str) -> None:
        """Register the backends' dialects if `dialect` is unknown."""
        if (not self.backends_registered and dialect not in self._registered_dialects
                and dialect not in self._loaded_dialects):
            self.register_backend_dialects()

    def _knows_name(self, name: str) -> None:
        if "." in name:  # `return` looked up before `func.return` is no dialect's
            self._knows(name.split(".", 1)[0])

    def _get_known_op(self, name: str):
        if name not in self._loaded_ops:
            self._knows_name(name)
        return super()._get_known_op(name)

    def get_optional_type(self, name: str):
        if name not in self._loaded_types:
            self._knows_name(name)
        return super().get_optional_type(name)

    def get_optional_attr(self, name: str):
        if name not in self._loaded_attrs:
            self._knows_name(name)
        return super().get_optional_attr(name)

    def get_optional_dialect(self, name: str):
        self._knows(name)
        return super().get_optional_dialect(name)


def register_dialects(ctx: Context) -> None:
    """Register qir's dialects with any xDSL context (lazily: each is imported when IR first
    names it), and the backends' dialects: a `QirContext` finds those when IR first names one, a
    plain xDSL context gets them all now."""
    for name, loader in QIR_DIALECTS.items():
        if name not in ctx.registered_dialect_names:
            ctx.register_dialect(name, loader)
    if isinstance(ctx, QirContext):
        return
    from qir.registry import backend_dialects

    for name, dialect in backend_dialects().items():
        if name not in ctx.registered_dialect_names:
            ctx.register_dialect(name, lambda dialect=dialect: dialect)


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

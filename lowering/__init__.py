"""The backend API: what a backend author imports (`docs/backends.md` is the guide).

    from qir.lowering import Backend, Emission, Emitter, OpCapability, table

    BACKEND = Backend(
        name="my-backend", description="...",
        capabilities=table(OpCapability("ref.matmul", activations=("i8",), float_output=True),
                           config=MY_CONFIG, patterns=[MyFusion()]),
        dialects=(MY_DIALECT,), rules=(Path(__file__).with_name("my.rules"),),
        emission=EMISSION,
    )

and, in the backend's own `pyproject.toml`:

    [project.entry-points."qir.backends"]
    my-backend = "my_package:BACKEND"

qir's public modules, the ones a backend (or any other package built on qir)
imports, are `qir` (the user API), `qir.quantizer` (quantizers, specs, annotation
patterns), `qir.lowering` (this module: the backend contract), `qir.lowering.rules`
(the rule language) and `qir.dialects` with its submodules (the IR vocabulary:
`aten`, `quant`, `obs`, `ref`, `kernel`). Everything else is qir's inside and may
change. Names are imported on first use, so importing this package costs nothing.
"""

from importlib import import_module

_EXPORTS = {
    "Backend": "qir.lowering.backend", "QuantizerFactory": "qir.lowering.backend",
    "BACKEND_ATTR": "qir.lowering.backend", "REQUIRES_ATTR": "qir.lowering.backend",
    "Capabilities": "qir.lowering.capabilities", "OpCapability": "qir.lowering.capabilities",
    "table": "qir.lowering.capabilities",
    "Emission": "qir.emitter", "Emitter": "qir.emitter", "EmitRule": "qir.emitter", "FoldRule": "qir.emitter",
    "torch_dtype": "qir.tensors",
    "register_backend": "qir.registry", "unregister_backend": "qir.registry", "get_backend": "qir.registry",
    "available_backends": "qir.registry", "available_quantizers": "qir.registry", "get_quantizer": "qir.registry",
    "RegistryError": "qir.registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'qir.lowering' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value

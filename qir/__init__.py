"""qir: a quantization compiler for PyTorch on an xDSL IR.

    program = qir.export(model, example_args)      # torch.export + import
    print(program)                                  # the IR, as MLIR text
    program = qir.PassManager("canonicalize,cse").run(program)
    gm = program.to_fx()                            # called like `model`

    prepared = qir.prepare(model, example_args, X86Quantizer())
    prepared(*calibration_batch)
    quantized = qir.convert(prepared)               # Q/DQ form, int8 weights
    low = qir.lower(quantized, backend="x86")       # native int8 kernels
    low = qir.quantize(model, example_args, calibration=batches, backend="x86")   # all in one
    prepared = qir.prepare(model, example_args, custom_modules=qir.CustomModules().keep_float("tokenizer"))

    trainable = qir.prepare_qat(model, example_args, X86Quantizer(x86_config(is_qat=True)))
    ... train it (.train() / .eval() work) ...; quantized = qir.convert(trainable)

Names are imported on first use, so that tools which only need the IR layer
(`qir-opt --help`) do not pay for importing torch.
"""

from importlib import import_module

_EXPORTS = {
    "convert": "qir.api", "prepare": "qir.api", "observed_program": "qir.api", "lower": "qir.api",
    "quantize": "qir.api", "check_against_reference": "qir.api", "prepare_qat": "qir.api",
    "freeze_observers": "qir.training", "freeze_bn_stats": "qir.training", "enable_fake_quant": "qir.training",
    "Target": "qir.target", "parse_target": "qir.target",
    "ParseFailure": "qir.errors", "PassFailure": "qir.errors", "PipelineError": "qir.errors",
    "QirError": "qir.errors", "UnsupportedError": "qir.errors",
    "export": "qir.importer", "import_program": "qir.importer",
    "PassManager": "qir.pass_manager", "QirPass": "qir.pass_manager",
    "STAGES": "qir.program", "Program": "qir.program", "load": "qir.program", "parse": "qir.program",
    "register_pass": "qir.registry", "register_backend": "qir.registry", "get_backend": "qir.registry",
    "get_quantizer": "qir.registry", "available_quantizers": "qir.registry",
    "synchronize_observers": "qir.distributed", "synchronize": "qir.distributed",
    "CustomModules": "qir.custom_modules",
}

__all__ = sorted(_EXPORTS)

_SUBMODULES = ("debug",)
"""Submodules reachable as attributes (`qir.debug.compare`), imported on first use too."""


def __getattr__(name: str):
    if name in _SUBMODULES:
        return import_module(f"qir.{name}")
    if name not in _EXPORTS:
        raise AttributeError(f"module 'qir' has no attribute {name!r}")
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value

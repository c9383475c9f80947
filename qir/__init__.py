"""qir: a quantization compiler for PyTorch on an xDSL IR.

    program = qir.export(model, example_args)      # torch.export + import
    print(program)                                  # the IR, as MLIR text
    program = qir.PassManager("canonicalize").run(program)
    gm = program.to_fx()                            # called like `model`
"""

from qir.api import convert, prepare
from qir.errors import ParseFailure, PassFailure, PipelineError, QirError, UnsupportedError
from qir.importer import export, import_program
from qir.pass_manager import PassManager, QirPass
from qir.program import STAGES, Program, load, parse
from qir.registry import register_pass

__all__ = [
    "STAGES",
    "convert",
    "prepare",
    "ParseFailure",
    "PassManager",
    "QirPass",
    "PassFailure",
    "PipelineError",
    "Program",
    "QirError",
    "UnsupportedError",
    "export",
    "import_program",
    "load",
    "parse",
    "register_pass",
]

# lit configuration: every `.mlir` file in any folder below this one is a test, run by
# its `// RUN:` lines (lit's internal shell: pipes, `not`, `2>&1`, `&&` work).
#
#   qir-opt, qir-translate   the drivers, run by this Python (`python -m qir.tools...`)
#   filecheck, FileCheck     the Python `filecheck` package
#   %python                  this Python
#
# Files under an `Inputs/` folder are data that tests read (`%S/Inputs/x.mlir`), not tests.
import os
import re
import sys

import lit.formats

config.name = "qir"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir"]
config.excludes = ["Inputs", "Output"]
config.test_source_root = os.path.dirname(__file__)

config.environment["PYTHONWARNINGS"] = "ignore"  # deprecation noise would pollute `2>&1` checks
# The CPU torch's kernels are told to be (FBGEMM_ENABLE_INSTRUCTIONS=AVX2 ... runs the tests as on
# an AVX2-only machine, whose u8 x s8 pairs saturate): lowering for the host must see it too.
for name in ("HOME", "PATH", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV",
             "FBGEMM_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY"):
    if name in os.environ:
        config.environment[name] = os.environ[name]

python = sys.executable


def tool(name, command):
    """Replace `name` as a word of a RUN line (not inside a path or a longer name)."""
    pattern = r"(?<![\w./%-])" + re.escape(name) + r"(?![\w./-])"
    config.substitutions.append((pattern, command.replace("\\", "\\\\")))


# Installed extras a test may need (`// REQUIRES: qir-bmm-backend`): the example backend package.
from importlib.metadata import entry_points  # noqa: E402

if any(ep.name == "bmm-int8" for ep in entry_points(group="qir.backends")):
    config.available_features.add("qir-bmm-backend")

config.substitutions.append(("%python", python.replace("\\", "\\\\")))
tool("qir-opt", f"{python} -m qir.tools.qir_opt")
tool("qir-translate", f"{python} -m qir.tools.qir_translate")
tool("filecheck", f"{python} -m filecheck")
tool("FileCheck", f"{python} -m filecheck")

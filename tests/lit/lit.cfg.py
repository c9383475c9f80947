# lit configuration: every .mlir file below this folder is a FileCheck test.
import os
import shutil
import sys

import lit.formats

config.name = "qir"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir"]
config.test_source_root = os.path.dirname(__file__)
config.environment["PYTHONWARNINGS"] = "ignore"
for name in ("HOME", "PATH", "TMPDIR"):
    if name in os.environ:
        config.environment[name] = os.environ[name]

python = sys.executable
config.substitutions.append(("qir-opt", f"{python} -m qir.tools.qir_opt"))
config.substitutions.append(("qir-translate", f"{python} -m qir.tools.qir_translate"))
config.substitutions.append(("filecheck", shutil.which("filecheck") or f"{python} -m filecheck"))

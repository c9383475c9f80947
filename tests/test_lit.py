"""The lit/FileCheck suite (`tests/lit`), run as one pytest test."""

import subprocess
import sys
from pathlib import Path


def test_lit_suite():
    suite = Path(__file__).parent / "lit"
    result = subprocess.run([sys.executable, "-c", "from lit.main import main; main()", str(suite), "-q", "-j", "2"],
                            capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout + result.stderr

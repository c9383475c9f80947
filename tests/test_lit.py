"""The lit/FileCheck suite (`tests/lit`, every folder), run as one pytest test.

Run it alone, as compiler engineers do: `lit tests/lit -v` (or
`python -c "from lit.main import main; main()" tests/lit -v`: the lit package
has no `python -m lit`).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SUITE = Path(__file__).parent / "lit"


def _lit(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "import sys; from lit.main import main; sys.argv[0] = 'lit'; main()"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=1800)


@pytest.mark.slow  # the fast tier runs lit directly (README)
def test_lit_suite():
    jobs = str(max(2, min(8, os.cpu_count() or 2)))
    result = _lit(str(SUITE), "-q", "-v", "-j", jobs)
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]


def test_lit_finds_tests_in_every_folder():
    """A test added in a new folder is run without touching the configuration."""
    found = _lit(str(SUITE), "--show-tests")
    assert found.returncode == 0, found.stderr
    listed = {line.split("::")[-1].strip().split("/")[0] for line in found.stdout.splitlines() if "::" in line}
    folders = {p.name for p in SUITE.iterdir() if p.is_dir() and any(p.rglob("*.mlir"))} - {"Output", "Inputs"}
    assert folders <= listed, folders - listed

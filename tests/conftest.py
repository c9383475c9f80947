import sys
from pathlib import Path

# The test model zoo (`zoo.models`) is imported from the tests folder.
sys.path.insert(0, str(Path(__file__).parent))

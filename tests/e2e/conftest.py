import sys
from pathlib import Path

HERE = Path(__file__).parent
# the e2e helpers, and the demo loader of `make run` (scripts/demo/demo_loader.py)
sys.path[:0] = [str(HERE), str(HERE.parents[1] / "scripts" / "demo")]

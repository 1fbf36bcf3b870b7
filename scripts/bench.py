"""reglab performance benchmark: framework overhead, penalty cost, start-up and sweeps.

The code is the package ``scripts/bench/`` (its docstring describes each section); this
file runs it:

    python scripts/bench.py --help
    python scripts/bench.py --repeats 5 --wait-for-quiet 600 --json outputs/bench.json
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/: the package bench/
    from bench.cli import main

    main()

"""``python -m bench`` with ``scripts/`` on the path: the same as ``python scripts/bench.py``."""

from bench.cli import main

main()

"""Optuna search over reglab runs; see reglab.search (same as `reglab-search`)."""

from reglab.search import main

if __name__ == "__main__":
    main()

"""reglab.entry: the run's modules are imported once, frozen once, and collection resumes."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import gc, sys
from reglab.entry import import_run_modules

gc.disable()  # as the entry points do
import_run_modules(with_mlflow=False)
frozen = gc.get_freeze_count()
assert gc.isenabled(), "the collector must be back on for the run"
assert "lightning" in sys.modules and "reglab.module" in sys.modules and "mlflow" not in sys.modules
assert frozen > 100_000, frozen  # the imported objects are out of the collector's way

later = [[i] for i in range(1000)]  # a run's objects, after the freeze
import_run_modules(with_mlflow=False)
assert gc.get_freeze_count() == frozen, "frozen again: later garbage would never be freed"
gc.disable()
import_run_modules(with_mlflow=True)  # another run wanting mlflow: imported now
assert "mlflow" in sys.modules and gc.isenabled()
print("ok")
"""


def test_run_modules_are_imported_and_frozen_once_and_collection_resumes():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"

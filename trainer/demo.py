"""`python -m trainer.demo`: what `make run` runs, the smoke grid on a local env fleet (kept for old habits).

Equivalent to `shiftgym grid run --preset smoke --out results/run`; extra arguments are passed on
(e.g. `--out elsewhere`, `--no-progress`).
"""

from __future__ import annotations

import sys

from trainer.grid.cli import run_command

if __name__ == "__main__":
    args = sys.argv[1:]
    defaults = ([] if "--preset" in args or any(not a.startswith("-") for a in args) else ["--preset", "smoke"])
    defaults += [] if "--out" in args else ["--out", "results/run"]
    run_command.main(args=[*defaults, *args], prog_name="python -m trainer.demo")

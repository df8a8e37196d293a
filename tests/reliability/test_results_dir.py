"""A results directory that cannot be written, or a disk that fills up, must give a clear message (issue 9).

The run directory that cannot be created gets a one-line CLI error; a write that fails mid-run names the results
store and says how to resume (what was committed stays).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


from trainer.local_servers import REPO


def test_a_results_directory_that_cannot_be_created_is_one_line_naming_it(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    out = blocker / "run"  # cannot be created, for root too
    run = subprocess.run([sys.executable, "-m", "trainer.cli", "grid", "run", "--preset", "smoke", "--out", str(out)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert str(out) in run.stderr and "Traceback" not in run.stderr, run.stderr[-2000:]


def test_a_full_disk_names_the_results_store_and_says_it_is_full(tmp_path):
    # RLIMIT_FSIZE makes writes past 64 KiB fail with EFBIG, as a full disk does, without needing a small filesystem.
    script = textwrap.dedent(f"""
        import resource, signal
        from trainer.grid.store import ResultsStore
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))
        store = ResultsStore.in_run({str(tmp_path)!r})
        for i in range(100):
            store.set_meta(f"key{{i}}", "x" * 10000)
    """)
    run = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert str(tmp_path) in last and "full" in last, last

"""The README's task table and Python example stay true."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from env_server.__main__ import TABLE_BEGIN, TABLE_END, cli
from tests.servers import ServerThread

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_task_table_matches_the_tasks_command():
    printed = CliRunner().invoke(cli, ["tasks"])
    assert printed.exit_code == 0, printed.output
    section = README.read_text().split(TABLE_BEGIN)[1].split(TABLE_END)[0].strip()
    assert section == printed.output.strip(), "README task table is stale: run `python -m env_server tasks --write README.md`"


def test_the_python_example_runs_against_a_real_server(capsys):
    example = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    with ServerThread("textcraft") as server:
        exec(compile(example, "README.md", "exec"), {"TARGET": server.target})  # noqa: S102 - our own README
        assert server.runtime.open_sessions == 0
    assert "success after" in capsys.readouterr().out

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


def test_the_python_examples_run_against_a_real_server(capsys):
    examples = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(examples) >= 2
    with ServerThread("textcraft") as server:
        namespace = {"TARGET": server.target}  # the examples follow one another, as a reader runs them
        for example in examples:
            exec(compile(example, "README.md", "exec"), namespace)  # noqa: S102 - our own README
        assert server.runtime.open_sessions == 0
    printed = capsys.readouterr().out
    assert "success after" in printed
    assert "completed success" in printed  # the training example played its episode through the pool
    assert "action_format(format=function_call)" in printed and "lexicon" in printed

"""OpenRLHF's own code for the CPU contract tests, loaded past module-level imports that need a GPU stack.

Several OpenRLHF 0.11 functions we must meet live in modules that import vllm or ray at the top
(`trainer/ray/vllm_engine.py`, `trainer/ppo_utils/samples_generator.py`, `cli/train_ppo_ray.py`) or under a
package `__init__` that imports flash_attn (`openrlhf/models`). Neither vllm nor flash_attn installs on a CPU
machine. Rather than fake those packages in `sys.modules`, this module compiles the one function (or the one
`__main__` block) we need straight from the installed file, with its real line numbers, and runs it against the
real objects it refers to; every free name must be supplied, so a new dependency in a later version fails loudly.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import importlib
import io
import sys
import types
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import openrlhf

ROOT = Path(openrlhf.__file__).parent


def source_path(relative: str) -> Path:
    path = ROOT / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} is not in the installed openrlhf {version()}")
    return path


def version() -> str:
    from importlib.metadata import version as dist_version

    return dist_version("openrlhf")


def _find(tree: ast.Module, qualname: str) -> ast.FunctionDef | ast.AsyncFunctionDef:
    scope: Sequence[ast.stmt] = tree.body
    *outer, name = qualname.split(".")
    for part in outer:
        scope = next(n for n in scope if isinstance(n, ast.ClassDef) and n.name == part).body
    for node in scope:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return node
    raise LookupError(f"{qualname} not found")


def _free_names(node: ast.AST) -> set[str]:
    """Names a function reads that it neither binds nor gets from builtins (a conservative over-estimate of
    the bound ones is fine: a missing global still fails at call time)."""
    loads, stores = set(), set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            (loads if isinstance(sub.ctx, ast.Load) else stores).add(sub.id)
        elif isinstance(sub, ast.arg):
            stores.add(sub.arg)
        elif isinstance(sub, (ast.Import, ast.ImportFrom)):
            stores.update((a.asname or a.name).split(".")[0] for a in sub.names)
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and sub is not node:
            stores.add(sub.name)
    return loads - stores - set(dir(builtins))


def load_function(relative: str, qualname: str, namespace: Mapping[str, Any]) -> Callable[..., Any]:
    """The function `qualname` ("func" or "Class.method") of `openrlhf/<relative>`, compiled from the installed
    source, its globals being `namespace` (which must cover every global name it uses; decorators are dropped)."""
    path = source_path(relative)
    tree = ast.parse(path.read_text(), filename=str(path))
    node = _find(tree, qualname)
    missing = _free_names(node) - set(namespace)
    if missing:
        raise NameError(f"{relative}:{qualname} uses globals {sorted(missing)} not given to load_function")
    node.decorator_list = []
    module = ast.Module(body=[node], type_ignores=[])
    scope: dict[str, Any] = {"__name__": f"openrlhf_source.{relative}", **namespace}
    exec(compile(module, str(path), "exec"), scope)  # noqa: S102 - OpenRLHF's own code, from the installed wheel
    function = scope[node.name]
    if hasattr(builtins, node.name):  # a method named like a builtin (print) must still call the builtin
        del scope[node.name]
    return function


def main_block(relative: str) -> list[ast.stmt]:
    """The statements under `if __name__ == "__main__":` of `openrlhf/<relative>`."""
    tree = ast.parse(source_path(relative).read_text())
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            return node.body
    raise LookupError(f"{relative} has no __main__ block")


def run_train_ppo_ray_cli(argv: Sequence[str]) -> tuple[int, str, Any]:
    """`python -m openrlhf.cli.train_ppo_ray ARGV`'s own `__main__` block: the real parser and the real checks
    after it, run up to the `train(args)` call, which is captured instead of starting Ray.

    Returns (exit code, stdout and stderr, the hierarchical args train() would get, or None when argparse exited).
    """
    path = source_path("cli/train_ppo_ray.py")
    module = ast.Module(body=main_block("cli/train_ppo_ray.py"), type_ignores=[])
    captured: list[Any] = []
    scope: dict[str, Any] = {"__name__": "__main__", "argparse": importlib.import_module("argparse"),
                             "datetime": importlib.import_module("datetime").datetime, "train": captured.append}
    out = io.StringIO()
    saved = sys.argv
    sys.argv = ["train_ppo_ray", *argv]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            exec(compile(module, str(path), "exec"), scope)  # noqa: S102 - as above
    except SystemExit as done:
        code = int(done.code or 0)
    finally:
        sys.argv = saved
    return code, out.getvalue(), captured[0] if captured else None


@contextlib.contextmanager
def _bare_package(name: str) -> Iterator[None]:
    """Make `name` importable as a package without running its `__init__` (restored afterwards)."""
    saved = {k: v for k, v in sys.modules.items() if k == name or k.startswith(name + ".")}
    package = types.ModuleType(name)
    package.__path__ = [str(ROOT / name.split(".", 1)[1].replace(".", "/"))]
    sys.modules[name] = package
    try:
        yield
    finally:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]
        sys.modules.update(saved)


def load_module_without_package_init(name: str) -> types.ModuleType:
    """A real OpenRLHF module (e.g. `openrlhf.models.loss`) whose package `__init__` imports a GPU-only package:
    the module's own file and its own imports run unchanged; only the package `__init__` is skipped, and
    `sys.modules` is left as it was."""
    package = name.rsplit(".", 1)[0]
    with _bare_package(package):
        return importlib.import_module(name)

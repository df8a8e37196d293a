"""Print pinned requirements from pyproject.toml, one per line: the core dependencies and one extra (`server` by
default), plus with `--build` the build system's requirements (to build the project's own wheel offline).

The image's requirement stage and the offline test's wheelhouse both read this, so the two never list different things.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def requirements(pyproject: Path = ROOT / "pyproject.toml", extra: str = "server", build: bool = False) -> list[str]:
    data = tomllib.loads(pyproject.read_text())
    project = data["project"]
    found = [*project["dependencies"], *project["optional-dependencies"][extra]]
    if build:
        found += data["build-system"]["requires"]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--extra", default="server", help="the optional-dependencies group (default: server)")
    parser.add_argument("--build", action="store_true", help="also the build system's requirements")
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    args = parser.parse_args()
    print("\n".join(requirements(args.pyproject, args.extra, args.build)))


if __name__ == "__main__":
    main()

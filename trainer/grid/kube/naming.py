"""Names and labels of a grid run's objects: every one carries its run, and its stage or cell, so a restarted runner
finds what it started and `grid delete` finds everything."""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "shiftgym.io/"
RUN = PREFIX + "grid-run"
STAGE = PREFIX + "stage"  # a training node's id
CELL = PREFIX + "cell"  # an evaluation cell's key
ATTEMPT = PREFIX + "attempt"
ROLE = PREFIX + "role"  # "stage" or "cell": which of the two labels above the object has
PART_OF = "app.kubernetes.io/part-of"
MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "shiftgym-grid"
# Object names end in "-<role letter><id 12>-<attempt>"; KubeRay derives longer names (RayCluster, its head Service,
# the submitter Job) from a RayJob's, so a run name stays short.
MAX_RUN_NAME = 20
_RUN_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
ID_CHARS = 12


class BadRunName(ValueError):
    pass


def check_run_name(name: str) -> str:
    if len(name) > MAX_RUN_NAME or not _RUN_NAME.match(name):
        raise BadRunName(f"bad run name {name!r}: use at most {MAX_RUN_NAME} lowercase letters, digits and '-', "
                         "starting and ending with a letter or digit")
    return name


def run_name_from(text: str) -> str:
    """A valid run name made from free text (a run directory's name): lowercase, '-' for anything else, trimmed."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:MAX_RUN_NAME].strip("-")
    return slug or "grid"


@dataclass(frozen=True, slots=True)
class Workload:
    """Which stage or cell of which run, and which attempt at it: the identity behind a name and its labels."""

    run: str
    role: str  # "stage" | "cell"
    id: str  # node id or cell key
    attempt: int

    @property
    def name(self) -> str:
        return f"sg-{self.run}-{self.role[0]}{self.id[:ID_CHARS]}-{self.attempt}"

    @property
    def config_name(self) -> str:
        """The ConfigMap holding the workload's files."""
        return self.name + "-files"

    def labels(self) -> dict[str, str]:
        return {RUN: self.run, ROLE: self.role, (STAGE if self.role == "stage" else CELL): self.id,
                ATTEMPT: str(self.attempt), PART_OF: "shiftgym", MANAGED_BY: MANAGER}

    @classmethod
    def from_labels(cls, labels: dict[str, str]) -> "Workload | None":
        """The identity of an object this module labelled; None for anything else."""
        role = labels.get(ROLE)
        key = STAGE if role == "stage" else CELL if role == "cell" else None
        if key is None or RUN not in labels or key not in labels or not labels.get(ATTEMPT, "").isdigit():
            return None
        return cls(labels[RUN], role, labels[key], int(labels[ATTEMPT]))  # type: ignore[arg-type]


def run_selector(run: str) -> str:
    return f"{RUN}={run}"


def item_selector(run: str, role: str, item_id: str) -> str:
    return f"{RUN}={run},{STAGE if role == 'stage' else CELL}={item_id}"

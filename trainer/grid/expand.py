"""A grid spec expanded into checkpoints (training nodes) and evaluation cells, plus the views the report reads.

Nodes and cells are content-addressed: a node's id hashes its policy, its parent and its stage (and the training
settings), a cell's key hashes everything that decides its episodes. So a stage two plans share (the first stage of
a sequential order is the cross-env run on that env) trains once, a cell two axes share runs once, and a changed
setting gets new ids instead of reusing stale results. The expansion is a pure function of the spec: the report
rebuilds it from the spec kept in the results store.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from trainer.grid.spec import GridSpec, Stage, WarmStart

NodeKind = Literal["base", "warm_start", "grpo"]


def _digest(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Node:
    """A checkpoint: a base policy, a warm start on top of one, or a GRPO stage on top of one."""

    id: str
    kind: NodeKind
    policy: str  # the base policy it descends from
    parent: str | None
    label: str  # e.g. "tiny > babyai:easy > textcraft:easy"
    stage: Stage | None = None
    steps: int = 0
    warm_start: WarmStart | None = None
    depth: int = 0


@dataclass(frozen=True, slots=True)
class Cell:
    """One evaluation: a policy (checkpoint) on held-out tasks of one env, difficulty and interface, k samples each."""

    key: str
    policy: str
    node: str | None  # None for scripted policies (oracle, random)
    label: str  # the checkpoint's label, or the policy name
    env: str
    split: str
    difficulty: str
    interface: str
    tasks: int
    k: int
    seed: int
    max_turns: int  # 0: the environment's default

    def describe(self) -> dict[str, Any]:
        return {"policy": self.policy, "node": self.node, "label": self.label, "env": self.env, "split": self.split,
                "difficulty": self.difficulty, "interface": self.interface, "tasks": self.tasks, "k": self.k,
                "seed": self.seed, "max_turns": self.max_turns}


@dataclass
class Views:
    """Which cell answers which question of the report (cell keys)."""

    # (policy, env, difficulty) -> key: every baseline policy on every env
    reference: dict[tuple[str, str, str], str] = field(default_factory=dict)
    # (policy, env, regime) -> {test difficulty: key}; regime "base" is the untrained policy
    difficulty: dict[tuple[str, str, str], dict[str, str]] = field(default_factory=dict)
    # policy -> {train env | "base": {test env: key}}
    transfer: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    # (policy, order) -> [after stage j: {env: key}], with the base row first
    sequential: dict[tuple[str, tuple[str, ...]], list[dict[str, str]]] = field(default_factory=dict)
    # (policy, order) -> {env: key} of the mixture trained on the same data
    mixture: dict[tuple[str, tuple[str, ...]], dict[str, str]] = field(default_factory=dict)
    # (policy, env) -> {"base" | "trained": {interface: key}}, and the interface trained on
    interface: dict[tuple[str, str], dict[str, dict[str, str]]] = field(default_factory=dict)
    interface_trained_on: str = "original"
    # plan name -> {env: {difficulty: key}}
    plans: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    # (policy, env) -> key: trained policies before RL and the random row on evaluation.signal_tasks tasks
    signal: dict[tuple[str, str], str] = field(default_factory=dict)


@dataclass
class Grid:
    spec: GridSpec
    nodes: dict[str, Node] = field(default_factory=dict)
    cells: dict[str, Cell] = field(default_factory=dict)
    views: Views = field(default_factory=Views)

    def lineage(self, node_id: str) -> list[Node]:
        """The node and its ancestors, root first."""
        chain = []
        current: str | None = node_id
        while current is not None:
            chain.append(self.nodes[current])
            current = self.nodes[current].parent
        return chain[::-1]

    def training_order(self) -> list[Node]:
        """Nodes that some cell needs (with their ancestors), parents before children, shallow first."""
        needed: set[str] = set()
        for cell in self.cells.values():
            if cell.node:
                needed.update(n.id for n in self.lineage(cell.node))
        return sorted((self.nodes[n] for n in needed), key=lambda n: (n.depth, n.label, n.id))


class _Builder:
    def __init__(self, spec: GridSpec) -> None:
        self.spec = spec
        self.grid = Grid(spec)
        self._training = spec.training.model_dump(mode="json", exclude={"warm_start", "launch"})
        self._budget = spec.budget.model_dump(mode="json")

    # --- nodes -----------------------------------------------------------------------------------------

    def _add(self, node: Node) -> str:
        self.grid.nodes.setdefault(node.id, node)
        return node.id

    def base(self, policy: str) -> str:
        body = {"kind": "base", "policy": policy, "spec": self.spec.policies[policy].model_dump(mode="json")}
        return self._add(Node(_digest(body), "base", policy, None, policy))

    def warm(self, policy: str, warm: WarmStart | None) -> str:
        root = self.base(policy)
        if warm is None:
            return root
        body = {"kind": "warm_start", "parent": root, "warm_start": warm.model_dump(mode="json"),
                "budget": self._budget}
        label = f"{policy}+bc"
        return self._add(Node(_digest(body), "warm_start", policy, root, label, warm_start=warm, depth=1))

    def start(self, policy: str) -> str:
        """Where the axes' plans begin: the base policy, warm-started when training.warm_start says so."""
        return self.warm(policy, self.spec.training.warm_start)

    def stage(self, parent: str, stage: Stage) -> str:
        up = self.grid.nodes[parent]
        steps = stage.steps or self.spec.training.steps * len(stage.envs)
        body = {"kind": "grpo", "parent": parent, "stage": stage.model_dump(mode="json", exclude={"steps"}),
                "steps": steps, "training": self._training, "budget": self._budget,
                "max_turns": {e: self.max_turns(e) for e in stage.envs}}
        name = "+".join(stage.envs) + f":{stage.difficulty}"
        if stage.interface != "original":
            name += f"@{stage.interface}"
        return self._add(Node(_digest(body), "grpo", up.policy, parent, f"{up.label} > {name}", stage=stage,
                              steps=steps, depth=up.depth + 1))

    def chain(self, parent: str, stages: list[Stage]) -> list[str]:
        ids = []
        for stage in stages:
            parent = self.stage(parent, stage)
            ids.append(parent)
        return ids

    # --- cells -----------------------------------------------------------------------------------------

    def max_turns(self, env: str) -> int:
        return self.spec.envs[env].max_turns or 0

    def cell(self, policy: str, node: str | None, env: str, difficulty: str, interface: str = "original",
             tasks: int = 0) -> str:
        ev = self.spec.evaluation
        tasks = tasks or ev.tasks  # the signal cells ask for more
        label = self.grid.nodes[node].label if node else policy
        body = {"policy": policy if node is None else None, "kind": self.spec.policies[policy].kind,
                "policy_spec": self.spec.policies[policy].model_dump(mode="json"), "node": node, "env": env,
                "split": self.spec.test_split(env), "difficulty": difficulty, "interface": interface,
                "tasks": tasks, "k": ev.k, "seed": ev.seed, "max_turns": self.max_turns(env),
                "budget": self._budget}
        key = _digest(body)
        self.grid.cells.setdefault(key, Cell(key, policy, node, label, env, self.spec.test_split(env), difficulty,
                                             interface, tasks, ev.k, ev.seed, self.max_turns(env)))
        return key

    def policy_cell(self, policy: str, env: str, difficulty: str, interface: str = "original", tasks: int = 0) -> str:
        """The untrained policy's cell (warm-started when the spec says so); scripted policies have no node."""
        node = self.start(policy) if self.spec.policies[policy].trainable else None
        return self.cell(policy, node, env, difficulty, interface, tasks)

    # --- axes ------------------------------------------------------------------------------------------

    def expand(self) -> Grid:
        spec, views = self.spec, self.grid.views
        for policy in spec.baseline_policies:
            for env in spec.envs:
                for difficulty in spec.evaluation.difficulties:
                    views.reference[(policy, env, difficulty)] = self.policy_cell(policy, env, difficulty)
        self._signal()
        for policy in spec.trained_policies:
            self._difficulty(policy)
            self._cross_env(policy)
            self._sequential(policy)
            self._interface(policy)
        for plan in spec.plans:
            last = self.chain(self.warm(plan.policy, plan.warm_start), list(plan.stages))[-1]
            views.plans[plan.name] = {env: {d: self.cell(plan.policy, last, env, d)
                                            for d in spec.evaluation.difficulties} for env in spec.envs}
        return self.grid

    def _signal(self) -> None:
        tasks = self.spec.evaluation.signal_tasks
        randoms = [p for p in self.spec.baseline_policies if self.spec.policies[p].kind == "random"]
        if not tasks or not randoms or not self.spec.trained_policies:
            return
        difficulty = self.spec.evaluation.difficulties[0]
        for policy in [*self.spec.trained_policies, randoms[0]]:
            for env in self.spec.envs:
                self.grid.views.signal[(policy, env)] = self.policy_cell(policy, env, difficulty, tasks=tasks)

    def _difficulty(self, policy: str) -> None:
        axis = self.spec.axes.difficulty
        if axis is None:
            return
        for env in axis.envs:
            self.grid.views.difficulty[(policy, env, "base")] = {
                d: self.policy_cell(policy, env, d) for d in axis.test}
            for regime in axis.regimes:
                if regime == "easy_then_hard":
                    stages = [Stage(envs=[env], difficulty="easy"), Stage(envs=[env], difficulty="hard")]
                else:
                    stages = [Stage(envs=[env], difficulty=regime)]
                last = self.chain(self.start(policy), stages)[-1]
                self.grid.views.difficulty[(policy, env, regime)] = {
                    d: self.cell(policy, last, env, d) for d in axis.test}

    def _cross_env(self, policy: str) -> None:
        axis = self.spec.axes.cross_env
        if axis is None:
            return
        tests = axis.test or list(self.spec.envs)
        matrix = {"base": {t: self.policy_cell(policy, t, axis.difficulty) for t in tests}}
        for env in axis.train:
            node = self.stage(self.start(policy), Stage(envs=[env], difficulty=axis.difficulty))
            matrix[env] = {t: self.cell(policy, node, t, axis.difficulty) for t in tests}
        self.grid.views.transfer[policy] = matrix

    def _sequential(self, policy: str) -> None:
        axis = self.spec.axes.sequential
        if axis is None:
            return
        for order in axis.orders:
            key = (policy, tuple(order))
            rows = [{env: self.policy_cell(policy, env, axis.difficulty) for env in order}]
            for node in self.chain(self.start(policy), [Stage(envs=[e], difficulty=axis.difficulty) for e in order]):
                rows.append({env: self.cell(policy, node, env, axis.difficulty) for env in order})
            self.grid.views.sequential[key] = rows
            if axis.mixture:
                # The same data as the order: each env's stage tasks, interleaved, in as many steps in all.
                mix = self.stage(self.start(policy), Stage(envs=sorted(order), difficulty=axis.difficulty))
                self.grid.views.mixture[key] = {env: self.cell(policy, mix, env, axis.difficulty) for env in order}

    def _interface(self, policy: str) -> None:
        axis = self.spec.axes.interface
        if axis is None:
            return
        self.grid.views.interface_trained_on = axis.train
        for env in axis.envs:
            node = self.stage(self.start(policy), Stage(envs=[env], difficulty=axis.difficulty, interface=axis.train))
            tests = axis.test_interfaces()
            self.grid.views.interface[(policy, env)] = {
                "base": {i: self.policy_cell(policy, env, axis.difficulty, i) for i in tests},
                "trained": {i: self.cell(policy, node, env, axis.difficulty, i) for i in tests},
            }
            for baseline in self.spec.baseline_policies:
                if not self.spec.policies[baseline].trainable:
                    self.grid.views.interface[(baseline, env)] = {
                        "base": {i: self.policy_cell(baseline, env, axis.difficulty, i) for i in tests}}


def expand(spec: GridSpec) -> Grid:
    return _Builder(spec).expand()

"""The `shiftgym grid run` options of the kubernetes backend (only meaningful with `--backend kubernetes`)."""

from __future__ import annotations

from typing import Any, Callable

import click

OPTIONS = [
    click.option("--namespace", default="shiftgym", show_default=True,
                 help="Namespace of the env Services and of the run's workloads."),
    click.option("--context", default=None, help="kubeconfig context (default: the current one)."),
    click.option("--kubeconfig", default=None, type=click.Path(dir_okay=False),
                 help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config; in a pod, its service account)."),
    click.option("--image", default=None, help="The trainer image the workloads run (Dockerfile target trainer)."),
    click.option("--overlay", type=click.Choice(["gpu-job", "rayjob"]), default="gpu-job", show_default=True,
                 help="GRPO stages as Jobs on one GPU node (gpu-job) or KubeRay RayJobs over several (rayjob)."),
    click.option("--max-parallel", type=click.IntRange(min=1), default=4, show_default=True,
                 help="Workloads (stages and cells) running at once."),
    click.option("--retries", type=click.IntRange(min=0), default=2, show_default=True,
                 help="New attempts after a failed stage or cell before it is recorded as failed."),
    click.option("--run-name", default=None,
                 help="Labels every object of the run (`grid delete RUN`); default: from --out, kept for resumes."),
    click.option("--checkpoints-pvc", default=None,
                 help="PersistentVolumeClaim the stages write checkpoints to (default: the overlay's)."),
    click.option("--checkpoints-subpath", default=None,
                 help="Directory inside the claim for this run's checkpoints (default: shiftgym/RUN)."),
    click.option("--request-timeout", type=click.FloatRange(min=1), default=30.0, show_default=True,
                 help="Seconds any one API request may take."),
    click.option("--k8s-dir", default=None, type=click.Path(file_okay=False, exists=True),
                 help="The k8s/ folder whose overlays the workloads are built from (default: this checkout's)."),
]
NAMES = ("namespace", "context", "kubeconfig", "image", "overlay", "max_parallel", "retries", "run_name",
         "checkpoints_pvc", "checkpoints_subpath", "request_timeout", "k8s_dir")


def kube_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(OPTIONS):
        command = option(command)
    return command

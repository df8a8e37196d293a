"""`python -m ops write|check|validate`: generate the k8s/ files from ops/, check they are current, and validate
rendered overlays offline (schemas, security policy, wiring)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ops import generate, policy, validate, wiring


@click.group()
def cli() -> None:
    """ShiftGym's Kubernetes manifests, dashboard and alerts."""


@cli.command()
def write() -> None:
    """Write every generated file (env server manifests, Grafana dashboard, PrometheusRule)."""
    for path in generate.write():
        click.echo(f"wrote {path.relative_to(generate.REPO)}")


@cli.command()
def check() -> None:
    """Fail if a generated file differs from what ops/ generates now."""
    stale = generate.stale()
    if stale:
        names = ", ".join(str(p.relative_to(generate.REPO)) for p in stale)
        raise click.ClickException(f"stale generated files: {names}; run `python -m ops write`")
    click.echo(f"{len(generate.files())} generated files are current")


@cli.command("validate")
@click.argument("overlays", nargs=-1, type=click.Path(exists=True, file_okay=False, path_type=Path))
def validate_cmd(overlays: tuple[Path, ...]) -> None:
    """Render OVERLAYS (default: every k8s/overlays/*) and check schemas, policy and wiring."""
    problems = 0
    for overlay in overlays or tuple(validate.overlays()):
        try:
            docs = validate.render(overlay)
        except validate.RenderError as err:
            raise click.ClickException(str(err)) from None
        found = [f"[{v}] {e}" for v in validate.KUBERNETES_VERSIONS for e in validate.errors(docs, v)]
        found += policy.violations(docs) + wiring.violations(docs)
        for line in found:
            click.echo(f"{overlay}: {line}", err=True)
        click.echo(f"{overlay}: {len(docs)} objects, {len(found)} problems")
        problems += len(found)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    cli(prog_name="python -m ops")

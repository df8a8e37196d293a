"""Command line: `python -m env_server serve --env babyai --port 50051 --metrics-port 9100`."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

import click
import uvloop

from env_server import logs, registry
from env_server.errors import EnvServerError
from env_server.metrics import ServerMetrics
from env_server.runtime import Limits
from env_server.security import ServerSecurity, load_tokens
from env_server.server import build_server

log = logging.getLogger("env_server")
TABLE_BEGIN, TABLE_END = "<!-- task-table:begin -->", "<!-- task-table:end -->"
_DEFAULTS = Limits()


@click.group()
def cli() -> None:
    """ShiftGym environment server."""


@cli.command()
@click.option("--env", "env_name", required=True, help=f"Environment to serve: {', '.join(registry.names(True))}.")
@click.option("--host", default="0.0.0.0", show_default=True, help="Address to bind.")
@click.option("--port", default=50051, show_default=True, help="gRPC port (0 picks a free one).")
@click.option("--metrics-port", default=9100, show_default=True, help="Prometheus /metrics port (-1 to disable).")
@click.option("--metrics-host", default=None, help="Address /metrics binds to.  [default: --host]")
@click.option("--max-sessions", default=_DEFAULTS.max_sessions, show_default=True)
@click.option("--max-sessions-per-client", default=_DEFAULTS.max_sessions_per_client, show_default=True,
              help="Open sessions one client (mTLS subject, token name or peer address) may hold; 0: no quota.")
@click.option("--idle-ttl-s", default=_DEFAULTS.idle_ttl_s, show_default=True, help="Close sessions untouched this long.")
@click.option("--finished-ttl-s", default=_DEFAULTS.finished_ttl_s, show_default=True,
              help="Keep finished episodes this long for retried steps.")
@click.option("--max-action-bytes", default=_DEFAULTS.max_action_bytes, show_default=True)
@click.option("--env-threads", default=_DEFAULTS.env_threads, show_default=True, help="Threads running environment code.")
@click.option("--enable-oracle", is_flag=True, help="Answer OracleAction (never on a training server).")
@click.option("--drain-grace-s", default=30.0, show_default=True, help="On SIGTERM, time given to running episodes.")
@click.option("--event-loop", type=click.Choice(["uvloop", "asyncio"]), default="uvloop", show_default=True,
              help="uvloop takes less CPU per message than asyncio's own loop.")
@click.option("--log-level", default="info", show_default=True)
@click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=Path), envvar="SHIFTGYM_TLS_CERT",
              help="PEM certificate (chain) to serve TLS with; needs --tls-key. [env SHIFTGYM_TLS_CERT]")
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path), envvar="SHIFTGYM_TLS_KEY",
              help="PEM private key of --tls-cert. [env SHIFTGYM_TLS_KEY]")
@click.option("--tls-client-ca", type=click.Path(dir_okay=False, path_type=Path), envvar="SHIFTGYM_TLS_CLIENT_CA",
              help="PEM CA bundle: require client certificates it signed (mutual TLS). [env SHIFTGYM_TLS_CLIENT_CA]")
@click.option("--auth-tokens-file", type=click.Path(dir_okay=False, path_type=Path), envvar="SHIFTGYM_AUTH_TOKENS_FILE",
              help="Require `authorization: Bearer TOKEN` on every RPC but health checks; one NAME:TOKEN a line. "
                   "[env SHIFTGYM_AUTH_TOKENS_FILE]")
def serve(env_name: str, host: str, port: int, metrics_port: int, metrics_host: str | None, max_sessions: int,
          max_sessions_per_client: int, idle_ttl_s: float, finished_ttl_s: float, max_action_bytes: int,
          env_threads: int, enable_oracle: bool, drain_grace_s: float, event_loop: str, log_level: str, tls_cert: Path | None, tls_key: Path | None,
          tls_client_ca: Path | None, auth_tokens_file: Path | None) -> None:
    """Serve one environment over gRPC until SIGTERM or SIGINT, then drain and exit 0."""
    logs.configure(log_level)
    limits = Limits(
        max_sessions=max_sessions, max_sessions_per_client=max_sessions_per_client, idle_ttl_s=idle_ttl_s,
        finished_ttl_s=finished_ttl_s, max_action_bytes=max_action_bytes, env_threads=env_threads,
        enable_oracle=enable_oracle,
    )
    try:
        tokens = load_tokens(auth_tokens_file) if auth_tokens_file else {}
        security = ServerSecurity(tls_cert, tls_key, tls_client_ca, tokens)
        run = uvloop.run if event_loop == "uvloop" else asyncio.run
        metrics_address = (metrics_host or host, metrics_port)
        run(_serve(env_name, f"{host}:{port}", metrics_address, limits, drain_grace_s, security))
    except (EnvServerError, OSError, ValueError) as err:
        raise click.ClickException(str(err)) from None


async def _serve(env_name: str, address: str, metrics_address: tuple[str, int], limits: Limits,
                 drain_grace_s: float, security: ServerSecurity) -> None:
    environment = registry.load(env_name)
    metrics = ServerMetrics(environment.spec.name)
    server = await build_server(environment, address, limits, metrics, security)
    await server.start()
    metrics_host, metrics_port = metrics_address
    metrics_bound = metrics.serve(metrics_port, metrics_host) if metrics_port >= 0 else None
    log.info("serving", extra={"env": env_name, "port": server.port, "metrics_port": metrics_bound,
                               "tls": "mutual" if security.tls_client_ca else "on" if security.tls else "off",
                               "auth_tokens": len(security.tokens)})
    # A line tools can wait for; the port is the bound one, also when 0 was asked for.
    print(f"READY port={server.port} metrics_port={metrics_bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("draining", extra={"grace_s": drain_grace_s, "running_episodes": server.runtime.running_episodes})
    await server.drain(drain_grace_s)
    metrics.stop_serving()


@cli.command()
@click.option("--env", "env_names", multiple=True, help="Environments to list (default: all served ones).")
@click.option("--write", "document", type=click.Path(exists=True, dir_okay=False),
              help="Replace the table between the task-table markers of this Markdown file instead of printing.")
def tasks(env_names: tuple[str, ...], document: str | None) -> None:
    """Print task counts per split and difficulty as a Markdown table (the README's table comes from here)."""
    try:
        environments = [registry.load(name) for name in env_names or registry.names()]
    except EnvServerError as err:
        raise click.ClickException(str(err)) from None
    table = task_table(environments)
    if document is None:
        click.echo(table)
        return
    text = Path(document).read_text()
    before, found, rest = text.partition(TABLE_BEGIN)
    _, found_end, after = rest.partition(TABLE_END)
    if not (found and found_end):
        raise click.ClickException(f"{document} has no {TABLE_BEGIN} ... {TABLE_END} markers to write between")
    Path(document).write_text(f"{before}{TABLE_BEGIN}\n{table}\n{TABLE_END}{after}")


def task_table(environments: list) -> str:
    lines = ["| env | split | " + " | ".join(("easy", "medium", "hard")) + " | default max turns |", "|---|---|---|---|---|---|"]
    for env in environments:
        spec = env.spec
        for split in spec.splits:
            counts = [str(split.task_counts.get(d, "-")) for d in ("easy", "medium", "hard")]
            lines.append(f"| {spec.name} | {split.name} | " + " | ".join(counts) + f" | {spec.default_max_turns} |")
    return "\n".join(lines)


@cli.command("adapters-doc")
@click.option("--write", "document_path", type=click.Path(dir_okay=False),
              help="Write the document to this file instead of printing it.")
def adapters_doc(document_path: str | None) -> None:
    """The interface adapters and presets, with an example per environment (docs/adapters.md comes from here)."""
    from env_server.adapters.doc import document

    text = document([registry.load(name) for name in registry.names()])
    if document_path is None:
        click.echo(text, nl=False)
    else:
        Path(document_path).write_text(text)


def main() -> None:
    cli(prog_name="shiftgym-env")


if __name__ == "__main__":
    sys.exit(main())

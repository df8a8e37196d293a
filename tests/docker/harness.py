"""A private Docker engine for the image tests, on a machine with no image registry and no network but loopback.

Debian's docker.io, started by hand with no bridge, no iptables and no IP forwarding (containers run only with
`--network=host` or `--network=none`); a Debian bookworm base image made with debootstrap and `docker import`;
the env server's wheels prepared on the host, since pip inside a build cannot reach an index. The base image and
the wheelhouse are cached between runs, so only the first run pays for them.

    python -m tests.docker.harness    # build the env-server image offline and print its size and build time
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Self

REPO = Path(__file__).resolve().parents[2]
STATE = Path(os.environ.get("SHIFTGYM_DOCKER_STATE", "/var/lib/shiftgym-docker"))  # dockerd's data root lives here
RUN_DIR = Path("/run/shiftgym-docker")  # exec root, socket, pid file, dockerd and build logs
WHEELHOUSES = Path(os.environ.get("SHIFTGYM_WHEELHOUSES", "/var/cache/shiftgym-docker"))
DEBIAN_MIRROR = os.environ.get("SHIFTGYM_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# Debian's client, which speaks BuildKit to its own daemon without the buildx plugin; another `docker` on PATH may not.
DOCKER = "/usr/bin/docker"
DOCKERD = "/usr/sbin/dockerd"
BASE_IMAGE = "shiftgym-base/debian-python:bookworm"
# bookworm's python3 is 3.11, as the project requires; passwd brings useradd.
BASE_PACKAGES = ("python3", "python3-venv", "passwd")
DOCKERD_FLAGS = ("--bridge=none", "--iptables=false", "--ip-forward=false", "--ip-masq=false")


class HarnessError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"[docker-harness {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(args: list[str], timeout_s: float, *, stdin: int | IO[Any] | None = None, env: dict[str, str] | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command to completion within timeout_s; on failure raise with the tail of its output."""
    try:
        done = subprocess.run(args, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout_s, env=env, check=False)
    except subprocess.TimeoutExpired as err:
        tail = (err.output or b"")[-3000:]
        raise HarnessError(f"{' '.join(args[:4])} ... ran past {timeout_s:.0f}s:\n{tail!s}") from None
    if check and done.returncode != 0:
        raise HarnessError(f"{' '.join(args[:6])} ... exited {done.returncode}:\n{done.stdout[-3000:]}")
    return done


def is_root() -> bool:
    return os.geteuid() == 0


def ensure_packages() -> None:
    """Debian's docker.io and debootstrap, installed without starting any service (policy-rc.d says no)."""
    if all(Path(p).exists() for p in (DOCKER, DOCKERD, "/usr/sbin/debootstrap")):
        return
    log("installing docker.io and debootstrap with apt-get")
    policy = Path("/usr/sbin/policy-rc.d")
    made_policy = not policy.exists()
    if made_policy:  # the package's postinst would otherwise start a stock dockerd, bridge and iptables included
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["apt-get", "update", "-q"], 300, env=env)
        run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "docker.io", "debootstrap"], 600, env=env)
    finally:
        if made_policy:
            policy.unlink()


class Engine:
    """dockerd with its own data root, exec root and socket; stopped on exit, and only this one."""

    def __init__(self) -> None:
        self.socket = RUN_DIR / "docker.sock"
        self.pidfile = RUN_DIR / "dockerd.pid"
        self.logfile = RUN_DIR / "dockerd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        return dict(os.environ, DOCKER_HOST=f"unix://{self.socket}", DOCKER_BUILDKIT="1")

    def docker(self, *args: str, timeout_s: float = 60, stdin: int | IO[Any] | None = None,
               check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([DOCKER, *args], timeout_s, stdin=stdin, env=self.env, check=check)

    def __enter__(self) -> Self:
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        (STATE / "data").mkdir(parents=True, exist_ok=True)
        self._stop_leftover()
        args = [DOCKERD, *DOCKERD_FLAGS, "--data-root", str(STATE / "data"), "--exec-root", str(RUN_DIR / "exec"),
                "--host", f"unix://{self.socket}", "--pidfile", str(self.pidfile)]
        log("starting dockerd: " + " ".join(args[1:]))
        with self.logfile.open("wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise HarnessError(f"dockerd exited {self.proc.returncode}:\n{self.log_tail()}")
            if self.docker("version", timeout_s=10, check=False).returncode == 0:
                return self
            time.sleep(0.5)
        self.__exit__()
        raise HarnessError(f"dockerd did not answer on {self.socket} within 60s:\n{self.log_tail()}")

    def _stop_leftover(self) -> None:
        """A dockerd left running on this data root by an interrupted run holds its lock: stop it."""
        with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if cmdline[0].endswith(b"dockerd") and str(STATE / "data").encode() in cmdline:
                log(f"stopping a dockerd left over by an earlier run (pid {pid})")
                os.kill(pid, signal.SIGTERM)
                for _ in range(60):
                    if not Path(f"/proc/{pid}").exists():
                        break
                    time.sleep(0.5)

    def __exit__(self, *exc: object) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        log("stopping dockerd")
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(FileNotFoundError):
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def has_image(self, ref: str) -> bool:
        return self.docker("image", "inspect", ref, check=False).returncode == 0

    def ensure_base_image(self) -> str:
        """Debian bookworm minbase with Python 3.11, made with debootstrap and imported once."""
        if self.has_image(BASE_IMAGE):
            return BASE_IMAGE
        rootfs = STATE / "rootfs.tmp"
        shutil.rmtree(rootfs, ignore_errors=True)
        log(f"debootstrap bookworm ({', '.join(BASE_PACKAGES)}) from {DEBIAN_MIRROR}")
        try:
            debs = STATE / "debs"  # kept: a second debootstrap downloads nothing
            debs.mkdir(parents=True, exist_ok=True)
            run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", f"--cache-dir={debs}",
                 "bookworm", str(rootfs), DEBIAN_MIRROR], 900)
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
                for path in (rootfs / junk).glob("*"):
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
            self.docker("import", "--change", "ENV LANG=C.UTF-8", "--change", 'CMD ["python3"]', "-", BASE_IMAGE,
                        stdin=tar.stdout, timeout_s=300)
            tar.wait(timeout=60)
        finally:
            shutil.rmtree(rootfs, ignore_errors=True)
        return BASE_IMAGE

    def build(self, context: Path, target: str, tag: str, build_args: dict[str, str],
              timeout_s: float = 900) -> float:
        """Build a target from a tar build context, without network; returns the seconds it took."""
        args = ["build", "--network=none", "--progress=plain", "--target", target, "--tag", tag]
        for key, value in build_args.items():
            args += ["--build-arg", f"{key}={value}"]
        start = time.monotonic()
        log(f"building {tag} (target {target}, {', '.join(f'{k}={v}' for k, v in build_args.items())})")
        with context.open("rb") as tar:
            done = self.docker(*args, "-", stdin=tar, timeout_s=timeout_s)
        (RUN_DIR / "build.log").write_text(done.stdout)
        return time.monotonic() - start

    def image_size(self, ref: str) -> int:
        return int(self.docker("image", "inspect", "--format", "{{.Size}}", ref).stdout.strip())

    def prune(self) -> None:
        """Drop untagged images and keep the build cache bounded, since the data root outlives every run."""
        self.docker("image", "prune", "--force", check=False)
        self.docker("builder", "prune", "--force", "--keep-storage", "6gb", timeout_s=300, check=False)


def _requirements(build: bool) -> str:
    args = [sys.executable, str(REPO / "docker" / "requirements.py")] + (["--build"] if build else [])
    return run(args, 60).stdout


def ensure_wheelhouse() -> Path:
    """Wheels of the env server's requirements for this Python, built once per requirement set and kept."""
    requirements = _requirements(build=True)
    no_deps = (REPO / "requirements" / "no-deps.txt").read_text()
    key = hashlib.sha256(f"{sys.version_info[:2]}\n{requirements}\n{no_deps}".encode()).hexdigest()[:16]
    house = WHEELHOUSES / f"wheelhouse-{key}"
    if (house / ".complete").exists():
        return house
    WHEELHOUSES.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix="wheelhouse-", dir=WHEELHOUSES))
    log(f"building the wheelhouse {house.name} (Fast Downward compiles unless pip's cache has it)")
    # Fast Downward's build calls plain `python`: let it find this interpreter's.
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}")
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as listed:
        listed.write(requirements)
        listed.flush()
        pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(building)]
        run([*pip, "-r", listed.name], 1200, env=env)
        run([*pip, "--no-deps", "-r", str(REPO / "requirements" / "no-deps.txt")], 1200, env=env)
    (building / ".complete").touch()
    for old in WHEELHOUSES.glob("wheelhouse-*"):
        if old != building:
            shutil.rmtree(old, ignore_errors=True)
    building.rename(house)
    return house


def _repo_files() -> list[str]:
    """The files `docker build .` would see from a checkout: tracked and untracked-but-not-ignored ones."""
    listed = run(["git", "-C", str(REPO), "ls-files", "-z", "--cached", "--others", "--exclude-standard"], 60)
    return sorted(f for f in listed.stdout.split("\0") if f and (REPO / f).is_file())


def _normalized(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # Same content, same archive: owner and times never bust the build cache.
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    return info


def write_context(out: Path, wheelhouse: Path | None) -> Path:
    """The repository as a tar build context, with the wheelhouse as `wheelhouse/` when given."""
    with tarfile.open(out, "w") as tar:
        for name in _repo_files():
            tar.add(REPO / name, arcname=name, recursive=False, filter=_normalized)
        if wheelhouse is not None:
            for wheel in sorted(wheelhouse.glob("*.whl")):
                tar.add(wheel, arcname=f"wheelhouse/{wheel.name}", filter=_normalized)
    return out


@contextlib.contextmanager
def offline_env_server_image(tag: str, build_args: dict[str, str] | None = None,
                             workdir: Path | None = None) -> Iterator[tuple[Engine, float]]:
    """A running private engine holding the env-server image built offline; yields (engine, build seconds)."""
    ensure_packages()
    with contextlib.ExitStack() as stack:
        tmp = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="shiftgym-docker-")))
        wheelhouse = ensure_wheelhouse()
        context = write_context(tmp / "context.tar", wheelhouse)
        engine = stack.enter_context(Engine())
        base = engine.ensure_base_image()
        args = {"PYTHON_IMAGE": base, "WHEELS": "wheelhouse", **(build_args or {})}
        seconds = engine.build(context, "env-server", tag, args)
        engine.prune()
        yield engine, seconds


def main() -> None:
    if not is_root():
        sys.exit("the Docker harness needs root (apt-get, dockerd, debootstrap)")
    tag = "shiftgym-env-server:offline"
    start = time.monotonic()
    with offline_env_server_image(tag) as (engine, seconds):
        size = engine.image_size(tag)
    print(f"{tag}: built in {seconds:.0f}s ({time.monotonic() - start:.0f}s in all), {size / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()

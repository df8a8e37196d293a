#!/usr/bin/env bash
# Installs the operations tools the k8s/ and monitoring tests need that pip cannot: Prometheus and promtool
# (Debian's `prometheus` package). kubectl, kustomize and kubernetes-validate come from pyproject's `trainer` extra.
# Idempotent: returns at once when the tools are already there. Needs root (or sudo) the first time.
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-ops-tools: no apt-get here; install Prometheus >= 2.42 (prometheus and promtool on PATH)" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
    SUDO="sudo"
fi

# The package ships a service; the tests start their own Prometheus on loopback, so keep the packaged one from
# starting (the same policy-rc.d trick Debian's container images use), and restore the system's own policy after.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod +x "$POLICY"
    trap '$SUDO rm -f "$POLICY"' EXIT
fi

echo "install-ops-tools: installing prometheus (Debian package) ..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
prometheus --version 2>&1 | head -n 1

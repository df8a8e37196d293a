#!/usr/bin/env bash
# `make deploy` / `make undeploy`: build and push the images, apply a k8s/ overlay with them, wait for the rollouts.
#
#   scripts/deploy.sh deploy|undeploy|render    (render: print what deploy would apply; needs no cluster)
#
# Settings (environment variables, or make variables: make deploy REGISTRY=... OVERLAY=gpu-job):
#   REGISTRY     where images are pushed, e.g. ghcr.io/acme/shiftgym (required by deploy unless SKIP_BUILD=1)
#   TAG          image tag (default: the commit, plus -dirty-<time> when the work tree has changes)
#   OVERLAY      k8s/overlays/<OVERLAY>: dev, gpu-job or rayjob (default: dev)
#   NAMESPACE    namespace to deploy into (default: shiftgym)
#   KUBECONTEXT  kubectl context (default: the current one)
#   SKIP_BUILD   1: apply images already in REGISTRY, build and push nothing
#   DOCKER_BUILD_ARGS  extra `docker build` arguments, e.g. "--build-arg PYTHON_IMAGE=mirror/python:3.11-slim"
#   ROLLOUT_TIMEOUT    how long to wait for each Deployment (default: 10m)
# Every failure is one line on stderr and a non-zero exit.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ACTION="${1:-}"
OVERLAY="${OVERLAY:-dev}"
NAMESPACE="${NAMESPACE:-shiftgym}"
KUBECONTEXT="${KUBECONTEXT:-}"
REGISTRY="${REGISTRY:-}"
SKIP_BUILD="${SKIP_BUILD:-0}"
ROLLOUT_TIMEOUT="${ROLLOUT_TIMEOUT:-10m}"
WORK=""

die() {
    echo "$ACTION: $*" >&2
    exit 1
}
cleanup() {
    if [ -n "$WORK" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

kube() {
    if [ -n "$KUBECONTEXT" ]; then
        kubectl --context "$KUBECONTEXT" "$@"
    else
        kubectl "$@"
    fi
}

check_inputs() {
    case "$ACTION" in
    deploy | undeploy | render) ;;
    *) ACTION=deploy.sh die "usage: scripts/deploy.sh deploy|undeploy|render" ;;
    esac
    command -v kubectl >/dev/null 2>&1 || die "kubectl not found: run \`make install\` (it comes with the dev extra)"
    [ -f "$ROOT/k8s/overlays/$OVERLAY/kustomization.yaml" ] ||
        die "no overlay '$OVERLAY' (known: $(cd "$ROOT/k8s/overlays" && echo */ | tr -d /)): set OVERLAY"
    [[ "$NAMESPACE" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || die "NAMESPACE '$NAMESPACE' is not a valid namespace name"
}

# One line, not kubectl's stack of connection errors, when kubectl has no cluster to talk to.
check_cluster() {
    local context server
    if [ -n "$KUBECONTEXT" ]; then
        kubectl config get-contexts "$KUBECONTEXT" >/dev/null 2>&1 ||
            die "no context '$KUBECONTEXT' in your kubeconfig (${KUBECONFIG:-~/.kube/config}):" \
                "set KUBECONTEXT to one of \`kubectl config get-contexts -o name\`"
        context="$KUBECONTEXT"
    else
        context="$(kubectl config current-context 2>/dev/null)" ||
            die "no Kubernetes context configured: set KUBECONTEXT or configure kubectl (kubectl config use-context NAME)"
    fi
    server="$(kube config view --minify -o jsonpath='{.clusters[0].cluster.server}' 2>/dev/null || true)"
    kube get --raw /version --request-timeout=10s >/dev/null 2>&1 ||
        die "no Kubernetes cluster reachable with context '$context'${server:+ ($server)}: set KUBECONTEXT or configure kubectl"
}

image_tag() {
    if [ -n "${TAG:-}" ]; then
        echo "$TAG"
    elif git -C "$ROOT" rev-parse --short HEAD >/dev/null 2>&1; then
        local tag
        tag="$(git -C "$ROOT" rev-parse --short=12 HEAD)"
        # Pods pull with IfNotPresent: a build of uncommitted changes gets a tag of its own.
        if [ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ]; then tag="$tag-dirty-$(date -u +%Y%m%d%H%M%S)"; fi
        echo "$tag"
    else
        echo latest
    fi
}

# A kustomization of our own in a temporary folder: the overlay, the namespace and the pushed images, so the
# committed overlays stay untouched (kustomize only takes relative paths).
write_kustomization() {
    WORK="$(mktemp -d)"
    local overlay
    overlay="$(python3 -c 'import os, sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' \
        "$ROOT/k8s/overlays/$OVERLAY" "$WORK")"
    {
        echo "apiVersion: kustomize.config.k8s.io/v1beta1"
        echo "kind: Kustomization"
        echo "namespace: $NAMESPACE"
        echo "resources: [\"$overlay\"]"
        if [ -n "$REGISTRY" ]; then
            echo "images:"
            for image in shiftgym-env-server shiftgym-trainer; do
                echo "  - {name: $image, newName: \"$REGISTRY/$image\", newTag: \"$TAG\"}"
            done
        fi
    } >"$WORK/kustomization.yaml"
}

build_and_push() {
    local targets=(env-server)
    if kubectl kustomize "$WORK" | grep -q 'image: .*shiftgym-trainer'; then targets+=(trainer); fi
    command -v docker >/dev/null 2>&1 || die "docker not found: install Docker, or push the images yourself and set SKIP_BUILD=1"
    for target in "${targets[@]}"; do
        local image="$REGISTRY/shiftgym-$target:$TAG"
        echo "==> docker build --target $target -t $image"
        # shellcheck disable=SC2086  # DOCKER_BUILD_ARGS is a list of arguments
        docker build ${DOCKER_BUILD_ARGS:-} --target "$target" -t "$image" "$ROOT" || die "docker build of $image failed"
        echo "==> docker push $image"
        docker push "$image" || die "docker push of $image failed (are you logged in to $REGISTRY?)"
    done
}

follow_hint() {
    local kinds
    kinds="$(kubectl kustomize "$WORK" | grep -E '^kind: (Job|RayJob)$' || true)"
    echo
    echo "ShiftGym is deployed to namespace $NAMESPACE (overlay $OVERLAY, tag $TAG)."
    case "$kinds" in
    *RayJob*)
        echo "Follow the trainer:"
        echo "  kubectl -n $NAMESPACE get rayjob shiftgym-trainer -w"
        echo "  kubectl -n $NAMESPACE logs -f -l job-name=shiftgym-trainer" ;;
    *Job*)
        echo "Follow the trainer:"
        echo "  kubectl -n $NAMESPACE logs -f job/shiftgym-trainer" ;;
    *)
        echo "This overlay runs no trainer. Reach an env server with:"
        echo "  kubectl -n $NAMESPACE port-forward svc/babyai 50051:50051" ;;
    esac
    echo "Env servers: kubectl -n $NAMESPACE get deploy,hpa,pods -l app.kubernetes.io/component=env-server"
}

deploy() {
    if [ "$SKIP_BUILD" != 1 ] && [ -z "$REGISTRY" ]; then
        die "set REGISTRY to the registry to push images to (e.g. REGISTRY=ghcr.io/acme/shiftgym), or SKIP_BUILD=1"
    fi
    TAG="$(image_tag)"
    check_cluster
    write_kustomization
    if kube -n "$NAMESPACE" get job shiftgym-trainer >/dev/null 2>&1 && [ "$OVERLAY" = gpu-job ]; then
        die "a trainer Job already runs in $NAMESPACE and a Job cannot be changed:" \
            "\`kubectl -n $NAMESPACE delete job shiftgym-trainer\` (or make undeploy) first"
    fi
    if [ "$SKIP_BUILD" != 1 ]; then build_and_push; fi
    echo "==> kubectl apply -k k8s/overlays/$OVERLAY (namespace $NAMESPACE)"
    kube apply -k "$WORK" || die "kubectl apply failed (see above); is the prometheus-operator or KubeRay CRD missing?"
    local deployments
    deployments="$(kube -n "$NAMESPACE" get deployments -l app.kubernetes.io/part-of=shiftgym -o name)"
    for deployment in $deployments; do
        echo "==> kubectl rollout status $deployment"
        kube -n "$NAMESPACE" rollout status "$deployment" --timeout="$ROLLOUT_TIMEOUT" ||
            die "$deployment did not roll out within $ROLLOUT_TIMEOUT: kubectl -n $NAMESPACE describe $deployment"
    done
    follow_hint
}

undeploy() {
    TAG="$(image_tag)"
    check_cluster
    write_kustomization
    echo "==> kubectl delete -k k8s/overlays/$OVERLAY (namespace $NAMESPACE, with its volumes)"
    kube delete -k "$WORK" --ignore-not-found --wait=true || die "kubectl delete failed (see above)"
}

render() {
    TAG="$(image_tag)"
    write_kustomization
    kubectl kustomize "$WORK" || die "kubectl kustomize failed (see above)"
}

check_inputs
"$ACTION"

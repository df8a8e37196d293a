#!/bin/sh
# Starts OpenRLHF's PPO/GRPO driver with the arguments in train-args.txt: split on whitespace (no quoting, no
# globbing), several per line if you like, lines starting with '#' skipped.
# The env servers' addresses arrive as SHIFTGYM_ENDPOINTS_<ENV> variables (dns:///<env>.<namespace>.svc...:50051).
set -euf  # -f: no globbing when the arguments are split into words
ARGS_FILE="${SHIFTGYM_TRAIN_ARGS:-/etc/shiftgym/train/train-args.txt}"
# shellcheck disable=SC2046  # word splitting of the argument file is the point
set -- $(grep -v '^[[:space:]]*#' "$ARGS_FILE")
echo "launch: python -m openrlhf.cli.train_ppo_ray $*"
exec python -m openrlhf.cli.train_ppo_ray "$@"

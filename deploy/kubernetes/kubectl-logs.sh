#!/bin/sh
# Watch a running agent from your laptop (or a CI job) without installing anything in the cluster:
#
#   deploy/kubernetes/kubectl-logs.sh deploy/livekit-agent -c agent
#
# `--timestamps` prefixes every line with the kubelet's RFC 3339 receive time (lkwedge prefers the time
# inside an agents JSON record and falls back to it); `--since=5m` re-reads the recent past so a wedge
# already in progress is seen at once.  Extra lkwedge options go in LKWEDGE_ARGS, e.g.
# LKWEDGE_ARGS="--window 30s --alertmanager http://localhost:9093".
set -eu
[ "$#" -ge 1 ] || { echo "usage: $0 POD|deploy/NAME [kubectl logs options...]" >&2; exit 2; }
# shellcheck disable=SC2086  # LKWEDGE_ARGS is split on purpose
kubectl logs --follow --timestamps --since=5m "$@" | lkwedge watch ${LKWEDGE_ARGS:-}

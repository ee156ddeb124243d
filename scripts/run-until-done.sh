#!/usr/bin/env bash
# Run a command until it finishes, for preemptible VMs: exit 0 ends the loop; exit 75
# (checkpointed after SIGTERM/SIGINT) or a crash reruns it, which resumes where it stopped.
# Usage: scripts/run-until-done.sh python -m train suite --shards S --out OUT ...
# A systemd unit (deploy/cxr-lt-suite.service) restarts this script after a VM reboot.
set -uo pipefail
tries=0
max_failures=${MAX_FAILURES:-5}
trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 75' TERM INT
while true; do
  "$@" &
  child=$!
  wait "$child"
  rc=$?
  case $rc in
    0) echo "run-until-done: finished"; exit 0 ;;
    75) echo "run-until-done: checkpointed (exit 75), resuming" ;;
    *) tries=$((tries + 1)); echo "run-until-done: exit $rc (failure $tries of $max_failures)"
       [ "$tries" -ge "$max_failures" ] && exit "$rc"; sleep "${RETRY_SLEEP:-10}" ;;
  esac
done

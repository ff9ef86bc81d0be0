#!/usr/bin/env bash
# Stop the local cluster started by slurm/start_cluster.sh: slurmd, slurmctld, and munged if that script
# started it. Running jobs are killed with the daemons. `--purge` also removes the state directory.
# Environment: GAUSS_SLURM_DIR (default /tmp/gauss_slurm).
set -euo pipefail
STATE=${GAUSS_SLURM_DIR:-/tmp/gauss_slurm}
CONF="$STATE/slurm.conf"

say() { printf '[slurm] %s\n' "$*"; }

stop_pidfile() {
  local name=$1 pidfile=$2 pid
  if [ -f "$pidfile" ] && pid=$(cat "$pidfile") && kill -0 "$pid" 2>/dev/null; then
    say "stopping $name (pid $pid)"
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
  fi
}

[ -d "$STATE" ] || { say "no cluster state in $STATE; nothing to stop"; exit 0; }
exec 9>"$STATE/start.lock"
flock -w 300 9
if [ -f "$CONF" ]; then
  SLURM_CONF="$CONF" timeout 10 scancel --user="$(id -un)" 2>/dev/null || true
fi
stop_pidfile slurmd "$STATE/slurmd.pid"
stop_pidfile slurmctld "$STATE/slurmctld.pid"
if [ -f "$STATE/munged.started-here" ]; then
  say "stopping munged"
  munged --stop 2>/dev/null || true
  rm -f "$STATE/munged.started-here"
fi
if [ -L /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" = "$CONF" ]; then
  rm -f /etc/slurm/slurm.conf
fi
if [ "${1:-}" = "--purge" ]; then
  rm -rf "$STATE"
  say "removed $STATE"
fi
say "stopped"

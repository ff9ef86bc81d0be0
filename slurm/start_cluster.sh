#!/usr/bin/env bash
# Start a single-node Slurm cluster on localhost (munged, slurmctld, slurmd) for tests and laptops.
#
#   sudo slurm/start_cluster.sh            # idempotent: a no-op when the cluster already answers
#   export SLURM_CONF=/tmp/gauss_slurm/slurm.conf   # printed at the end; only needed when /etc/slurm/slurm.conf
#                                                   # is someone else's file
#
# Environment: GAUSS_SLURM_DIR (state, spool and logs; default /tmp/gauss_slurm), GAUSS_SLURM_CPU_FACTOR
# (configured CPUs = real cores x factor, default 16, so many short array tasks run at once),
# GAUSS_SLURM_PARTITION (default "debug"), GAUSS_SLURM_MAX_ARRAY_SIZE (default 50: the tests check that
# submissions larger than the cap are split into several arrays). Needs root and the Debian packages slurm-wlm and munge.
# Several processes may call it at once: a lock file serialises them and later callers find the cluster up.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
STATE=${GAUSS_SLURM_DIR:-/tmp/gauss_slurm}
FACTOR=${GAUSS_SLURM_CPU_FACTOR:-16}
PARTITION=${GAUSS_SLURM_PARTITION:-debug}
MAX_ARRAY_SIZE=${GAUSS_SLURM_MAX_ARRAY_SIZE:-50}
CONF="$STATE/slurm.conf"
SYSTEM_CONF=/etc/slurm/slurm.conf
MARKER="gauss_hpc-local-cluster"
export SLURM_CONF="$CONF"

say() { printf '[slurm] %s\n' "$*"; }
die() { printf '[slurm] ERROR: %s\n' "$*" >&2; exit 1; }

node_state() { timeout 10 sinfo -h -N -o %T 2>/dev/null | head -n1 | tr -d '*~#!%$@^-' || true; }

cluster_up() {
  [ -f "$CONF" ] || return 1
  case "$(node_state)" in idle|mixed|allocated|completing) return 0 ;; *) return 1 ;; esac
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then say "munged already running"; return; fi
  mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
  if [ ! -s /etc/munge/munge.key ]; then
    say "creating a munge key"
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
  fi
  chown munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge /etc/munge/munge.key
  chmod 0700 /etc/munge /var/log/munge /var/lib/munge
  chmod 0400 /etc/munge/munge.key
  chmod 0755 /run/munge
  say "starting munged"
  runuser -u munge -- /usr/sbin/munged 9>&-
  touch "$STATE/munged.started-here"
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return; sleep 0.2; done
  die "munged did not start; see /var/log/munge/munged.log"
}

render_conf() {
  local host cpus mem
  host=$(hostname -s)
  cpus=$(( $(nproc) * FACTOR ))
  mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024}' /proc/meminfo)
  mkdir -p "$STATE/ctld" "$STATE/d" "$STATE/log"
  sed -e "s|@HOST@|$host|g" -e "s|@STATE@|$STATE|g" -e "s|@CPUS@|$cpus|g" -e "s|@MEMORY@|$mem|g" \
      -e "s|@PARTITION@|$PARTITION|g" -e "s|@MAX_ARRAY_SIZE@|$MAX_ARRAY_SIZE|g" -e "s|@CTLD_PORT@|${GAUSS_SLURMCTLD_PORT:-6817}|g" \
      -e "s|@SLURMD_PORT@|${GAUSS_SLURMD_PORT:-6818}|g" "$HERE/slurm.conf.in" > "$CONF.tmp"
  mv "$CONF.tmp" "$CONF"
  say "node $host: $cpus CPUs ($(nproc) cores x $FACTOR), RealMemory=${mem} MB, partition $PARTITION, MaxArraySize=$MAX_ARRAY_SIZE"
}

# Commands without SLURM_CONF read /etc/slurm/slurm.conf: point it at ours unless it is a real site config.
link_system_conf() {
  if [ -L "$SYSTEM_CONF" ] && [ -e "$SYSTEM_CONF" ] && [ "$(readlink "$SYSTEM_CONF")" != "$CONF" ]; then
    say "$SYSTEM_CONF points to $(readlink "$SYSTEM_CONF") (another cluster); leaving it (use SLURM_CONF=$CONF)"
  elif [ -L "$SYSTEM_CONF" ] || [ ! -e "$SYSTEM_CONF" ]; then
    mkdir -p "$(dirname "$SYSTEM_CONF")"
    ln -sfn "$CONF" "$SYSTEM_CONF"
  elif grep -q "$MARKER" "$SYSTEM_CONF"; then
    ln -sfn "$CONF" "$SYSTEM_CONF"
  else
    say "$SYSTEM_CONF is a site configuration; leaving it alone (use SLURM_CONF=$CONF)"
  fi
}

main() {
  if cluster_up; then say "cluster already up ($(node_state)); SLURM_CONF=$CONF"; exit 0; fi
  mkdir -p "$STATE"
  # The daemons are started with fd 9 closed so they never inherit (and hold) this lock.
  exec 9>"$STATE/start.lock"
  flock -w 300 9 || die "another start_cluster.sh holds $STATE/start.lock for more than 5 minutes"
  if cluster_up; then say "cluster already up ($(node_state)); SLURM_CONF=$CONF"; exit 0; fi
  [ "$(id -u)" = 0 ] || die "must run as root (munged, slurmctld and slurmd are system daemons)"
  for cmd in munged munge unmunge slurmctld slurmd sinfo scontrol flock runuser; do
    command -v "$cmd" >/dev/null || die "$cmd not found: install the Debian packages slurm-wlm and munge"
  done
  start_munge
  render_conf
  link_system_conf
  if alive "$STATE/slurmctld.pid"; then
    say "slurmctld running; reconfiguring"; scontrol reconfigure || true
  else
    say "starting slurmctld"; slurmctld -i 9>&-
  fi
  for _ in $(seq 50); do timeout 5 scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
  if ! alive "$STATE/slurmd.pid"; then say "starting slurmd"; slurmd 9>&-; fi
  for _ in $(seq 120); do
    case "$(node_state)" in
      idle|mixed|allocated|completing) say "cluster up: $(sinfo -h -o '%P %D %c %T')"
                                       say "export SLURM_CONF=$CONF"; exit 0 ;;
      down|drained|draining|fail|failing)
        scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null || true ;;
    esac
    sleep 0.5
  done
  die "node not ready after 60 s; see $STATE/log/slurmctld.log and $STATE/log/slurmd.log"
}

main "$@"

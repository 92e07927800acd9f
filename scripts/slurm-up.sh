#!/usr/bin/env bash
# Install (Debian packages) and start a single-node SLURM on this machine,
# without systemd: munged, slurmctld and slurmd as plain daemons. Idempotent:
# under a second when it is already up. Used by `make test` (tests/test_slurm*.py)
# and by anyone who wants to try `orch submit --executor slurm` locally.
#
#   ORCH_SLURM_DIR   state, spool, logs, pid files   (default /var/lib/orch-slurm)
#   ORCH_SLURM_WAIT  seconds to wait for each daemon (default 90)
# No accounting database: `sacct` is unavailable, as on many small clusters;
# orch reads job state from squeue, then sacct, then scontrol (MinJobAge=3600).
set -euo pipefail

DIR=${ORCH_SLURM_DIR:-/var/lib/orch-slurm}
WAIT=${ORCH_SLURM_WAIT:-90}
CONF=/etc/slurm/slurm.conf
say() { echo "[slurm-up] $*" >&2; }
fail() {
  say "ERROR: $*"
  for f in "$DIR"/log/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done
  exit 1
}
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
until_ok() { # until_ok WHAT CMD...
  local what=$1; shift; local deadline=$((SECONDS + WAIT))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "timed out waiting for $what"
    sleep 0.5
  done
}

[ "$(id -u)" = 0 ] || fail "needs root (it installs packages and starts daemons)"
need=""
for pkg in munge slurmctld slurmd slurm-client; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need="$need $pkg"
done
if [ -n "$need" ]; then
  say "installing$need (Debian packages, about 20 s) ..."
  policy=0
  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; policy=1; }
  DEBIAN_FRONTEND=noninteractive apt-get update -qq || fail "apt-get update failed"
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $need >/dev/null || fail "apt-get install failed"
  [ $policy = 1 ] && rm -f /usr/sbin/policy-rc.d
fi
mkdir -p "$DIR"/{ctld,spool,run,log}

if ! (munge -n | unmunge) >/dev/null 2>&1; then
  [ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  mkdir -p /run/munge
  chown munge:munge /etc/munge /etc/munge/munge.key /var/lib/munge /var/log/munge /run/munge
  chmod 0700 /etc/munge; chmod 0400 /etc/munge/munge.key
  say "starting munged"
  runuser -u munge -- /usr/sbin/munged --force || fail "munged did not start"
  until_ok munge bash -c 'munge -n | unmunge'
fi

node=$(hostname -s)
hardware=$(slurmd -C | head -n 1 | sed 's/^NodeName=[^ ]* //')
wanted=$(cat <<CONF
# written by orch scripts/slurm-up.sh
ClusterName=orch
SlurmctldHost=$node(127.0.0.1)
AuthType=auth/munge
# Requeued jobs wait cred_expire seconds before they may start again (default 120).
AuthInfo=cred_expire=10
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
DependencyParameters=kill_invalid_depend
JobRequeue=1
ReturnToService=2
MinJobAge=3600
KillWait=10
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$DIR/log/job_completions.txt
NodeName=$node NodeAddr=127.0.0.1 $hardware State=UNKNOWN
PartitionName=cpu Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF
)
if [ -f $CONF ] && [ "$(cat $CONF)" = "$wanted" ] && alive "$DIR/run/slurmctld.pid" && alive "$DIR/run/slurmd.pid" \
   && scontrol ping 2>/dev/null | grep -q UP; then
  say "already up"; exit 0
fi
if [ ! -f $CONF ] || [ "$(cat $CONF)" != "$wanted" ]; then
  mkdir -p /etc/slurm; printf '%s\n' "$wanted" > $CONF
  for d in slurmd slurmctld; do alive "$DIR/run/$d.pid" && kill "$(cat "$DIR/run/$d.pid")" && sleep 1; done
fi
if ! alive "$DIR/run/slurmctld.pid"; then say "starting slurmctld"; /usr/sbin/slurmctld || fail "slurmctld did not start"; fi
until_ok slurmctld bash -c 'scontrol ping | grep -q UP'
if ! alive "$DIR/run/slurmd.pid"; then say "starting slurmd"; /usr/sbin/slurmd || fail "slurmd did not start"; fi

deadline=$((SECONDS + WAIT))
while :; do
  state=$(sinfo -h -n "$node" -o '%T' 2>/dev/null || true)
  case $state in
    idle|mixed|allocated|completing) break ;;
    *drain*|down*) scontrol update NodeName="$node" State=RESUME 2>/dev/null || true ;;
  esac
  [ $SECONDS -lt $deadline ] || fail "node $node is '$state', not idle"
  sleep 0.5
done
say "SLURM is up: node $node $state, partition cpu"

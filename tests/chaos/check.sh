#!/usr/bin/env bash
# The chaos run CI keeps: `phalanx bench chaos` for 60 seconds (the README's reliability section
# has the 600-second figures). The command itself exits non-zero when any invariant, judged from
# the emulator's audit journal, is not zero; this script also checks that the run did what it
# says: leaders were killed and replaced, and faults were injected by every source.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
cargo build --release --locked --bin phalanx
bin=${PHALANX_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/phalanx}
out=$(mktemp)
journal=$(mktemp)
trap 'rm -f "$out" "$journal"' EXIT
if ! "$bin" bench chaos --duration 60 --seed 7 --json --journal-out "$journal" >"$out"; then
  cat "$out"
  echo "chaos: an invariant broke (journal: $journal kept)" >&2
  trap - EXIT
  exit 1
fi
python3 - "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(json.dumps({k: r[k] for k in (
    "jobs", "jobs_finished", "jobs_failed", "partial_gangs", "overcommitted_nodes", "double_binds",
    "non_leader_binds", "capability_exceeded", "jobs_lost", "failovers", "max_leaderless_s",
    "faults_injected", "pods_per_s", "gang_bound_p99_s")}, indent=1))
print("faults by kind:", r["faults_by_kind"])
problems = []
if r["failovers"] < 1:
    problems.append("no leader failover happened")
for kind in ("leader_killed", "api_error_500", "watch_dropped"):
    if r["faults_by_kind"].get(kind, 0) < 1:
        problems.append(f"no {kind} fault was injected")
if r["jobs_finished"] < r["jobs"] // 2:
    problems.append(f"only {r['jobs_finished']} of {r['jobs']} jobs finished")
if problems:
    sys.exit("chaos: " + "; ".join(problems))
PY

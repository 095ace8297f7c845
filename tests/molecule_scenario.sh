#!/usr/bin/env bash
# Run one Molecule scenario with its full test sequence; its output goes to
# tests/output/molecule-<scenario>.log and a one-line verdict with the duration to stdout,
# so scenarios running side by side do not interleave. Called by `make molecule`.
set -uo pipefail
scenario=$1
log=tests/output/molecule-$scenario.log
mkdir -p tests/output
start=$SECONDS
if molecule test -s "$scenario" >"$log" 2>&1; then
  echo "molecule $scenario: passed in $((SECONDS - start)) s"
else
  echo "molecule $scenario: FAILED in $((SECONDS - start)) s; the last lines of $log:"
  tail -n 60 "$log"
  exit 1
fi

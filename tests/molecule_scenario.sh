#!/usr/bin/env bash
# Run one Molecule scenario with its full test sequence; its output goes to
# tests/output/molecule-<scenario>.log and a one-line verdict with the duration to stdout,
# so scenarios running side by side do not interleave. Called by `make molecule`.
# `<scenario>@<core>` runs it on a row of the support matrix (.venv/matrix-<core>, `make matrix-venvs`);
# runs of one scenario take turns, since they use the same hosts and network.
set -uo pipefail
scenario=${1%@*}
name=${1/@/-}
[ "$scenario" = "$1" ] || export PATH="$PWD/.venv/matrix-${1#*@}/bin:$PATH"
log=tests/output/molecule-$name.log
mkdir -p tests/output
start=$SECONDS
if flock "tests/output/.molecule-$scenario.lock" molecule test -s "$scenario" >"$log" 2>&1; then
  echo "molecule $name: passed in $((SECONDS - start)) s"
else
  echo "molecule $name: FAILED in $((SECONDS - start)) s"
  # The failing task or test is usually far above the destroy step's output at the end of the log.
  echo "the failed tasks and tests in $log:"
  grep -n -E -A 12 '^(fatal|failed): |^_{5,} .* _{5,}$|short test summary info' "$log" | head -n 200
  echo "the last lines of $log:"
  tail -n 25 "$log"
  # CI shows only the end of the run's output: tests/stages.sh prints these names again, last.
  { echo "molecule $name:"; grep -E '^(FAILED|ERROR) |^fatal: |^failed: ' "$log" | cut -c1-400 | head -n 10; } \
    >>tests/output/failures.txt
  exit 1
fi

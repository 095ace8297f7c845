#!/usr/bin/env bash
# `make matrix`: the unit tests and ansible-test sanity on each row of the support matrix given
# (ansible-core versions, each in .venv/matrix-<core> from `make matrix-venvs`). A row's output goes to
# tests/output/matrix-<core>.log and a one-line verdict with its duration to stdout; the rows run one
# after the other (sanity is CPU-bound, and `make test` runs this beside the Molecule scenarios).
# Fails if any row failed.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p tests/output
failed=()
for core in "$@"; do
  log=tests/output/matrix-$core.log
  start=$SECONDS
  if (
    export PATH="$PWD/.venv/matrix-$core/bin:$PATH"
    set -e
    ansible --version | head -n 1
    python -m pytest -q -p no:cacheprovider tests/unit tests/tools
    tests/sanity.sh
  ) >"$log" 2>&1; then
    echo "matrix ansible-core $core: unit and sanity passed in $((SECONDS - start)) s ($(grep -E '^[0-9]+ passed' "$log" | tail -n 1))"
  else
    echo "matrix ansible-core $core: FAILED in $((SECONDS - start)) s; the last lines of $log:"
    tail -n 40 "$log"
    failed+=("$core")
  fi
done
[ ${#failed[@]} -eq 0 ] || {
  echo "matrix: failed on ansible-core ${failed[*]}"
  exit 1
}

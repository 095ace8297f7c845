#!/usr/bin/env bash
# `make test`: run each stage (a Makefile target), time it, go on after a failure so that one
# run shows every failing stage, and fail at the end if any did.
set -uo pipefail
failed=()
summary=()
for stage in "$@"; do
  start=$SECONDS
  echo "=== $stage"
  if make --no-print-directory "$stage"; then verdict=ok; else verdict=FAILED; failed+=("$stage"); fi
  summary+=("$(printf '%-10s %-7s %5d s' "$stage" "$verdict" $((SECONDS - start)))")
done
echo "=== stages"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]}"
  exit 1
fi

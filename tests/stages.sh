#!/usr/bin/env bash
# `make test`: run each stage (a Makefile target), time it, go on after a failure so that one
# run shows every failing stage, and fail at the end if any did. `a+b` runs stages a and b side
# by side (each prints one line per finished part, so their output does not interleave mid-line).
set -uo pipefail
failed=()
summary=()
# The failing tests' names, which the parts append to: printed last, where CI's excerpt of the output shows them.
mkdir -p tests/output
rm -f tests/output/failures.txt
for stage in "$@"; do
  start=$SECONDS
  echo "=== $stage"
  IFS=+ read -ra parts <<<"$stage"
  pids=()
  for part in "${parts[@]}"; do
    make --no-print-directory "$part" &
    pids+=($!)
  done
  verdict=ok
  for i in "${!parts[@]}"; do
    wait "${pids[$i]}" || { verdict=FAILED; failed+=("${parts[$i]}"); }
  done
  summary+=("$(printf '%-16s %-7s %5d s' "$stage" "$verdict" $((SECONDS - start)))")
done
echo "=== stages"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  [ -s tests/output/failures.txt ] && tail -n 30 tests/output/failures.txt
  echo "failed: ${failed[*]}"
  exit 1
fi

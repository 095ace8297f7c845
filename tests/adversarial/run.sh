#!/usr/bin/env bash
# The adversarial suite, in a network and mount namespace of its own: nothing it does (rulesets, rollbacks,
# bind mounts over /etc) can reach this machine's. conftest.py refuses to run anywhere else.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec unshare --mount --net --fork --propagation private -- \
  sh -c 'ip link set lo up && exec "$@"' sh "${PYTEST:-.venv/bin/pytest}" -q -p no:cacheprovider --durations=10 tests/adversarial "$@"

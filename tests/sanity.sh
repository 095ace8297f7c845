#!/usr/bin/env bash
# ansible-test sanity on a copy of the working tree laid out as ansible_collections/bulwark/hardening,
# the layout ansible-test requires, in a git repository of its own (ansible-test lists files with git).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# One work tree per ansible-core version, so that the support matrix's sanity runs can go side by side.
core=$(python -c 'from ansible.release import __version__ as v; print(".".join(v.split(".")[:2]))')
work=$root/tests/output/sanity-$core
copy=$work/ansible_collections/bulwark/hardening
rm -rf "$work"
mkdir -p "$copy"
git -C "$root" ls-files -z -co --exclude-standard | (cd "$root" && tar --null --ignore-failed-read -cf - -T - 2>/dev/null) | tar -C "$copy" -xf -
git -C "$copy" init -q && git -C "$copy" add -A

# ansible-test bootstraps pip in each sanity virtualenv with a script it downloads from a host that
# is not reachable here; tests/get_pip_offline.py does the same with Python's ensurepip and PyPI.
# ansible-core 2.19 names the pip version PIP_VERSION; 2.20 and later per Python version (get_venv_packages).
pip_version=$(python - <<'PY'
import sys
from types import SimpleNamespace

from ansible_test._internal import python_requirements as r

version = "%d.%d" % sys.version_info[:2]
print(getattr(r, "PIP_VERSION", None) or r.get_venv_packages(SimpleNamespace(version=version))["pip"])
PY
)
cache=$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py
[ -f "$cache" ] || install -D -m 0644 "$root/tests/get_pip_offline.py" "$cache"

cd "$copy"
# shellcheck disable=SC2086
ansible-test sanity --python "$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" ${SANITY_TESTS:-} "$@"

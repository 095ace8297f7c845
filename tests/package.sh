#!/usr/bin/env bash
# `make package`: the collection as a user gets it. Build the tarball, assert what is inside, install it into
# a fresh path with nothing else (no .collections link, no ansible.cfg, no collection bundled with the
# `ansible` package), then document every module and role, syntax-check every playbook by FQCN and run
# the unit tests from the installed copy.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$root/tests/output/package
rm -rf "$work"
mkdir -p "$work/dist" "$work/installed" "$work/cwd"

ansible-galaxy collection build --output-path "$work/dist" "$root" >/dev/null
tarball=$(echo "$work"/dist/bulwark-hardening-*.tar.gz)
tar -tzf "$tarball" | sed 's|/$||' | sort >"$work/contents"

fail() {
  echo "package: $*" >&2
  exit 1
}
# Caches, the lab, Molecule, CI and development-only files stay out.
if grep -E '(^|/)(__pycache__|\.pytest_cache|\.ruff_cache|\.ansible|\.venv|\.lab|\.collections|\.git|\.ci|\.config)(/|$)|\.pyc$|^(molecule|tools|tests/output|tests/lab|tests/bench|tests/tools|tests/adversarial|inventories/lab)(/|$)|^(ansible\.cfg|Makefile|requirements.*\.txt)$|\.tar\.gz$' "$work/contents"; then
  fail "the tarball holds the files above, which build_ignore in galaxy.yml must keep out"
fi
# Every module, role, playbook and the metadata of this tree are in it.
expected=(MANIFEST.json FILES.json README.md LICENSE CHANGELOG.rst meta/runtime.yml tests/unit/conftest.py
  tests/collection_path.py tests/module_runner.py)
while IFS= read -r path; do expected+=("$path"); done < <(
  cd "$root" && git ls-files -co --exclude-standard -- 'plugins/*.py' 'roles/*' 'playbooks/*.yml' | sort
)
for path in "${expected[@]}"; do
  grep -qxF "$path" "$work/contents" || fail "$path is missing from the tarball"
done
echo "package: $(wc -l <"$work/contents") entries in $(basename "$tarball"), ${#expected[@]} expected files present"

# A user's controller: only ansible-core and what was just installed.
export ANSIBLE_CONFIG=$work/cwd/none.cfg ANSIBLE_COLLECTIONS_PATH=$work/installed ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
unset ANSIBLE_ROLES_PATH
cd "$work/cwd"
ansible-galaxy collection install --offline -p "$work/installed" "$tarball" >/dev/null
installed=$work/installed/ansible_collections/bulwark/hardening
[ -f "$installed/MANIFEST.json" ] || fail "the install did not create $installed"

mapfile -t modules < <(find "$installed/plugins/modules" -maxdepth 1 -name '*.py' -printf '%f\n' | sed 's/\.py$//' | sort)
mapfile -t roles < <(find "$installed/roles" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort)
if [ ${#modules[@]} -eq 0 ] || [ ${#roles[@]} -eq 0 ]; then fail "no module or no role installed"; fi
for module in "${modules[@]}"; do
  ansible-doc -t module "bulwark.hardening.$module" >/dev/null || fail "ansible-doc bulwark.hardening.$module failed"
done
# Other documented plugin types (callback, filter, ...); action plugins are documented by their module.
others=()
for dir in "$installed"/plugins/*/; do
  kind=$(basename "$dir")
  case $kind in modules | module_utils | plugin_utils | doc_fragments | action) continue ;; esac
  for plugin in "$dir"*.py; do
    if [ ! -e "$plugin" ] || [ "$(basename "$plugin")" = __init__.py ]; then continue; fi
    name=$(basename "$plugin" .py)
    ansible-doc -t "$kind" "bulwark.hardening.$name" >/dev/null || fail "ansible-doc -t $kind bulwark.hardening.$name failed"
    others+=("$kind $name")
  done
done
for role in "${roles[@]}"; do
  ansible-doc -t role "bulwark.hardening.$role" >/dev/null || fail "ansible-doc -t role bulwark.hardening.$role failed"
done
# ansible-doc lists what the installed copy declares: every module must be there with its FQCN.
listed=$(ansible-doc -t module -l bulwark.hardening)
for module in "${modules[@]}"; do
  grep -q "^bulwark\.hardening\.$module " <<<"$listed" || fail "ansible-doc -l does not list bulwark.hardening.$module"
done
echo "package: ansible-doc documents ${#modules[@]} modules (${modules[*]}), ${#roles[@]} roles (${roles[*]}) and ${#others[@]} other plugins (${others[*]:-none})"

mapfile -t playbooks < <(find "$installed/playbooks" -maxdepth 1 -name '*.yml' -printf '%f\n' | sed 's/\.yml$//' | sort)
for playbook in "${playbooks[@]}"; do
  ansible-playbook -i localhost, "bulwark.hardening.$playbook" --syntax-check >/dev/null ||
    fail "ansible-playbook bulwark.hardening.$playbook --syntax-check failed"
done
echo "package: ${#playbooks[@]} playbooks pass --syntax-check by FQCN (${playbooks[*]})"

# A role used alone runs whole under its own tag: every task of it carries the tag.
for role in sshd firewall fail2ban; do
  printf -- '- name: %s alone\n  hosts: all\n  gather_facts: false\n  roles: [bulwark.hardening.%s]\n' "$role" "$role" >"$role.yml"
  all=$(ansible-playbook -i localhost, "$role.yml" --list-tasks | grep -c "bulwark\.hardening\.$role : \|^ *Confirm")
  tagged=$(ansible-playbook -i localhost, "$role.yml" --list-tasks --tags "$role" | grep -c "bulwark\.hardening\.$role : \|^ *Confirm")
  if [ "$all" -le 1 ] || [ "$tagged" -ne "$all" ]; then
    fail "--tags $role lists $tagged of the $all tasks of bulwark.hardening.$role"
  fi
done
echo "package: the sshd, firewall and fail2ban roles run whole under their own tag"

# The unit tests in the standard ansible_collections/bulwark/hardening layout.
(cd "$installed" && python -m pytest -q -p no:cacheprovider tests/unit)

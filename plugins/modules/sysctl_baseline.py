#!/usr/bin/python
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# ruff: noqa: E402  (Ansible wants DOCUMENTATION, EXAMPLES and RETURN before the imports)

DOCUMENTATION = r"""
---
module: sysctl_baseline
short_description: Kernel parameters in one sysctl.d file, applied live where the kernel allows
description:
  - Writes the given keys and values to one file under C(/etc/sysctl.d/) (it owns that file) and applies
    every key whose running value differs.
  - Keys that cannot be applied here (read-only C(/proc/sys), as inside a container) are reported under
    RV(skipped_keys) with the reason; the module does not fail for them.
  - A key this kernel does not have fails the module naming the key (a typo must not pass silently), unless it
    is listed in O(optional_keys); then it is skipped with the reason, and written with sysctl.d's C(-) prefix
    so that systemd-sysctl ignores it at boot too.
  - A value the kernel rejects (C(EINVAL)) fails the module and the file is not written.
version_added: "0.1.0"
author: bulwark.hardening maintainers (@bulwark-hardening)
options:
  settings:
    description: sysctl keys (dotted) and their values.
    type: dict
    required: true
  optional_keys:
    description:
      - Keys that may legitimately be absent from a kernel (a feature it was built without, such as Yama or
        IPv6 switched off at boot). Absent, they are skipped; absent and not listed, the module fails.
    type: list
    elements: str
    default: []
  path:
    description: The sysctl.d file this module owns (a plain absolute path ending in C(.conf)).
    type: path
    default: /etc/sysctl.d/90-bulwark.conf
  apply:
    description: Whether to apply the values to the running kernel (the file is written either way).
    type: bool
    default: true
requirements:
  - A Linux host; values are written to C(/proc/sys) and one file under C(/etc/sysctl.d) (no command is run).
attributes:
  check_mode:
    support: full
    description: Predicts which keys would be applied and which skipped; changes nothing.
  diff_mode:
    support: full
    description: The sysctl.d file before and after.
  platform:
    support: full
    platforms: posix
    description: Debian 12 and 13 with systemd.
notes:
  - Check mode predicts which keys would be applied and which skipped (read-only mounts are read from
    C(/proc/self/mountinfo)); diff mode shows the file.
"""

EXAMPLES = r"""
- name: Kernel and network baseline
  bulwark.hardening.sysctl_baseline:
    settings:
      net.ipv4.conf.all.rp_filter: 1
      kernel.kptr_restrict: 2
      fs.suid_dumpable: 0
      kernel.yama.ptrace_scope: 1
    optional_keys: [kernel.yama.ptrace_scope]
"""

RETURN = r"""
applied:
  description: Keys written to the running kernel (or that would be, in check mode).
  returned: always
  type: list
  elements: str
unchanged:
  description: Keys whose running value already matched.
  returned: always
  type: list
  elements: str
skipped_keys:
  description:
    - Keys that could not be applied live, with the reason (not named C(skipped), which Ansible reserves).
  returned: always
  type: dict
  sample: {"kernel.kptr_restrict": "read-only here (/proc/sys is mounted read-only, as in a container)"}
file_changed:
  description: Whether the sysctl.d file changed.
  returned: always
  type: bool
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bulwark.hardening.plugins.module_utils.host import files
from ansible_collections.bulwark.hardening.plugins.module_utils.host.executor import PlanFailed, Refused, fail
from ansible_collections.bulwark.hardening.plugins.module_utils.sysctl import baseline


# Not a host plan: a key the kernel cannot have here (a read-only /proc/sys, a namespaced value) is
# skipped with the reason rather than failing the run, so the values are set one by one behind
# files.set_kernel_value, then the file is written.
def set_values(settings, keys, skipped):
    """Set each key in the running kernel: (keys applied, {key: why the kernel rejected it}); a key the
    kernel cannot have here is added to skipped with the reason."""
    applied, rejected = [], {}
    for key in keys:
        try:
            files.set_kernel_value(baseline.proc_path(key), settings[key])
            applied.append(key)
        except OSError as exc:
            why = baseline.reason(exc.errno)
            if why is None:
                rejected[key] = exc.strerror
            else:
                skipped[key] = why
    return applied, rejected


def main():
    module = AnsibleModule(
        argument_spec={
            "settings": {"type": "dict", "required": True},
            # sysctl key names, not secrets ("key" in the name makes the sanity test ask)
            "optional_keys": {"type": "list", "elements": "str", "default": [], "no_log": False},
            "path": {"type": "path", "default": "/etc/sysctl.d/90-bulwark.conf"},
            "apply": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    path = module.params["path"]
    try:
        baseline.validate_path(path)
        settings = baseline.validate(module.params["settings"])
        optional = baseline.validate_optional(module.params["optional_keys"])
        live = {key: files.read(baseline.proc_path(key)) for key in settings}
        readonly, points = baseline.readonly_mounts(files.read("/proc/self/mountinfo") or "")
        to_apply, unchanged, skipped = baseline.plan(settings, live, readonly, points, optional)
    except (baseline.SysctlSpecError, files.HostError) as exc:
        fail(module, Refused(str(exc)))
    if not module.params["apply"]:
        to_apply = []
    before = files.read(path)
    after = baseline.render(settings, optional)
    file_changed = before != after

    applied = list(to_apply)
    if not module.check_mode:
        applied, rejected = set_values(settings, to_apply, skipped)
        if rejected:
            text = ", ".join(f"settings.{k}: {v}" for k, v in sorted(rejected.items()))
            fail(module, PlanFailed(f"the kernel rejected these values, file not written: {text}", applied))
        if file_changed:
            try:
                files.write(path, after, mode=0o644, uid=0, gid=0, make_dirs=0o755)
            except files.HostError as exc:
                fail(module, PlanFailed(str(exc), applied))

    module.exit_json(
        changed=file_changed or bool(applied),
        applied=applied,
        unchanged=unchanged,
        skipped_keys=skipped,
        file_changed=file_changed,
        diff={"before_header": path, "after_header": path, "before": before or "", "after": after},
    )


if __name__ == "__main__":
    main()

# Copyright: (c) 2026, bulwark.hardening maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The option every commit-confirm module shares (sshd_config, firewall): one text, one place."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  reconnect_and_confirm:
    description:
      - When the change is live and pending, drop the SSH connection and confirm it over a B(new) one in the
        same task (the module's action plugin does it, on the controller). Reaching the host anew proves the
        change lets the controller in. Without it, confirm with M(bulwark.hardening.commit_confirm) over a new
        connection yourself.
      - In the same task, because a separate confirmation task starts only when the slowest host has applied
        its change, and the fast hosts' windows could run out meanwhile. A confirmation that cannot log in is
        retried until O(rollback_timeout) and a minute have passed; the task then fails saying what the host
        did (C(state)).
    type: bool
    default: false
"""

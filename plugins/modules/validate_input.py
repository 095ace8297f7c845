#!/usr/bin/python
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# The work is done by the action plugin of the same name (plugins/action/validate_input.py), on the
# controller; this file carries its documentation.

DOCUMENTATION = r"""
---
module: validate_input
short_description: Check every role's input on the controller before any role changes a host
description:
  - For each role named in O(roles) (and C(common), always), the role's variables as this host sees them are
    checked against the role's argument spec, exactly as the role checks them when it starts, and then by
    the pure validation of every module the role calls, on the arguments the role's task passes it (read
    from the role's own task file). That covers sshd keywords and values (M(bulwark.hardening.sshd_config)),
    addresses, CIDRs, ports and rules (M(bulwark.hardening.firewall)), jail and filter options
    (M(bulwark.hardening.fail2ban_jail)), account names, shells and the sudo log path
    (M(bulwark.hardening.admin_accounts)), sysctl keys and values (M(bulwark.hardening.sysctl_baseline)).
  - Control characters are refused in every value (line breaks too, except in the banner text), and the
    paths rendered into configuration files must be plain absolute paths.
  - A module whose task is switched off (its C(when) is false) is not checked. What only the host can judge
    is checked on the host when the rest passes. With the sshd role among O(roles), one call of
    M(bulwark.hardening.sshd_config) with O(bulwark.hardening.sshd_config#module:validate_only=true) runs
    C(sshd -t) on the candidate, before bootstrap changes anything. A key the kernel lacks is left to the
    module.
  - Runs on the controller (and, for sshd, that one read-only call on the host); it changes nothing. Use it
    as the first task of a play, with C(any_errors_fatal), so that one bad value on one host stops the run
    before anything changes.
  - Needs the facts of the host's release (C(gather_facts), subset C(min)) when the sshd role is checked.
version_added: "0.1.0"
author: bulwark.hardening maintainers (@bulwark-hardening)
options:
  roles:
    description: The roles whose input is checked (C(common) is always checked).
    type: list
    elements: str
    choices: [common, bootstrap, sshd, firewall, fail2ban]
    default: [bootstrap, sshd, firewall, fail2ban]
requirements:
  - Nothing beyond ansible-core on the controller; with the sshd role among O(roles), C(sshd) on the host.
attributes:
  check_mode:
    support: full
    description: Runs the same in check mode; it never changes anything.
  diff_mode:
    support: none
    description: Nothing to show.
  platform:
    support: full
    platforms: posix
    description: Runs on the controller; with the sshd role, its C(sshd -t) check runs on Debian 12 and 13
      hosts.
notes:
  - "The errors name the role, the module option and the variable that set it, for example
    C(firewall (bulwark.hardening.firewall): admin_networks[1]: '10.0.0.300/8' is not a CIDR or an address
    (set by bulwark_admin_networks))."
"""

EXAMPLES = r"""
- name: Harden
  hosts: all
  become: true
  gather_facts: true
  gather_subset: [min]
  pre_tasks:
    - name: Validate the input of every role before anything changes
      bulwark.hardening.validate_input:
        roles: [bootstrap, sshd, firewall, fail2ban]
      any_errors_fatal: true
      tags: [always]
  roles:
    - bulwark.hardening.bootstrap
    - bulwark.hardening.sshd
"""

RETURN = r"""
checked:
  description: The modules whose arguments were validated (the ones whose task is switched on).
  returned: always
  type: list
  elements: str
  sample: [bulwark.hardening.admin_accounts, bulwark.hardening.sysctl_baseline]
errors:
  description: One message per bad input, naming the role, the option and the variable.
  returned: failure
  type: list
  elements: str
"""

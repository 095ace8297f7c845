#!/usr/bin/python
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# The work is done by the action plugin of the same name (plugins/action/audit_report.py), on the
# controller; this file carries its documentation.

DOCUMENTATION = r"""
---
module: audit_report
short_description: Write the fleet's security audit reports on the controller and judge the minimum score
description:
  - Reads every host's registered M(bulwark.hardening.security_audit) result and writes, into O(output_dir)
    on the controller, C(<host>.json) (the host's overall C(score) 0-100 at the top level, each category's
    score, every finding), C(fleet.json) (each host's score, each category's mean, the hosts below
    O(min_score)), C(junit.xml) (one test suite per host, each failing finding a failed test case) and
    C(index.html) (one self-contained page, no script and no external resource).
  - Fails, after writing, when a host scores below O(min_score) or has no audit result (unreachable, or
    the audit failed). It never connects to a host; run it once (C(run_once)), as C(playbooks/audit.yml) does.
version_added: "0.1.0"
author: bulwark.hardening maintainers (@bulwark-hardening)
options:
  hosts:
    description: The fleet (C(ansible_play_hosts_all)); a host without a result counts as not audited.
    type: list
    elements: str
    required: true
  result:
    description: The name each host registered its M(bulwark.hardening.security_audit) result under.
    type: str
    default: audit
  output_dir:
    description: Directory on the controller for the reports (created if missing; files replaced atomically).
    type: path
    required: true
  min_score:
    description: The score every host must reach.
    type: int
    default: 0
requirements:
  - Nothing on the hosts; it runs on the controller on what M(bulwark.hardening.security_audit) returned.
attributes:
  check_mode:
    support: full
    description: The reports are written in check mode too; they change nothing on any host.
  diff_mode:
    support: none
    description: Nothing changes on a host.
  platform:
    support: full
    platforms: posix
    description: Runs on the controller.
notes:
  - Reports C(changed=false) as nothing changes on any host; the files it wrote are listed in RV(written).
seealso:
  - module: bulwark.hardening.security_audit
"""

EXAMPLES = r"""
- name: Write the fleet's reports
  bulwark.hardening.audit_report:
    hosts: "{{ ansible_play_hosts_all }}"
    output_dir: /srv/ci/audit-reports
    min_score: 90
  run_once: true
"""

RETURN = r"""
summary:
  description: The fleet summary written to C(fleet.json).
  returned: always
  type: dict
  sample: {hosts: {web1: 96, web2: 48}, score: 72, lowest: 48, below_min_score: [web2], passed: false}
written:
  description: The files written.
  returned: always
  type: list
  elements: str
msg:
  description: The fleet's scores as printed (after the hosts below the minimum, when there are any).
  returned: always
  type: list
  elements: str
"""

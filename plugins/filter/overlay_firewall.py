# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# ruff: noqa: E402  (Ansible wants DOCUMENTATION, EXAMPLES and RETURN before the imports)

DOCUMENTATION = r"""
name: overlay_firewall
short_description: The firewall's part of the overlay for one host (its holes), from the inventory group
version_added: "0.1.0"
author: bulwark.hardening maintainers (@bulwark-hardening)
description:
  - The address set C(overlay_peers) (the underlay addresses of the host's current peers in the mesh) and
    the rules the firewall role adds to its policy - the WireGuard port from that set only, the declared
    services on the overlay interface, and for a hub, forwarding between overlay addresses.
  - Computed from the group, not from the play, so a run of the firewall alone neither purges nor flaps
    the holes.
  - Empty when the host is not a member. Bad overlay input fails naming the host and the variable.
positional: hostvars, me, settings, services
options:
  _input:
    description: The group's host names.
    type: list
    elements: str
    required: true
  hostvars:
    description: C(hostvars).
    type: dict
    required: true
  me:
    description: The host whose firewall this is.
    type: str
    required: true
  settings:
    description: C(cidr), C(port), C(interface) and C(hub) of the mesh.
    type: dict
    required: true
  services:
    description: What peers may reach over the overlay interface (ports, names, or C(port)/C(proto) mappings).
    type: list
    elements: raw
    default: []
"""

EXAMPLES = r"""
overlay_part: >-
  {{ groups['overlay'] | bulwark.hardening.overlay_firewall(hostvars, inventory_hostname,
     {'cidr': '10.99.0.0/24', 'port': 51820, 'interface': 'wg0', 'hub': ''}, [8080]) }}
"""

RETURN = r"""
_value:
  description: C(sets) (a mapping of set name to addresses) and C(rules) (firewall module rules).
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.bulwark.hardening.plugins.module_utils.overlay import mesh


def overlay_firewall(group, hostvars, me, settings, services=()):
    if me not in (group or []):
        return {"sets": {}, "rules": []}
    try:
        the_mesh = mesh.build(settings, mesh.members_from_inventory(group, hostvars), require_keys=False)
    except mesh.MeshError as exc:
        raise AnsibleFilterError(str(exc)) from None
    return mesh.firewall_part(the_mesh, me, services)


class FilterModule:
    def filters(self):
        return {"overlay_firewall": overlay_firewall}

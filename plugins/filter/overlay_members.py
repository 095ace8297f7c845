# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# ruff: noqa: E402  (Ansible wants DOCUMENTATION, EXAMPLES and RETURN before the imports)

DOCUMENTATION = r"""
name: overlay_members
short_description: The members of an overlay group, from the inventory
version_added: "0.1.0"
author: bulwark.hardening maintainers (@bulwark-hardening)
description:
  - Each host of the group with its C(overlay_endpoint) (default C(ansible_host); empty behind NAT),
    C(overlay_address), C(overlay_container_subnet) and public key, as the M(bulwark.hardening.overlay) module
    takes them in O(bulwark.hardening.overlay#module:members).
  - The public key is the one this run's key task registered on that host, else the one in O(registry).
positional: hostvars, registry
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
  registry:
    description: Host name to public key, as the host running the task last configured them.
    type: dict
    default: {}
"""

EXAMPLES = r"""
members: "{{ groups['overlay'] | bulwark.hardening.overlay_members(hostvars, overlay_key.registry) }}"
"""

RETURN = r"""
_value:
  description: One mapping per member (C(name), C(endpoint), C(address), C(container_subnet), C(public_key)).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.bulwark.hardening.plugins.module_utils.overlay import mesh


def overlay_members(group, hostvars, registry=None):
    try:
        return mesh.members_from_inventory(group, hostvars, registry)
    except mesh.MeshError as exc:
        raise AnsibleFilterError(str(exc)) from None


class FilterModule:
    def filters(self):
        return {"overlay_members": overlay_members}

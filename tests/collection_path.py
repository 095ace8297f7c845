"""Tests import the collection as Ansible does, as ansible_collections.bulwark.hardening.

Two layouts: the standard one (this checkout or an installed copy is ansible_collections/bulwark/hardening,
as ansible-test and `ansible-galaxy collection install` lay it out), or this repository's own checkout,
which `make collection` links under .collections.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _collections_dir(root):
    if root.parent.name == "bulwark" and root.parent.parent.name == "ansible_collections":
        return root.parent.parent.parent
    link = root / ".collections"
    if (link / "ansible_collections/bulwark/hardening").exists():
        return link
    raise RuntimeError(
        f"{root} is neither ansible_collections/bulwark/hardening nor a checkout with the collection link:"
        " run `make collection` first"
    )


COLLECTIONS = _collections_dir(ROOT)


def install():
    """Put the collection on sys.path and install Ansible's collection loader, as ansible-playbook does
    (plugins named ansible.builtin.*, such as the template lookup in the roles' variables, resolve
    through it)."""
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))
    from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder  # noqa: PLC0415

    if not any(isinstance(finder, _AnsibleCollectionFinder) for finder in sys.meta_path):
        _AnsibleCollectionFinder(paths=[str(COLLECTIONS)])._install()

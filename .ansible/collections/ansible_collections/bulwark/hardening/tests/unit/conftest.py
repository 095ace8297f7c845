"""Unit tests import the collection as Ansible does: bulwark.hardening under .collections."""

import sys
from pathlib import Path

COLLECTIONS = Path(__file__).resolve().parents[2] / ".collections"
if not (COLLECTIONS / "ansible_collections/bulwark/hardening").exists():
    raise RuntimeError("run `make collection` first: the collection link under .collections is missing")
sys.path.insert(0, str(COLLECTIONS))

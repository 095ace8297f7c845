"""Unit tests import the collection as Ansible does (tests/collection_path.py says how)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests import collection_path

collection_path.install()
COLLECTIONS = collection_path.COLLECTIONS

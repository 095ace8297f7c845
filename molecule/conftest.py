"""Fixtures for every scenario's testinfra tests (pytest finds this file for molecule/*/tests/)."""

import sys
from pathlib import Path

import pytest
import testinfra

# So that tests can `from lab_testing import ...`.
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def lab_host(request):
    """Another host of the scenario's inventory, by name: `lab_host("fw-client")`."""
    inventory = request.config.option.ansible_inventory

    def get(name):
        return testinfra.get_host(f"ansible://{name}", ansible_inventory=inventory)

    return get

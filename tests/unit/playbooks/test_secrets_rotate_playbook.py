"""playbooks/rotate_secrets.yml on two local hosts in check mode: `-e secret=NAME[,NAME]` rotates each name on
the hosts that define it, and a name that no host of the play defines fails the run, naming it, before any
host runs a task of the role."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import collection_path

PROJECT = collection_path.ROOT


@pytest.fixture
def inventory(tmp_path):
    """h1 keeps secret a, h2 keeps secret b (local connections, stores under tmp_path)."""
    hosts = {
        name: {
            "secrets_definitions": [{"name": secret, "type": "password"}],
            "secrets_directory": str(tmp_path / name / "store"),
        }
        for name, secret in (("h1", "a"), ("h2", "b"))
    }
    path = tmp_path / "inventory.json"
    path.write_text(
        json.dumps(
            {
                "all": {
                    "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
                    "hosts": hosts,
                }
            }
        )
    )
    return path


def play(inventory, *extra):
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), "--check"]
    argv += [str(PROJECT / "playbooks/rotate_secrets.yml")]
    for item in extra:
        argv += ["-e", item]
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(collection_path.COLLECTIONS),
        "ANSIBLE_FORCE_COLOR": "0",
    }
    if (PROJECT / "ansible.cfg").exists():  # the checkout's; an installed copy has none (defaults serve)
        env["ANSIBLE_CONFIG"] = str(PROJECT / "ansible.cfg")
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    return done.returncode, done.stdout + done.stderr


def test_a_comma_list_rotates_each_name_on_the_hosts_that_define_it(inventory):
    rc, output = play(inventory, "secret=a, b")
    assert rc == 0, output[-3000:]
    assert "a: generate version 1" in output and "b: generate version 1" in output
    assert "is not a declared secret" not in output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["secret=a,zzz"], "secret: no host of this play defines zzz. Nothing was applied"),
        (["secret= , "], "secret: no secret named. Nothing was applied"),
        (["force=true", "keep_overlap=b,yyy"], "keep_overlap: no host of this play defines yyy"),
        (["keep_overlap=a"], "keep_overlap: an exception to an incident, given without force=true"),
    ],
)
def test_a_name_no_host_defines_fails_naming_it_before_any_host_runs_the_role(inventory, extra, message):
    rc, output = play(inventory, *extra)
    assert rc == 2 and message in output, output[-3000:]
    assert "Validate the role's input" not in output and "Generate, store" not in output

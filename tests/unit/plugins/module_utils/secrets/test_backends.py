"""The three backends behind one interface, on fakes: files (host/files in memory), ansible_vault (the
controller's values), vault (a fake hvac). Each reads metadata and values, writes a version, and refuses
what it cannot use by name, never with a value or the server's text."""

import json
import types

import pytest
from fakes import FakeFiles

from ansible_collections.bulwark.hardening.plugins.module_utils.host.files import HostError
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import generate, policy
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets.backends import (
    Backend,
    controller,
    open_backend,
    vault,
)
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets.backends import files as files_backend

SPECS, _unused = policy.normalise([{"name": "db", "type": "password"}], {})
STORE = "/etc/bulwark/secrets"
VALUE = "S3cr3t" * 6


def params(**changes):
    result = {
        "backend": "files",
        "directory": STORE,
        "store_values": None,
        "vault_url": None,
        "vault_token": None,
        "vault_mount": "secret",
        "vault_path": "bulwark",
    }
    result.update(changes)
    return result


def test_every_backend_is_one_interface():
    fs = FakeFiles()
    given = {"db": {"versions": {}, "candidate": VALUE}}
    for kind, cls in (("files", files_backend.FilesBackend), ("ansible_vault", controller.ControllerBackend)):
        store = open_backend(params(backend=kind, store_values=given), fs, SPECS)
        assert isinstance(store, cls) and isinstance(store, Backend)
    assert issubclass(vault.VaultBackend, Backend)


# --- files --------------------------------------------------------------------------------------------


def test_files_keeps_one_file_per_version_and_the_metadata_root_only():
    fs = FakeFiles()
    store = files_backend.FilesBackend(STORE, fs)
    store.prepare()
    assert store.put_value("db", 1, VALUE) is None  # kept at its version number
    store.put_meta({"name": "db", "state": "stable"})
    assert fs.files[f"{STORE}/db/v1"] == [VALUE, 0o600, 0, 0]
    assert store.meta("db") == {"name": "db", "state": "stable"}
    assert store.value("db", {"version": 1}) == VALUE
    assert store.where("db", {"version": 1}) == (f"{STORE}/db/v1", 0o600)
    assert store.meta("other") is None
    assert fs.log == [("private_dir", STORE), ("write", f"{STORE}/db/v1"), ("write", f"{STORE}/db/meta.json")]


def test_files_prunes_only_the_versions_not_kept():
    fs = FakeFiles()
    store = files_backend.FilesBackend(STORE, fs)
    for number in (1, 2, 3):
        store.put_value("db", number, VALUE)
    store.put_meta({"name": "db"})
    store.prune("db", {2, 3})
    assert sorted(fs.files) == [f"{STORE}/db/meta.json", f"{STORE}/db/v2", f"{STORE}/db/v3"]


def test_files_refuses_a_link_a_damaged_metadata_and_a_missing_version_by_name():
    with pytest.raises(HostError, match=f"directory: {STORE} is a symbolic link"):
        files_backend.FilesBackend(STORE, FakeFiles(links=[STORE])).check()
    fs = FakeFiles()
    fs.files[f"{STORE}/db/meta.json"] = ["{not json", 0o600, 0, 0]
    store = files_backend.FilesBackend(STORE, fs)
    with pytest.raises(HostError, match=f"db: {STORE}/db/meta.json is not valid JSON: the store is damaged"):
        store.meta("db")
    with pytest.raises(HostError, match=f"db: {STORE}/db/v4 is missing: the store is damaged"):
        store.value("db", {"version": 4})


# --- ansible_vault: the controller's values -----------------------------------------------------------


def test_the_controller_backend_finds_a_version_by_its_fingerprint_and_stores_nothing_on_the_host():
    fs = FakeFiles()
    print_ = generate.fingerprint(SPECS["db"], VALUE)
    store = controller.ControllerBackend(STORE, fs, {"db": {"versions": {}, "candidate": VALUE}}, SPECS)
    assert store.draw(SPECS["db"]) == VALUE
    assert store.value("db", {"version": 1, "fingerprint": print_}) == VALUE  # a candidate a killed run took
    store.put_value("db", 1, VALUE)
    store.prune("db", set())
    assert fs.log == []
    assert store.where("db", {"version": 1}) == ("controller:db@1", None)
    with pytest.raises(HostError, match="store_file: db version 2 is not in the controller's store"):
        store.value("db", {"version": 2, "fingerprint": "sha256:other"})


def test_the_controller_backend_refuses_to_run_without_its_action_plugin_or_a_candidate():
    with pytest.raises(policy.SecretSpecError, match="ansible_vault runs through the action plugin"):
        controller.ControllerBackend(STORE, FakeFiles(), None, SPECS)
    store = controller.ControllerBackend(STORE, FakeFiles(), {"db": {"candidate": "short"}}, SPECS)
    with pytest.raises(HostError, match="store_file: no new value drawn for db on the controller"):
        store.draw(SPECS["db"])


# --- vault: OpenBao / Vault KV v2, on a fake hvac -------------------------------------------------------


class VaultError(Exception):
    pass


class InvalidPath(VaultError):
    pass


class InvalidRequest(VaultError):
    pass


class FakeKV:
    def __init__(self):
        self.kept = {}  # path -> [data, ...]
        self.refuse = None

    def read_secret_version(self, path, version=None, mount_point=None):
        if path not in self.kept:
            raise InvalidPath("no such path")
        data = self.kept[path][(version or len(self.kept[path])) - 1]
        return {"data": {"data": data, "metadata": {}}}

    def create_or_update_secret(self, path, secret, mount_point=None):
        if self.refuse:
            raise self.refuse
        self.kept.setdefault(path, []).append(secret)
        return {"data": {"version": len(self.kept[path])}}


def fake_hvac(kv, authenticated=True):
    client = types.SimpleNamespace(
        secrets=types.SimpleNamespace(kv=types.SimpleNamespace(v2=kv)), is_authenticated=lambda: authenticated
    )
    errors = types.SimpleNamespace(VaultError=VaultError, InvalidPath=InvalidPath)
    return types.SimpleNamespace(Client=lambda url, token: client, exceptions=errors)


def vault_params():
    return params(backend="vault", vault_url="https://bao.example.org:8200", vault_token="t0ken" * 8)


def test_vault_keeps_one_kv_version_per_version_and_the_metadata_beside():
    kv = FakeKV()
    store = vault.VaultBackend(vault_params(), fake_hvac(kv))
    store.check()
    assert store.put_value("db", 1, VALUE) == 1  # the KV version, recorded as stored_as
    store.put_meta({"name": "db", "state": "stable"})
    assert store.meta("db") == {"name": "db", "state": "stable"}
    assert json.loads(kv.kept["bulwark/db.meta"][0]["meta"]) == {"name": "db", "state": "stable"}
    assert store.value("db", {"version": 1, "stored_as": 1}) == VALUE
    assert store.where("db", {"version": 1, "stored_as": 1}) == ("secret/bulwark/db@1", None)
    assert store.meta("other") is None


def test_vault_says_the_http_status_never_the_server_s_text():
    kv = FakeKV()
    kv.refuse = InvalidRequest(f"invalid request body: {VALUE}")
    store = vault.VaultBackend(vault_params(), fake_hvac(kv))
    with pytest.raises(HostError) as caught:
        store.put_value("db", 1, VALUE)
    assert str(caught.value) == (
        "db: vault: storing version 1 at secret/bulwark/db failed (HTTP 400, the server refused the request"
        " as invalid)"
    )


def test_vault_refuses_a_token_options_missing_and_a_version_without_its_kv_version():
    with pytest.raises(policy.SecretSpecError, match="vault_token: the server refuses this token"):
        vault.VaultBackend(vault_params(), fake_hvac(FakeKV(), authenticated=False)).check()
    with pytest.raises(policy.SecretSpecError, match="vault_url: required with backend vault"):
        vault.VaultBackend(params(backend="vault"), fake_hvac(FakeKV()))
    store = vault.VaultBackend(vault_params(), fake_hvac(FakeKV()))
    with pytest.raises(HostError, match=r"db: the metadata of version 2 has no KV version \(stored_as\)"):
        store.value("db", {"version": 2})

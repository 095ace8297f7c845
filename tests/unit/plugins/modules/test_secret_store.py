"""secret_store on a real directory tree with a recording systemctl: lockstep rounds, resume, check mode."""

import json
import os

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.host import files
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import generate, policy
from ansible_collections.bulwark.hardening.plugins.modules import secret_store

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the store is root-owned: runs as root")


class FakeModule:
    def __init__(self, params, check_mode=False, fail_on=None):
        self.params = params
        self.check_mode = check_mode
        self.calls = []
        self.fail_on = fail_on

    def run_command(self, argv, **_):
        self.calls.append(argv)
        if argv[:2] == ["systemctl", "show"]:
            return 0, "loaded\n", ""
        if self.fail_on and self.fail_on(argv, self.calls):
            return 1, "", "reload refused"
        return 0, "", ""


def params(tmp_path, **changes):
    result = {
        "secrets": [
            {"name": "db", "type": "password", "overlap": 0, "consumers": ["app"]},
            {"name": "hmac", "type": "token", "overlap": 0, "consumers": ["app"]},
            {"name": "jwt", "type": "ed25519", "overlap": 0, "consumers": ["api"]},
        ],
        "consumers": {
            "app": {"directory": str(tmp_path / "app/secrets"), "service": "app.service"},
            "api": {"directory": str(tmp_path / "api/secrets"), "service": "api.service", "action": "reload"},
        },
        "directory": str(tmp_path / "store"),
        "backend": "files",
        "rotate": [],
        "rotate_due": False,
        "rotate_all": False,
        "keep_overlap": [],
        "acknowledge": None,
        "rollback": [],
        "compromised_since": None,
        "wait_for_revoke": 0,
    }
    result.update(changes)
    return result


def run(module):
    specs, consumers = policy.normalise(module.params["secrets"], module.params["consumers"])
    store = secret_store.start(module, specs, consumers)
    store.module = module  # the recording systemctl, for the assertions
    store.check_host()
    metas = {name: store.meta(name) for name in specs}
    request = {
        "rotate": set(module.params["rotate"]),
        "rollback": set(module.params["rollback"]),
        "all": module.params["rotate_all"],
        "keep_overlap": set(module.params["keep_overlap"]),
        "due": module.params["rotate_due"],
        "compromised_since": None,
    }
    store.do(store.store.prepare)
    return store, store.run(metas, request, 1_800_000_000)


def tree(tmp_path):
    return {
        str(path.relative_to(tmp_path)): (path.read_bytes(), files.mode_of(str(path)))
        for path in sorted(tmp_path.rglob("*"))
        if path.is_file()
    }


def reloads(module):
    return [argv[1:] for argv in module.calls if argv[1] != "show"]


def test_first_run_generates_and_distributes_a_rerun_changes_nothing(tmp_path):
    first, _unused = run(FakeModule(params(tmp_path)))
    assert first.steps == ["db: generate version 1", "hmac: generate version 1", "jwt: generate version 1"]
    assert files.mode_of(str(tmp_path / "store")) == 0o700
    assert files.mode_of(str(tmp_path / "store/db/v1")) == 0o600
    assert files.mode_of(str(tmp_path / "app/secrets")) == 0o700  # group root: root only
    assert files.mode_of(str(tmp_path / "app/secrets/db")) == 0o600
    value = (tmp_path / "store/db/v1").read_text()
    assert (tmp_path / "app/secrets/db").read_text() == value + "\n"
    assert value not in (tmp_path / "store/db/meta.json").read_text()
    assert sorted(os.listdir(tmp_path / "api/secrets")) == ["jwt.jwks.json", "jwt.pub"]  # api verifies
    assert [call for call in first.module.calls if call[1] != "show"] == [
        ["systemctl", "try-reload-or-restart", "api.service"],
        ["systemctl", "try-restart", "app.service"],
    ]
    before = tree(tmp_path)
    again, _unused = run(FakeModule(params(tmp_path)))
    assert (again.changed, again.steps, reloads(again.module)) == (False, [], [])
    assert tree(tmp_path) == before


def test_a_rotation_runs_in_lockstep_one_reload_per_consumer_and_phase(tmp_path):
    run(FakeModule(params(tmp_path)))
    module = FakeModule(params(tmp_path, rotate_all=True))
    done, metas = run(module)
    assert done.steps == [
        "db: stage version 2 (incident)",
        "hmac: stage version 2 (incident)",
        "jwt: stage version 2 (incident)",
        "db: accept versions [2, 1]",
        "hmac: accept versions [2, 1]",
        "jwt: accept versions [2, 1]",
        "db: promote version 2",
        "hmac: promote version 2",
        "jwt: promote version 2",
        "db: revoke version 1",
        "hmac: revoke version 1",
        "jwt: revoke version 1",
    ]
    # accept, promote, revoke: three reloads each, not one per secret and step
    assert reloads(module) == [["try-reload-or-restart", "api.service"], ["try-restart", "app.service"]] * 3
    assert {name: (m["state"], m["current"]["version"]) for name, m in metas.items()} == {
        "db": ("stable", 2),
        "hmac": ("stable", 2),
        "jwt": ("stable", 2),
    }
    assert (tmp_path / "app/secrets/db.accept").read_text() == (tmp_path / "store/db/v2").read_text() + "\n"
    assert sorted(os.listdir(tmp_path / "store/db")) == ["meta.json", "v1", "v2"]  # v1 kept for a rollback


def test_a_run_killed_in_dual_accept_resumes_there_and_reloads_what_was_pending(tmp_path):
    run(FakeModule(params(tmp_path)))
    # The first reload after the accept step fails, as a run killed while the consumers reload.
    module = FakeModule(params(tmp_path, rotate=["jwt"]), fail_on=lambda argv, calls: argv[1] != "show")
    with pytest.raises(files.HostError, match=r"systemctl try-reload-or-restart api\.service failed"):
        run(module)
    meta = json.loads((tmp_path / "store/jwt/meta.json").read_text())
    assert (meta["state"], meta["reload_pending"]) == ("dual", ["api"])
    resumed = FakeModule(params(tmp_path))
    done, metas = run(resumed)
    assert done.steps == ["jwt: promote version 2", "jwt: revoke version 1"]
    assert reloads(resumed) == [["try-reload-or-restart", "api.service"]] * 3  # the pending one first
    assert (metas["jwt"]["state"], metas["jwt"]["reload_pending"]) == ("stable", [])


def test_check_mode_predicts_and_writes_nothing(tmp_path):
    fresh = FakeModule(params(tmp_path), check_mode=True)
    done, _unused = run(fresh)
    assert done.changed and done.steps[0] == "db: generate version 1"
    assert tree(tmp_path) == {} and reloads(fresh) == []
    run(FakeModule(params(tmp_path)))
    before = tree(tmp_path)
    module = FakeModule(params(tmp_path, rotate=["db"]), check_mode=True)
    done, _unused = run(module)
    assert done.changed and done.steps[0] == "db: stage version 2 (requested)"
    assert tree(tmp_path) == before and reloads(module) == []


def test_rollback_once_while_the_variable_stays_set(tmp_path):
    run(FakeModule(params(tmp_path)))
    run(FakeModule(params(tmp_path, rotate=["db"])))
    done, metas = run(FakeModule(params(tmp_path, rollback=["db"])))
    # From stable, the consumers accept version 1 again (and reload) before it becomes the active one.
    assert done.steps == [
        "db: roll back to version 1 (accept versions [1, 2] first)",
        "db: promote version 1",
        "db: revoke version 2",
    ]
    assert reloads(done.module) == [["try-restart", "app.service"]] * 3
    assert (tmp_path / "app/secrets/db").read_text() == (tmp_path / "store/db/v1").read_text() + "\n"
    assert metas["db"]["rolled_back"] and metas["db"]["latest"] == 2
    again, _unused = run(FakeModule(params(tmp_path, rollback=["db"])))
    assert again.steps == [] and not again.changed


def test_a_consumer_file_changed_behind_its_back_is_put_back_and_reloaded(tmp_path):
    run(FakeModule(params(tmp_path)))
    (tmp_path / "app/secrets/db").write_text("tampered\n")
    os.chmod(tmp_path / "app/secrets/db", 0o644)
    module = FakeModule(params(tmp_path))
    done, _unused = run(module)
    assert done.changed and reloads(module) == [["try-restart", "app.service"]]
    assert files.mode_of(str(tmp_path / "app/secrets/db")) == 0o600
    assert (tmp_path / "app/secrets/db").read_text() == (tmp_path / "store/db/v1").read_text() + "\n"


def test_a_missing_group_fails_before_anything_changes(tmp_path):
    spec = params(tmp_path)
    spec["consumers"]["app"]["group"] = "nosuchgroup"
    with pytest.raises(policy.SecretSpecError, match=r"consumers\.app\.group: group 'nosuchgroup' does not"):
        run(FakeModule(spec))
    assert tree(tmp_path) == {}


# --- backend ansible_vault: the values from the controller, the metadata on the host ------------------


def controller_params(tmp_path, given, **changes):
    return params(
        tmp_path,
        backend="ansible_vault",
        store_values=given,
        secrets=[{"name": "db", "type": "password", "overlap": 0, "consumers": ["app"]}],
        **changes,
    )


def test_backend_ansible_vault_takes_the_controllers_candidate_and_keeps_no_value(tmp_path):
    given = {"db": {"versions": {}, "candidate": "c" * 32}}
    done, metas = run(FakeModule(controller_params(tmp_path, given)))
    assert done.steps == ["db: generate version 1"]
    assert (tmp_path / "app/secrets/db").read_text() == "c" * 32 + "\n"
    assert sorted(os.listdir(tmp_path / "store/db")) == ["meta.json"]  # no value on the host's store
    assert metas["db"]["current"]["fingerprint"] == generate.fingerprint({"type": "password"}, "c" * 32)
    # The controller now holds version 1 (and a new candidate): a re-run changes nothing.
    given = {"db": {"versions": {"1": "c" * 32}, "candidate": "d" * 32}}
    again, _unused = run(FakeModule(controller_params(tmp_path, given)))
    assert (again.changed, again.steps) == (False, [])
    rotated, metas = run(FakeModule(controller_params(tmp_path, given, rotate=["db"])))
    assert rotated.steps[0] == "db: stage version 2 (requested)"
    assert metas["db"]["current"]["fingerprint"] == generate.fingerprint({"type": "password"}, "d" * 32)
    assert (tmp_path / "app/secrets/db.accept").read_text() == "d" * 32 + "\n"


def test_backend_ansible_vault_resumes_with_a_candidate_known_by_fingerprint(tmp_path):
    run(FakeModule(controller_params(tmp_path, {"db": {"versions": {}, "candidate": "c" * 32}})))
    given = {"db": {"versions": {"1": "c" * 32}, "candidate": "d" * 32}}
    module = FakeModule(controller_params(tmp_path, given, rotate=["db"]), fail_on=lambda argv, _c: True)
    with pytest.raises(files.HostError):
        run(module)  # killed at the first reload, in dual-accept; the controller never saw version 2
    done, metas = run(FakeModule(controller_params(tmp_path, given)))
    assert "db: promote version 2" in done.steps and metas["db"]["current"]["version"] == 2


def test_backend_ansible_vault_without_the_value_of_a_version_fails_naming_the_store(tmp_path):
    run(FakeModule(controller_params(tmp_path, {"db": {"versions": {}, "candidate": "c" * 32}})))
    with pytest.raises(files.HostError, match="store_file: db version 1 is not in the controller's store"):
        run(FakeModule(controller_params(tmp_path, {"db": {"versions": {}, "candidate": "e" * 32}})))
    with pytest.raises(policy.SecretSpecError, match="backend: ansible_vault runs through the action plugin"):
        run(FakeModule(controller_params(tmp_path, None)))

"""Issue 21 on a real directory tree: an incident during an overlap window revokes at once, verifiers hold no
private key, NAME.pub through a rotation, and what a run whose controller went away did is reported."""

import json
import os

import pytest
from test_secret_store import FakeModule, controller_params, params, reloads, run, tree

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import generate, redact
from ansible_collections.bulwark.hardening.plugins.modules import secret_store

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the store is root-owned: runs as root")


def long_overlap(tmp_path, **changes):
    """db, hmac and jwt with a day of overlap: a rotation stays in its window (promoted)."""
    result = params(tmp_path, **changes)
    result["secrets"] = [dict(secret, overlap=86400) for secret in result["secrets"]]
    return result


def accepted_values(tmp_path, consumer, name):
    return (tmp_path / consumer / "secrets" / f"{name}.accept").read_text().split()


def kids(tmp_path):
    return [key["kid"] for key in json.loads((tmp_path / "api/secrets/jwt.jwks.json").read_text())["keys"]]


def apply(module_params, check_mode=False):
    """The module's whole result, as the controller gets it."""
    module = FakeModule(module_params, check_mode=check_mode)
    result = secret_store.apply(module, {"redactor": redact.Redactor(), "run": None})
    assert not result.get("failed"), result.get("msg")
    return result


# --- an incident during an overlap window -------------------------------------------------------------


def test_an_incident_during_the_overlap_revokes_every_earlier_version_in_the_same_run(tmp_path):
    run(FakeModule(long_overlap(tmp_path)))
    _rotated, metas = run(FakeModule(long_overlap(tmp_path, rotate=["db", "jwt"])))
    assert metas["db"]["state"] == "promoted" and len(accepted_values(tmp_path, "app", "db")) == 2
    assert len(kids(tmp_path)) == 2  # v2 signs, v1 still verifies: the window of a day
    module = FakeModule(long_overlap(tmp_path, rotate_all=True))
    result = apply(module.params)
    assert result["steps"][:4] == [
        "db: revoke version 1 (incident)",
        "db: stage version 3 (incident)",
        "hmac: stage version 2 (incident)",
        "jwt: revoke version 1 (incident)",
    ]
    assert result["revoked"] == {"db": [1, 2], "hmac": [1], "jwt": [1, 2]}
    for name, current in (("db", 3), ("hmac", 2), ("jwt", 3)):
        data = result["secrets"][name]
        assert (data["state"], data["version"], data["accepted"], data["revoke_after"]) == (
            "stable",
            current,
            [current],
            None,
        ), name
    store_value = (tmp_path / "store/db/v3").read_text()
    assert accepted_values(tmp_path, "app", "db") == [store_value]
    assert kids(tmp_path) == [result["secrets"]["jwt"]["fingerprint"].removeprefix("jwk:")]
    assert "revoked" in json.dumps(result) and store_value not in json.dumps(result)


def test_an_incident_replaces_a_staged_or_dual_accepted_version_by_a_fresh_one(tmp_path):
    run(FakeModule(params(tmp_path)))
    # Killed in dual-accept (its reload refused): version 2, drawn before the incident, is accepted.
    with pytest.raises(Exception, match=r"try-restart app\.service failed"):
        run(FakeModule(params(tmp_path, rotate=["db"]), fail_on=lambda argv, _calls: "app.service" in argv))
    assert json.loads((tmp_path / "store/db/meta.json").read_text())["state"] == "dual"
    result = apply(params(tmp_path, rotate_all=True))
    assert result["steps"][0] == "db: replace staged version 2 by version 3 (incident)"
    assert result["revoked"]["db"] == [1, 2]
    assert result["secrets"]["db"]["accepted"] == [3]
    assert sorted(os.listdir(tmp_path / "store/db")) == [
        "meta.json",
        "v1",
        "v3",
    ]  # v2, never signed with, gone


def test_the_operators_exception_keeps_its_overlap_and_is_reported(tmp_path):
    run(FakeModule(long_overlap(tmp_path)))
    run(FakeModule(long_overlap(tmp_path, rotate=["db"])))
    result = apply(long_overlap(tmp_path, rotate_all=True, keep_overlap=["db"]))
    assert "db" not in result["revoked"] and result["secrets"]["db"]["version"] == 2
    assert result["kept_overlap"]["db"]["accepted"] == [2, 1]
    assert result["kept_overlap"]["db"]["until"].endswith("Z")
    assert result["revoked"] == {"hmac": [1], "jwt": [1]}


def test_an_incident_in_check_mode_reports_what_it_would_revoke_and_writes_nothing(tmp_path):
    run(FakeModule(long_overlap(tmp_path)))
    run(FakeModule(long_overlap(tmp_path, rotate=["db"])))
    before = tree(tmp_path)
    module = FakeModule(long_overlap(tmp_path, rotate_all=True), check_mode=True)
    result = secret_store.apply(module, {"redactor": redact.Redactor(), "run": None})
    assert result["changed"] and "db: revoke version 1 (incident)" in result["steps"]
    assert "db: revoke version 2" in result["steps"]
    assert result["revoked"]["db"] == [1, 2]
    assert tree(tmp_path) == before and reloads(module) == []


def test_an_incident_with_the_controllers_store_takes_one_candidate_and_revokes(tmp_path):
    def controller(given, **changes):
        result = controller_params(tmp_path, given, **changes)
        result["secrets"][0]["overlap"] = 86400
        return result

    run(FakeModule(controller({"db": {"versions": {}, "candidate": "c" * 32}})))
    run(FakeModule(controller({"db": {"versions": {"1": "c" * 32}, "candidate": "d" * 32}}, rotate=["db"])))
    given = {"db": {"versions": {"1": "c" * 32, "2": "d" * 32}, "candidate": "e" * 32}}
    result = apply(controller(given, rotate_all=True))
    assert result["revoked"] == {"db": [1, 2]}
    assert accepted_values(tmp_path, "app", "db") == ["e" * 32]
    assert result["versions"]["db"] == {
        "2": generate.fingerprint({"type": "password"}, "d" * 32),
        "3": generate.fingerprint({"type": "password"}, "e" * 32),
    }


# --- verify-only consumers ------------------------------------------------------------------------------


def signing(tmp_path, signers):
    result = params(tmp_path)
    result["secrets"][2] = {**result["secrets"][2], "consumers": ["api", "app"], "signers": signers}
    return result


def test_verifiers_get_no_private_key_and_a_signer_that_turns_verifier_loses_it(tmp_path):
    run(FakeModule(signing(tmp_path, ["app"])))
    assert sorted(os.listdir(tmp_path / "api/secrets")) == ["jwt.jwks.json", "jwt.pub"]
    key = (tmp_path / "app/secrets/jwt.key").read_text()
    assert "PRIVATE KEY" in key and generate.meets({"type": "ed25519"}, key)
    module = FakeModule(signing(tmp_path, []))
    done, _unused = run(module)
    assert done.steps == [f"jwt: remove {tmp_path}/app/secrets/jwt.key (app verifies, it does not sign)"]
    assert not (tmp_path / "app/secrets/jwt.key").exists()
    assert ["try-restart", "app.service"] in reloads(module)
    assert not [leaf for leaf in os.listdir(tmp_path / "app/secrets") if leaf.endswith(".key")]
    assert (again := run(FakeModule(signing(tmp_path, []))))[0].changed is False, again[0].steps


def test_a_pub_reader_reads_every_accepted_key_through_a_rotation(tmp_path):
    run(FakeModule(long_overlap(tmp_path)))
    first = (tmp_path / "store/jwt/v1").read_text()
    assert (tmp_path / "api/secrets/jwt.pub").read_text() == generate.public_pem(first)
    run(FakeModule(long_overlap(tmp_path, rotate=["jwt"])))
    second = (tmp_path / "store/jwt/v2").read_text()
    # Promoted: v2 signs; a token of v1 still verifies against the bundle (the signing key first).
    assert (tmp_path / "api/secrets/jwt.pub").read_text() == generate.public_pem(
        second
    ) + generate.public_pem(first)


# --- a run whose controller went away -------------------------------------------------------------------


def test_the_next_run_reports_what_an_unacknowledged_run_did_until_acknowledged(tmp_path):
    apply(params(tmp_path))  # generated; not acknowledged either
    rotated = apply(params(tmp_path, rotate=["jwt"]))
    # The controller of that run went away: the acknowledgement never came.
    assert rotated["acknowledge"] == {"db": 1, "hmac": 1, "jwt": 5}
    later = apply(params(tmp_path))
    mine = [(item["secret"], item["step"], item["version"], item["run"]) for item in later["meanwhile"]]
    assert ("jwt", "promote", 2, rotated["run"]) in mine and ("jwt", "revoke", 1, rotated["run"]) in mine
    assert [item["step"] for item in later["meanwhile"] if item["secret"] == "jwt"] == [  # noqa: S105
        "generate",
        "stage",
        "accept",
        "promote",
        "revoke",
    ]
    assert all(item["at"].endswith("Z") for item in later["meanwhile"])
    # The action plugin acknowledges what its controller received: then nothing more is reported.
    assert (
        apply(params(tmp_path, acknowledge=later["acknowledge"] or rotated["acknowledge"]))["changed"]
        is False
    )
    assert apply(params(tmp_path))["meanwhile"] == []


def loads(root, unit):
    """What a consumer of db loads: its active value and its accepted ones."""
    folder = root / unit / "secrets"
    return (folder / "db").read_text().strip(), (folder / "db.accept").read_text().split()


class Watching(FakeModule):
    """Runs db's consumers: at each reload, a consumer loads its db and db.accept; every consumer's running
    value must then be accepted by every consumer (what the adversarial kill harness checks, in one case)."""

    def __init__(self, params, root, running, **kwargs):
        super().__init__(params, **kwargs)
        self.root, self.running = root, running

    def run_command(self, argv, **kwargs):
        answer = super().run_command(argv, **kwargs)  # records the call, answers show, refuses on fail_on
        if answer[0] or argv[:2] == ["systemctl", "show"]:
            return answer
        unit = {"try-restart": "app", "try-reload-or-restart": "api"}[argv[1]]
        self.running[unit] = loads(self.root, unit)
        for other, (active, _accept) in self.running.items():
            for reader, (_active, accept) in self.running.items():
                assert active in accept, f"{reader} runs without accepting {other}'s value"
        return 0, "", ""


def test_an_incident_after_a_killed_promotion_reloads_what_is_pending_before_it_revokes(tmp_path):
    shared = long_overlap(tmp_path)
    shared["secrets"][0]["consumers"] = ["api", "app"]  # db, read by both
    run(FakeModule(shared))
    running = {unit: loads(tmp_path, unit) for unit in ("api", "app")}

    def promotion_restart(argv, calls):  # app's restart after the promotion fails, as a run killed there
        return argv[1:] == ["try-restart", "app.service"] and calls.count(argv) == 2

    with pytest.raises(Exception, match=r"try-restart app\.service failed"):
        run(Watching({**shared, "rotate": ["db"]}, tmp_path, running, fail_on=promotion_restart))
    meta = json.loads((tmp_path / "store/db/meta.json").read_text())
    assert meta["state"] == "promoted" and "app" in meta["reload_pending"]
    assert running["app"][0] == (tmp_path / "store/db/v1").read_text()  # app still runs version 1
    # The incident: the pending reloads first (both run version 2, accepting 2 and 1), then version 1 is
    # revoked; at no reload does a consumer run a value another one refuses (Watching asserts it).
    done, metas = run(Watching({**shared, "rotate_all": True}, tmp_path, running))
    assert done.steps[0] == "db: revoke version 1 (incident)"
    assert (metas["db"]["state"], metas["db"]["current"]["version"]) == ("stable", 3)
    assert running == dict.fromkeys(("api", "app"), loads(tmp_path, "app"))


def test_a_rollback_after_an_incident_never_brings_back_the_revoked_version(tmp_path):
    run(FakeModule(params(tmp_path)))
    apply(params(tmp_path, rotate_all=True))
    store = (tmp_path / "store/db/meta.json").read_text()
    module = FakeModule(params(tmp_path, rollback=["db"]))
    result = secret_store.apply(module, {"redactor": redact.Redactor(), "run": None})
    assert result.get("failed"), result
    assert "rollback: db: its previous version 1 was revoked by an incident rotation" in result["msg"]
    assert (tmp_path / "store/db/meta.json").read_text() == store  # nothing changed
    # A rotation after the incident is an ordinary one again: its previous version can come back.
    apply(params(tmp_path, rotate=["db"]))
    rolled = apply(params(tmp_path, rollback=["db"]))
    assert rolled["secrets"]["db"]["version"] in (2, 3) and "db: roll back to version 2" in rolled["steps"][0]

"""Stored metadata the rotation cannot continue from is refused by name; no rollback skips dual-accept."""

import json

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import policy, rotation

NOW = 1_800_000_000
SPECS, _unused = policy.normalise(
    [{"name": "db", "type": "password", "overlap": 30, "consumers": ["app"]}],
    {"app": {"directory": "/etc/app/secrets"}},
)
SPEC = SPECS["db"]


def stored(meta):
    return json.loads(json.dumps(meta))  # as a run reads it back


def walk(meta, now=NOW):
    meta = rotation.advance(
        meta, "stage", now, SPEC, rotation.version_meta(SPEC, meta["latest"] + 1, "fp", now)
    )
    while rotation.next_step(meta, now):
        meta = rotation.advance(meta, rotation.next_step(meta, now), now, SPEC)
    return meta


FIRST = rotation.initial(SPEC, rotation.version_meta(SPEC, 1, "fp1", NOW))
PROMOTED = walk(FIRST)  # the overlap is not over: promoted, both accepted
STABLE = rotation.advance(PROMOTED, "revoke", NOW + 30, SPEC)


@pytest.mark.parametrize("meta", [FIRST, PROMOTED, STABLE, rotation.advance(STABLE, "rollback", NOW, SPEC)])
def test_metadata_the_module_writes_passes(meta):
    assert rotation.check_meta("db", stored(meta)) == meta


def damaged(**changes):
    meta = stored(PROMOTED)
    for key, value in changes.items():
        if value is KeyError:
            del meta[key]
        else:
            meta[key] = value
    return meta


@pytest.mark.parametrize(
    ("meta", "problem"),
    [
        ([1, 2], "is a list, not a mapping"),
        ("stable", "is a str, not a mapping"),
        (
            damaged(state="frozen"),
            "has an unknown rotation state 'frozen' (known: stable, staged, dual, promoted);"
            " refusing to guess where the rotation stands",
        ),
        (damaged(state=None), "has an unknown rotation state 'None'"),
        (damaged(current=KeyError), "has no current"),
        (damaged(name="other"), "names another secret ('other')"),
        (damaged(previous=None), "is in state promoted without previous"),
        (damaged(revoke_after=None), "is in state promoted without revoke_after"),
        (damaged(state="dual"), "is in state dual without next"),
        (damaged(current="v2"), "current is a str, not a mapping"),
        (damaged(current={**PROMOTED["current"], "version": "2"}), "current.version is not a version number"),
        (
            damaged(current={**PROMOTED["current"], "version": True}),
            "current.version is not a version number",
        ),
        (damaged(previous={"version": 1}), "previous.created is missing or not a text"),
        (damaged(current={**PROMOTED["current"], "created": "soon"}), "current.created is not a time"),
        (damaged(latest=1), "latest is not the highest version number"),
        (damaged(revoke_after="tomorrow"), "revoke_after is not a time"),
        (damaged(rolled_back="no"), "rolled_back is not true or false"),
        (damaged(reload_pending="app"), "reload_pending is not a list of consumer names"),
    ],
)
def test_damaged_metadata_is_refused_naming_the_secret_and_the_damage(meta, problem):
    with pytest.raises(rotation.StateError) as caught:
        rotation.check_meta("db", meta)
    assert str(caught.value).startswith("db: the stored metadata ")
    assert problem in str(caught.value)
    assert str(caught.value).endswith(": the store is damaged")


def test_rollback_from_stable_goes_through_dual_accept_before_the_switch():
    back = rotation.advance(STABLE, "rollback", NOW + 40, SPEC)
    # consumers accept version 1 again while version 2 stays the active one
    assert (back["state"], back["current"]["version"], rotation.accepted(back)) == ("dual", 2, [1, 2])
    assert back["rolled_back"] and back["reload_pending"] == ["app"]
    assert rotation.next_step(back, NOW + 40) == "promote"
    promoted = rotation.advance(back, "promote", NOW + 41, SPEC)
    assert (promoted["state"], promoted["current"]["version"], rotation.accepted(promoted)) == (
        "promoted",
        1,
        [1, 2],
    )
    assert promoted["rolled_back"] and promoted["revoke_after"] == NOW + 71 and promoted["latest"] == 2
    stable = rotation.advance(promoted, "revoke", NOW + 71, SPEC)
    assert (stable["current"]["version"], rotation.accepted(stable), stable["rolled_back"]) == (1, [1], True)
    # the next rotation clears it
    again = walk(stable, NOW + 80)
    assert (again["current"]["version"], again["rolled_back"]) == (3, False)


def test_a_rollback_in_the_middle_of_a_rotation_is_refused():
    staged = rotation.advance(STABLE, "stage", NOW, SPEC, rotation.version_meta(SPEC, 3, "fp3", NOW))
    with pytest.raises(ValueError, match="cannot roll back in state staged"):
        rotation.advance(staged, "rollback", NOW, SPEC)

"""The rotation as a pure transition function, table by table: every transition of every phase, the window
not yet passed, an incident in each state, rollback and its refusals, damaged metadata, and a run killed
after any recorded step that resumes to the same end."""

import copy
import json

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import policy, rotation, transitions
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets.transitions import Step

NOW = 1_800_000_000
DAY = 86400
SPECS, _unused = policy.normalise(
    [
        {"name": "db", "type": "password", "overlap": 3600, "max_age_days": 30, "consumers": ["app", "api"]},
    ],
    {"app": {"directory": "/etc/app/secrets"}, "api": {"directory": "/etc/api/secrets"}},
)
SPEC = SPECS["db"]


def request(**changes):
    result = {
        "rotate": set(),
        "rollback": set(),
        "keep_overlap": set(),
        "all": False,
        "due": False,
        "compromised_since": None,
    }
    result.update(changes)
    return result


def version(number, now=NOW):
    return rotation.version_meta(SPEC, number, f"fp{number}", now)


def take(meta, step, now=NOW):
    """One transition, a drawing step given the next version."""
    new = version(meta["latest"] + 1 if meta else 1, now) if step.draws else None
    return transitions.take(meta, step, now, SPEC, run="r1", new=new)


def through(meta, *steps, now=NOW):
    for step in steps:
        meta = take(meta, Step(step), now).meta
    return meta


STABLE = take(None, Step("generate"), NOW - DAY).meta  # version 1, a day old
STAGED = through(STABLE, "stage")
DUAL = through(STAGED, "accept")
PROMOTED = through(DUAL, "promote")  # v2 signs, v1 accepted until NOW + 3600
ROTATED = through(PROMOTED, "revoke", now=NOW + 3600)  # stable on v2, v1 kept for a rollback
OLD = take(None, Step("generate"), NOW - 31 * DAY).meta


def incident_rotated():
    """v1 revoked by an incident: v2 promoted without an overlap, then stable."""
    meta = take(STABLE, Step("stage", "incident", incident=True)).meta
    return through(meta, "accept", "promote", "revoke")


# --- the "open" phase: what a secret needs before the rounds ------------------------------------------

OPEN = [
    ("not generated yet", None, {}, True, [Step("generate")]),
    ("stable, nothing asked", STABLE, {}, True, []),
    ("stable, rotation requested", STABLE, {"rotate": {"db"}}, True, [Step("stage", "requested")]),
    ("stable, below a raised policy", STABLE, {}, False, [Step("stage", "does not meet the policy")]),
    ("older than max_age_days, not rotate_due", OLD, {}, True, []),
    ("older than max_age_days, rotate_due", OLD, {"due": True}, True, [Step("stage", "older than 30 days")]),
    (
        "created before compromised_since, rotate_due",
        STABLE,
        {"due": True, "compromised_since": NOW},
        True,
        [Step("stage", "not rotated since the compromise date")],
    ),
    ("created before compromised_since, not rotate_due", STABLE, {"compromised_since": NOW}, True, []),
    ("staged: only stable starts a rotation", STAGED, {"rotate": {"db"}}, True, []),
    ("dual: only stable starts a rotation", DUAL, {"rotate": {"db"}}, True, []),
    ("promoted: only stable starts a rotation", PROMOTED, {"rotate": {"db"}}, True, []),
    ("an incident takes its steps later", STABLE, {"all": True, "rotate": {"db"}}, True, []),
    ("rollback from stable", ROTATED, {"rollback": {"db"}}, True, [Step("rollback")]),
    ("rollback in the window", PROMOTED, {"rollback": {"db"}}, True, [Step("rollback")]),
    ("rollback already done: idempotent", through(PROMOTED, "rollback"), {"rollback": {"db"}}, True, []),
]


@pytest.mark.parametrize(
    ("meta", "changes", "meets", "expected"), [row[1:] for row in OPEN], ids=[row[0] for row in OPEN]
)
def test_the_open_phase(meta, changes, meets, expected):
    assert transitions.steps(meta, request(**changes), NOW, SPEC, phase="open", meets=meets) == expected


ROLLBACK_REFUSED = [
    ("staged", STAGED, "rollback: db: it cannot be rolled back in state staged"),
    ("dual", DUAL, "rollback: db: it cannot be rolled back in state dual"),
    ("stable without a previous version", STABLE, "cannot be rolled back in state stable without a previous"),
    (
        "to the version an incident revoked",
        incident_rotated(),
        "rollback: db: its previous version 1 was revoked by an incident rotation and is never brought back",
    ),
]


@pytest.mark.parametrize(
    ("meta", "said"), [row[1:] for row in ROLLBACK_REFUSED], ids=[row[0] for row in ROLLBACK_REFUSED]
)
def test_a_rollback_the_state_forbids_is_refused_by_name(meta, said):
    with pytest.raises(policy.SecretSpecError, match="rollback: db: ") as caught:
        transitions.steps(meta, request(rollback={"db"}), NOW, SPEC, phase="open")
    assert said in str(caught.value)
    assert rotation.rollback_refused(meta) in str(caught.value)  # rotation.rollback_refused is the one judge


# --- the "incident" phase: rotate_all in each state ---------------------------------------------------

INCIDENT = [
    ("stable", STABLE, False, [Step("stage", "incident", incident=True)]),
    ("staged", STAGED, False, [Step("restage", "incident", incident=True)]),
    ("dual", DUAL, False, [Step("restage", "incident", incident=True)]),
    ("promoted", PROMOTED, False, [Step("revoke", "incident"), Step("stage", "incident", incident=True)]),
    ("stable, keep_overlap", STABLE, True, [Step("stage", "forced, overlap kept by keep_overlap")]),
    ("staged, keep_overlap", STAGED, True, []),
    ("promoted, keep_overlap", PROMOTED, True, []),
]


@pytest.mark.parametrize(
    ("meta", "keep", "expected"), [row[1:] for row in INCIDENT], ids=[row[0] for row in INCIDENT]
)
def test_the_incident_phase(meta, keep, expected):
    changes = {"all": True, "keep_overlap": {"db"} if keep else set()}
    assert transitions.steps(meta, request(**changes), NOW, SPEC, phase="incident") == expected


# --- the rounds: one step that continues a rotation ---------------------------------------------------

ROUND = [
    ("stable: nothing to continue", STABLE, NOW, []),
    ("staged -> accept", STAGED, NOW, [Step("accept")]),
    ("dual -> promote", DUAL, NOW, [Step("promote")]),
    ("promoted, the window not yet passed", PROMOTED, NOW + 3599, []),
    ("promoted, the window passed -> revoke", PROMOTED, NOW + 3600, [Step("revoke")]),
]


@pytest.mark.parametrize(
    ("meta", "now", "expected"), [row[1:] for row in ROUND], ids=[row[0] for row in ROUND]
)
def test_a_round(meta, now, expected):
    assert transitions.steps(meta, request(), now, SPEC, phase="round") == expected


# --- the transition itself: state in, state and words out ---------------------------------------------

TAKE = [
    # (id, before, step, now, state after, accepted after, words, revoked)
    ("generate", None, Step("generate"), NOW, "stable", [1], "db: generate version 1", []),
    ("stage", STABLE, Step("stage", "requested"), NOW, "staged", [1], "db: stage version 2 (requested)", []),
    ("accept", STAGED, Step("accept"), NOW, "dual", [2, 1], "db: accept versions [2, 1]", []),
    ("promote", DUAL, Step("promote"), NOW, "promoted", [2, 1], "db: promote version 2", []),
    ("revoke", PROMOTED, Step("revoke"), NOW + 3600, "stable", [2], "db: revoke version 1", [1]),
    (
        "incident revoke in the window",
        PROMOTED,
        Step("revoke", "incident"),
        NOW,
        "stable",
        [2],
        "db: revoke version 1 (incident)",
        [1],
    ),
    (
        "restage a dual-accepted version",
        DUAL,
        Step("restage", "incident", incident=True),
        NOW,
        "staged",
        [1],
        "db: replace staged version 2 by version 3 (incident)",
        [2],
    ),
    (
        "rollback from stable goes through dual-accept",
        ROTATED,
        Step("rollback"),
        NOW,
        "dual",
        [1, 2],
        "db: roll back to version 1 (accept versions [1, 2] first)",
        [],
    ),
    (
        "rollback in the window",
        PROMOTED,
        Step("rollback"),
        NOW,
        "promoted",
        [1, 2],
        "db: roll back to version 1",
        [],
    ),
]


@pytest.mark.parametrize(
    ("before", "step", "now", "state", "accepted", "words", "revoked"),
    [row[1:] for row in TAKE],
    ids=[row[0] for row in TAKE],
)
def test_a_transition(before, step, now, state, accepted, words, revoked):  # noqa: PLR0917
    kept = copy.deepcopy(before)
    done = take(before, step, now)
    assert before == kept  # a transition returns new metadata, the state it was given is left as it was
    assert (done.meta["state"], rotation.accepted(done.meta), done.words, done.revoked) == (
        state,
        accepted,
        words,
        revoked,
    )
    assert done.meta["transitions"][-1]["step"] == step.step and done.meta["transitions"][-1]["run"] == "r1"
    assert (
        rotation.check_meta("db", json.loads(json.dumps(done.meta))) == done.meta
    )  # what is recorded reads back


def test_a_step_the_state_does_not_allow_is_refused():
    for meta, step in ((STABLE, "accept"), (STAGED, "promote"), (DUAL, "revoke"), (PROMOTED, "accept")):
        with pytest.raises(ValueError, match=f"db: cannot {step} in state {meta['state']}"):
            take(meta, Step(step))


def test_an_incident_promotion_has_no_overlap_and_its_old_version_is_suspect():
    meta = through(take(STABLE, Step("stage", "incident", incident=True)).meta, "accept", "promote")
    assert meta["revoke_after"] == NOW and meta["suspect"] == [1]
    assert transitions.steps(meta, request(), NOW, SPEC, phase="round") == [Step("revoke")]


def test_every_step_marks_the_consumers_to_reload_but_a_staged_version_is_not_shown():
    assert take(STABLE, Step("stage", "requested")).meta["reload_pending"] == STABLE["reload_pending"]
    for before, step in ((STAGED, "accept"), (DUAL, "promote"), (PROMOTED, "revoke")):
        assert take(before, Step(step), NOW + 3600).meta["reload_pending"] == ["app", "api"]


# --- damaged metadata ---------------------------------------------------------------------------------

DAMAGED = [
    ("an unknown state", {"state": "halfway"}, "has an unknown rotation state 'halfway'"),
    (
        "promoted without previous",
        {"state": "promoted", "previous": None},
        "is in state promoted without previous",
    ),
    ("another secret's", {"name": "other"}, "names another secret ('other')"),
    (
        "a version that is not a number",
        {"current": {**STABLE["current"], "version": "1"}},
        "current.version is not",
    ),
    ("latest below a kept version", {"latest": 0}, "latest is not the highest version number"),
    ("suspect not numbers", {"suspect": ["1"]}, "suspect is not a list of version numbers"),
]


@pytest.mark.parametrize(("changes", "said"), [row[1:] for row in DAMAGED], ids=[row[0] for row in DAMAGED])
def test_damaged_metadata_is_refused_naming_the_secret(changes, said):
    with pytest.raises(rotation.StateError) as caught:
        rotation.check_meta("db", {**STABLE, **changes})
    assert str(caught.value).startswith("db: the stored metadata ") and said in str(caught.value)
    assert str(caught.value).endswith("the store is damaged")


# --- a whole run, and a run killed after any recorded step --------------------------------------------


def walk(meta, asked, now):
    """What a run does to one secret (the phases of secrets/run.py): the words, the end."""
    said = []
    for phase in ("open", "incident" if asked["all"] else None, "round", "round", "round", "round"):
        if phase is None:
            continue
        for step in transitions.steps(meta, asked, now, SPEC, phase=phase):
            done = take(meta, step, now)
            meta = done.meta
            said.append(done.words)
    return meta, said


def recorded_states(meta, asked, now):
    """Every metadata a run records on its way (a kill after any step leaves one of these)."""
    found = []
    for phase in ("open", "incident" if asked["all"] else None, "round", "round", "round"):
        if phase is None:
            continue
        for step in transitions.steps(meta, asked, now, SPEC, phase=phase):
            meta = take(meta, step, now).meta
            found.append(meta)
    return found


RUNS = [
    ("requested rotation", STABLE, request(rotate={"db"}), NOW, "promoted", [2, 1]),
    (
        "requested rotation, the window passed by the end",
        STABLE,
        request(rotate={"db"}),
        NOW,
        "promoted",
        [2, 1],
    ),
    ("incident from stable", STABLE, request(all=True), NOW, "stable", [2]),
    ("incident in the window", PROMOTED, request(all=True), NOW, "stable", [3]),
    ("incident while staged", STAGED, request(all=True), NOW, "stable", [3]),
    ("rollback from stable", ROTATED, request(rollback={"db"}), NOW, "promoted", [1, 2]),
]


@pytest.mark.parametrize(
    ("meta", "asked", "now", "state", "accepted"), [row[1:] for row in RUNS], ids=[row[0] for row in RUNS]
)
def test_a_run_killed_after_any_recorded_step_resumes_to_the_same_end(meta, asked, now, state, accepted):
    end, _said = walk(meta, asked, now)
    assert (end["state"], rotation.accepted(end)) == (state, accepted)
    for cut in recorded_states(meta, asked, now):
        # The re-run is the same call: a rotation asked by name is not started again (the secret is no longer
        # stable), an incident is (its re-run draws afresh, so the end is judged by what is accepted).
        resumed, _said = walk(cut, asked, now)
        where = cut["transitions"][-1]
        if asked["all"]:
            assert resumed["state"] == "stable", where
            assert not set(rotation.accepted(resumed)) & set(rotation.accepted(meta)), where
        else:
            assert (resumed["state"], rotation.accepted(resumed)) == (state, accepted), where


def test_an_incident_run_says_every_step_in_order():
    _end, said = walk(PROMOTED, request(all=True), NOW)
    assert said == [
        "db: revoke version 1 (incident)",
        "db: stage version 3 (incident)",
        "db: accept versions [3, 2]",
        "db: promote version 3",
        "db: revoke version 2",
    ]


def test_waiting_for_a_window_is_bounded_and_said_in_check_mode():
    metas = {"db": PROMOTED, "other": STABLE}
    assert transitions.revoke_waits(metas, NOW, 0) == {}
    assert transitions.revoke_waits(metas, NOW, 3599) == {}
    assert transitions.revoke_waits(metas, NOW, 3600) == {"db": 3600}
    assert transitions.waiting_words(metas, {"db": 3600}) == ["db: revoke version 1 in 3600 s"]


def test_an_unknown_phase_is_refused():
    with pytest.raises(ValueError, match="phase 'later' is not one of open, incident, round"):
        transitions.steps(STABLE, request(), NOW, SPEC, phase="later")

"""Issue 21, the pure layer: an incident's revoke decision, verify-only consumers, what NAME.pub holds
through a rotation, and the host's record of transitions that no controller received."""

import pytest
from cryptography.hazmat.primitives import serialization

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import generate, policy, rotation

CONSUMERS = {
    "api": {"directory": "/etc/api/secrets"},
    "issuer": {"directory": "/etc/issuer/secrets"},
}
NOW = 1_800_000_000


def spec(**fields):
    fields.setdefault("name", "s")
    fields.setdefault("type", "password")
    fields.setdefault("overlap", 600)
    secrets, _unused = policy.normalise([fields], CONSUMERS)
    return secrets[fields["name"]]


def version(number):
    return rotation.version_meta(spec(), number, f"sha256:{number}", NOW)


def meta_in(state):
    """A secret at version 2 (3 staged) in each state of the machine."""
    meta = rotation.initial(spec(consumers=["api"]), version(1))
    meta.update(latest=2, current=version(2), previous=version(1))
    if state in ("staged", "dual"):
        meta.update(state=state, next=version(3), latest=3)
    elif state == "promoted":
        meta.update(state="promoted", revoke_after=NOW + 600)
    return meta


# --- the incident's decision, state by state -----------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "keep", "steps"),
    [
        ("stable", False, ["stage"]),
        ("promoted", False, ["revoke", "stage"]),  # in the overlap window: the previous one goes now
        ("staged", False, ["restage"]),  # drawn before the incident: replaced by a fresh one
        ("dual", False, ["restage"]),
        ("stable", True, ["stage"]),  # the operator's exception: rotated with its overlap
        ("promoted", True, []),
        ("staged", True, []),
        ("dual", True, []),
    ],
)
def test_incident_steps_by_state(state, keep, steps):
    assert rotation.incident_steps(meta_in(state), keep) == steps


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        # stable v2: stage v4 (3 was never used, latest=2 here), accept, promote, revoke at once
        ("stable", [("stage", [2]), ("accept", [4, 2]), ("promote", [4, 2]), ("revoke", [4])]),
        (
            "promoted",
            [("revoke", [2]), ("stage", [2]), ("accept", [4, 2]), ("promote", [4, 2]), ("revoke", [4])],
        ),
        ("staged", [("restage", [2]), ("accept", [4, 2]), ("promote", [4, 2]), ("revoke", [4])]),
        ("dual", [("restage", [2]), ("accept", [4, 2]), ("promote", [4, 2]), ("revoke", [4])]),
    ],
)
def test_an_incident_ends_on_its_own_version_with_nothing_else_accepted(state, expected):
    """Each state through the incident's steps and the rounds: the versions accepted after each step;
    the promotion of the incident's version has no overlap, so the rounds revoke at once."""
    secret = spec(consumers=["api"])
    meta = meta_in(state)
    seen, revoked = [], []
    for step in rotation.incident_steps(meta, False):
        new = version(4) if step in ("stage", "restage") else None
        before, meta = meta, rotation.advance(meta, step, NOW, secret, new, incident=True)
        revoked += rotation.no_longer_accepted(before, meta)
        seen.append((step, rotation.accepted(meta)))
    while step := rotation.next_step(meta, NOW):
        before, meta = meta, rotation.advance(meta, step, NOW, secret)
        revoked += rotation.no_longer_accepted(before, meta)
        seen.append((step, rotation.accepted(meta)))
    assert seen == expected
    assert (meta["state"], meta["current"]["version"], meta["incident"]) == ("stable", 4, False)
    assert sorted(set(revoked)) == ([2, 3] if state == "dual" else [2] if state != "promoted" else [1, 2])


def test_without_an_incident_a_promotion_keeps_its_overlap():
    secret = spec(consumers=["api"])
    meta = rotation.advance(meta_in("stable"), "stage", NOW, secret, version(3))
    meta = rotation.advance(rotation.advance(meta, "accept", NOW, secret), "promote", NOW, secret)
    assert meta["revoke_after"] == NOW + 600 and rotation.next_step(meta, NOW) is None


def test_restage_from_another_state_is_refused():
    with pytest.raises(ValueError, match="cannot restage in state stable"):
        rotation.advance(meta_in("stable"), "restage", NOW, spec(), version(4))


@pytest.mark.parametrize(
    ("before", "after", "gone"),
    [("promoted", "stable", [1]), ("dual", "staged", [3]), ("staged", "dual", []), ("stable", "stable", [])],
)
def test_no_longer_accepted(before, after, gone):
    first = meta_in(before)
    second = meta_in(after)
    if before == "promoted":
        second = {**first, "state": "stable"}
    assert rotation.no_longer_accepted(first, second) == gone


# --- verify-only consumers ---------------------------------------------------------------------------


def test_a_key_pairs_consumers_verify_unless_named_signers():
    secret = spec(type="ed25519", consumers=["api", "issuer"], signers=["issuer"])
    assert secret["signers"] == ["issuer"]
    assert rotation.consumer_files(secret, "api") == {"accept": "s.jwks.json", "public": "s.pub"}
    assert rotation.consumer_files(secret, "issuer") == {
        "accept": "s.jwks.json",
        "active": "s.key",
        "public": "s.pub",
    }
    assert spec(type="rsa", consumers=["api"])["signers"] == []  # the default: verify
    value = spec(type="password", consumers=["api"])
    assert rotation.consumer_files(value, "api") == {"accept": "s.accept", "active": "s"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"type": "ed25519", "consumers": ["api"], "signers": ["issuer"]},
            r"secrets\[0\]\.signers\[0\]: 'issuer'",
        ),
        (
            {"type": "password", "consumers": ["api"], "signers": ["api"]},
            r"secrets\[0\]\.signers: only a key",
        ),
        ({"type": "rsa", "consumers": ["api"], "signers": "api"}, r"secrets\[0\]\.signers: a list"),
    ],
)
def test_bad_signers_are_refused_by_name(fields, message):
    with pytest.raises(policy.SecretSpecError, match=message):
        spec(**fields)


def test_keep_overlap_names_declared_secrets_of_an_incident():
    secrets = [{"name": "a", "type": "password"}]
    with pytest.raises(policy.SecretSpecError, match=r"keep_overlap\[0\]: 'b' is not a declared secret"):
        policy.normalise(secrets, {}, keep_overlap=["b"])
    with pytest.raises(policy.SecretSpecError, match=r"keep_overlap: .* without rotate_all"):
        policy.normalise(secrets, {}, keep_overlap=["a"], incident=False)
    assert policy.normalise(secrets, {}, keep_overlap=["a"], incident=True)[0]["a"]["name"] == "a"


# --- NAME.pub through a rotation ------------------------------------------------------------------------


def pems(bundle):
    """The public keys of a PEM bundle, in order, as PEM texts."""
    marker = "-----END PUBLIC KEY-----\n"
    return [part + marker for part in bundle.split(marker) if part.strip()]


@pytest.mark.parametrize("kind", ["ed25519", "rsa"])
def test_the_pub_bundle_holds_every_accepted_key_signing_key_first(kind):
    secret = spec(type=kind, bits=2048, consumers=["api"], signers=[]) if kind == "rsa" else spec(type=kind)
    keys = {number: generate.generate(secret) for number in (1, 2)}
    public = {number: generate.public_pem(key) for number, key in keys.items()}
    meta = rotation.initial(secret, rotation.version_meta(secret, 1, "x", NOW))
    stages = {"stable": [public[1]]}
    meta = rotation.advance(meta, "stage", NOW, secret, rotation.version_meta(secret, 2, "y", NOW))
    stages["staged"] = [public[1]]
    meta = rotation.advance(meta, "accept", NOW, secret)
    stages["dual"] = [public[1], public[2]]  # v1 signs still: first
    meta_dual = meta
    meta = rotation.advance(meta, "promote", NOW, secret)
    stages["promoted"] = [public[2], public[1]]  # v2 signs; v1-signed tokens still verify
    meta_promoted = meta
    meta = rotation.advance(meta, "revoke", NOW, secret)
    stages["revoked"] = [public[2]]
    for label, which in (("dual", meta_dual), ("promoted", meta_promoted), ("revoked", meta)):
        contents = rotation.deliverables(secret, which, keys, generate.public_pem, generate.jwks)
        bundle = contents["s.pub"]
        assert pems(bundle) == stages[label], label
        # A reader that takes the first key only (load_pem_public_key) reads the signing key.
        first = serialization.load_pem_public_key(bundle.encode())
        signing = keys[which["current"]["version"]]
        assert first.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode() == generate.public_pem(signing)
        assert "PRIVATE" not in bundle and "PRIVATE" not in contents["s.jwks.json"]


# --- transitions the controller never received ---------------------------------------------------------


def test_transitions_are_numbered_and_reported_until_acknowledged():
    meta = meta_in("stable")
    meta = rotation.with_transition(meta, "stage", 3, NOW, "run-a")
    meta = rotation.with_transition(meta, "accept", 3, NOW + 1, "run-a")
    assert [item["seq"] for item in meta["transitions"]] == [1, 2]
    assert meta["transitions"][1] == {
        "seq": 2,
        "step": "accept",
        "version": 3,
        "at": rotation.iso(NOW + 1),
        "run": "run-a",
    }
    assert rotation.unreported(meta, "run-a") == []  # its own run reports them as steps
    assert [item["seq"] for item in rotation.unreported(meta, "run-b")] == [1, 2]
    acknowledged = rotation.acknowledge(meta, 1)
    assert [item["seq"] for item in rotation.unreported(acknowledged, "run-b")] == [2]
    assert rotation.acknowledge(meta, 99)["reported_seq"] == 2  # never past what was recorded
    assert rotation.acknowledge(rotation.acknowledge(meta, 2), 1)["reported_seq"] == 2  # never backwards
    rotation.check_meta("s", acknowledged)


def test_the_record_keeps_the_newest_transitions_and_numbers_on():
    meta = meta_in("stable")
    for number in range(rotation.TRANSITIONS_KEPT + 5):
        meta = rotation.with_transition(meta, "stage", number + 1, NOW, "r")
    assert len(meta["transitions"]) == rotation.TRANSITIONS_KEPT
    assert meta["transitions"][-1]["seq"] == rotation.TRANSITIONS_KEPT + 5


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("transitions", [{"seq": 1}], "transitions is not a list of transitions"),
        ("transitions", "x", "transitions is not a list of transitions"),
        ("reported_seq", -1, "reported_seq is not a number"),
        ("incident", "yes", "incident is not true or false"),
    ],
)
def test_damaged_transition_records_are_refused(field, value, message):
    with pytest.raises(rotation.StateError, match=message):
        rotation.check_meta("s", {**meta_in("stable"), field: value})


# --- PostgreSQL: the old login loses its password and LOGIN in the incident's run ---------------------


def test_an_incident_disables_the_old_login_roles_in_the_same_run():
    from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import postgresql  # noqa: PLC0415

    secret = spec(length=32, postgresql={"role": "shop"}, consumers=["api"])
    values = {1: "a" * 32, 2: "b" * 32, 3: "c" * 32}
    meta = meta_in("promoted")  # v2 (shop_b) signs, v1 (shop_a) accepted for the window
    meta["current"]["login"], meta["previous"]["login"] = "shop_b", "shop_a"
    server = {
        login: {"login": True, "verifier": postgresql.verifier(values[number]), "member": True}
        for login, number in (("shop_a", 1), ("shop_b", 2))
    }

    def deliver(meta):
        """What a delivery does to the server: enable now, disable after the reloads."""
        enable, disable = postgresql.plan(secret, meta, values, server)
        for login, password in postgresql.wanted(secret, meta, values).items():
            if password is None:
                server[login] = {"login": False, "verifier": "", "member": True}
            else:
                server[login] = {"login": True, "verifier": postgresql.verifier(password), "member": True}
        return [words for _sql, words in enable + disable]

    steps = rotation.incident_steps(meta, False)
    for step in steps:
        new = {**version(3), "login": postgresql.next_login(secret, meta)} if step == "stage" else None
        meta = rotation.advance(meta, step, NOW, secret, new, incident=True)
    assert deliver(meta) == ["disable login shop_a"]  # v1's login, before anything else happens
    said = []
    while step := rotation.next_step(meta, NOW):
        meta = rotation.advance(meta, step, NOW, secret)
        said += deliver(meta)
    assert said == ["enable login shop_a", "disable login shop_b"]
    assert (server["shop_a"]["login"], server["shop_b"]["login"], server["shop_b"]["verifier"]) == (
        True,
        False,
        "",
    )

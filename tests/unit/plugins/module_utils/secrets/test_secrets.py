import base64
import json

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import (
    generate,
    policy,
    report,
    rotation,
)

CONSUMERS = {"api": {"directory": "/etc/api/secrets", "group": "api", "service": "api.service"}}
NOW = 1_800_000_000  # 2027-01-15T08:00:00Z


def spec(**fields):
    fields.setdefault("name", "s")
    fields.setdefault("type", "password")
    secrets, _unused = policy.normalise([fields], CONSUMERS)
    return secrets[fields["name"]]


# --- policy --------------------------------------------------------------------------------------


def test_defaults_are_filled_in():
    secrets, consumers = policy.normalise(
        [
            {"name": "admin", "type": "password", "consumers": ["api"]},
            {"name": "jwt", "type": "rsa"},
            {"name": "hmac", "type": "token"},
        ],
        CONSUMERS,
    )
    assert secrets["admin"] == {
        "name": "admin",
        "type": "password",
        "length": 32,
        "alphabet": "alphanumeric",
        "max_age_days": 90,
        "overlap": 86400,
        "consumers": ["api"],
    }
    assert secrets["jwt"]["bits"] == 3072
    assert secrets["hmac"]["length"] == 64
    assert consumers["api"] == {
        "directory": "/etc/api/secrets",
        "group": "api",
        "service": "api.service",
        "action": "restart",
    }


@pytest.mark.parametrize(
    ("secrets", "consumers", "backend", "message"),
    [
        ([{"name": "a", "type": "password"}], {}, "consul", "backend: 'consul' is not one of files, vault"),
        (
            [{"name": "a", "type": "password", "length": 16}],
            {},
            "files",
            r"secrets\[0\]\.length: 16 is below the policy minimum of 32",
        ),
        (
            [{"name": "a", "type": "token", "length": 40}],
            {},
            "files",
            r"secrets\[0\]\.length: 40 is below the policy minimum of 64",
        ),
        (
            [{"name": "a", "type": "rsa", "bits": 1024}],
            {},
            "files",
            r"secrets\[0\]\.bits: RSA 1024 is below the minimum of 2048",
        ),
        (
            [{"name": "a", "type": "rsa", "bits": 3000}],
            {},
            "files",
            r"secrets\[0\]\.bits: 3000 is not one of",
        ),
        ([{"name": "a", "type": "dsa"}], {}, "files", r"secrets\[0\]\.type: 'dsa' is not one of"),
        (
            [
                {"name": "a", "type": "password"},
                {"name": "b", "type": "password", "consumers": ["api", "web"]},
            ],
            CONSUMERS,
            "files",
            r"secrets\[1\]\.consumers\[1\]: 'web' is not a declared consumer \(declared: api\)",
        ),
        ([{"name": "a b", "type": "password"}], {}, "files", r"secrets\[0\]\.name: 'a b' is not a valid"),
        (
            [{"name": "a", "type": "password", "colour": 1}],
            {},
            "files",
            r"secrets\[0\]\.colour: unknown option",
        ),
        ([{"name": "a", "type": "ed25519", "length": 40}], {}, "files", r"secrets\[0\]\.length: not used"),
        ([{"name": "a", "type": "password", "alphabet": "emoji"}], {}, "files", r"secrets\[0\]\.alphabet"),
        ([{"name": "a", "type": "password"}] * 2, {}, "files", r"secrets\[1\]\.name: 'a' is declared twice"),
        (
            [{"name": "a", "type": "password", "max_age_days": 0}],
            {},
            "files",
            r"secrets\[0\]\.max_age_days: 0 is below",
        ),
        ([], {"x": {"directory": "rel/dir"}}, "files", r"consumers\.x\.directory: 'rel/dir' is not a plain"),
        ([], {"x": {"directory": "/d", "service": "a;b"}}, "files", r"consumers\.x\.service"),
        ([], {"x": {"directory": "/d", "action": "reload"}}, "files", r"consumers\.x\.action: reload needs"),
    ],
)
def test_bad_input_names_the_option(secrets, consumers, backend, message):
    with pytest.raises(policy.SecretSpecError, match=message):
        policy.normalise(secrets, consumers, backend)


def test_rotate_and_rollback_name_declared_secrets():
    with pytest.raises(policy.SecretSpecError, match=r"rotate\[1\]: 'nope' is not a declared secret"):
        policy.normalise([{"name": "a", "type": "password"}], {}, rotate=["a", "nope"])
    with pytest.raises(policy.SecretSpecError, match=r"rollback\[0\]: 'nope'"):
        policy.normalise([{"name": "a", "type": "password"}], {}, rollback=["nope"])


# --- generation ----------------------------------------------------------------------------------


def test_passwords_follow_length_and_alphabet_and_differ():
    s = spec(length=48, alphabet="hex")
    values = {generate.generate(s) for _unused in range(20)}
    assert len(values) == 20
    for value in values:
        assert len(value) == 48
        assert set(value) <= set("0123456789abcdef")
        assert generate.meets(s, value)
    assert not generate.meets(spec(length=49, alphabet="hex"), value)
    assert not generate.meets(spec(length=48), value + "!")


def test_token_is_urlsafe_and_symmetric_is_random_bytes():
    token = generate.generate(spec(type="token"))
    assert len(token) == 64 and set(token) <= set(policy.ALPHABETS["urlsafe"])
    key = generate.generate(spec(type="symmetric", length=32))
    assert len(base64.b64decode(key)) == 32
    assert generate.meets(spec(type="symmetric", length=32), key)
    assert not generate.meets(spec(type="symmetric", length=33), key)


def test_rsa_key_pair_signs_and_meets_its_size():
    s = spec(type="rsa", bits=2048)
    pem = generate.generate(s)
    key = serialization.load_pem_private_key(pem.encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert generate.meets(s, pem)
    assert not generate.meets(spec(type="rsa", bits=3072), pem)
    assert not generate.meets(spec(type="ed25519"), pem)
    signature = key.sign(b"m", padding.PKCS1v15(), hashes.SHA256())
    public = serialization.load_pem_public_key(generate.public_pem(pem).encode())
    public.verify(signature, b"m", padding.PKCS1v15(), hashes.SHA256())


def test_rfc7638_thumbprint_of_the_rfcs_own_example():
    # RFC 7638 section 3.1: this RSA key's thumbprint is NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV"
        "4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7"
        "d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF4"
        "4-csFCur-kEgU8awapJzKnqDKgw"
    )
    assert (
        generate.thumbprint({"e": "AQAB", "kty": "RSA", "n": n})
        == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    )


def test_rfc8037_ed25519_thumbprint():
    # RFC 8037 appendix A.3: the Ed25519 example key's thumbprint.
    members = {"crv": "Ed25519", "kty": "OKP", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert generate.thumbprint(members) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_jwks_holds_public_parts_only_with_kid():
    rsa_pem = generate.generate(spec(type="rsa", bits=2048))
    ed_pem = generate.generate(spec(type="ed25519"))
    keys = json.loads(generate.jwks([rsa_pem, ed_pem]))["keys"]
    assert [k["kty"] for k in keys] == ["RSA", "OKP"]
    assert [k["alg"] for k in keys] == ["RS256", "EdDSA"]
    for k in keys:
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(k)
    raw = (
        serialization.load_pem_private_key(ed_pem.encode(), None)
        .public_key()
        .public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    assert base64.urlsafe_b64decode(keys[1]["x"] + "=") == raw
    assert keys[1]["kid"] == generate.thumbprint({"crv": "Ed25519", "kty": "OKP", "x": keys[1]["x"]})
    assert generate.fingerprint(spec(type="ed25519"), ed_pem) == "jwk:" + keys[1]["kid"]
    assert isinstance(serialization.load_pem_private_key(ed_pem.encode(), None), ed25519.Ed25519PrivateKey)


def test_fingerprint_of_a_value_does_not_hold_it():
    value = "A" * 40
    found = generate.fingerprint(spec(), value)
    assert found.startswith("sha256:") and len(found) == 23 and value not in found


# --- the state machine ---------------------------------------------------------------------------


def first(s, now=NOW):
    return rotation.initial(s, rotation.version_meta(s, 1, "fp1", now))


def rotate_fully(s, meta, now):
    meta = rotation.advance(meta, "stage", now, s, rotation.version_meta(s, meta["latest"] + 1, "fp2", now))
    while rotation.next_step(meta, now):
        meta = rotation.advance(meta, rotation.next_step(meta, now), now, s)
    return meta


def test_a_rotation_walks_every_state_and_accepts_both_during_the_overlap():
    s = spec(overlap=60, consumers=["api"])
    meta = first(s)
    assert meta["state"] == "stable" and rotation.accepted(meta) == [1]
    assert rotation.next_step(meta, NOW) is None
    staged = rotation.advance(meta, "stage", NOW, s, rotation.version_meta(s, 2, "fp2", NOW))
    assert (staged["state"], rotation.accepted(staged), staged["latest"]) == ("staged", [1], 2)
    assert rotation.next_step(staged, NOW) == "accept"
    dual = rotation.advance(staged, "accept", NOW, s)
    assert (dual["state"], rotation.accepted(dual), dual["current"]["version"]) == ("dual", [2, 1], 1)
    assert dual["reload_pending"] == ["api"]
    assert rotation.next_step(dual, NOW) == "promote"
    promoted = rotation.advance(dual, "promote", NOW, s)
    assert (promoted["state"], promoted["current"]["version"], rotation.accepted(promoted)) == (
        "promoted",
        2,
        [2, 1],
    )
    assert promoted["revoke_after"] == NOW + 60
    assert rotation.next_step(promoted, NOW + 59) is None
    assert rotation.next_step(promoted, NOW + 60) == "revoke"
    stable = rotation.advance(promoted, "revoke", NOW + 60, s)
    assert (stable["state"], rotation.accepted(stable)) == ("stable", [2])
    # the old version stays in the store for a rollback, never distributed
    assert rotation.kept(stable) == {1, 2}


@pytest.mark.parametrize("steps_done", [1, 2, 3])
def test_a_killed_rotation_resumes_from_the_recorded_state(steps_done):
    s = spec(overlap=0)
    meta = rotation.advance(first(s), "stage", NOW, s, rotation.version_meta(s, 2, "fp2", NOW))
    for _unused in range(steps_done - 1):
        meta = rotation.advance(meta, rotation.next_step(meta, NOW), NOW, s)
    # the metadata as a killed run left it on disk, read back by the next run
    meta = json.loads(json.dumps(meta))
    seen = []
    while rotation.next_step(meta, NOW + 1):
        seen.append(rotation.next_step(meta, NOW + 1))
        meta = rotation.advance(meta, seen[-1], NOW + 1, s)
    assert seen == ["accept", "promote", "revoke"][steps_done - 1 :]
    assert (meta["state"], meta["current"]["version"]) == ("stable", 2)
    assert rotation.due(s, meta, NOW + 1) is None


def test_steps_out_of_order_are_refused():
    s = spec()
    with pytest.raises(ValueError, match="cannot promote in state stable"):
        rotation.advance(first(s), "promote", NOW, s)


def test_rollback_brings_the_previous_version_back_accepting_both():
    s = spec(overlap=30)
    meta = rotate_fully(s, first(s), NOW)
    back = rotation.advance(meta, "rollback", NOW + 5, s)
    assert (back["state"], back["current"]["version"], rotation.accepted(back)) == ("promoted", 1, [1, 2])
    assert back["rolled_back"] and back["latest"] == 2 and back["revoke_after"] == NOW + 35
    again = rotate_fully(s, rotation.advance(back, "revoke", NOW + 35, s), NOW + 40)
    assert (again["current"]["version"], again["previous"]["version"], again["rolled_back"]) == (3, 1, False)
    with pytest.raises(ValueError, match="no previous version"):
        rotation.advance(first(s), "rollback", NOW, s)


def test_due_by_age_request_force_policy_and_compromise():
    s = spec(max_age_days=30)
    meta = first(s, NOW)
    assert rotation.due(s, meta, NOW + 29 * 86400) is None
    assert rotation.due(s, meta, NOW + 30 * 86400) == "older than 30 days"
    assert rotation.due(s, meta, NOW, requested=True) == "requested"
    assert rotation.due(s, meta, NOW, force=True) == "forced"
    assert rotation.due(s, meta, NOW, meets=False) == "does not meet the policy"
    assert rotation.due(s, meta, NOW, compromised_since=NOW + 1) == "not rotated since the compromise date"
    assert rotation.due(s, meta, NOW, compromised_since=NOW - 1) is None
    staged = rotation.advance(meta, "stage", NOW, s, rotation.version_meta(s, 2, "fp", NOW))
    assert rotation.due(s, staged, NOW, force=True) is None  # one rotation at a time


def test_deliverables_per_state():
    s = spec(name="db", overlap=10)
    values = {1: "old-value", 2: "new-value"}
    meta = rotation.advance(first(s), "stage", NOW, s, rotation.version_meta(s, 2, "fp2", NOW))
    assert rotation.deliverables(s, meta, values, None, None) == {
        "db": "old-value\n",
        "db.accept": "old-value\n",
    }
    meta = rotation.advance(meta, "accept", NOW, s)
    assert rotation.deliverables(s, meta, values, None, None) == {
        "db": "old-value\n",
        "db.accept": "new-value\nold-value\n",
    }
    meta = rotation.advance(meta, "promote", NOW, s)
    assert rotation.deliverables(s, meta, values, None, None)["db"] == "new-value\n"
    meta = rotation.advance(meta, "revoke", NOW + 10, s)
    assert rotation.deliverables(s, meta, values, None, None) == {
        "db": "new-value\n",
        "db.accept": "new-value\n",
    }


def test_key_pair_deliverables_publish_the_accepted_keys():
    s = spec(name="jwt", type="ed25519", overlap=10)
    old, new = generate.generate(s), generate.generate(s)
    meta = rotation.advance(first(s), "stage", NOW, s, rotation.version_meta(s, 2, "fp2", NOW))
    meta = rotation.advance(meta, "accept", NOW, s)
    files = rotation.deliverables(s, meta, {1: old, 2: new}, generate.public_pem, generate.jwks)
    assert files["jwt.key"] == old
    kids = [k["kid"] for k in json.loads(files["jwt.jwks.json"])["keys"]]
    assert kids == [generate.public_jwk(new)["kid"], generate.public_jwk(old)["kid"]]
    assert old not in files["jwt.jwks.json"] and new not in files["jwt.jwks.json"]


def test_compromise_date_names_the_option():
    assert policy.compromise_date("") is None
    assert policy.compromise_date("2027-01-15") == NOW - 8 * 3600
    with pytest.raises(policy.SecretSpecError, match="compromised_since: 'last week' is not a date"):
        policy.compromise_date("last week")


def test_parse_time():
    assert rotation.parse_time("2027-01-15") == rotation.parse_time("2027-01-15T00:00:00Z")
    assert rotation.iso(rotation.parse_time("2027-01-15T08:00:00Z")) == "2027-01-15T08:00:00Z"
    with pytest.raises(ValueError):
        rotation.parse_time("yesterday")


# --- report --------------------------------------------------------------------------------------


def test_report_lists_every_problem_and_no_value():
    s = spec(name="admin", max_age_days=10)
    meta = first(s, NOW)
    entries = [
        report.entry(
            s,
            meta,
            NOW + 12 * 86400,
            meets=False,
            modes={"/etc/api/secrets/admin": 0o644, "/etc/bulwark/secrets/admin/v1": 0o600},
            compromised_since=NOW + 3600,
        ),
        report.entry(spec(name="gone"), None, NOW),
        report.entry(spec(name="fine"), first(spec(name="fine")), NOW + 86400, modes={"/x": 0o640}),
    ]
    assert entries[0]["problems"] == [
        "does not meet the policy (too short, wrong alphabet or too weak a key)",
        "too old: 12 days, the maximum is 10",
        "readable by others: /etc/api/secrets/admin (mode 0644)",
        "not rotated since the compromise date 2027-01-15T09:00:00Z",
    ]
    assert entries[0]["version"] == 1 and entries[0]["fingerprint"] == "fp1"
    assert entries[1] == {"name": "gone", "type": "password", "state": "missing", "problems": ["missing"]}
    assert entries[2]["problems"] == [] and entries[2]["age_days"] == 1
    assert report.summary(entries) == {
        "does not meet the policy": ["admin"],
        "too old": ["admin"],
        "readable by others": ["admin"],
        "not rotated since the compromise date": ["admin"],
        "missing": ["gone"],
    }

"""The consumer files a secret gives: derived by one function, and two secrets never write the same file."""

import sys
from pathlib import Path

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import generate, policy, rotation

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "action"))
from test_validate_input import validate  # the controller's validation, as the role runs it

APP = {"directory": "/etc/app/secrets", "group": "app", "service": "app.service"}
CONSUMERS = {"app": APP, "api": {"directory": "/etc/api/secrets", "group": "api"}}
NOW = 1_800_000_000


def normalise(*secrets, consumers=None, **options):
    return policy.normalise(list(secrets), consumers or CONSUMERS, **options)


def test_the_writer_writes_exactly_the_names_the_validator_checks():
    for secret in (
        {"name": "db", "type": "password", "postgresql": {"role": "shop"}},
        {"name": "hmac", "type": "token"},
        {"name": "jwt", "type": "ed25519"},
    ):
        specs, _unused = normalise(secret)
        spec = specs[secret["name"]]
        value = generate.generate(spec)
        first = rotation.version_meta(spec, 1, "fp", NOW)
        first["login"] = "shop_a"
        meta = rotation.initial(spec, first)
        written = rotation.deliverables(spec, meta, {1: value}, generate.public_pem, generate.jwks)
        assert list(written) == list(rotation.file_names(spec).values())
    assert list(rotation.file_names(spec).values()) == ["jwt.jwks.json", "jwt.key", "jwt.pub"]


@pytest.mark.parametrize(
    ("secrets", "message"),
    [
        (  # the finding: db's accept list is the file of the secret named db.accept
            [
                {"name": "db", "type": "password", "consumers": ["app"]},
                {"name": "db.accept", "type": "password", "consumers": ["app"]},
            ],
            "secrets[1].name: 'db.accept' and secrets[0].name 'db' both write /etc/app/secrets/db.accept"
            " (consumers app and app); rename one of them",
        ),
        (  # a key pair's public key and a value of that name
            [
                {"name": "jwt", "type": "ed25519", "consumers": ["app"]},
                {"name": "jwt.pub", "type": "token", "consumers": ["app"]},
            ],
            "secrets[1].name: 'jwt.pub' and secrets[0].name 'jwt' both write /etc/app/secrets/jwt.pub",
        ),
        (  # declared the other way round, the first to write it is named second
            [
                {"name": "jwt.key", "type": "password", "consumers": ["app"]},
                {"name": "jwt", "type": "rsa", "consumers": ["app"]},
            ],
            "secrets[1].name: 'jwt' and secrets[0].name 'jwt.key' both write /etc/app/secrets/jwt.key",
        ),
        (
            [
                {"name": "k", "type": "ed25519", "consumers": ["app"]},
                {"name": "k.jwks.json", "type": "password", "consumers": ["app"]},
            ],
            "both write /etc/app/secrets/k.jwks.json",
        ),
        (  # a database password's libpq file
            [
                {"name": "db", "type": "password", "postgresql": {"role": "shop"}, "consumers": ["app"]},
                {"name": "db.pgpass", "type": "password", "consumers": ["app"]},
            ],
            "both write /etc/app/secrets/db.pgpass",
        ),
    ],
)
def test_two_secrets_whose_files_collide_are_refused_naming_both(secrets, message):
    with pytest.raises(policy.SecretSpecError) as caught:
        normalise(*secrets)
    assert message in str(caught.value)


def test_the_same_names_in_different_directories_or_without_a_collision_pass():
    normalise(
        {"name": "db", "type": "password", "consumers": ["app"]},
        {"name": "db.accept", "type": "password", "consumers": ["api"]},  # another directory
        {"name": "jwt", "type": "rsa", "consumers": ["app"]},
        {"name": "jwt.key.old", "type": "password", "consumers": ["app"]},
        {"name": "db.accepted", "type": "password", "consumers": ["app"]},
    )


def test_consumers_sharing_a_directory_collide_as_one():
    shared = {**CONSUMERS, "worker": {**APP, "service": "worker.service"}}
    with pytest.raises(policy.SecretSpecError, match=r"'db\.accept' and secrets\[0\]\.name 'db' both write"):
        normalise(
            {"name": "db", "type": "password", "consumers": ["app"]},
            {"name": "db.accept", "type": "password", "consumers": ["worker"]},
            consumers=shared,
        )
    # one secret to both: the same file with the same content, mode and group
    normalise({"name": "db", "type": "password", "consumers": ["app", "worker"]}, consumers=shared)
    other_group = {**shared, "worker": {**APP, "group": "worker"}}
    with pytest.raises(
        policy.SecretSpecError, match=r"consumers\.worker\.group: consumers app and worker share"
    ):
        normalise({"name": "db", "type": "password", "consumers": ["app", "worker"]}, consumers=other_group)


def test_a_consumer_directory_inside_the_store_or_a_file_is_refused():
    inside = {"app": {"directory": "/etc/bulwark/secrets/db", "group": "root"}}
    secret = {"name": "v1", "type": "password", "consumers": ["app"]}
    with pytest.raises(
        policy.SecretSpecError, match=r"consumers\.app\.directory: /etc/bulwark/secrets/db is"
    ):
        normalise(secret, consumers=inside, directory="/etc/bulwark/secrets")
    normalise(secret, consumers=inside, backend="vault", directory="/etc/bulwark/secrets")  # no store there
    store_file = {"app": {"directory": "/etc/bulwark", "group": "root"}}
    with pytest.raises(policy.SecretSpecError, match=r"secrets\[0\]\.name: 'secrets' gives consumer app the"):
        normalise(
            {"name": "secrets", "type": "password", "consumers": ["app"]},
            consumers=store_file,
            directory="/etc/bulwark/secrets",
        )
    nested = {"app": APP, "deep": {"directory": "/etc/app/secrets/db/more", "group": "root"}}
    with pytest.raises(
        policy.SecretSpecError, match=r"consumers\.deep\.directory: .* is inside /etc/app/secrets/db"
    ):
        normalise({"name": "db", "type": "password", "consumers": ["app"]}, consumers=nested)


def test_the_controller_refuses_colliding_names_before_any_host_is_touched():
    calls = []
    result = validate(
        ["secrets"],
        calls=calls,
        secrets_definitions=[
            {"name": "db", "type": "password", "consumers": ["app"]},
            {"name": "db.accept", "type": "password", "consumers": ["app"]},
        ],
        secrets_consumers={"app": APP},
    )
    assert result["failed"] and result["changed"] is False
    assert any("'db.accept' and secrets[0].name 'db' both write" in line for line in result["errors"])
    inside = validate(
        ["secrets"],
        secrets_definitions=[{"name": "p", "type": "password", "consumers": ["app"]}],
        secrets_consumers={"app": {"directory": "/srv/store/app", "group": "root"}},
        secrets_directory="/srv/store",
    )
    assert any("consumers.app.directory: /srv/store/app is inside the store" in e for e in inside["errors"])
    assert calls == []


NAMES = st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,20}", fullmatch=True) | st.sampled_from(
    ["db", "db.accept", "db.pgpass", "jwt", "jwt.key", "jwt.pub", "jwt.jwks.json", "jwt.key.pub"]
)


@settings(max_examples=150, deadline=None)
@given(first=NAMES, second=NAMES, kinds=st.tuples(*[st.sampled_from(policy.TYPES)] * 2), pg=st.booleans())
@example(first="db", second="db.accept", kinds=("password", "token"), pg=False)
@example(first="jwt", second="jwt.pub", kinds=("ed25519", "password"), pg=False)
@example(first="db", second="db.pgpass", kinds=("password", "password"), pg=True)
def test_any_two_secrets_either_write_disjoint_files_or_are_refused_naming_both(first, second, kinds, pg):
    assume(first != second)  # declared twice: refused by name before any file is derived
    secrets = [
        {"name": name, "type": kind, "consumers": ["app"]}
        for name, kind in zip((first, second), kinds, strict=True)
    ]
    if pg and kinds[0] == "password":
        secrets[0]["postgresql"] = {"role": "shop"}
    written = [set(rotation.file_names(policy.normalise([secret], CONSUMERS)[0][secret["name"]]).values())
               for secret in secrets]  # fmt: skip
    try:
        normalise(*secrets)
    except policy.SecretSpecError as exc:
        assert written[0] & written[1]
        assert f"secrets[1].name: {second!r} and secrets[0].name {first!r} both write" in str(exc)
    else:
        assert not written[0] & written[1]

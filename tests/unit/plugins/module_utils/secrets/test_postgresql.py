"""The PostgreSQL login rotation's pure layer: policy, SCRAM verifiers, login roles taking turns, plan."""

import base64
import hashlib
import hmac

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import policy, postgresql, rotation

NOW = 1_800_000_000


def spec(**postgres):
    secrets, _unused = policy.normalise(
        [{"name": "db", "type": "password", "overlap": 60, "postgresql": {"role": "shop", **postgres}}], {}
    )
    return secrets["db"]


def version(number, login):
    return {**rotation.version_meta(spec(), number, f"sha256:{number}", NOW), "login": login}


# --- policy --------------------------------------------------------------------------------------


def test_a_database_login_is_normalised_with_its_port():
    assert spec()["postgresql"] == {"role": "shop", "port": 5432}
    assert spec(port="5433")["postgresql"]["port"] == 5433


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"type": "token", "postgresql": {"role": "shop"}}, "secrets[0].postgresql: only a password"),
        ({"type": "password", "postgresql": "shop"}, "secrets[0].postgresql: a mapping with role"),
        ({"type": "password", "postgresql": {"role": "Shop"}}, "secrets[0].postgresql.role: 'Shop' is not"),
        ({"type": "password", "postgresql": {"role": 'a"b'}}, "secrets[0].postgresql.role:"),
        ({"type": "password", "postgresql": {"role": "s" * 62}}, "secrets[0].postgresql.role:"),
        ({"type": "password", "postgresql": {"role": "shop", "port": 70000}}, "70000 is not a port"),
        ({"type": "password", "postgresql": {"role": "shop", "host": "x"}}, "postgresql.host: unknown"),
    ],
)
def test_a_bad_database_login_is_refused_naming_it(entry, message):
    with pytest.raises(policy.SecretSpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        policy.normalise([{"name": "db", **entry}], {})


# --- SCRAM verifiers -------------------------------------------------------------------------------


def test_the_verifier_is_rfc_5802_in_postgresqls_format():
    salt = bytes(range(16))
    text = postgresql.verifier("pencil", salt, 4096)
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    stored = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server = hmac.new(salted, b"Server Key", "sha256").digest()
    b64 = base64.b64encode
    assert text == f"SCRAM-SHA-256$4096:{b64(salt).decode()}${b64(stored).decode()}:{b64(server).decode()}"


def test_a_stored_verifier_is_matched_whatever_its_salt_and_iterations():
    stored = postgresql.verifier("pencil", iterations=10000)
    assert postgresql.matches(stored, "pencil")
    assert not postgresql.matches(stored, "pencil2")
    assert postgresql.verifier("pencil") != postgresql.verifier("pencil")  # a fresh salt each time
    for other in ("", "md5" + "0" * 32, "SCRAM-SHA-256$x:y$z", "SCRAM-SHA-256$4096:!!$a:b"):
        assert not postgresql.matches(other, "pencil")


# --- login roles taking turns ----------------------------------------------------------------------


def test_each_version_takes_the_login_role_the_current_one_does_not_use():
    s = spec()
    assert postgresql.logins(s) == ("shop_a", "shop_b")
    assert postgresql.next_login(s, None) == "shop_a"
    assert postgresql.next_login(s, {"current": {"login": "shop_a"}}) == "shop_b"
    assert postgresql.next_login(s, {"current": {"login": "shop_b"}}) == "shop_a"


def test_the_consumers_password_file_names_the_active_login_with_its_password():
    s = spec(port=5433)
    meta = {**rotation.initial(s, version(1, "shop_a")), "state": "dual", "next": version(2, "shop_b")}
    files = rotation.deliverables(s, meta, {1: "old", 2: "new"}, None, None)
    assert files == {"db": "old\n", "db.accept": "new\nold\n", "db.pgpass": "*:5433:*:shop_a:old\n"}
    promoted = rotation.advance(meta, "promote", NOW, s)
    assert rotation.deliverables(s, promoted, {1: "old", 2: "new"}, None, None)["db.pgpass"] == (
        "*:5433:*:shop_b:new\n"
    )


# --- the state and the plan --------------------------------------------------------------------------


def state(a=None, b=None):
    return {"shop_a": a, "shop_b": b}


def row(password=None, login=True, member=True):
    return {"login": login, "verifier": postgresql.verifier(password) if password else "", "member": member}


def test_the_state_query_output_is_parsed_and_a_missing_role_refused():
    s = spec()
    assert "'shop', 'shop_a', 'shop_b'" in postgresql.state_query(s)
    text = "shop\tf\t\tf\nshop_a\tt\tSCRAM-SHA-256$4096:x$y:z\tt\n"
    assert postgresql.parse_state(s, text) == {
        "shop_a": {"login": True, "verifier": "SCRAM-SHA-256$4096:x$y:z", "member": True},
        "shop_b": None,
    }
    with pytest.raises(postgresql.DatabaseError, match="role 'shop' does not exist on the server"):
        postgresql.parse_state(s, "shop_a\tt\t\tt\n")


def test_a_first_version_creates_its_login_role_in_the_application_role():
    s = spec()
    meta = rotation.initial(s, version(1, "shop_a"))
    enable, disable = postgresql.plan(s, meta, {1: "pw1"}, state())
    assert disable == [] and [words for _sql, words in enable] == ["enable login shop_a"]
    sql = enable[0][0]
    assert sql.startswith('CREATE ROLE "shop_a" LOGIN PASSWORD \'SCRAM-SHA-256$4096:')
    assert sql.endswith('IN ROLE "shop";')
    assert "pw1" not in sql


def test_dual_accept_enables_the_new_login_and_keeps_the_old():
    s = spec()
    meta = {**rotation.initial(s, version(1, "shop_a")), "state": "dual", "next": version(2, "shop_b")}
    enable, disable = postgresql.plan(s, meta, {1: "pw1", 2: "pw2"}, state(row("pw1"), row(login=False)))
    assert [words for _sql, words in enable] == ["enable login shop_b"] and disable == []
    assert enable[0][0].startswith('ALTER ROLE "shop_b" LOGIN PASSWORD \'SCRAM-SHA-256$')
    # Applied, the same state plans nothing: a re-run (or a resumed run) changes nothing.
    assert postgresql.plan(s, meta, {1: "pw1", 2: "pw2"}, state(row("pw1"), row("pw2"))) == ([], [])


def test_revoke_disables_the_old_login_and_ends_its_sessions():
    s = spec()
    dual = {**rotation.initial(s, version(1, "shop_a")), "state": "dual", "next": version(2, "shop_b")}
    stable = rotation.advance(rotation.advance(dual, "promote", NOW, s), "revoke", NOW + 60, s)
    enable, disable = postgresql.plan(s, stable, {1: "pw1", 2: "pw2"}, state(row("pw1"), row("pw2")))
    assert enable == []
    assert disable == [
        (
            'ALTER ROLE "shop_a" NOLOGIN PASSWORD NULL;'
            " SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'shop_a';",
            "disable login shop_a",
        )
    ]
    assert postgresql.plan(s, stable, {1: "pw1", 2: "pw2"}, state(row(login=False), row("pw2"))) == ([], [])


def test_a_login_role_outside_the_application_role_is_put_back_in_it():
    s = spec()
    meta = rotation.initial(s, version(1, "shop_a"))
    enable, _disable = postgresql.plan(s, meta, {1: "pw1"}, state(row("pw1", member=False)))
    assert enable == [('GRANT "shop" TO "shop_a";', "make shop_a a member of shop")]


def test_after_a_rollback_the_next_version_takes_the_free_login():
    s = spec()
    dual = {**rotation.initial(s, version(1, "shop_a")), "state": "dual", "next": version(2, "shop_b")}
    promoted = rotation.advance(dual, "promote", NOW, s)
    back = rotation.advance(promoted, "rollback", NOW, s)
    assert postgresql.wanted(s, back, {1: "pw1", 2: "pw2"}) == {"shop_a": "pw1", "shop_b": "pw2"}
    stable = rotation.advance(back, "revoke", NOW + 60, s)
    assert postgresql.wanted(s, stable, {1: "pw1", 2: "pw2"}) == {"shop_a": "pw1", "shop_b": None}
    assert postgresql.next_login(s, stable) == "shop_b"

"""A PostgreSQL password rotated without a failed login (pure: the plan, SQL text and SCRAM verifiers).

PostgreSQL holds one password per role, so a role cannot accept an old and a new password at once. A
database password is therefore carried by two login roles, ``<role>_a`` and ``<role>_b``, both members of
the application role ``<role>`` (which holds the privileges and owns nothing of the rotation). Each
version of the secret belongs to one login role, the one the current version does not use; the consumers'
``NAME.pgpass`` names the login role and the password of the active version together, in one file, so a
client never pairs a user with the other's password.

What the database holds is a pure function of the rotation state, like the consumers' files:
- a login role whose version is accepted has LOGIN and that version's password;
- the other one has NOLOGIN and no password, and its sessions are ended.
So dual-accept is both logins working, promote switches the consumers' file, and revoke disables the old
login: its password is refused from then on.

The password is sent as a SCRAM-SHA-256 verifier computed here (RFC 5802, PostgreSQL's format), never as
text: a server that logs statements logs a verifier, and psql's input carries no value.
"""

import base64
import hashlib
import hmac
import os
import re

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets.rotation import accepted, entries

ITERATIONS = 4096  # PostgreSQL's scram_iterations default
SEPARATOR = "\t"
_VERIFIER = re.compile(r"SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+")


class DatabaseError(Exception):
    """The server's state cannot carry the rotation (an application role that does not exist)."""


def logins(spec):
    role = spec["postgresql"]["role"]
    return (f"{role}_a", f"{role}_b")


def next_login(spec, meta):
    """The login role of a new version: the one the current version does not use."""
    first, second = logins(spec)
    if meta is None:
        return first
    return second if meta["current"].get("login") == first else first


def verifier(password, salt=None, iterations=ITERATIONS):
    """PostgreSQL's stored form of a SCRAM-SHA-256 password (salt: 16 random bytes unless given)."""
    salt = os.urandom(16) if salt is None else salt
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client = hmac.new(salted, b"Client Key", "sha256").digest()
    server = hmac.new(salted, b"Server Key", "sha256").digest()
    stored = hashlib.sha256(client).digest()

    def b64(data):
        return base64.b64encode(data).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored)}:{b64(server)}"


def verifiers_in(text):
    """The SCRAM verifiers a text (SQL, psql's output) holds: not passwords, yet nothing to print."""
    return _VERIFIER.findall(text)


def matches(stored, password):
    """Whether a stored SCRAM verifier is this password's (an md5 or empty one never is)."""
    try:
        method, rest = stored.split("$", 1)
        head, keys = rest.split("$", 1)
        iterations, salt = head.split(":", 1)
        if method != "SCRAM-SHA-256":
            return False
        expected = verifier(password, base64.b64decode(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(expected.split("$", 2)[2], keys)


def state_query(spec):
    """SQL listing the application role and its login roles: name, can login, verifier, direct member.

    Role names are the policy's (a-z, 0-9, _), so quoting them needs no escaping.
    """
    role = spec["postgresql"]["role"]
    names = ", ".join(f"'{name}'" for name in (role, *logins(spec)))
    member = (
        "EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_authid g ON g.oid = m.roleid"  # noqa: S608
        f" WHERE m.member = a.oid AND g.rolname = '{role}')"
    )
    return (
        f"SELECT a.rolname, a.rolcanlogin, coalesce(a.rolpassword, ''), {member}"  # noqa: S608  (policy's names)
        f" FROM pg_authid a WHERE a.rolname IN ({names});\n"
    )


def parse_state(spec, text):
    """login role -> {login, verifier, member} from the state query's output (DatabaseError: no role)."""
    rows = {}
    for line in text.splitlines():
        if line:
            name, can_login, stored, member = line.split(SEPARATOR)
            rows[name] = {"login": can_login == "t", "verifier": stored, "member": member == "t"}
    role = spec["postgresql"]["role"]
    if role not in rows:
        raise DatabaseError(f"role {role!r} does not exist on the server")
    return {name: rows.get(name) for name in logins(spec)}


def wanted(spec, meta, values):
    """login role -> the password it must accept (None: disabled), from the rotation state."""
    result = dict.fromkeys(logins(spec))
    for version in accepted(meta):
        entry = next(e for e in entries(meta) if e["version"] == version)
        result[entry["login"]] = values[version]
    return result


def plan(spec, meta, values, state):
    """(enable, disable): SQL statements that bring the server to the state, and the words for each.

    Enabling runs before the consumers get their files, disabling after they have reloaded.
    """
    role = spec["postgresql"]["role"]
    enable, disable = [], []
    for login, password in wanted(spec, meta, values).items():
        current = state.get(login)
        if password is not None:
            if current is None:
                sql = f'CREATE ROLE "{login}" LOGIN PASSWORD \'{verifier(password)}\' IN ROLE "{role}";'
                enable.append((sql, f"enable login {login}"))
            elif not current["login"] or not matches(current["verifier"], password):
                sql = f"ALTER ROLE \"{login}\" LOGIN PASSWORD '{verifier(password)}';"
                enable.append((sql, f"enable login {login}"))
            if current is not None and not current["member"]:
                enable.append((f'GRANT "{role}" TO "{login}";', f"make {login} a member of {role}"))
        elif current is not None and (current["login"] or current["verifier"]):
            sql = (
                f'ALTER ROLE "{login}" NOLOGIN PASSWORD NULL;'  # noqa: S608  (the policy's names)
                f" SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{login}';"
            )
            disable.append((sql, f"disable login {login}"))
    return enable, disable

"""Secrets on real consumers, Debian 12 (sec-bookworm, RSA signing key) and 13 (sec-trixie, Ed25519).

Each host runs jwtsvc (verifies JWTs with the JWK set it reads at start and on reload; consumer of
jwt_signing, action reload), app (reads its three secrets at start; action restart) and PostgreSQL, whose
login for db_password a client loop (consumer pgclient) uses throughout its rotation. Later tests run the
role with the ansible-vault store on the controller and against a real OpenBao server. The tests run
in file order: later ones build on the rotations of earlier ones. Every play's complete output is kept,
and every value that ever existed on a host is collected, for the last test's search.
"""

import hashlib
import json
import os
import secrets as random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import jwt
import pytest
from lab_testing import ansible_env

SCENARIO = Path(__file__).resolve().parents[1]
PROJECT = SCENARIO.parents[1]
sys.path.insert(0, str(PROJECT / ".collections"))
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import generate  # noqa: E402

INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
HOSTS = {"sec-bookworm": "172.30.6.11", "sec-trixie": "172.30.6.12"}
ALG = {"sec-bookworm": "RS256", "sec-trixie": "EdDSA"}
STORE = "/etc/bulwark/secrets"
CONSUMER_DIRS = {
    "app": "/etc/app/secrets",
    "jwtsvc": "/etc/jwtsvc/secrets",
    "pgclient": "/etc/pgclient/secrets",
    "issuer": "/etc/issuer/secrets",
}
# jwtsvc verifies jwt_signing (its public keys only); issuer signs (its private key too).
FILES_PER_CONSUMER = {"app": 6, "jwtsvc": 2, "pgclient": 3, "issuer": 3}
SECRETS = ["app_password", "api_token", "session_key", "jwt_signing", "db_password"]
# The later tests' consumer (root's, no service), for the ansible_vault and vault backends.
OTHER = {"ctl": {"directory": "/etc/ctl/secrets"}}
GATEWAY = "172.30.6.1"
OUTPUTS = []  # every play's complete output
VALUES = set()  # every value seen on a host

testinfra_hosts = []  # the tests drive both hosts at once


def root(name, command, check=True):
    """A command as root on the host, behind the operator's back (docker exec: reading values, fast)."""
    done = subprocess.run(
        ["docker", "exec", name, "sh", "-c", command], capture_output=True, text=True, check=False
    )
    if check:
        assert done.returncode == 0, f"{command}: {done.stderr}"
    return done.stdout


def stat(name, path):
    mode, user, group = root(name, f"stat -c '%a %U %G' {path}").split()
    return int(mode, 8), user, group


def play(
    playbook="playbooks/rotate_secrets.yml", extra=None, check=False, verbose=True, expect_rc=0, *, options=()
):
    """ansible-playbook on both hosts; its complete output is kept for the search; returns it."""
    env = ansible_env(ANSIBLE_PIPELINING="true")
    argv = ["ansible-playbook", "-i", INVENTORY, str(PROJECT / playbook)]
    if verbose:
        argv.append("-vvv")
    if extra:
        argv += ["-e", json.dumps(extra)]
    if check:
        argv += ["--check", "--diff"]
    argv += list(options)
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=400, check=False)
    OUTPUTS.append(done.stdout + done.stderr)
    collect_values()
    if expect_rc is not None:
        assert done.returncode == expect_rc, done.stdout[-4000:] + done.stderr[-2000:]
    return done.stdout + done.stderr


def recap(output):
    """host -> the recap's counters."""
    found = {}
    for line in output.splitlines():
        for name in HOSTS:
            if line.startswith(name) and "ok=" in line:
                found[name] = dict(part.split("=") for part in line.split(":", 1)[1].split())
    assert set(found) == set(HOSTS), output[-3000:]
    return found


def no_change(output):
    return all(counts["changed"] == "0" for counts in recap(output).values())


def meta(name, secret):
    return json.loads(root(name, f"cat {STORE}/{secret}/meta.json"))


def collect_values():
    """Every value file in the stores and the consumers' directories, remembered for the search."""
    for name in HOSTS:
        where = f"{STORE} {' '.join(CONSUMER_DIRS.values())} {OTHER['ctl']['directory']}"
        text = root(
            name,
            f"find {where} -type f ! -name '*.json' ! -name '*.pub' -exec cat {{}} + 2>/dev/null",
            check=False,
        )
        for value in text.splitlines():
            if len(value) >= 20 and not value.startswith("-----"):
                VALUES.add(value.rsplit(":", 1)[-1])  # a password, token, key, or one line of a PEM body


def snapshot(name):
    """Content, mode and owner of every file of the store and the consumers, and the consumers' PIDs."""
    where = f"{STORE} {' '.join(CONSUMER_DIRS.values())}"
    listing = root(
        name, f"find {where} -printf '%p %m %u %g\\n' | sort; find {where} -type f | sort | xargs sha256sum"
    )
    return listing, pids(name)


def pids(name):
    return dict(
        zip(("app", "jwtsvc"), root(name, "systemctl show -P MainPID app jwtsvc").split(), strict=True)
    )


def key_of(name):
    return root(name, f"cat {CONSUMER_DIRS['issuer']}/jwt_signing.key")


def shown(output, name):
    """What the role's last "Show what was done" task printed for host name (its msg, -vvv's JSON)."""
    lines = output[output.rindex("TASK [bulwark.hardening.secrets : Show what was done") :].splitlines()
    begin = lines.index(f"ok: [{name}] => {{")
    end = lines.index("}", begin)
    return json.loads("\n".join(["{", *lines[begin + 1 : end + 1]]))["msg"]


def pems(bundle):
    marker = "-----END PUBLIC KEY-----\n"
    return [part + marker for part in bundle.split(marker) if part.strip()]


def bundle_verifies(name, text, bundle):
    """Whether a key of a NAME.pub bundle verifies the token, as a reader of every key of it does."""
    for pem in pems(bundle):
        try:
            jwt.decode(text, pem, algorithms=[ALG[name]])
            return True
        except jwt.InvalidTokenError:
            continue
    return False


# A reload of jwtsvc first keeps a copy of the NAME.pub it would read then: what a .pub reader sees at each
# phase (dual-accept, promote, revoke). "+": as root, not as the service's user.
PUB_SNAPSHOT = (
    "mkdir -p /run/systemd/system/jwtsvc.service.d /tmp/pubs && cat > /usr/local/bin/pubsnap <<'EOF'\n"
    '#!/bin/sh\ncp /etc/jwtsvc/secrets/jwt_signing.pub /tmp/pubs/$(date +%s%N).pem\nkill -HUP "$1"\nEOF\n'
    "chmod 755 /usr/local/bin/pubsnap && printf '[Service]\\nExecReload=\\nExecReload=+/usr/local/bin/pubsnap"
    " $MAINPID\\n' > /run/systemd/system/jwtsvc.service.d/pubsnap.conf && systemctl daemon-reload"
)


def pub_snapshots(name):
    leaves = sorted(root(name, "ls /tmp/pubs").split())
    return [root(name, f"cat /tmp/pubs/{leaf}") for leaf in leaves]


def token(name, key_pem):
    kid = generate.public_jwk(key_pem)["kid"]
    claims = {"sub": "test", "exp": int(time.time()) + 3600}
    return jwt.encode(claims, key_pem, algorithm=ALG[name], headers={"kid": kid})


def verify(name, text):
    request = urllib.request.Request(
        f"http://{HOSTS[name]}:8080/verify", headers={"Authorization": f"Bearer {text}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310  (http to a lab host)
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


class Poller(threading.Thread):
    """GET /health on both hosts every 0.2 s until stopped; counts answers and failures."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop, self.ok, self.failed = threading.Event(), 0, []

    def run(self):
        while not self.stop.is_set():
            for address in HOSTS.values():
                try:
                    with urllib.request.urlopen(f"http://{address}:8080/health", timeout=3) as answer:
                        assert answer.status == 200
                    self.ok += 1
                except Exception as exc:  # any failure counts
                    self.failed.append(f"{address}: {exc}")
            time.sleep(0.2)


# --- files, modes, owners, re-run, check mode ----------------------------------------------------


@pytest.mark.parametrize("name", list(HOSTS))
def test_store_and_consumer_files_have_their_modes_and_owners(name):
    assert stat(name, STORE) == (0o700, "root", "root")
    for secret in SECRETS:
        assert stat(name, f"{STORE}/{secret}") == (0o700, "root", "root")
        assert stat(name, f"{STORE}/{secret}/v1") == (0o600, "root", "root")
        assert stat(name, f"{STORE}/{secret}/meta.json") == (0o600, "root", "root")
        data = meta(name, secret)
        assert (data["state"], data["current"]["version"]) == ("stable", 1)
        assert root(name, f"cat {STORE}/{secret}/v1").strip() not in json.dumps(data)
    for consumer, directory in CONSUMER_DIRS.items():
        group, modes = ("root", (0o700, 0o600)) if consumer == "issuer" else (consumer, (0o750, 0o640))
        assert stat(name, directory) == (modes[0], "root", group)
        leaves = root(name, f"ls {directory}").split()
        assert len(leaves) == FILES_PER_CONSUMER[consumer]
        for leaf in leaves:
            assert stat(name, f"{directory}/{leaf}") == (modes[1], "root", group), leaf
    # The verifier holds no private key: its directory has the public keys only.
    assert root(name, f"ls {CONSUMER_DIRS['jwtsvc']}").split() == ["jwt_signing.jwks.json", "jwt_signing.pub"]
    assert root(name, f"grep -rl PRIVATE {CONSUMER_DIRS['jwtsvc']}", check=False) == ""
    assert root(name, f"cat {CONSUMER_DIRS['jwtsvc']}/jwt_signing.pub") == generate.public_pem(key_of(name))
    password = root(name, "cat /etc/app/secrets/app_password").strip()
    assert len(password) == 40 and password.isalnum()
    assert len(root(name, "cat /etc/app/secrets/api_token").strip()) == 64
    jwks = json.loads(root(name, "cat /etc/jwtsvc/secrets/jwt_signing.jwks.json"))
    assert [k["alg"] for k in jwks["keys"]] == [ALG[name]]
    assert "d" not in jwks["keys"][0]
    assert root(name, "systemctl is-active app jwtsvc").split() == ["active", "active"]


def test_rerun_and_check_mode_change_nothing():
    before = {name: snapshot(name) for name in HOSTS}
    assert no_change(play("molecule/secrets/converge.yml", verbose=False))
    assert no_change(play("molecule/secrets/converge.yml", check=True, verbose=False))
    # A rotation in check mode says what it would do and does nothing.
    output = play(extra={"secret": "app_password"}, check=True)
    assert "app_password: stage version 2 (requested)" in output
    assert not no_change(output)
    assert {name: snapshot(name) for name in HOSTS} == before


# --- bad input -----------------------------------------------------------------------------------


BAD = [
    (
        {"lab_extra_secrets": [{"name": "k", "type": "rsa", "bits": 1024}]},
        "secrets[5].bits: RSA 1024 is below",
    ),
    (
        {"lab_extra_secrets": [{"name": "p", "type": "password", "length": 16}]},
        "secrets[5].length: 16 is below",
    ),
    (
        {"lab_extra_secrets": [{"name": "p", "type": "password", "consumers": ["web"]}]},
        "'web' is not a declared",
    ),
    ({"secrets_backend": "consul"}, "secrets_backend"),
    (
        {"lab_extra_secrets": [{"name": "p", "type": "password", "postgresql": {"role": "ghost"}}]},
        "secrets[5].postgresql.role: role 'ghost' does not exist on the server. Nothing was applied",
    ),
    (
        {
            "lab_extra_secrets": [{"name": "g", "type": "password", "consumers": ["ghost"]}],
            "secrets_consumers": {
                "app": {"directory": "/etc/app/secrets", "group": "app", "service": "app.service"},
                "jwtsvc": {
                    "directory": "/etc/jwtsvc/secrets",
                    "group": "jwtsvc",
                    "service": "jwtsvc.service",
                },
                "pgclient": {"directory": "/etc/pgclient/secrets", "group": "pgclient"},
                "issuer": {"directory": "/etc/issuer/secrets"},
                "ghost": {"directory": "/etc/ghost", "service": "ghost.service"},
            },
        },
        "consumers.ghost.service: ghost.service does not exist on the host. Nothing was applied",
    ),
]


@pytest.mark.parametrize(("extra", "message"), BAD)
def test_bad_input_fails_naming_it_and_changes_nothing(extra, message):
    before = {name: snapshot(name) for name in HOSTS}
    output = play("molecule/secrets/converge.yml", extra=extra, verbose=False, expect_rc=2)
    assert message in output
    assert no_change(output)
    assert {name: snapshot(name) for name in HOSTS} == before


# --- JWT rotation on the verifying service --------------------------------------------------------


def test_jwt_rotation_overlap_promote_revoke_service_up_throughout():
    old_keys = {name: key_of(name) for name in HOSTS}
    old = {name: token(name, old_keys[name]) for name in HOSTS}
    for name in HOSTS:
        stranger = generate.generate({"type": "rsa" if name == "sec-bookworm" else "ed25519", "bits": 2048})
        assert verify(name, old[name]) == 200
        assert verify(name, token(name, stranger)) == 401  # the verifier does reject
    before = {name: pids(name) for name in HOSTS}
    for name in HOSTS:
        root(name, PUB_SNAPSHOT)
    poller = Poller()
    poller.start()
    try:
        output = play(extra={"secret": "jwt_signing"})
        assert "jwt_signing: promote version 2" in output
        new = {}
        for name in HOSTS:
            data = meta(name, "jwt_signing")
            assert (data["state"], data["current"]["version"], data["previous"]["version"]) == (
                "promoted",
                2,
                1,
            )
            assert key_of(name) != old_keys[name]
            new[name] = token(name, key_of(name))
            assert verify(name, old[name]) == 200, "an old-key token is accepted during the overlap"
            assert verify(name, new[name]) == 200, "a new-key token is accepted after promotion"
            assert pids(name) == before[name], "jwtsvc is reloaded (same PID), app (not a consumer) untouched"
        revoke_after = max(meta(name, "jwt_signing")["revoke_after"] for name in HOSTS)
        time.sleep(max(0, revoke_after - time.time() + 1))
        output = play()
        assert "jwt_signing: revoke version 1" in output
        for name in HOSTS:
            assert meta(name, "jwt_signing")["state"] == "stable"
            assert verify(name, old[name]) == 401, "an old-key token is rejected after revocation"
            assert verify(name, new[name]) == 200
            assert pids(name) == before[name]
    finally:
        poller.stop.set()
        poller.join()
        for name in HOSTS:
            root(name, "rm -f /run/systemd/system/jwtsvc.service.d/pubsnap.conf && systemctl daemon-reload")
    assert poller.ok > 20 and poller.failed == []
    # What a NAME.pub reader read at each reload: dual-accept (old signs: first), promote (new first, old
    # still there), revoke (new only). The token signed with the old key before the promotion verifies
    # against the first two, as against the JWK set, and no longer after the revocation.
    for name in HOSTS:
        old_pub, new_pub = generate.public_pem(old_keys[name]), generate.public_pem(key_of(name))
        seen = pub_snapshots(name)
        assert [pems(bundle) for bundle in seen] == [[old_pub, new_pub], [new_pub, old_pub], [new_pub]], name
        assert [bundle_verifies(name, old[name], bundle) for bundle in seen] == [True, True, False]
        assert [bundle_verifies(name, new[name], bundle) for bundle in seen] == [True, True, True]
        root(name, "rm -r /tmp/pubs")


# --- rotate everything, with generation, at -vvv; rollback -----------------------------------------


def test_naming_a_secret_no_host_defines_fails_naming_it_before_any_change():
    before = {name: snapshot(name) for name in HOSTS}
    output = play(extra={"secret": "jwt_signing, no_such_secret"}, verbose=False, expect_rc=2)
    assert "secret: no host of this play defines no_such_secret. Nothing was applied" in output
    assert {name: snapshot(name) for name in HOSTS} == before


def test_an_incident_during_the_overlap_revokes_every_earlier_version_in_the_same_run():
    """jwt_signing and db_password in their overlap windows (rotated by name, a comma list): force=true
    revokes the old and the new-but-superseded versions in the run, the other secrets' previous ones too."""
    old_keys = {name: key_of(name) for name in HOSTS}
    old_pg = {name: pgpass(name) for name in HOSTS}
    play(extra={"secret": "jwt_signing,db_password"}, verbose=False)
    mid_keys = {name: key_of(name) for name in HOSTS}
    mid_pg = {name: pgpass(name) for name in HOSTS}
    tokens = {name: (token(name, old_keys[name]), token(name, mid_keys[name])) for name in HOSTS}
    for name in HOSTS:
        assert meta(name, "jwt_signing")["state"] == meta(name, "db_password")["state"] == "promoted"
        assert [verify(name, text) for text in tokens[name]] == [200, 200], "both accepted in the window"
    before = {name: pids(name) for name in HOSTS}
    versions = {name: {s: meta(name, s)["current"]["version"] for s in SECRETS} for name in HOSTS}
    # Check mode says what it would revoke and changes nothing.
    output = play(extra={"force": True}, check=True)
    for name in HOSTS:
        jwt_now = versions[name]["jwt_signing"]
        assert shown(output, name)["revoked"]["jwt_signing"] == [jwt_now - 1, jwt_now]
        assert meta(name, "jwt_signing")["state"] == "promoted"
    output = play(extra={"force": True, "lab_extra_secrets": [{"name": "late_token", "type": "token"}]})
    assert "late_token: generate version 1" in output
    assert "jwt_signing: revoke version" in output and "(incident)" in output
    for name in HOSTS:
        said = shown(output, name)
        for secret in SECRETS:
            data = meta(name, secret)
            in_window = secret in ("jwt_signing", "db_password")
            assert data["state"] == "stable", (name, secret)
            assert data["current"]["version"] == versions[name][secret] + 1, (name, secret)
            gone = (
                [versions[name][secret] - 1, versions[name][secret]]
                if in_window
                else [versions[name][secret]]
            )
            assert said["revoked"][secret] == gone, (name, secret)
        accept = root(name, "cat /etc/app/secrets/app_password.accept").split()
        assert accept == [root(name, "cat /etc/app/secrets/app_password").strip()]
        assert [verify(name, text) for text in tokens[name]] == [401, 401], "no earlier key verifies any more"
        assert verify(name, token(name, key_of(name))) == 200
        # Both earlier logins are refused now; the old login roles have neither LOGIN nor a password.
        for user, password in (old_pg[name], mid_pg[name]):
            rc, err = login(name, user, password)
            assert rc != 0 and "password authentication failed" in err, err
        assert login(name, *pgpass(name))[0] == 0
        after = pids(name)
        assert after["app"] != before[name]["app"], "app restarted for its changed secrets"
        assert after["jwtsvc"] == before[name]["jwtsvc"]


def test_rollback_is_one_variable_and_idempotent():
    # Right after the incident test the previous version is the one the incident revoked: never brought back.
    before = {name: snapshot(name) for name in HOSTS}
    output = play(extra={"secrets_rollback": ["app_password"]}, verbose=False, expect_rc=2)
    assert "rollback: app_password: its previous version" in output and "revoked by an incident" in output
    assert no_change(output)
    assert {name: snapshot(name) for name in HOSTS} == before
    # An ordinary rotation gives a previous version that may come back.
    play(extra={"secret": "app_password"}, verbose=False)
    previous = {name: meta(name, "app_password")["previous"] for name in HOSTS}
    output = play(extra={"secrets_rollback": ["app_password"]})
    for name in HOSTS:
        data = meta(name, "app_password")
        assert data["current"] == previous[name] and data["rolled_back"]
        value = root(name, "cat /etc/app/secrets/app_password").strip()
        assert generate.fingerprint({"type": "password"}, value) == previous[name]["fingerprint"]
    assert "roll back to version" in output
    # Kept set, the variable rolls back nothing more: a first run may still revoke (the window is 3 s),
    # the next one changes nothing, and the rolled-back version stays current.
    play("molecule/secrets/converge.yml", extra={"secrets_rollback": ["app_password"]})
    assert no_change(play("molecule/secrets/converge.yml", extra={"secrets_rollback": ["app_password"]}))
    for name in HOSTS:
        assert meta(name, "app_password")["current"] == previous[name]


# --- a rotation killed in the middle ----------------------------------------------------------------


def module_in_reload(name):
    """The PID of the module on the host once it waits for jwtsvc's (slow) reload."""
    deadline = time.monotonic() + 120
    module_pid = ""
    while time.monotonic() < deadline and not module_pid:
        module_pid = root(
            name,
            "p=$(pgrep -f '[s]ystemctl try-reload-or-restart jwtsvc' | head -1);"
            ' [ -n "$p" ] && ps -o ppid= -p $p',
            check=False,
        ).strip()
        time.sleep(0.3)
    assert module_pid, "the rotation never reached the consumer reload"
    return module_pid


def test_a_killed_rotation_resumes_and_no_consumer_breaks():
    name = "sec-trixie"
    old_key = key_of(name)
    old = token(name, old_key)
    # A slow reload gives the kill a window while the module waits for systemctl in the dual state.
    slow = '[Service]\nExecReload=\nExecReload=/bin/sh -c "kill -HUP $MAINPID; sleep 6"\n'
    dropin = "/run/systemd/system/jwtsvc.service.d"
    root(name, f"mkdir -p {dropin} && printf '{slow}' > {dropin}/slow.conf && systemctl daemon-reload")
    env = ansible_env()
    argv = [
        "ansible-playbook",
        "-i",
        INVENTORY,
        str(PROJECT / "playbooks/rotate_secrets.yml"),
        "--limit",
        name,
        "-e",
        "secret=jwt_signing",
    ]
    run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        module_pid = module_in_reload(name)
        assert meta(name, "jwt_signing")["state"] == "dual"
        root(name, f"kill -9 {module_pid}")
    finally:
        output, _unused = run.communicate(timeout=120)
        OUTPUTS.append(output)
    assert run.returncode != 0
    data = meta(name, "jwt_signing")
    assert (data["state"], data["reload_pending"]) == ("dual", ["jwtsvc", "issuer"])
    assert verify(name, old) == 200, "killed mid-rotation, the consumer still accepts the active key"
    root(name, "rm -r /run/systemd/system/jwtsvc.service.d && systemctl daemon-reload")
    output = play()  # no secret named: the run resumes what is in progress
    assert "jwt_signing: promote version" in output
    data = meta(name, "jwt_signing")
    assert (data["state"], data["reload_pending"]) == ("promoted", [])
    assert verify(name, old) == 200 and verify(name, token(name, key_of(name))) == 200
    assert root(name, "systemctl is-active jwtsvc").strip() == "active"


def test_a_cancelled_run_keeps_rotating_and_the_next_run_reports_what_it_did():
    """ansible-playbook killed (as `timeout -s KILL` does) while the module waits for a consumer's reload: the
    module runs on to its end on the host; the next run lists what it did under meanwhile, and the run after
    that lists nothing more."""
    name = "sec-trixie"
    version = meta(name, "jwt_signing")["current"]["version"]
    slow = '[Service]\nExecReload=\nExecReload=/bin/sh -c "kill -HUP $MAINPID; sleep 4"\n'
    dropin = "/run/systemd/system/jwtsvc.service.d"
    root(name, f"mkdir -p {dropin} && printf '{slow}' > {dropin}/slow.conf && systemctl daemon-reload")
    playbook = str(PROJECT / "playbooks/rotate_secrets.yml")
    argv = ["ansible-playbook", "-i", INVENTORY, playbook, "--limit", name, "-e", "force=true"]
    env = ansible_env()
    run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        module_pid = module_in_reload(name)
        run.kill()  # ansible-playbook goes away; its SSH session and the module on the host are left alone
    finally:
        # The orphaned ssh client holds the pipe until the module ends.
        output, _unused = run.communicate(timeout=180)
        OUTPUTS.append(output)
    assert run.returncode == -signal.SIGKILL
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # the module, alone, runs on to its end
        if root(name, f"kill -0 {module_pid} 2>/dev/null && echo running", check=False).strip() != "running":
            break
        time.sleep(0.5)
    data = meta(name, "jwt_signing")
    assert (data["state"], data["current"]["version"]) == ("stable", version + 1), "the host finished alone"
    root(name, f"rm -r {dropin} && systemctl daemon-reload")
    output = play("molecule/secrets/converge.yml")
    seen = [item for item in shown(output, name)["meanwhile"] if item["secret"] == "jwt_signing"]  # noqa: S105
    assert [(item["step"], item["version"]) for item in seen] == [
        ("revoke", version - 1),
        ("stage", version + 1),
        ("accept", version + 1),
        ("promote", version + 1),
        ("revoke", version),
    ]
    assert len({item["run"] for item in seen}) == 1 and all(item["at"].endswith("Z") for item in seen)
    assert shown(output, "sec-bookworm")["meanwhile"] == []
    assert shown(play("molecule/secrets/converge.yml"), name)["meanwhile"] == [], "reported once"


# --- a database password, PostgreSQL from Debian's archive --------------------------------------------

PGPASS = "/etc/pgclient/secrets/db_password.pgpass"
# The consumer's client: a new connection a query, with the login and password read from its file each time.
LOOP = (
    "while [ ! -e /tmp/pgloop.stop ]; do"  # noqa: S608  (a shell loop of the test's own)
    f" IFS=: read -r _h port _d user pass < {PGPASS};"
    " if PGPASSWORD=$pass psql -h 127.0.0.1 -p $port -U $user -d shop -XAtc 'SELECT count(*) FROM items'"
    " >/dev/null 2>>/tmp/pgloop.err; then echo ok; else echo failed; fi; sleep 0.1;"
    " done >> /tmp/pgloop.log"
)


def login(name, user, password):
    """(rc, stderr) of one query over TCP as user with password, as pgclient, on a new connection."""
    done = subprocess.run(
        ["docker", "exec", "-u", "pgclient", "-e", f"PGPASSWORD={password}", name, "psql", "-h", "127.0.0.1",
         "-U", user, "-d", "shop", "-XAtc", "SELECT count(*) FROM items"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode != 0 or done.stdout.strip() == "2", done.stdout
    return done.returncode, done.stderr


def pgpass(name):
    _host, _port, _db, user, password = root(name, f"cat {PGPASS}").strip().split(":")
    return user, password


def test_database_password_rotation_without_a_failed_query():
    old = {name: pgpass(name) for name in HOSTS}
    versions = {
        name: root(name, "runuser -u postgres -- psql -XAtc 'SHOW server_version_num'") for name in HOSTS
    }
    assert versions["sec-bookworm"].startswith("15") and versions["sec-trixie"].startswith("17")
    for name in HOSTS:
        assert login(name, *old[name])[0] == 0
        root(name, "rm -f /tmp/pgloop.*")
        subprocess.run(["docker", "exec", "-d", "-u", "pgclient", name, "sh", "-c", LOOP], check=True)
    time.sleep(2)
    try:
        # One run: stage, dual-accept (both logins), promote (the file names the new one), revoke after 3 s.
        output = play(extra={"secret": "db_password", "secrets_wait_for_revoke": 30})
        time.sleep(2)  # queries after the revocation
    finally:
        for name in HOSTS:
            root(name, "touch /tmp/pgloop.stop")
    time.sleep(1)
    for name in HOSTS:
        data = meta(name, "db_password")
        assert (data["state"], data["current"]["version"]) == ("stable", data["previous"]["version"] + 1)
        new = pgpass(name)
        assert new[0] != old[name][0] and new[1] != old[name][1]
        assert {new[0], old[name][0]} == {"shop_a", "shop_b"}
        results = root(name, "cat /tmp/pgloop.log").split()
        assert results.count("ok") > 20 and "failed" not in results, root(name, "cat /tmp/pgloop.err")
        # The listener answers the new login; the old password is refused with either login role.
        assert login(name, *new)[0] == 0
        rc, err = login(name, *old[name])
        assert rc != 0 and "password authentication failed" in err, err
        rc, err = login(name, new[0], old[name][1])
        assert rc != 0 and "password authentication failed" in err, err
        query = "SELECT rolname, rolcanlogin, rolpassword IS NULL FROM pg_authid WHERE rolname LIKE 'shop%'"
        roles = root(name, f'runuser -u postgres -- psql -XAtc "{query}"').split()
        assert sorted(roles) == sorted(["shop|f|t", f"{new[0]}|t|f", f"{old[name][0]}|f|t"])
    for words in ("db_password: enable login", "db_password: promote version", "db_password: disable login"):
        assert words in output
    assert no_change(play("molecule/secrets/converge.yml", verbose=False))


# --- the ansible-vault store on the controller ----------------------------------------------------------


@pytest.fixture(scope="module")
def controller_store(tmp_path_factory):
    where = tmp_path_factory.mktemp("store")
    password = where / "vault-password"
    password.write_text(random.token_urlsafe(24) + "\n")
    password.chmod(0o600)
    extra = {
        "secrets_backend": "ansible_vault",
        "secrets_store_file": f"{where}/{{{{ inventory_hostname }}}}.vault",
        "secrets_directory": "/etc/bulwark/controller-meta",
        "secrets_definitions": [
            {"name": "ctl_password", "type": "password", "overlap": 2, "consumers": ["ctl"]},
            {
                "name": "ctl_signing",
                "type": "ed25519",
                "overlap": 2,
                "consumers": ["ctl"],
                "signers": ["ctl"],
            },
        ],
        "secrets_consumers": OTHER,
    }
    return where, password, extra


def view(password, path):
    env = ansible_env()
    done = subprocess.run(
        ["ansible-vault", "view", "--vault-password-file", str(password), str(path)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    return json.loads(done.stdout)


def test_ansible_vault_store_on_the_controller(controller_store):
    where, password, extra = controller_store
    options = ["--vault-password-file", str(password)]
    play("molecule/secrets/converge.yml", extra=extra, options=options)
    for name in HOSTS:
        path = where / f"{name}.vault"
        raw = path.read_text()
        value = root(name, "cat /etc/ctl/secrets/ctl_password").strip()
        assert len(value) == 32 and raw.startswith("$ANSIBLE_VAULT;1.1;AES256") and value not in raw
        store = view(password, path)["secrets"]
        assert store["ctl_password"]["versions"] == {"1": value}
        assert store["ctl_password"]["meta"]["fingerprint"] == generate.fingerprint(
            {"type": "password"}, value
        )
        key = root(name, "cat /etc/ctl/secrets/ctl_signing.key")
        assert store["ctl_signing"]["versions"] == {"1": key}
        # On the host: the metadata, no value.
        assert root(name, "ls /etc/bulwark/controller-meta/ctl_password").split() == ["meta.json"]
        assert stat(name, "/etc/ctl/secrets/ctl_password") == (0o600, "root", "root")
    hashes = {name: hashlib.sha256((where / f"{name}.vault").read_bytes()).hexdigest() for name in HOSTS}
    assert no_change(play("molecule/secrets/converge.yml", extra=extra, options=options, verbose=False))
    assert {
        name: hashlib.sha256((where / f"{name}.vault").read_bytes()).hexdigest() for name in HOSTS
    } == hashes
    old = {name: root(name, "cat /etc/ctl/secrets/ctl_password").strip() for name in HOSTS}
    output = play(extra={**extra, "secret": "ctl_password", "secrets_wait_for_revoke": 20}, options=options)
    assert "ctl_password: revoke version 1" in output
    for name in HOSTS:
        value = root(name, "cat /etc/ctl/secrets/ctl_password").strip()
        assert value != old[name]
        assert root(name, "cat /etc/ctl/secrets/ctl_password.accept").split() == [value]
        store = view(password, where / f"{name}.vault")["secrets"]["ctl_password"]
        assert store["versions"] == {"1": old[name], "2": value}  # the previous one kept for a rollback
        assert store["meta"]["version"] == 2 and store["meta"]["state"] == "stable"
        assert value not in (where / f"{name}.vault").read_text()


# --- OpenBao through Ansible -----------------------------------------------------------------------------


def bao(token, *args):
    env = dict(os.environ, BAO_ADDR=f"http://{GATEWAY}:8200", BAO_TOKEN=token, BAO_FORMAT="json")
    done = subprocess.run(
        [str(PROJECT / ".venv/bin/bao"), *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


@pytest.fixture(scope="module")
def openbao(tmp_path_factory):
    """A dev-mode OpenBao on the scenario's gateway, an audit file device; stopped afterwards."""
    with pytest.raises(OSError):  # nothing else answers there (a server left over would fool the test)
        socket.create_connection((GATEWAY, 8200), timeout=1)
    where = tmp_path_factory.mktemp("bao")
    token = random.token_urlsafe(24)
    audit = where / "audit.log"
    # OpenBao 2 enables audit devices from its configuration only (not through the API).
    config = where / "config.hcl"
    config.write_text(f'audit "file" "file" {{\n  options {{\n    file_path = "{audit}"\n  }}\n}}\n')
    with open(where / "server.log", "w") as log:
        server = subprocess.Popen(
            [str(PROJECT / ".venv/bin/bao"), "server", "-dev", f"-dev-listen-address={GATEWAY}:8200",
             f"-dev-root-token-id={token}", f"-config={config}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, (where / "server.log").read_text()
            try:
                socket.create_connection((GATEWAY, 8200), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, (where / "server.log").read_text()
                time.sleep(0.3)
        bao(token, "status")  # unsealed and answering
        yield token, audit
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
    with pytest.raises(OSError):
        socket.create_connection((GATEWAY, 8200), timeout=1)


def test_openbao_backend_versions_and_audit(openbao):
    token, audit = openbao
    extra = {
        "secrets_backend": "vault",
        "secrets_vault_url": f"http://{GATEWAY}:8200",
        "secrets_vault_token": token,
        "secrets_vault_path": "bulwark/{{ inventory_hostname }}",
        "secrets_definitions": [
            {"name": "kv_password", "type": "password", "overlap": 2, "consumers": ["ctl"]}
        ],
        "secrets_consumers": OTHER,
    }
    play("molecule/secrets/converge.yml", extra=extra)

    def current(name):
        return bao(token, "kv", "metadata", "get", f"secret/bulwark/{name}/kv_password")["data"][
            "current_version"
        ]

    first = {name: current(name) for name in HOSTS}
    assert first == dict.fromkeys(HOSTS, 1)
    assert no_change(play("molecule/secrets/converge.yml", extra=extra, verbose=False))
    assert {name: current(name) for name in HOSTS} == first
    for turn in (1, 2):
        play(extra={**extra, "secret": "kv_password", "secrets_wait_for_revoke": 20})
        for name in HOSTS:
            assert current(name) == 1 + turn, "exactly one KV version per rotation"
            stored = bao(token, "kv", "get", f"secret/bulwark/{name}/kv_password")["data"]["data"]["value"]
            assert root(name, "cat /etc/ctl/secrets/kv_password").strip() == stored
            VALUES.add(stored)
            meta_doc = bao(token, "kv", "get", f"secret/bulwark/{name}/kv_password.meta")["data"]["data"]
            assert json.loads(meta_doc["meta"])["current"]["version"] == 1 + turn
    # The audit device recorded the hosts' reads and writes of their paths (values HMAC'd, never plain).
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    for name, address in HOSTS.items():
        path = f"secret/data/bulwark/{name}/kv_password"
        seen = {
            (e["type"], e["request"]["operation"])
            for e in entries
            if e["request"].get("path") == path and e["request"].get("remote_address") == address
        }
        assert {("request", "update"), ("response", "update"), ("request", "read")} <= seen, seen
    text = audit.read_text()
    assert not [v for v in VALUES if v in text]


# --- never printed ----------------------------------------------------------------------------------


def test_no_value_in_any_output_or_journal():
    assert len(VALUES) > 40 and len(OUTPUTS) > 10
    everything = "\n".join(OUTPUTS)
    assert "ESTABLISH SSH CONNECTION" in everything and "secret_store" in everything  # really -vvv
    journals = {name: root(name, "journalctl --no-pager -o cat") for name in HOSTS}
    assert all(len(text) > 1000 for text in journals.values())
    leaked = [hashlib.sha256(v.encode()).hexdigest()[:12] for v in VALUES if v in everything]
    assert leaked == [], f"values (by hash) in the playbook output: {leaked}"
    for name, text in journals.items():
        leaked = [hashlib.sha256(v.encode()).hexdigest()[:12] for v in VALUES if v in text]
        assert leaked == [], f"values (by hash) in {name}'s journal: {leaked}"

"""Secrets on real consumers, Debian 12 (sec-bookworm, RSA signing key) and 13 (sec-trixie, Ed25519).

Each host runs jwtsvc (verifies JWTs with the JWK set it reads at start and on reload; consumer of
jwt_signing, action reload) and app (reads its three secrets at start; action restart). The tests run
in file order: later ones build on the rotations of earlier ones. Every play's complete output is kept,
and every value that ever existed on a host is collected, for the last test's search.
"""

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import jwt
import pytest

SCENARIO = Path(__file__).resolve().parents[1]
PROJECT = SCENARIO.parents[1]
sys.path.insert(0, str(PROJECT / ".collections"))
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import generate  # noqa: E402

INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE", "")
HOSTS = {"sec-bookworm": "172.30.6.11", "sec-trixie": "172.30.6.12"}
ALG = {"sec-bookworm": "RS256", "sec-trixie": "EdDSA"}
STORE = "/etc/bulwark/secrets"
CONSUMER_DIRS = {"app": "/etc/app/secrets", "jwtsvc": "/etc/jwtsvc/secrets"}
SECRETS = ["app_password", "api_token", "session_key", "jwt_signing"]
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


def play(playbook="playbooks/rotate_secrets.yml", extra=None, check=False, verbose=True, expect_rc=0):
    """ansible-playbook on both hosts; its complete output is kept for the search; returns it."""
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(PROJECT / ".collections"),
        ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"),
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_PIPELINING="true",
    )
    argv = ["ansible-playbook", "-i", INVENTORY, str(PROJECT / playbook)]
    if verbose:
        argv.append("-vvv")
    if extra:
        argv += ["-e", json.dumps(extra)]
    if check:
        argv += ["--check", "--diff"]
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
        where = f"{STORE} {' '.join(CONSUMER_DIRS.values())}"
        text = root(name, f"find {where} -type f ! -name '*.json' ! -name '*.pub' -exec cat {{}} +")
        for value in text.splitlines():
            if len(value) >= 20 and not value.startswith("-----"):
                VALUES.add(value)  # a password, token, key, or one line of a PEM body


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
    return root(name, f"cat {CONSUMER_DIRS['jwtsvc']}/jwt_signing.key")


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
        assert stat(name, directory) == (0o750, "root", consumer)
        leaves = root(name, f"ls {directory}").split()
        assert len(leaves) == (6 if consumer == "app" else 3)
        for leaf in leaves:
            assert stat(name, f"{directory}/{leaf}") == (0o640, "root", consumer), leaf
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
        "secrets[4].bits: RSA 1024 is below",
    ),
    (
        {"lab_extra_secrets": [{"name": "p", "type": "password", "length": 16}]},
        "secrets[4].length: 16 is below",
    ),
    (
        {"lab_extra_secrets": [{"name": "p", "type": "password", "consumers": ["web"]}]},
        "'web' is not a declared",
    ),
    ({"secrets_backend": "consul"}, "secrets_backend"),
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
    assert poller.ok > 20 and poller.failed == []


# --- rotate everything, with generation, at -vvv; rollback -----------------------------------------


def test_forced_rotation_of_everything_with_a_new_secret():
    before = {name: pids(name) for name in HOSTS}
    versions = {name: {s: meta(name, s)["current"]["version"] for s in SECRETS} for name in HOSTS}
    output = play(
        extra={
            "force": True,
            "secrets_wait_for_revoke": 30,
            "lab_extra_secrets": [{"name": "late_token", "type": "token"}],
        }
    )
    assert "late_token: generate version 1" in output
    for name in HOSTS:
        for secret in SECRETS:
            data = meta(name, secret)
            assert data["state"] == "stable", (name, secret)
            assert data["current"]["version"] == versions[name][secret] + 1, (name, secret)
        accept = root(name, "cat /etc/app/secrets/app_password.accept").split()
        assert accept == [root(name, "cat /etc/app/secrets/app_password").strip()]
        after = pids(name)
        assert after["app"] != before[name]["app"], "app restarted for its changed secrets"
        assert after["jwtsvc"] == before[name]["jwtsvc"]


def test_rollback_is_one_variable_and_idempotent():
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


def test_a_killed_rotation_resumes_and_no_consumer_breaks():
    name = "sec-trixie"
    old_key = key_of(name)
    old = token(name, old_key)
    # A slow reload gives the kill a window while the module waits for systemctl in the dual state.
    slow = '[Service]\nExecReload=\nExecReload=/bin/sh -c "kill -HUP $MAINPID; sleep 6"\n'
    dropin = "/run/systemd/system/jwtsvc.service.d"
    root(name, f"mkdir -p {dropin} && printf '{slow}' > {dropin}/slow.conf && systemctl daemon-reload")
    env = dict(
        os.environ,
        ANSIBLE_COLLECTIONS_PATH=str(PROJECT / ".collections"),
        ANSIBLE_CONFIG=str(PROJECT / "ansible.cfg"),
    )
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
        assert meta(name, "jwt_signing")["state"] == "dual"
        root(name, f"kill -9 {module_pid}")
    finally:
        output, _unused = run.communicate(timeout=120)
        OUTPUTS.append(output)
    assert run.returncode != 0
    data = meta(name, "jwt_signing")
    assert (data["state"], data["reload_pending"]) == ("dual", ["jwtsvc"])
    assert verify(name, old) == 200, "killed mid-rotation, the consumer still accepts the active key"
    root(name, "rm -r /run/systemd/system/jwtsvc.service.d && systemctl daemon-reload")
    output = play()  # no secret named: the run resumes what is in progress
    assert "jwt_signing: promote version" in output
    data = meta(name, "jwt_signing")
    assert (data["state"], data["reload_pending"]) == ("promoted", [])
    assert verify(name, old) == 200 and verify(name, token(name, key_of(name))) == 200
    assert root(name, "systemctl is-active jwtsvc").strip() == "active"


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

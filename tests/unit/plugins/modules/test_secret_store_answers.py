"""secret_store run as Ansible runs it, against a fake OpenBao/Vault server and damaged stores.

The fake server (FakeVault, also started as a script by tests/adversarial/test_secrets_leaks.py) answers
as a broken or hostile server would: 200 without a version, a plain-text body, an error that echoes the
request body, and with it the value, in JSON, in text or in base64. Every such run fails with a message that
names the secret and what is wrong, carries no value, and is no traceback.

    python test_secret_store_answers.py PORT MODE LOG   serves MODE on 127.0.0.1:PORT, bodies to LOG
"""

import base64
import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
RUNNER = ROOT / "tests/module_runner.py"
TOKEN = "bulwark-fake-token-0123456789"  # noqa: S105  (the fake server's, for these tests only)


class FakeVault(BaseHTTPRequestHandler):
    """KV v2 as a broken server or proxy answers it; `server.mode` picks how, `server.log` keeps bodies."""

    def log_message(self, *_args):
        """Quiet."""

    def answer(self, status, body, kind="application/json"):
        data = (json.dumps(body) if kind == "application/json" else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def stored_meta(self, meta):
        return {"data": {"data": {"meta": meta}, "metadata": {"version": 1}}}

    def do_GET(self):
        mode = self.server.mode
        if self.path.startswith("/v1/auth/token/lookup-self"):
            return self.answer(200, {"data": {"id": "fake"}})
        if ".meta" not in self.path:
            return self.answer(404, {"errors": []})
        version = {"version": 1, "created": "2027-01-15T08:00:00Z", "expires": "2027-04-15T08:00:00Z",
                   "fingerprint": "sha256:0123456789abcdef", "stored_as": 1}  # fmt: skip
        meta = {"name": "db", "type": "password", "consumers": ["app"], "state": "frozen", "latest": 1,
                "current": version, "next": None, "previous": None, "revoke_after": None,
                "rolled_back": False, "reload_pending": []}  # fmt: skip
        answers = {
            "meta-text": (200, "<html>maintenance</html>", "text/html"),
            "meta-no-data": (200, {"warnings": ["hello"]}),
            "meta-not-json": (200, self.stored_meta("{not json")),
            "meta-shape": (200, self.stored_meta("[1, 2]")),
            "meta-state": (200, self.stored_meta(json.dumps(meta))),
        }
        return self.answer(*answers.get(mode, (404, {"errors": []})))

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        with open(self.server.log, "a", encoding="utf-8") as log:
            log.write(body + "\n")
        mode = self.server.mode
        answers = {
            "echo-400": (400, {"errors": [f"invalid request body: {body}"]}),
            "echo-500-text": (500, f"upstream failed for request {body}", "text/plain"),
            "echo-502-base64": (502, base64.b64encode(body.encode()).decode(), "text/plain"),
            "echo-403-cut": (403, {"errors": [f"denied: {body[:60]}"]}),
            "no-version": (200, {"data": {"created_time": "now"}}),
            "version-text": (200, {"data": {"version": "1"}}),
            "plain-text": (200, "OK", "text/plain"),
        }
        return self.answer(*answers.get(mode, (200, {"data": {"version": 1}})))

    do_PUT = do_POST


class Server:
    def __init__(self, mode, log, port=0):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), FakeVault)
        self.httpd.mode, self.httpd.log = mode, str(log)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def bodies(log):
    return Path(log).read_text().splitlines() if Path(log).exists() else []


def drawn_values(log):
    """The values the module sent to the server."""
    found = []
    for body in bodies(log):
        value = json.loads(body).get("data", {}).get("value")
        if value:
            found.append(value)
    return found


if __name__ == "__main__":
    port, mode, log = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    with Server(mode, log, port) as server:
        threading.Event().wait()


# --- the tests ---------------------------------------------------------------------------------------

import pytest  # noqa: E402  (the script above needs none of it)

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import generate  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the store is root-owned: runs as root")


def module_args(tmp_path, **changes):
    args = {
        "secrets": [{"name": "db", "type": "password", "overlap": 0, "consumers": ["app"]}],
        "consumers": {"app": {"directory": str(tmp_path / "app")}},
        "directory": str(tmp_path / "store"),
        "_ansible_tmpdir": str(tmp_path),
    }
    args.update(changes)
    return args


def run_module(tmp_path, args, script=None):
    """(rc, result, stderr) of secret_store run as Ansible runs it (module_runner.py, no fault)."""
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    argv = [sys.executable, str(RUNNER), "secret_store", str(path)]
    if script:
        argv = [sys.executable, "-c", script, str(path)]
    env = {key: value for key, value in os.environ.items() if not key.startswith("BULWARK_")}
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env, cwd=ROOT)
    result = json.loads(done.stdout) if done.stdout.strip() else None
    return done.returncode, result, done.stderr


def assert_clean_failure(rc, result, stderr, *, values=()):
    everything = json.dumps(result) + stderr
    for value in values:
        assert value not in everything
        assert value[:16] not in everything
        assert base64.b64encode(value.encode()).decode()[:16] not in everything
    assert "Traceback" not in everything
    assert rc == 1 and result is not None, stderr
    assert result["failed"] and result["redacted"] is True


def vault_args(tmp_path, url):
    return module_args(tmp_path, backend="vault", vault_url=url, vault_token=TOKEN)


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        (
            "echo-400",
            "db: vault: storing version 1 at secret/bulwark/db failed (HTTP 400, the server refused",
        ),
        ("echo-500-text", "db: vault: storing version 1 at secret/bulwark/db failed (HTTP 500, an internal"),
        ("echo-502-base64", "failed (HTTP 502, a proxy could not reach the server)"),
        ("echo-403-cut", "failed (HTTP 403, the token's policy does not allow it)"),
        (
            "no-version",
            "db: vault: the server's answer to storing version 1 at secret/bulwark/db is not a KV"
            " v2 answer (no version number); is vault_url an OpenBao or Vault server",
        ),
        ("version-text", "is not a KV v2 answer (no version number)"),
        (
            "plain-text",
            "db: vault: the server's answer to storing version 1 at secret/bulwark/db is not a KV"
            " v2 answer (not JSON)",
        ),
    ],
)
def test_a_broken_or_echoing_server_fails_naming_the_secret_and_never_shows_the_value(
    tmp_path, mode, message
):
    log = tmp_path / "bodies.log"
    with Server(mode, log) as server:
        rc, result, stderr = run_module(tmp_path, vault_args(tmp_path, server.url))
    values = drawn_values(log)
    assert values, "the module sent its value to the server"
    assert_clean_failure(rc, result, stderr, values=[*values, TOKEN])
    assert message in result["msg"], result["msg"]
    assert not (tmp_path / "app").exists()  # the consumers got nothing


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        (
            "meta-text",
            "db: vault: the server's answer to reading the metadata at secret/bulwark/db.meta is not"
            " a KV v2 answer (not JSON)",
        ),
        ("meta-no-data", "is not a KV v2 answer (no data)"),
        (
            "meta-not-json",
            "db: vault: secret/bulwark/db.meta holds no metadata in JSON: the store is damaged",
        ),
        ("meta-shape", "db: the stored metadata is a list, not a mapping: the store is damaged"),
        (
            "meta-state",
            "db: the stored metadata has an unknown rotation state 'frozen' (known: stable, staged, dual,"
            " promoted); refusing to guess where the rotation stands: the store is damaged",
        ),
    ],
)
def test_malformed_metadata_on_the_server_fails_naming_the_secret_before_anything(tmp_path, mode, message):
    log = tmp_path / "bodies.log"
    with Server(mode, log) as server:
        rc, result, stderr = run_module(tmp_path, vault_args(tmp_path, server.url))
    assert_clean_failure(rc, result, stderr, values=[TOKEN])
    assert message in result["msg"] and result["msg"].endswith("Nothing was applied"), result["msg"]
    assert bodies(log) == []  # nothing was written


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """A store and a consumer after a first run (copied by each test: one module run for all of them)."""
    root = tmp_path_factory.mktemp("generated")
    rc, result, stderr = run_module(root, module_args(root))
    assert rc == 0, (result, stderr)
    return root


@pytest.fixture
def first_run(generated, tmp_path):
    def copy():
        for part in ("store", "app"):
            shutil.copytree(generated / part, tmp_path / part, symlinks=True)
        return json.loads((tmp_path / "store/db/meta.json").read_text())

    return copy


def consumer_files(tmp_path):
    return {path.name: path.read_bytes() for path in (tmp_path / "app").iterdir()}


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda meta: {**meta, "state": "frozen"},
            "db: the stored metadata has an unknown rotation state"
            " 'frozen' (known: stable, staged, dual, promoted); refusing to guess where the rotation stands",
        ),
        (
            lambda meta: {**meta, "state": "paused", "next": meta["current"]},
            "unknown rotation state 'paused'",
        ),
        (lambda meta: [meta], "db: the stored metadata is a list, not a mapping: the store is damaged"),
        (lambda meta: {**meta, "current": "v1"}, "db: the stored metadata current is a str, not a mapping"),
        (
            lambda meta: {k: v for k, v in meta.items() if k != "latest"},
            "db: the stored metadata has no latest",
        ),
        (lambda meta: {**meta, "state": "dual"}, "db: the stored metadata is in state dual without next"),
        (lambda _meta: "{broken", "db: {store}/db/meta.json is not valid JSON: the store is damaged"),
    ],
)
def test_a_damaged_metadata_file_fails_naming_the_secret_and_changes_nothing(
    tmp_path, first_run, damage, message
):
    meta = first_run()
    damaged = damage(meta)
    (tmp_path / "store/db/meta.json").write_text(damaged if isinstance(damaged, str) else json.dumps(damaged))
    before = consumer_files(tmp_path)
    rc, result, stderr = run_module(tmp_path, module_args(tmp_path, rotate_all=True))
    value = (tmp_path / "store/db/v1").read_text()
    assert_clean_failure(rc, result, stderr, values=[value])
    assert message.format(store=tmp_path / "store") in result["msg"], result["msg"]
    assert result["msg"].endswith("Nothing was applied")
    assert consumer_files(tmp_path) == before and sorted(os.listdir(tmp_path / "store/db")) == [
        "meta.json",
        "v1",
    ]


def test_a_stored_value_that_does_not_match_its_fingerprint_is_refused(tmp_path, first_run):
    first_run()
    swapped = generate.generate({"type": "password", "alphabet": "alphanumeric", "length": 32})
    (tmp_path / "store/db/v1").write_text(swapped)
    rc, result, stderr = run_module(tmp_path, module_args(tmp_path))
    assert_clean_failure(rc, result, stderr, values=[swapped])
    assert result["msg"] == (
        "db: the stored value of version 1 does not match its fingerprint in the metadata: the store is"
        " damaged. Nothing was applied"
    )


def test_a_value_declared_as_a_key_pair_is_refused_not_a_traceback(tmp_path, first_run):
    first_run()
    rc, result, stderr = run_module(
        tmp_path, module_args(tmp_path, secrets=[{"name": "db", "type": "ed25519", "consumers": ["app"]}])
    )
    assert_clean_failure(rc, result, stderr, values=[(tmp_path / "store/db/v1").read_text()])
    assert (
        "db: declared a ed25519, stored as a password: a key pair and a value cannot turn into"
        in result["msg"]
    )


def test_colliding_names_are_refused_on_the_host_too(tmp_path):
    secrets = [
        {"name": "db", "type": "password", "consumers": ["app"]},
        {"name": "db.accept", "type": "password", "consumers": ["app"]},
    ]
    rc, result, stderr = run_module(tmp_path, module_args(tmp_path, secrets=secrets))
    assert_clean_failure(rc, result, stderr)
    assert "'db.accept' and secrets[0].name 'db' both write" in result["msg"]
    assert not (tmp_path / "store").exists() and not (tmp_path / "app").exists()


UNEXPECTED = """
import sys
sys.path.insert(0, ".")
from tests import collection_path
collection_path.install()
from ansible_collections.bulwark.hardening.plugins.modules import secret_store

def broken(module, progress):
    progress["redactor"].add("V" * 40)
    raise KeyError("V" * 40)  # a bug whose text carries a value

secret_store.apply = broken
sys.argv = ["secret_store", sys.argv[1]]
secret_store.main()
"""


def test_a_bug_is_reported_without_a_traceback_and_through_the_redaction(tmp_path):
    rc, result, stderr = run_module(tmp_path, module_args(tmp_path), script=UNEXPECTED)
    assert_clean_failure(rc, result, stderr, values=["V" * 40])
    assert result["msg"] == (
        "secret_store failed unexpectedly (KeyError: '[value redacted]'); please report it."
        " Nothing was applied"
    )

#!/usr/bin/python
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# ruff: noqa: E402  (Ansible wants DOCUMENTATION, EXAMPLES and RETURN before the imports)

DOCUMENTATION = r"""
---
module: secret_store
short_description: Generate, store, distribute and rotate secrets on the host, never printing them
description:
  - Generates passwords, tokens, symmetric keys and RSA or Ed25519 signing key pairs on the host (the OS
    random source and C(cryptography)); the values never travel to the controller, except with backend
    C(ansible_vault), whose store is there.
  - Stores them in one root-only directory (O(directory), C(0700)), one sub-directory per secret holding
    its versions (C(0600)) and a C(meta.json) with version, created, expiry, fingerprint, consumers and
    rotation state, never the value.
  - Distributes them to consumers as files (C(0640) with the consumer's group, C(0600) for C(root)) and
    restarts or reloads only the consumers of a secret whose files changed (C(try-restart) or
    C(try-reload-or-restart), so a stopped service stays stopped).
  - A secret that exists and meets the policy is never regenerated.
  - Rotation is a state machine recorded in C(meta.json) before its effects, so a run killed in the middle
    resumes at the recorded step; each step reloads the consumers before the next one starts.
    stage (new version stored) -> dual-accept (consumers accept old and new; signers keep the old) ->
    promote (signers switch) -> revoke (after the overlap window, only the new one is accepted).
  - For a value C(NAME), each consumer directory gets C(NAME) (the active value) and C(NAME.accept) (the
    accepted values, one a line). For a key pair every consumer gets C(NAME.jwks.json) (the accepted public
    keys, C(kid) = RFC 7638 thumbprint) and C(NAME.pub) (the accepted public keys as a PEM bundle, the
    signing key first, then the others newest first; one key outside a rotation, two in its overlap); only
    the consumers named in the secret's C(signers) also get C(NAME.key), the active private key. A consumer
    that is no longer a signer has its C(NAME.key) removed.
  - An incident (O(rotate_all)) takes every secret to a version drawn by this run and revokes every version
    accepted before it in the same run (a secret in its overlap window has its previous version revoked at
    once, a staged version is replaced by a fresh one, the new version is promoted without an overlap);
    the secrets in O(keep_overlap) are the operator's exception, rotated with their usual overlap.
    RV(revoked) says which versions the run revoked.
  - The module runs to its end on the host even when the controller goes away (a cancelled
    C(ansible-playbook)); every transition is recorded on the host with its time and the run that made it,
    and the next run reports those the controller never received in RV(meanwhile).
    Two secrets whose files would meet in one directory (C(db) and C(db.accept), a key pair C(db) and a
    value C(db.pub)), a consumer directory inside the store and consumers sharing a directory with
    different groups are refused, naming both.
  - No message carries a value. Every text the module returns (errors included) is scrubbed of every value
    it has seen, whole, cut short or encoded (JSON, URL, base64, hex); an OpenBao or Vault error is reported
    by its HTTP status and a reason, never by the server's text, which may echo the request. Stored
    metadata in a shape or state the module does not know, a malformed answer of the server and a value
    that does not match its recorded fingerprint fail naming the secret, before anything changes.
  - A password with C(postgresql) is a database login rotated without a failed query. PostgreSQL keeps one
    password per role, so two login roles, C(ROLE_a) and C(ROLE_b), members of the application role C(ROLE),
    take turns; each version belongs to the one the current version does not use. Dual-accept enables the new
    login beside the old, promote switches the consumers' C(NAME.pgpass) (C(*:PORT:*:LOGIN:PASSWORD), libpq's
    password file, user and password in one file), revoke disables the old login (C(NOLOGIN), no password,
    its sessions ended) once the consumers have reloaded. The module does it with C(psql) as C(postgres) on
    the host, sending SCRAM-SHA-256 verifiers, never the password.
version_added: "0.1.0"
author: bulwark.hardening maintainers (@bulwark-hardening)
requirements:
  - python3-cryptography on the host
  - python3-hvac on the host (backend C(vault))
  - psql and the PostgreSQL server on the host (secrets with C(postgresql))
options:
  secrets:
    description:
      - The declared secrets. Each has C(name), C(type) (C(password), C(token), C(symmetric), C(rsa),
        C(ed25519)), and optionally C(length) (characters, or bytes for C(symmetric); at least 32, 64 for a
        token), C(alphabet) (C(alphanumeric), C(urlsafe), C(hex)), C(bits) (RSA 2048, 3072 (default),
        4096), C(max_age_days) (default 90), C(overlap) (seconds both versions are accepted after a
        promotion, default 86400) and C(consumers) (names from O(consumers)).
      - For a key pair, C(signers) (names from its C(consumers)) are the consumers that sign and get the
        private key; the others verify and get the public keys only (the default).
      - C(postgresql) (a password only) makes it a database login, C(role) (the application role, which must
        exist on the server) and C(port) (default 5432).
    type: list
    elements: dict
    required: true
  consumers:
    description:
      - Consumer name to C(directory) (where its files go), C(group) (default C(root)), C(service) (a
        systemd unit) and C(action) (C(restart), the default with a service, C(reload) or C(none)).
      - A unit or group that does not exist on the host fails the module before anything changes.
      - The directory may belong to the consumer's user, but none of its parents to anyone other than root,
        nor be writable by a group or by everyone. Such a parent could be swapped for a link that sends the
        secret elsewhere, so the module refuses it by name before anything changes.
    type: dict
    default: {}
  directory:
    description: The store, a root-only directory.
    type: path
    default: /etc/bulwark/secrets
  backend:
    description:
      - Where the values are kept. C(files), the store on the host; C(vault), an OpenBao or HashiCorp Vault
        KV v2 mount (one KV version per version of a secret, kept by the server; metadata at C(NAME.meta)).
      - With C(vault) the module talks to the server from the host, where the values are generated and the
        consumers are, so a value never passes through the controller.
      - C(ansible_vault), an ansible-vault encrypted file on the controller, kept by the action plugin of this
        module (O(store_file)); the metadata stays on the host in O(directory), the values are not on the host
        outside the consumers' files.
    type: str
    default: files
    choices: [files, vault, ansible_vault]
  store_file:
    description:
      - Backend C(ansible_vault), the store on the controller (read by the action plugin). It is encrypted
        with the play's vault secret (C(--vault-id) or C(--vault-password-file)); its directory is created.
    type: path
  store_vault_id:
    description: Backend C(ansible_vault), the vault id to encrypt with (the first of the play's by default).
    type: str
  store_values:
    description:
      - Backend C(ansible_vault), set by the action plugin from O(store_file), never by hand; the values of
        the kept versions and the drawn candidate, per secret.
    type: dict
  vault_url:
    description: The server's address, such as C(https://bao.example.org:8200) (backend C(vault)).
    type: str
  vault_token:
    description: A token allowed to read and write O(vault_path) on O(vault_mount) (backend C(vault)).
    type: str
  vault_mount:
    description: The KV v2 mount.
    type: str
    default: secret
  vault_path:
    description: The path under the mount where this host's secrets live.
    type: str
    default: bulwark
  rotate:
    description: Secrets to rotate now, by name, whatever their age.
    type: list
    elements: str
    default: []
  rotate_due:
    description:
      - Rotate every secret that is due (older than its C(max_age_days), or created before
        O(compromised_since)).
      - A secret that no longer meets its policy (a raised length) is rotated by every run.
    type: bool
    default: false
  rotate_all:
    description:
      - An incident. Every declared secret is taken to a new version now and every version accepted before
        is revoked in the same run (no overlap), but for O(keep_overlap).
    type: bool
    default: false
  keep_overlap:
    description:
      - With O(rotate_all), the secrets rotated with their usual overlap window (the old version stays
        accepted until it ends), an explicit exception the run reports in RV(kept_overlap).
    type: list
    elements: str
    default: []
  acknowledge:
    description:
      - RV(acknowledge) of a run whose result the controller has shown (the secrets role's next task passes
        it); the host records that these transitions were reported. Nothing else is done.
    type: dict
  rollback:
    description:
      - Secrets to bring back to their previous version (both accepted for the overlap window). Idempotent
        while it stays set; the next rotation clears it.
      - From C(stable), where the consumers accept the current version only, the previous version goes
        through dual-accept first (every consumer accepts it again and reloads) and is then promoted.
      - The version an incident (O(rotate_all)) revoked is never brought back; asking for it fails naming
        the secret and version.
    type: list
    elements: str
    default: []
  compromised_since:
    description:
      - A date (C(YYYY-MM-DD) or ISO 8601 UTC). Secrets created before it are reported and, with
        O(rotate_due), rotated.
    type: str
  wait_for_revoke:
    description:
      - Seconds this run may wait for an overlap window to end so that it revokes the old version itself
        (0, the default, leaves the revocation to a later run).
    type: int
    default: 0
attributes:
  action:
    support: full
    description: The action plugin keeps the C(ansible_vault) store on the controller; other backends run on
      the host alone.
  check_mode:
    support: full
    description: Reports which secrets would be generated, which rotation steps would run and which consumer
      files would change; nothing is generated or written.
  diff_mode:
    support: full
    description: Shows the metadata before and after; values and consumer file contents are never shown.
  platform:
    support: full
    platforms: debian
    description: Debian 12 and 13 with systemd (the consumers are systemd units).
"""

EXAMPLES = r"""
- name: A JWT signing key and an admin password, rotated when due
  bulwark.hardening.secret_store:
    secrets:
      - {name: jwt_signing, type: rsa, bits: 3072, max_age_days: 60, overlap: 3600, consumers: [api]}
      - {name: admin_password, type: password, length: 40, consumers: [api]}
    consumers:
      api: {directory: /etc/api/secrets, group: api, service: api.service, action: reload}
    rotate_due: true
  no_log: true
"""

RETURN = r"""
secrets:
  description: Metadata of every declared secret after the run (never a value).
  returned: always
  type: dict
  sample: {"jwt_signing": {"state": "promoted", "version": 4, "accepted": [4, 3], "fingerprint": "jwk:..."}}
steps:
  description:
    - What was done (or would be, in check mode), in order, such as C(jwt_signing) promote version 4.
  returned: always
  type: list
  elements: str
versions:
  description: Backend C(ansible_vault), version number to fingerprint of the versions kept, per secret (the
    action plugin keeps those values and removes this key).
  returned: backend ansible_vault
  type: dict
revoked:
  description: Secret name to the version numbers this run revoked (consumers no longer accept them).
  returned: always
  type: dict
  sample: {"jwt_signing": [3, 4]}
kept_overlap:
  description: With O(keep_overlap), secret name to the versions still accepted and until when.
  returned: always
  type: dict
  sample: {"db_password": {"accepted": [5, 4], "until": "2026-12-08T10:00:00Z"}}
meanwhile:
  description:
    - Transitions recorded on the host by other runs whose result no controller received (a cancelled run
      whose module ran on), oldest first; each with C(secret), C(step), C(version), C(at) and C(run).
  returned: always
  type: list
  elements: dict
acknowledge:
  description:
    - Secret name to the last transition this run recorded or reported; given back as O(acknowledge) once the
      result was shown, so that the next run lists only what a run whose result nobody saw did.
  returned: changed, not in check mode
  type: dict
run:
  description: This run's id, as recorded with its transitions on the host.
  returned: always
  type: str
reloaded:
  description: The consumer units restarted or reloaded.
  returned: always
  type: list
  elements: str
report:
  description: The validate report of the secrets as found (missing, too short, too old, readable by others,
    not rotated since the compromise date).
  returned: always
  type: list
  elements: dict
problems:
  description: Secret names by problem kind, from RV(report).
  returned: always
  type: dict
redacted:
  description:
    - Always C(true) in what the module (or its action plugin) returns, since its texts went through the
      redaction. The secrets role prints a failure's message only when it is set.
  returned: always
  type: bool
"""

import json
import os
import time
import uuid

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bulwark.hardening.plugins.module_utils.host import files
from ansible_collections.bulwark.hardening.plugins.module_utils.host.commands import Runner
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import (
    generate,
    policy,
    postgresql,
    redact,
    report,
    rotation,
)


class FilesStore:
    """The files backend: <directory>/<name>/meta.json and v<N> (one file per version, never rewritten)."""

    def __init__(self, params, check_mode):
        self.directory = params["directory"]
        self.check_mode = check_mode

    def check(self):
        if os.path.islink(self.directory):
            raise files.HostError(f"directory: {self.directory} is a symbolic link")

    def prepare(self):
        if not self.check_mode:
            files.private_dir(self.directory, 0o700)

    def _path(self, name, leaf):
        return os.path.join(self.directory, name, leaf)

    def meta(self, name):
        text = files.read(self._path(name, "meta.json"))
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise files.HostError(
                f"{name}: {self._path(name, 'meta.json')} is not valid JSON: the store is damaged"
            ) from None

    def value(self, name, entry):
        path = self._path(name, f"v{entry['version']}")
        value = files.read(path)
        if value is None:
            raise files.HostError(f"{name}: {path} is missing: the store is damaged")
        return value

    def where(self, name, entry):
        path = self._path(name, f"v{entry['version']}")
        return path, files.mode_of(path)

    def draw(self, spec):
        """A new value, generated here on the host."""
        return generate.generate(spec)

    def put_value(self, name, version, value):
        """Stores a new version; returns where the backend keeps it (None: at its version number)."""
        path = self._path(name, f"v{version}")
        files.write(path, value, 0o600, 0, 0, anchor=self.directory, make_dirs=0o700)

    def put_meta(self, meta):
        text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
        path = self._path(meta["name"], "meta.json")
        files.write(path, text, 0o600, 0, 0, anchor=self.directory, make_dirs=0o700)

    def prune(self, name, keep):
        for leaf in os.listdir(os.path.join(self.directory, name)):
            if leaf.startswith("v") and leaf[1:].isdigit() and int(leaf[1:]) not in keep:
                files.remove(self._path(name, leaf))


# What a refusal of the server means, by hvac's exception: its own text is never shown, since a server or a
# proxy may echo the request, and with it the value, in its error.
VAULT_REFUSALS = {
    "InvalidRequest": "HTTP 400, the server refused the request as invalid",
    "Unauthorized": "HTTP 401, the token is not valid",
    "Forbidden": "HTTP 403, the token's policy does not allow it",
    "InvalidPath": "HTTP 404, no such path or mount",
    "PreconditionFailed": "HTTP 412, a check-and-set condition failed",
    "RateLimitExceeded": "HTTP 429, the server limits the rate of requests",
    "InternalServerError": "HTTP 500, an internal error of the server",
    "VaultNotInitialized": "HTTP 501, the server is not initialised",
    "BadGateway": "HTTP 502, a proxy could not reach the server",
    "VaultDown": "HTTP 503, the server is sealed or down",
    "UnsupportedOperation": "the server does not support the operation",
}


class VaultStore:
    """OpenBao / Vault KV v2: <vault_path>/<name> holds the value, one KV version per version of the secret
    (the server keeps them, its audit device records each access); <vault_path>/<name>.meta the metadata.
    Every error names the secret and what is wrong, never what the server said.
    """

    def __init__(self, params, check_mode):
        try:
            import hvac  # noqa: PLC0415  (backend vault only: requests and hvac are slow to import)
            import hvac.exceptions  # noqa: PLC0415
        except ImportError:
            raise policy.SecretSpecError("backend: vault needs python3-hvac on the host") from None
        self.errors = hvac.exceptions
        for option in ("vault_url", "vault_token"):
            if not params[option]:
                raise policy.SecretSpecError(f"{option}: required with backend vault")
        self.client = hvac.Client(url=params["vault_url"], token=params["vault_token"])
        self.kv = self.client.secrets.kv.v2
        self.mount, self.path = params["vault_mount"], params["vault_path"].strip("/")
        self.check_mode = check_mode

    def check(self):
        try:
            authenticated = self.client.is_authenticated()
        except (self.errors.VaultError, OSError) as exc:
            raise files.HostError(f"vault_url: {type(exc).__name__} reaching the server") from None
        if not authenticated:
            raise policy.SecretSpecError("vault_token: the server refuses this token")

    def prepare(self):
        """Nothing to create: the KV v2 mount is the server's."""

    def _failed(self, name, doing, where, exc):
        if isinstance(exc, self.errors.VaultError):
            reason = VAULT_REFUSALS.get(type(exc).__name__, "an unexpected HTTP status")
        else:
            reason = f"{type(exc).__name__} reaching the server"
        return files.HostError(f"{name}: vault: {doing} {self.mount}/{where} failed ({reason})")

    def _malformed(self, name, doing, where, what):
        return files.HostError(
            f"{name}: vault: the server's answer to {doing} {self.mount}/{where} is not a KV v2 answer"
            f" ({what}); is vault_url an OpenBao or Vault server and vault_mount a KV version 2 mount?"
        )

    def _read(self, name, doing, path, version=None):
        """The `data` of a KV v2 read ({"data": {...}, "metadata": {...}}), None when there is none."""
        try:
            answer = self.kv.read_secret_version(path=path, version=version, mount_point=self.mount)
        except self.errors.InvalidPath:
            return None
        except (self.errors.VaultError, OSError, ValueError) as exc:
            raise self._failed(name, doing, path, exc) from None
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("data"), dict):
            what = "no data" if isinstance(answer, dict) else "not JSON"
            raise self._malformed(name, doing, path, what)
        if not isinstance(data.get("metadata"), dict):
            raise self._malformed(name, doing, path, "no metadata")
        return data

    def meta(self, name):
        where = f"{self.path}/{name}.meta"
        data = self._read(name, "reading the metadata at", where)
        if data is None:
            return None
        try:
            return json.loads(data["data"]["meta"])
        except (KeyError, TypeError, ValueError):
            raise files.HostError(
                f"{name}: vault: {self.mount}/{where} holds no metadata in JSON: the store is damaged"
            ) from None

    def value(self, name, entry):
        where = f"{self.path}/{name}"
        version = entry.get("stored_as")
        if isinstance(version, bool) or not isinstance(version, int):
            raise files.HostError(
                f"{name}: the metadata of version {entry['version']} has no KV version (stored_as):"
                " the store is damaged"
            )
        data = self._read(name, f"reading version {entry['version']} at", where, version)
        if data is None or data["metadata"].get("deletion_time") or data["metadata"].get("destroyed"):
            raise files.HostError(
                f"{name}: vault: {self.mount}/{where} version {version} is gone: the store is damaged"
            )
        value = data["data"].get("value")
        if not isinstance(value, str):
            raise files.HostError(
                f"{name}: vault: {self.mount}/{where} version {version} holds no value: the store is damaged"
            )
        return value

    def where(self, name, entry):
        return f"{self.mount}/{self.path}/{name}@{entry['stored_as']}", None

    def draw(self, spec):
        return generate.generate(spec)

    def _write(self, name, doing, path, data):
        """The KV version the server gave what was written."""
        try:
            answer = self.kv.create_or_update_secret(path=path, secret=data, mount_point=self.mount)
        except (self.errors.VaultError, OSError, ValueError) as exc:
            raise self._failed(name, doing, path, exc) from None
        if not isinstance(answer, dict):
            raise self._malformed(name, doing, path, "not JSON")
        version = answer.get("data", {}).get("version") if isinstance(answer.get("data"), dict) else None
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise self._malformed(name, doing, path, "no version number")
        return version

    def put_value(self, name, version, value):
        return self._write(name, f"storing version {version} at", f"{self.path}/{name}", {"value": value})

    def put_meta(self, meta):
        name = meta["name"]
        text = json.dumps(meta, sort_keys=True)
        self._write(name, "writing the metadata at", f"{self.path}/{name}.meta", {"meta": text})

    def prune(self, name, keep):
        """The server keeps the versions (its max_versions decides how many)."""


class ControllerStore(FilesStore):
    """ansible_vault: the values come from the controller's encrypted store (O(store_values), given by the
    action plugin), metadata is kept on the host as with files. A new version takes the controller's drawn
    candidate, which the controller recorded before this run: a killed run resumes with the same value.
    """

    def __init__(self, params, check_mode):
        super().__init__(params, check_mode)
        given = params["store_values"]
        if given is None:
            raise policy.SecretSpecError(
                "backend: ansible_vault runs through the action plugin on the controller"
            )
        self.given = given
        self.kept = {}

    def _known(self, name):
        entry = self.given.get(name) or {}
        found = dict(entry.get("versions") or {})
        if entry.get("candidate"):
            found["candidate"] = entry["candidate"]
        return found.values()

    def value(self, name, entry):
        # By fingerprint, not by number: a candidate taken by a killed run is known by its fingerprint only.
        spec = {"type": self.types[name]}
        for value in self._known(name):
            if generate.fingerprint(spec, value) == entry["fingerprint"]:
                return value
        raise files.HostError(
            f"store_file: {name} version {entry['version']} is not in the controller's store"
        )

    def where(self, name, entry):
        return f"controller:{name}@{entry['version']}", None

    def draw(self, spec):
        candidate = (self.given.get(spec["name"]) or {}).get("candidate")
        if not candidate or not generate.meets(spec, candidate):
            raise files.HostError(f"store_file: no new value drawn for {spec['name']} on the controller")
        return candidate

    def put_value(self, name, version, value):
        """The value stays on the controller (the action plugin stores the versions this run keeps)."""

    def prune(self, name, keep):
        """Nothing on the host: the controller keeps the versions returned as RV(versions)."""


STORES = {"files": FilesStore, "vault": VaultStore, "ansible_vault": ControllerStore}


class Run:
    def __init__(self, module, specs, consumers, redactor=None):
        self.module = module
        # Every value this run sees is given to it, so that no message can carry one.
        self.redactor = redactor or redact.Redactor(supplied_values(module.params))
        self.check = module.check_mode
        self.specs = specs
        self.consumers = consumers
        self.runner = Runner(module)
        self.store = STORES[module.params["backend"]](module.params, self.check)
        self.store.types = {name: spec["type"] for name, spec in specs.items()}
        self.steps, self.reloaded = [], []
        self.revoked, self.kept_overlap = {}, {}
        self.run_id = uuid.uuid4().hex[:12]
        self.changed = False
        self.gids = {}

    # --- checks before any change ----------------------------------------------------------------

    def check_host(self):
        used = {name for spec in self.specs.values() for name in spec["consumers"]}
        for name in sorted(used):
            consumer = self.consumers[name]
            self.gids[name] = files.group_id(consumer["group"])
            if self.gids[name] is None:
                raise policy.SecretSpecError(
                    f"consumers.{name}.group: group {consumer['group']!r} does not exist on the host"
                )
            if consumer["service"]:
                out = self.runner.run(
                    ["systemctl", "show", "--property=LoadState", "--value", consumer["service"]],
                    check=True,
                    what=f"systemctl show {consumer['service']}",
                )[1]
                if out.strip() != "loaded":
                    raise policy.SecretSpecError(
                        f"consumers.{name}.service: {consumer['service']} does not exist on the host"
                    )
            # Its files are written relative to a descriptor on it: none of its parents may be one a
            # non-root user could swap for a link (the directory itself may be the consumer's).
            try:
                files.check_dir(consumer["directory"], owner=files.ANY_USER)
            except files.HostError as exc:
                raise files.HostError(f"consumers.{name}.directory: {exc}") from None
            for path in (consumer["directory"], os.path.dirname(consumer["directory"])):
                if os.path.islink(path):
                    raise files.HostError(f"consumers.{name}.directory: {path} is a symbolic link")
        for index, spec in enumerate(self.specs.values()):
            if "postgresql" in spec:
                try:
                    self.database_state(spec)
                except postgresql.DatabaseError as exc:
                    raise policy.SecretSpecError(f"secrets[{index}].postgresql.role: {exc}") from None
        self.store.check()

    # --- one secret ----------------------------------------------------------------------------------

    def meta(self, name):
        """The stored metadata of a declared secret (None: not generated yet), checked before any use."""
        meta = self.store.meta(name)
        if meta is None:
            return None
        rotation.check_meta(name, meta)
        spec = self.specs[name]
        if generate.is_key_pair(spec) != generate.is_key_pair({"type": meta["type"]}):
            raise policy.SecretSpecError(
                f"{name}: declared a {spec['type']}, stored as a {str(meta['type'])[:16]}: a key pair and a"
                " value cannot turn into each other; declare the new one under another name"
            )
        return meta

    def values(self, name, meta):
        """version -> value of the versions the metadata keeps, each checked against its fingerprint."""
        spec = self.specs[name]
        found = {}
        for entry in rotation.entries(meta):
            value = self.store.value(name, entry)
            self.redactor.add(value)
            try:
                matches = generate.fingerprint(spec, value) == entry["fingerprint"]
            except ValueError:  # a key that does not load
                matches = False
            if not matches:
                raise files.HostError(
                    f"{name}: the stored value of version {entry['version']} does not match its fingerprint"
                    f" in the metadata: the store is damaged"
                )
            found[entry["version"]] = value
        return found

    def record(self, meta):
        if not self.check:
            self.store.put_meta(meta)

    def run(self, metas, request, now):
        """Every secret advances one step a round, then each affected consumer reloads once.

        In lockstep, a consumer of several secrets restarts once per phase (not once per secret and step),
        and dual-accept has reached every consumer before any signer switches.
        """
        values, generated = {}, {name for name, meta in metas.items() if meta is None}
        for name, spec in self.specs.items():
            metas[name], values[name] = self.begin(spec, metas[name], request, now)
        if request["all"]:
            # An incident revokes at once, but never a version a consumer still runs: the reloads a killed run
            # left pending happen first, so every consumer runs what the metadata records.
            if any(meta.get("reload_pending") for name, meta in metas.items() if name not in generated):
                self.deliver(metas, values)
            for name, spec in self.specs.items():
                if name not in generated:
                    keep = name in request["keep_overlap"]
                    metas[name] = self.incident(spec, metas[name], values[name], keep, now)
        while True:
            self.deliver(metas, values)
            stepped = False
            for name, spec in self.specs.items():
                step = rotation.next_step(metas[name], time.time())
                if step:
                    metas[name] = self.step(spec, metas[name], step, time.time())
                    stepped = True
            if stepped:
                continue
            waits = {
                name: meta["revoke_after"] - time.time()
                for name, meta in metas.items()
                if meta["state"] == "promoted"
            }
            waits = {
                name: wait
                for name, wait in waits.items()
                if 0 < wait <= self.module.params["wait_for_revoke"]
            }
            if not waits:
                break
            if self.check:
                for name, wait in sorted(waits.items()):
                    self.steps.append(
                        f"{name}: revoke version {metas[name]['previous']['version']} in {int(wait)} s"
                    )
                break
            time.sleep(min(waits.values()))
        if not self.check:
            for name, meta in metas.items():
                self.store.prune(name, rotation.kept(meta))
        return metas

    def begin(self, spec, meta, request, now):
        """(meta, values) after what a secret needs before the rounds: generation, rollback, staging."""
        name = spec["name"]
        if meta is None:
            version, value = self.new_value(spec, None, 1, now)
            meta = rotation.with_transition(rotation.initial(spec, version), "generate", 1, now, self.run_id)
            self.steps.append(f"{name}: generate version 1")
            self.changed = True
            if not self.check:
                meta["current"]["stored_as"] = self.store.put_value(name, 1, value)
            self.record(meta)
            return meta, {1: value}
        values = self.values(name, meta)
        if name in request["rollback"] and not meta["rolled_back"]:
            refused = rotation.rollback_refused(meta)
            if refused:
                raise policy.SecretSpecError(f"rollback: {name}: {refused}")
            meta = self.step(spec, meta, "rollback", now)
        if request["all"]:
            return meta, values  # run() takes an incident's steps
        reason = rotation.due(
            spec,
            meta,
            now,
            requested=name in request["rotate"],
            meets=generate.meets(spec, values[meta["current"]["version"]]),
            compromised_since=request["compromised_since"] if request["due"] else None,
        )
        # Age and compromise rotate only when asked (rotate_due); a value below a raised policy always does.
        if reason and reason.startswith("older than") and not request["due"]:
            reason = None
        if reason:
            version, value = self.new_value(spec, meta, meta["latest"] + 1, now)
            values[version["version"]] = value
            if not self.check:
                version["stored_as"] = self.store.put_value(name, version["version"], value)
            meta = self.step(spec, meta, "stage", now, new=version, reason=reason)
        return meta, values

    def incident(self, spec, meta, values, keep_overlap, now):
        """An incident's first steps on one secret (rotation.incident_steps); the rounds finish it."""
        for todo in rotation.incident_steps(meta, keep_overlap):
            if todo == "revoke":
                meta = self.step(spec, meta, "revoke", now, reason="incident")
                continue
            version, value = self.new_value(spec, meta, meta["latest"] + 1, now)
            values[version["version"]] = value
            if not self.check:
                version["stored_as"] = self.store.put_value(spec["name"], version["version"], value)
            reason = "forced, overlap kept by keep_overlap" if keep_overlap else "incident"
            meta = self.step(spec, meta, todo, now, new=version, reason=reason, incident=not keep_overlap)
        return meta

    def new_value(self, spec, meta, version, now):
        if self.check:
            entry, value = rotation.version_meta(spec, version, "(not generated in check mode)", now), None
        else:
            value = self.store.draw(spec)
            self.redactor.add(value)
            entry = rotation.version_meta(spec, version, generate.fingerprint(spec, value), now)
        if "postgresql" in spec:
            entry["login"] = postgresql.next_login(spec, meta)
        return entry, value

    def step(self, spec, meta, step, now, *, new=None, reason=None, incident=False):
        back_to = meta["previous"]["version"] if meta["previous"] else None
        replaced = meta["next"]["version"] if meta["next"] else None
        before = meta
        meta = rotation.advance(meta, step, now, spec, new, incident=incident)
        # The version a step is about: the one staged or accepted, the one revoked, else the current one.
        about = {"stage": "next", "restage": "next", "accept": "next", "revoke": "previous"}
        version = meta[about.get(step, "current")]["version"]
        gone = rotation.no_longer_accepted(before, meta)
        if gone:
            self.revoked.setdefault(spec["name"], []).extend(gone)
        if step == "rollback":
            version = back_to
            if meta["state"] == "dual":  # from stable: consumers accept it again before it is promoted
                reason = f"accept versions {rotation.accepted(meta)} first"
        words = {
            "stage": f"stage version {version} ({reason})",
            "accept": f"accept versions {rotation.accepted(meta)}",
            "promote": f"promote version {version}",
            "restage": f"replace staged version {replaced} by version {version} ({reason})",
            "revoke": f"revoke version {version}" + (f" ({reason})" if reason else ""),
            "rollback": f"roll back to version {version}" + (f" ({reason})" if reason else ""),
        }
        self.steps.append(f"{spec['name']}: {words[step]}")
        self.changed = True
        meta = rotation.with_transition(meta, step, version, now, self.run_id)
        self.record(meta)  # the step is recorded before its effects: a killed run resumes here
        return meta

    # --- consumers -----------------------------------------------------------------------------------

    def deliver(self, metas, values):
        """Write what differs to every consumer, reload each affected one once, clear what was pending."""
        pending = set()
        disable = []
        for name, spec in self.specs.items():
            disable += self.database(spec, metas[name], values[name])
            pending |= self.distribute(spec, metas[name], values[name])
        for consumer in sorted(pending):
            self.reload(consumer)
        # An old login goes only once every consumer has reloaded with the new one.
        for spec, sql in disable:
            self.psql(spec, sql)
        for meta in metas.values():
            if meta.get("reload_pending"):
                meta["reload_pending"] = []
                self.record(meta)

    def distribute(self, spec, meta, values):
        """The consumers whose files of this secret were (or would be) rewritten, or are still pending."""
        pending = set(meta.get("reload_pending", []))
        if self.check and any(value is None for value in values.values()):
            return pending  # a value check mode did not generate: its steps are reported already
        contents = rotation.deliverables(spec, meta, values, generate.public_pem, generate.jwks)
        for name in spec["consumers"]:
            consumer = self.consumers[name]
            gid = self.gids[name]
            mode = 0o600 if consumer["group"] == "root" else 0o640
            wanted = set(rotation.consumer_files(spec, name).values())
            for leaf, content in sorted(contents.items()):
                path = os.path.join(consumer["directory"], leaf)
                where = {"anchor": consumer["directory"], "owner": files.ANY_USER}
                found = files.status(path, **where)
                if leaf not in wanted:  # a verifier holds no private key, nor one left from when it signed
                    if found is not None:
                        pending.add(name)
                        self.changed = True
                        self.steps.append(
                            f"{spec['name']}: remove {path} ({name} verifies, it does not sign)"
                        )
                        if not self.check:
                            files.remove(path, **where)
                    continue
                if found == ("file", mode, 0, gid) and files.read(path, **where) == content:
                    continue
                pending.add(name)
                self.changed = True
                if not self.check:
                    self.consumer_dir(consumer, gid)
                    files.write(path, content, mode, 0, gid, **where)
        return pending

    def psql(self, spec, sql):
        """psql as postgres on the host; the SQL (verifiers, never a password) on its input."""
        self.redactor.add(*postgresql.verifiers_in(sql))  # psql may quote a statement in its error
        argv = ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-A", "-t", "-F", postgresql.SEPARATOR]
        argv += ["-v", "ON_ERROR_STOP=1", "-p", str(spec["postgresql"]["port"]), "-d", "postgres"]
        out = self.runner.run(argv, data=sql, check=True, what=f"psql for {spec['name']}")[1]
        self.redactor.add(*postgresql.verifiers_in(out))
        return out

    def database_state(self, spec):
        if self.runner.which("psql") is None:
            raise postgresql.DatabaseError("psql is not installed on the host")
        return postgresql.parse_state(spec, self.psql(spec, postgresql.state_query(spec)))

    def database(self, spec, meta, values):
        """Enables what the state accepts now; returns the disabling to do after the consumers reload."""
        if "postgresql" not in spec or any(value is None for value in values.values()):
            return []
        enable, disable = postgresql.plan(spec, meta, values, self.database_state(spec))
        for _sql, words in enable + disable:
            self.steps.append(f"{spec['name']}: {words}")
            self.changed = True
        if self.check:
            return []
        if enable:
            self.psql(spec, "\n".join(sql for sql, _words in enable) + "\n")
        return [(spec, "\n".join(sql for sql, _words in disable) + "\n")] if disable else []

    def consumer_dir(self, consumer, gid):
        """A missing consumer directory is created root-owned for the group; an existing one is kept."""
        directory = consumer["directory"]
        if not os.path.isdir(directory):
            mode = 0o700 if consumer["group"] == "root" else 0o750
            files.directory(directory, mode, 0, gid, make_dirs=0o755, only_new=True)

    def reload(self, name):
        consumer = self.consumers[name]
        if consumer["action"] == "none":
            return
        unit = consumer["service"]
        verb = "try-restart" if consumer["action"] == "restart" else "try-reload-or-restart"
        self.changed = True
        self.reloaded.append(unit)
        if not self.check:
            self.runner.run(["systemctl", verb, unit], check=True, what=f"systemctl {verb} {unit}")

    # --- report --------------------------------------------------------------------------------------

    def report(self, spec, meta, now, compromised_since):
        if meta is None:
            return report.entry(spec, None, now)
        values = self.values(spec["name"], meta)
        modes = dict(self.store.where(spec["name"], entry) for entry in rotation.entries(meta))
        for name in spec["consumers"]:
            for leaf in rotation.consumer_files(spec, name).values():
                path = os.path.join(self.consumers[name]["directory"], leaf)
                modes[path] = files.mode_of(path)
        meets = generate.meets(spec, values[meta["current"]["version"]])
        return report.entry(spec, meta, now, meets=meets, modes=modes, compromised_since=compromised_since)


def summary(meta):
    return {
        "type": meta["type"],
        "state": meta["state"],
        "version": meta["current"]["version"],
        "accepted": rotation.accepted(meta),
        "created": meta["current"]["created"],
        "expires": meta["current"]["expires"],
        "fingerprint": meta["current"]["fingerprint"],
        "consumers": meta["consumers"],
        "revoke_after": rotation.iso(meta["revoke_after"]) if meta["revoke_after"] else None,
    }


def supplied_values(params):
    """The secret values the module is given (the token, the controller's store): masked like drawn ones."""
    found = [params.get("vault_token")]
    for entry in (params.get("store_values") or {}).values():
        if isinstance(entry, dict):
            found += [*(entry.get("versions") or {}).values(), entry.get("candidate")]
    return [value for value in found if isinstance(value, str)]


EXPECTED = (
    policy.SecretSpecError,
    rotation.StateError,
    files.HostError,
    postgresql.DatabaseError,
)


def apply(module, progress):
    """The module's result, failures included, as a dict (not yet redacted)."""
    params = module.params
    now = time.time()
    try:
        specs, consumers = policy.normalise(
            params["secrets"],
            params["consumers"],
            params["backend"],
            params["rotate"],
            params["rollback"],
            directory=params["directory"],
            keep_overlap=params["keep_overlap"],
            incident=params["rotate_all"],
        )
        if params["acknowledge"] is not None:
            return acknowledge(module, specs)
        compromised = policy.compromise_date(params["compromised_since"])
        run = progress["run"] = Run(module, specs, consumers, progress["redactor"])
        run.check_host()
        metas = {name: run.meta(name) for name in specs}
        # Check mode on a bare host predicts the generation; the role installs the library first.
        if generate.serialization is None and (not module.check_mode or any(metas.values())):
            raise policy.SecretSpecError("python3-cryptography is not installed on the host")
        found = [run.report(spec, metas[name], now, compromised) for name, spec in specs.items()]
    except EXPECTED as exc:
        return {"failed": True, "msg": f"{exc}. Nothing was applied"}
    request = {
        "rotate": set(params["rotate"]),
        "rollback": set(params["rollback"]),
        "all": params["rotate_all"],
        "keep_overlap": set(params["keep_overlap"]),
        "due": params["rotate_due"],
        "compromised_since": compromised,
    }
    try:
        run.store.prepare()
        result = run.run(dict(metas), request, now)
    except EXPECTED as exc:
        return {
            "failed": True,
            "msg": f"{exc}. Steps done before the failure: {run.steps or 'none'}; a re-run resumes from them",
            "changed": run.changed,
            "steps": run.steps,
        }
    before = {name: summary(meta) for name, meta in metas.items() if meta}
    after = {name: summary(meta) for name, meta in result.items()}
    extra = {}
    if not module.check_mode:
        # What the role acknowledges once it has shown this result: until then, the next run reports these
        # transitions as done while nobody was listening (a killed ansible-playbook never shows it).
        extra["acknowledge"] = {
            name: rotation.last_seq(meta)
            for name, meta in result.items()
            if rotation.last_seq(meta) > int(meta.get("reported_seq") or 0)
        }
    if params["backend"] == "ansible_vault":
        extra["versions"] = {
            name: {str(entry["version"]): entry["fingerprint"] for entry in rotation.entries(meta)}
            for name, meta in result.items()
        }
    return {
        **extra,
        "changed": run.changed,
        "secrets": after,
        "steps": run.steps,
        "revoked": {name: sorted(versions) for name, versions in run.revoked.items()},
        "kept_overlap": {
            name: {
                "accepted": rotation.accepted(result[name]),
                "until": rotation.iso(result[name]["revoke_after"]) if result[name]["revoke_after"] else None,
            }
            for name in sorted(request["keep_overlap"])
        },
        "meanwhile": sorted(
            (
                {"secret": name, **item}
                for name, meta in metas.items()
                if meta
                for item in rotation.unreported(meta, run.run_id)
            ),
            key=lambda item: (item["at"], item["secret"], item["seq"]),
        ),
        "run": run.run_id,
        "reloaded": run.reloaded,
        "report": found,
        "problems": report.summary(found),
        "diff": {
            "before": json.dumps(before, indent=2, sort_keys=True) + "\n",
            "after": json.dumps(after, indent=2, sort_keys=True) + "\n",
            "before_header": f"{params['directory']} (metadata; values are never shown)",
            "after_header": f"{params['directory']} (metadata; values are never shown)",
        },
    }


def acknowledge(module, specs):
    """The controller has the result that reported these transitions: the next run need not repeat them."""
    store = STORES[module.params["backend"]](module.params, module.check_mode)
    done = []
    for name, seq in sorted(module.params["acknowledge"].items()):
        if name not in specs or isinstance(seq, bool) or not isinstance(seq, int):
            raise policy.SecretSpecError(f"acknowledge.{name}: not a declared secret and a transition number")
        meta = store.meta(name)
        if meta is None:
            continue
        after = rotation.acknowledge(rotation.check_meta(name, meta), seq)
        if after != meta and not module.check_mode:
            store.put_meta(after)
            done.append(name)
    return {"changed": False, "acknowledged": done}


def unexpected(exc, run):
    """A failure nobody foresaw (a bug): a message without a traceback, which could carry a value."""
    steps = run.steps if run else []
    said = f"{type(exc).__name__}: {exc}"[:300]
    where = (
        f"Steps done before the failure: {steps}; a re-run resumes from them"
        if steps
        else "Nothing was applied"
    )
    return {
        "failed": True,
        "msg": f"secret_store failed unexpectedly ({said}); please report it. {where}",
        "changed": bool(run and run.changed),
        "steps": steps,
    }


def main():
    module = AnsibleModule(
        argument_spec={
            # Definitions (names, types, lengths), not values: the values never pass through options.
            "secrets": {"type": "list", "elements": "dict", "required": True, "no_log": False},
            "consumers": {"type": "dict", "default": {}},
            "directory": {"type": "path", "default": policy.DEFAULT_DIRECTORY},
            "backend": {"type": "str", "default": "files", "choices": list(policy.BACKENDS)},
            # Given by the action plugin (backend ansible_vault): the controller's values for this host.
            "store_values": {"type": "dict", "no_log": True},
            "store_file": {"type": "path"},
            "store_vault_id": {"type": "str"},
            "vault_url": {"type": "str"},
            "vault_token": {"type": "str", "no_log": True},
            "vault_mount": {"type": "str", "default": "secret"},
            "vault_path": {"type": "str", "default": "bulwark"},
            "rotate": {"type": "list", "elements": "str", "default": []},
            "rotate_due": {"type": "bool", "default": False},
            "rotate_all": {"type": "bool", "default": False},
            "keep_overlap": {"type": "list", "elements": "str", "default": []},
            "acknowledge": {"type": "dict"},
            "rollback": {"type": "list", "elements": "str", "default": []},
            "compromised_since": {"type": "str"},
            "wait_for_revoke": {"type": "int", "default": 0},
        },
        supports_check_mode=True,
    )
    progress = {"redactor": redact.Redactor(supplied_values(module.params)), "run": None}
    try:
        result = apply(module, progress)
    except Exception as exc:  # a bug: reported, redacted, instead of a traceback
        result = unexpected(exc, progress["run"])
    # Every text the module returns, messages and errors included, goes through the redaction;
    # `redacted` tells the role its message may be shown.
    result = progress["redactor"].scrub_data(result)
    result["redacted"] = True
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

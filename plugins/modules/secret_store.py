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

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bulwark.hardening.plugins.module_utils.host import executor, files, waits
from ansible_collections.bulwark.hardening.plugins.module_utils.host.commands import Runner
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import (
    generate,
    policy,
    postgresql,
    redact,
    result,
    rotation,
)
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets.backends import open_backend
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets.run import Run

EXPECTED = (
    policy.SecretSpecError,
    rotation.StateError,
    files.HostError,
    postgresql.DatabaseError,
)


def pause(seconds):
    """Waits until an overlap window ends (host/waits, the one bounded wait; nothing to poll meanwhile)."""
    waits.poll(lambda: None, lambda _nothing: False, seconds, interval=seconds)


def start(module, specs, consumers, redactor=None):
    """A Run of this module on the host: its host layer objects and its backend."""
    redactor = redactor or redact.Redactor(result.supplied_values(module.params))
    runner = Runner(module)
    host = {"fs": files, "runner": runner, "executor": executor.Executor(runner, module.check_mode)}
    host["pause"] = pause
    store = open_backend(module.params, files, specs)
    return Run(host, module.params, specs, consumers, store=store, redactor=redactor)


def request_of(params, compromised):
    return {
        "rotate": set(params["rotate"]),
        "rollback": set(params["rollback"]),
        "all": params["rotate_all"],
        "keep_overlap": set(params["keep_overlap"]),
        "due": params["rotate_due"],
        "compromised_since": compromised,
    }


def normalise(params):
    """(secrets by name, consumers), or SecretSpecError naming the option."""
    return policy.normalise(
        params["secrets"],
        params["consumers"],
        params["backend"],
        params["rotate"],
        params["rollback"],
        directory=params["directory"],
        keep_overlap=params["keep_overlap"],
        incident=params["rotate_all"],
    )


def read(module, progress, specs, consumers, now):
    """(run, metadata found, validate report, compromise date): every check before anything changes."""
    compromised = policy.compromise_date(module.params["compromised_since"])
    run = progress["run"] = start(module, specs, consumers, progress["redactor"])
    run.check_host()
    metas = {name: run.meta(name) for name in specs}
    # Check mode on a bare host predicts the generation; the role installs the library first.
    if generate.serialization is None and (not module.check_mode or any(metas.values())):
        raise policy.SecretSpecError("python3-cryptography is not installed on the host")
    found = [run.report(spec, metas[name], now, compromised) for name, spec in specs.items()]
    return run, metas, found, compromised


def apply(module, progress):
    """The module's result, failures included, as a dict (not yet redacted). A failure's `failed` says
    whether it stopped before any change (refused) or after steps a re-run resumes from (stopped)."""
    params = module.params
    now = time.time()
    try:
        specs, consumers = normalise(params)
        if params["acknowledge"] is not None:
            return acknowledge(module, specs)
        run, metas, found, compromised = read(module, progress, specs, consumers, now)
    except EXPECTED as exc:
        return {"failed": "refused", "msg": f"{exc}. Nothing was applied"}
    try:
        run.do(run.store.prepare)
        after = run.run(dict(metas), request_of(params, compromised), now)
    except EXPECTED as exc:
        return {
            "failed": "stopped",
            "msg": f"{exc}. Steps done before the failure: {run.steps or 'none'}; a re-run resumes from them",
            "changed": run.changed,
            "steps": run.steps,
        }
    return result.outcome(params, module.check_mode, run, before=metas, after=after, found=found)


def acknowledge(module, specs):
    """The controller has the result that reported these transitions: the next run need not repeat them."""
    params = module.params
    store = open_backend(params, files, specs)
    done = []
    for name, seq in sorted(params["acknowledge"].items()):
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
        "failed": "stopped" if steps else "refused",
        "msg": f"secret_store failed unexpectedly ({said}); please report it. {where}",
        "changed": bool(run and run.changed),
        "steps": steps,
    }


def failure(kind, outcome):
    """The exception executor.fail reports: nothing applied, or the steps a re-run resumes from."""
    msg = outcome.pop("msg")
    if kind == "stopped":
        return executor.PlanFailed(msg, applied=outcome.get("steps") or [])
    return executor.Refused(msg)


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
    progress = {"redactor": redact.Redactor(result.supplied_values(module.params)), "run": None}
    try:
        outcome = apply(module, progress)
    except Exception as exc:  # a bug: reported, redacted, instead of a traceback
        outcome = unexpected(exc, progress["run"])
    # Every text the module returns, messages and errors included, goes through the redaction;
    # `redacted` tells the role its message may be shown.
    outcome = progress["redactor"].scrub_data(outcome)
    outcome["redacted"] = True
    kind = outcome.pop("failed", None)
    if kind:
        executor.fail(module, failure(kind, outcome), **outcome)
    module.exit_json(**outcome)


if __name__ == "__main__":
    main()

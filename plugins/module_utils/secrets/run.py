"""One run of the secret store: read the store, take every secret through its transitions (transitions.py) in
lockstep, deliver to the consumers, reload them.

The host is reached only through the objects the module gives (host/files as `fs`, the Runner, the
Executor, a bounded `pause`), and every change goes through `do`, the one place where check mode decides:
there nothing is generated, stored, written, run or waited for, and the steps are reported all the same.
Every step is recorded in the metadata before its effects (rotation.py), so a killed run resumes there.
"""

import posixpath
import time
import uuid

from ansible_collections.bulwark.hardening.plugins.module_utils.host.plan import OPERATIONS
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import (
    delivery,
    generate,
    policy,
    postgresql,
    report,
    rotation,
    transitions,
)

NOT_GENERATED = "(not generated in check mode)"


class Run:
    def __init__(self, host, params, specs, consumers, *, store, redactor):
        """host: {fs (host/files), runner, executor, pause(seconds)}; store: a secrets backend."""
        self.fs, self.runner, self.executor = host["fs"], host["runner"], host["executor"]
        self.pause = host["pause"]
        self.check = host["executor"].check_mode
        self.params, self.specs, self.consumers = params, specs, consumers
        self.store = store
        self.redactor = redactor  # every value this run sees is given to it, so no message can carry one
        self.steps, self.reloaded = [], []
        self.revoked = {}
        self.run_id = uuid.uuid4().hex[:12]
        self.changed = False
        self.gids = {}

    def do(self, action, *args):
        """The one place check mode decides: a host operation or a store's change happens only outside it
        (its answer, or None in check mode)."""
        if self.check:
            return None
        if isinstance(action, OPERATIONS):
            return self.executor.perform(action)
        return action(*args)

    # --- checks before any change ----------------------------------------------------------------

    def check_host(self):
        used = {name for spec in self.specs.values() for name in spec["consumers"]}
        for name in sorted(used):
            self.check_consumer(name, self.consumers[name])
        for index, spec in enumerate(self.specs.values()):
            if "postgresql" in spec:
                try:
                    self.database_state(spec)
                except postgresql.DatabaseError as exc:
                    raise policy.SecretSpecError(f"secrets[{index}].postgresql.role: {exc}") from None
        self.store.check()

    def check_consumer(self, name, consumer):
        self.gids[name] = self.fs.group_id(consumer["group"])
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
            self.fs.check_dir(consumer["directory"], owner=self.fs.ANY_USER)
        except self.fs.HostError as exc:
            raise self.fs.HostError(f"consumers.{name}.directory: {exc}") from None
        for path in (consumer["directory"], posixpath.dirname(consumer["directory"])):
            if (self.fs.status(path) or ("",))[0] == "link":
                raise self.fs.HostError(f"consumers.{name}.directory: {path} is a symbolic link")

    # --- the store -------------------------------------------------------------------------------

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
                raise self.fs.HostError(
                    f"{name}: the stored value of version {entry['version']} does not match its fingerprint"
                    f" in the metadata: the store is damaged"
                )
            found[entry["version"]] = value
        return found

    def record(self, meta):
        self.do(self.store.put_meta, meta)

    # --- the transitions -------------------------------------------------------------------------

    def run(self, metas, request, now):
        """Every secret advances one step a round, then each affected consumer reloads once.

        In lockstep, a consumer of several secrets restarts once per phase (not once per secret and step),
        and dual-accept has reached every consumer before any signer switches.
        """
        values, generated = {}, {name for name, meta in metas.items() if meta is None}
        for name, spec in self.specs.items():
            values[name] = {} if metas[name] is None else self.values(name, metas[name])
            current = metas[name] and values[name][metas[name]["current"]["version"]]
            meets = current is None or generate.meets(spec, current)
            metas[name] = self.take_phase(
                "open", spec, metas[name], values[name], request, now=now, meets=meets
            )
        if request["all"]:
            # An incident revokes at once, but never a version a consumer still runs: the reloads a killed run
            # left pending happen first, so every consumer runs what the metadata records.
            if any(meta.get("reload_pending") for name, meta in metas.items() if name not in generated):
                self.deliver(metas, values)
            for name, spec in self.specs.items():
                if name not in generated:
                    metas[name] = self.take_phase(
                        "incident", spec, metas[name], values[name], request, now=now
                    )
        self.rounds(metas, values, request)
        for name, meta in metas.items():
            self.do(self.store.prune, name, rotation.kept(meta))
        return metas

    def rounds(self, metas, values, request):
        """Deliver, then one step of every secret in progress, until none moves; waits for a window to end
        when allowed (wait_for_revoke)."""
        while True:
            self.deliver(metas, values)
            stepped = False
            for name, spec in self.specs.items():
                for step in transitions.steps(metas[name], request, time.time(), spec, phase="round"):
                    metas[name] = self.take(spec, metas[name], step, time.time(), values[name])
                    stepped = True
            if stepped:
                continue
            waits = transitions.revoke_waits(metas, time.time(), self.params["wait_for_revoke"])
            if not waits:
                return
            if self.do(self.wait, min(waits.values())) is None:  # check mode: says what it would revoke
                self.steps += transitions.waiting_words(metas, waits)
                return

    def wait(self, seconds):
        self.pause(seconds)
        return True

    def take_phase(self, phase, spec, meta, values, request, *, now, meets=True):
        for step in transitions.steps(meta, request, now, spec, phase=phase, meets=meets):
            meta = self.take(spec, meta, step, now, values)
        return meta

    def take(self, spec, meta, step, now, values):
        """One transition: a drawing step stores its new version first; the step is recorded before its
        effects."""
        new = None
        if step.draws:
            new, value = self.new_value(spec, meta, meta["latest"] + 1 if meta else 1, now)
            values[new["version"]] = value
            new["stored_as"] = self.do(self.store.put_value, spec["name"], new["version"], value)
        done = transitions.take(meta, step, now, spec, run=self.run_id, new=new)
        self.steps.append(done.words)
        self.changed = True
        if done.revoked:
            self.revoked.setdefault(spec["name"], []).extend(done.revoked)
        self.record(done.meta)  # the step is recorded before its effects: a killed run resumes here
        return done.meta

    def new_value(self, spec, meta, version, now):
        value = self.do(self.store.draw, spec)
        if value is not None:
            self.redactor.add(value)
        fingerprint = NOT_GENERATED if value is None else generate.fingerprint(spec, value)
        entry = rotation.version_meta(spec, version, fingerprint, now)
        if "postgresql" in spec:
            entry["login"] = postgresql.next_login(spec, meta)
        return entry, value

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
            self.do(self.psql, spec, sql)
        for meta in metas.values():
            if meta.get("reload_pending"):
                meta["reload_pending"] = []
                self.record(meta)

    def distribute(self, spec, meta, values):
        """The consumers whose files of this secret were (or would be) rewritten, or are still pending."""
        pending = set(meta.get("reload_pending", []))
        if any(value is None for value in values.values()):
            return pending  # a value check mode did not generate: its steps are reported already
        found = delivery.consumer_files(
            spec, meta, values, consumers=self.consumers, gids=self.gids, fs=self.fs
        )
        for name, op, words in found:
            pending.add(name)
            self.changed = True
            if words:
                self.steps.append(words)
            self.do(op)
        return pending

    def reload(self, name):
        op = delivery.reload(self.consumers[name])
        if op is not None:
            self.changed = True
            self.reloaded.append(op.unit)
            self.do(op)

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
        if enable:
            self.do(self.psql, spec, "\n".join(sql for sql, _words in enable) + "\n")
        return [(spec, "\n".join(sql for sql, _words in disable) + "\n")] if disable else []

    # --- report --------------------------------------------------------------------------------------

    def report(self, spec, meta, now, compromised_since):
        if meta is None:
            return report.entry(spec, None, now)
        values = self.values(spec["name"], meta)
        modes = dict(self.store.where(spec["name"], entry) for entry in rotation.entries(meta))
        for name in spec["consumers"]:
            for leaf in rotation.consumer_files(spec, name).values():
                path = posixpath.join(self.consumers[name]["directory"], leaf)
                modes[path] = self.fs.mode_of(path)
        meets = generate.meets(spec, values[meta["current"]["version"]])
        return report.entry(spec, meta, now, meets=meets, modes=modes, compromised_since=compromised_since)

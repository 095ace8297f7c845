"""What a secret's consumers get: the host operations that bring their files to what the metadata says.

The contents are rotation.deliverables (a pure function of the metadata and the values), so a run killed
at any point writes the same files again. `fs` is host/files, read only here: the operations are returned
for the run to execute.
"""

import posixpath

from ansible_collections.bulwark.hardening.plugins.module_utils.host import plan
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import generate, rotation


def _make_directory(consumer, gid):
    """A missing consumer directory is created root-owned for the group; an existing one is kept."""
    directory = consumer["directory"]
    mode = 0o700 if consumer["group"] == "root" else 0o750
    return plan.Directory(directory, mode, 0, gid, make_dirs=0o755, only_new=True, what=f"make {directory}")


def consumer_files(spec, meta, values, *, consumers, gids, fs):
    """Yields (consumer, operation, words) for the consumers of one secret: what differs is written (0600, or
    0640 for the consumer's group), a file the consumer must not hold is removed (a verifier holds no private
    key, nor one left from when it signed); words only for a removal. Each operation is applied before the
    next is asked for: a consumer sharing a directory with the one before finds what that one was given."""
    contents = rotation.deliverables(spec, meta, values, generate.public_pem, generate.jwks)
    for name in spec["consumers"]:
        consumer, gid = consumers[name], gids[name]
        mode = 0o600 if consumer["group"] == "root" else 0o640
        wanted = set(rotation.consumer_files(spec, name).values())
        where = {"anchor": consumer["directory"], "owner": fs.ANY_USER}
        for leaf, content in sorted(contents.items()):
            path = posixpath.join(consumer["directory"], leaf)
            found = fs.status(path, **where)
            if leaf not in wanted:
                if found is not None:
                    words = f"{spec['name']}: remove {path} ({name} verifies, it does not sign)"
                    yield name, plan.Remove(path, what=f"remove {path}", **where), words
                continue
            if found == ("file", mode, 0, gid) and fs.read(path, **where) == content:
                continue
            if not fs.is_dir(consumer["directory"]):
                yield name, _make_directory(consumer, gid), None
            yield (
                name,
                plan.Write(path, content, mode, 0, gid, what=f"write {path}", secret=True, **where),
                None,
            )


def reload(consumer):
    """The systemctl operation that makes a consumer read its files again (None: its action is none);
    try-*, so that a stopped service stays stopped."""
    if consumer["action"] == "none":
        return None
    verb = "try-restart" if consumer["action"] == "restart" else "try-reload-or-restart"
    return plan.Unit(verb, consumer["service"], what=f"systemctl {verb} {consumer['service']}")

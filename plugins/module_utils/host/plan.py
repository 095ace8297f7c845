"""A plan of host operations: what a concern's pure layer decides, as data, for the executor to run.

Each operation says what it does in the operator's words (`what`, shown by check mode and in every
failure) and carries its inverse where it has one: the operation that puts back what it replaces, built
from the state the pure layer read (`Current`). The executor (host/executor.py) runs the operations in
order and, when one fails, runs the inverses of those already applied, newest first.

Nothing here touches the host: plans are built and unit-tested as data.
"""

import dataclasses


class Refused(ValueError):
    """The pure layer refuses the request (bad input, an unsafe change): nothing was applied. The message
    names what was refused; `fail` adds "Nothing was applied" once."""


@dataclasses.dataclass(frozen=True)
class Current:
    """A file as it is on the host before the plan: its content, mode and owner."""

    content: object  # str or bytes
    mode: int
    uid: int = 0
    gid: int = 0


@dataclasses.dataclass(frozen=True)
class Write:
    """Replace `path` atomically with `content` (str or bytes), this mode and owner (files.write).
    verify: an argv run on the temporary file before the rename, "{}" standing for its path."""

    path: str
    content: object
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    what: str = ""
    inverse: object = None
    anchor: str = None
    make_dirs: int = None
    owner: str = None
    verify: tuple = None
    secret: bool = False  # the content is never shown in a diff


@dataclasses.dataclass(frozen=True)
class Remove:
    """Remove a file (or a link, never its target)."""

    path: str
    what: str = ""
    inverse: object = None
    anchor: str = None
    owner: str = None


@dataclasses.dataclass(frozen=True)
class Attributes:
    """Set the mode and owner of an existing file or directory."""

    path: str
    mode: int
    uid: int = -1
    gid: int = -1
    directory: bool = False
    what: str = ""
    inverse: object = None
    anchor: str = None
    owner: str = None


@dataclasses.dataclass(frozen=True)
class Directory:
    """Make a directory with this mode and owner (the missing ones above it with make_dirs)."""

    path: str
    mode: int = 0o755
    uid: int = 0
    gid: int = 0
    what: str = ""
    inverse: object = None
    make_dirs: int = None
    only_new: bool = False
    private: bool = False  # files.private_dir: root's own (one another user owns is refused), mode tightened


@dataclasses.dataclass(frozen=True)
class Command:
    """Run a command; a non-zero exit fails the plan. data: its standard input; env: variables for this
    command only; inputs: the files it reads (a script for `nft -f`), written as part of this operation."""

    argv: tuple
    what: str = ""
    inverse: object = None
    data: object = None
    env: tuple = ()  # ((name, value), ...)
    inputs: tuple = ()  # ((path, content), ...): files it reads, written root-only (0600) just before
    ok: tuple = (0,)  # the exit codes that mean success (None: any)
    warn: bool = False  # another exit code is a warning (Executor.warnings), not a failure: best effort
    expect: tuple = None  # a check, which changes nothing: (its output, stripped; the words when it differs)


@dataclasses.dataclass(frozen=True)
class Unit:
    """A systemctl verb on one unit (start, stop, restart, reload-or-restart, enable, disable, ...)."""

    verb: str
    unit: str
    what: str = ""
    inverse: object = None

    @property
    def argv(self):
        return ("systemctl", self.verb, self.unit)


@dataclasses.dataclass(frozen=True)
class Call:
    """A host-layer function called with `args`, for what no file or command operation can say ahead (a
    key generated aside and then written, a wait until a listener answers again). It raises HostError
    when it fails."""

    function: object
    args: tuple = ()
    what: str = ""
    inverse: object = None


@dataclasses.dataclass(frozen=True)
class Kernel:
    """Set a value of the running kernel (a /proc/sys entry, files.set_kernel_value)."""

    path: str
    value: str
    what: str = ""
    inverse: object = None


OPERATIONS = (Write, Remove, Attributes, Directory, Command, Unit, Call, Kernel)


def _put_back(path, before, options):
    """The Write that restores `before` (a Current) at `path`, reached as the forward operation reaches it."""
    return Write(
        path, before.content, before.mode, before.uid, before.gid, what=f"put back {path}",
        anchor=options.get("anchor"), owner=options.get("owner"), secret=options.get("secret", False),
    )  # fmt: skip


def replace(path, content, before, *, what, mode=0o644, uid=0, gid=0, **options):
    """Write `content` to `path` whose state is `before` (a Current, or None when there is no file); its
    inverse puts `before` back (or removes the new file)."""
    if before is None:
        inverse = Remove(
            path, what=f"remove {path}", anchor=options.get("anchor"), owner=options.get("owner")
        )
    else:
        inverse = _put_back(path, before, options)
    return Write(path, content, mode, uid, gid, what=what, inverse=inverse, **options)


def delete(path, before, *, what, **options):
    """Remove `path` whose state is `before`; its inverse writes it back."""
    inverse = None
    if before is not None:
        inverse = _put_back(path, before, options)
    return Remove(path, what=what, inverse=inverse, anchor=options.get("anchor"), owner=options.get("owner"))


@dataclasses.dataclass
class Plan:
    """The operations of one concern, in order, and the diff the operator sees for them."""

    ops: list = dataclasses.field(default_factory=list)
    diff: list = dataclasses.field(default_factory=list)  # Ansible diff dicts (before/after/headers)

    def add(self, *ops):
        for op in ops:
            if not isinstance(op, OPERATIONS):
                raise TypeError(f"not a host operation: {op!r}")
            self.ops.append(op)
        return self

    @property
    def changed(self):
        return bool(self.ops)

    def words(self):
        """What the plan does, one line per operation, as check mode reports it."""
        return [op.what for op in self.ops]

"""No IO outside the host layer: the modules and the pure packages of module_utils reach the host only
through plugins/module_utils/host/ (files, accounts, commands, sandbox, waits, ...).

Scanned with `ast`: plugins/modules/*.py and every file of plugins/module_utils/ outside host/. A hit is a
call of open(), an os function that reads or changes the filesystem, processes or the environment, a
filesystem test of os.path, a wait (time.sleep), or an import of a module whose only job is host IO.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"

IO_MODULES = {"subprocess", "tempfile", "socket", "pwd", "grp", "shutil", "fcntl", "glob", "pathlib", "io"}
OS_IO = {
    "open", "fdopen", "read", "write", "close", "fsync", "replace", "rename", "renames", "link", "symlink",
    "readlink", "chmod", "fchmod", "lchmod", "chown", "fchown", "lchown", "unlink", "remove", "rmdir",
    "removedirs", "mkdir", "makedirs", "mkfifo", "mknod", "listdir", "scandir", "walk", "fwalk", "stat",
    "lstat", "fstat", "statvfs", "access", "truncate", "ftruncate", "utime", "chdir", "chroot",
    "getgrouplist", "kill", "killpg", "system", "popen", "fork", "execv", "execve", "execvp", "execvpe",
    "spawnv", "spawnve", "posix_spawn", "putenv", "unsetenv", "setuid", "setgid", "umask",
}  # fmt: skip
OS_PATH_IO = {
    "exists", "lexists", "isdir", "isfile", "islink", "ismount", "realpath", "getsize", "getmtime",
    "getatime", "getctime", "samefile",
}  # fmt: skip
ENVIRON_CHANGES = {"update", "pop", "setdefault", "clear", "popitem", "__setitem__", "__delitem__"}


def _dotted(node):
    """'os.path.exists' for an Attribute chain on a Name; None for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return ".".join(reversed(parts))


class _Scanner(ast.NodeVisitor):
    def __init__(self):
        self.hits = []
        self.aliases = {}  # local name -> module or module.attribute it stands for

    def hit(self, node, what):
        self.hits.append((node.lineno, what))

    def _resolve(self, dotted):
        head, _dot, rest = dotted.partition(".")
        head = self.aliases.get(head, head)
        return f"{head}.{rest}" if rest else head

    def visit_Import(self, node):
        for alias in node.names:
            top = alias.name.split(".")[0]
            if top in IO_MODULES:
                self.hit(node, f"import {alias.name}")
            self.aliases[alias.asname or top] = alias.name if alias.asname else top
        self.generic_visit(node)

    def visit_ImportFrom(self, node):
        module = node.module or ""
        if node.level == 0 and module.split(".")[0] in IO_MODULES:
            self.hit(node, f"from {module} import ...")
        for alias in node.names:
            if node.level == 0 and module in ("os", "os.path", "time"):
                self.aliases[alias.asname or alias.name] = f"{module}.{alias.name}"
        self.generic_visit(node)

    def _io_name(self, name):
        if name in ("open", "io.open", "codecs.open", "builtins.open", "time.sleep", "os.getenv"):
            return name
        module, _dot, function = name.rpartition(".")
        if (module == "os" and function in OS_IO) or (module == "os.path" and function in OS_PATH_IO):
            return name
        if module == "os.environ" and function in ENVIRON_CHANGES:
            return name
        return None

    def visit_Call(self, node):
        dotted = _dotted(node.func)
        if dotted is not None:
            name = self._resolve(dotted)
            if self._io_name(name) and not (name == "open" and "open" in self.aliases):
                self.hit(node, f"{name}()")
        self.generic_visit(node)

    def _environ_target(self, target, node, verb):
        if (
            isinstance(target, ast.Subscript)
            and _dotted(target.value)
            and (self._resolve(_dotted(target.value)) == "os.environ")
        ):
            self.hit(node, f"os.environ[...] {verb}")

    def visit_Assign(self, node):
        for target in node.targets:
            self._environ_target(target, node, "=")
        self.generic_visit(node)

    def visit_AugAssign(self, node):
        self._environ_target(node.target, node, "+=")
        self.generic_visit(node)

    def visit_Delete(self, node):
        for target in node.targets:
            self._environ_target(target, node, "deleted")
        self.generic_visit(node)


def io_hits(source):
    """[(line, what)] of every place the source does IO itself."""
    scanner = _Scanner()
    scanner.visit(ast.parse(source))
    return sorted(scanner.hits)


def scanned_files():
    modules = sorted((PLUGINS / "modules").glob("*.py"))
    utils = sorted(
        path
        for path in (PLUGINS / "module_utils").rglob("*.py")
        if "host" not in path.relative_to(PLUGINS).parts
    )
    return [path.relative_to(ROOT).as_posix() for path in modules + utils]


def _hits_of(relpath):
    return io_hits((ROOT / relpath).read_text(encoding="utf-8"))


def test_the_modules_and_the_pure_layer_reach_the_host_only_through_the_host_layer():
    found = []
    for relpath in scanned_files():
        found += [f"{relpath}:{line}: {what}" for line, what in _hits_of(relpath)]
    listing = "\n".join(found)
    assert not found, f"IO outside plugins/module_utils/host/ (move it into the host layer):\n{listing}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("open('/etc/x')", [(1, "open()")]),
        ("import os\nos.replace('a', 'b')", [(2, "os.replace()")]),
        ("import os as o\no.chmod('a', 0o600)", [(2, "os.chmod()")]),
        ("from os import listdir\nlistdir('/')", [(2, "os.listdir()")]),
        ("import os\nos.path.isdir('/x')", [(2, "os.path.isdir()")]),
        ("import os\nos.environ['A'] = '1'", [(2, "os.environ[...] =")]),
        ("import os\nos.environ.update(A='1')", [(2, "os.environ.update()")]),
        ("import pwd", [(1, "import pwd")]),
        ("import tempfile, socket", [(1, "import socket"), (1, "import tempfile")]),
        ("from shutil import rmtree", [(1, "from shutil import ...")]),
        ("import time\ntime.sleep(1)", [(2, "time.sleep()")]),
        # pure uses of os stay allowed: paths are strings
        ("import os\nos.path.join('a', 'b'); os.path.dirname('/a/b'); os.environ.get('X')", []),
        ("import time\ntime.time()", []),
    ],
)
def test_the_scanner_names_each_kind_of_io_by_line(source, expected):
    assert io_hits(source) == expected

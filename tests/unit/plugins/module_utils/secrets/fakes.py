"""A host for the secret store's backends and run, in memory: host/files' functions over a dict, a
recording Runner and Executor. Every change is logged in order, so a test sees the host's effects."""

import posixpath

from ansible_collections.bulwark.hardening.plugins.module_utils.host import files, plan


class FakeFiles:
    """The part of host/files the secret store uses."""

    HostError = files.HostError
    ANY_USER = files.ANY_USER

    def __init__(self, links=(), groups=None):
        self.files = {}  # path -> [content, mode, uid, gid]
        self.dirs = {"/"}
        self.links = set(links)
        self.groups = groups or {"root": 0, "app": 1000}
        self.log = []

    def status(self, path, **_where):
        if path in self.links:
            return ("link", 0o777, 0, 0)
        if path in self.files:
            return ("file", *self.files[path][1:])
        if path in self.dirs:
            return ("directory", 0o755, 0, 0)
        return None

    def read(self, path, **_where):
        return self.files[path][0] if path in self.files else None

    def mode_of(self, path, **_where):
        return self.files[path][1] if path in self.files else None

    def write(self, path, content, mode=0o600, uid=-1, gid=-1, **_where):
        self.log.append(("write", path))
        self.dirs.add(posixpath.dirname(path))
        self.files[path] = [content, mode, uid, gid]

    def remove(self, path, **_where):
        self.log.append(("remove", path))
        del self.files[path]

    def private_dir(self, path, mode=0o700):
        self.log.append(("private_dir", path))
        self.dirs.add(path)

    def directory(self, path, mode, uid=-1, gid=-1, **_options):
        self.log.append(("directory", path))
        self.dirs.add(path)

    def names(self, directory):
        return sorted(path.rsplit("/", 1)[1] for path in self.files if posixpath.dirname(path) == directory)

    def is_dir(self, path):
        return path in self.dirs

    def group_id(self, name):
        return self.groups.get(name)

    def check_dir(self, path, **_where):
        pass


class FakeRunner:
    def __init__(self, fs, units=("app.service",)):
        self.fs, self.units = fs, units

    def run(self, argv, data=None, check=False, what=None, env=None):
        if argv[:2] == ["systemctl", "show"]:
            return 0, "loaded\n" if argv[-1] in self.units else "not-found\n", ""
        self.fs.log.append(("run", " ".join(argv)))
        return 0, "", ""

    def which(self, name, required=False):
        return None


class FakeExecutor:
    """host/executor's perform, onto the fake files (the real one writes on this machine)."""

    def __init__(self, fs, runner, check_mode):
        self.fs, self.runner, self.check_mode = fs, runner, check_mode

    def perform(self, op):
        if isinstance(op, plan.Write):
            self.fs.write(op.path, op.content, op.mode, op.uid, op.gid)
        elif isinstance(op, plan.Remove):
            self.fs.remove(op.path)
        elif isinstance(op, plan.Directory):
            self.fs.directory(op.path, op.mode, op.uid, op.gid)
        else:
            self.runner.run(list(op.argv), data=getattr(op, "data", None), check=True, what=op.what)


def host(fs, check_mode=False):
    """The host objects secrets/run.Run takes."""
    runner = FakeRunner(fs)
    return {
        "fs": fs,
        "runner": runner,
        "executor": FakeExecutor(fs, runner, check_mode),
        "pause": lambda seconds: fs.log.append(("pause", seconds)),
    }

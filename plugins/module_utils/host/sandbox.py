"""A sandbox: a private, temporary copy of (part of) a configuration tree, to validate a candidate in
with the service's own checker (`sshd -t -f`, `fail2ban-client -c ... -t`, `nft -c -f`) before anything
live changes. Removed, with everything in it, when the `with` block ends.

The directory is made by mkdtemp (mode 0700, a fresh name); what is put in it goes through files.write.
"""

import os
import shutil
import tempfile

from . import files


class Sandbox:
    """with Sandbox("bulwark-sshd-") as box: box.write("sshd_config", text); run(..., box.path(...))"""

    def __init__(self, prefix, parent=None):
        self.prefix, self.parent = prefix, parent
        self.root = None

    def __enter__(self):
        try:
            self.root = tempfile.mkdtemp(prefix=self.prefix, dir=self.parent)
        except OSError as exc:
            raise files.HostError(
                f"cannot make a temporary directory {self.prefix}*: {exc.strerror}"
            ) from None
        return self

    def __exit__(self, *exc_info):
        shutil.rmtree(self.root, ignore_errors=True)
        return False

    def path(self, relpath=""):
        """The absolute path of relpath inside the sandbox."""
        return os.path.join(self.root, relpath) if relpath else self.root

    def write(self, relpath, content, mode=0o600):
        """Write content at relpath (its directories made root-only); returns its absolute path."""
        path = self.path(relpath)
        files.write(path, content, mode, make_dirs=0o700, anchor=self.root)
        return path

    def read(self, relpath, binary=False):
        """What a tool left at relpath (None if nothing), read below the sandbox's own descriptor."""
        return files.read(self.path(relpath), binary, anchor=self.root)

    def copy_tree(self, source, relpath):
        """Copy the directory `source` to relpath (links copied as links, never followed); its path."""
        target = self.path(relpath)
        try:
            shutil.copytree(source, target, symlinks=True)
        except (OSError, shutil.Error) as exc:
            raise files.HostError(f"cannot copy {source} to validate a candidate: {exc}") from None
        return target

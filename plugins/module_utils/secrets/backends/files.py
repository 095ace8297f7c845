"""Backend files: <directory>/<name>/meta.json and v<N> (one file per version, never rewritten), root only."""

import json
import posixpath

from ansible_collections.bulwark.hardening.plugins.module_utils.host.files import HostError
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import generate
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets.backends import Backend


class FilesBackend(Backend):
    def __init__(self, directory, fs):
        self.directory = directory
        self.fs = fs  # host/files

    def check(self):
        if (self.fs.status(self.directory) or ("",))[0] == "link":
            raise HostError(f"directory: {self.directory} is a symbolic link")

    def prepare(self):
        self.fs.private_dir(self.directory, 0o700)

    def _path(self, name, leaf):
        return posixpath.join(self.directory, name, leaf)

    def meta(self, name):
        text = self.fs.read(self._path(name, "meta.json"))
        if text is None:
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise HostError(
                f"{name}: {self._path(name, 'meta.json')} is not valid JSON: the store is damaged"
            ) from None

    def value(self, name, entry):
        path = self._path(name, f"v{entry['version']}")
        value = self.fs.read(path)
        if value is None:
            raise HostError(f"{name}: {path} is missing: the store is damaged")
        return value

    def where(self, name, entry):
        path = self._path(name, f"v{entry['version']}")
        return path, self.fs.mode_of(path)

    def draw(self, spec):
        """A new value, generated here on the host."""
        return generate.generate(spec)

    def put_value(self, name, version, value):
        path = self._path(name, f"v{version}")
        self.fs.write(path, value, 0o600, 0, 0, anchor=self.directory, make_dirs=0o700)

    def put_meta(self, meta):
        text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
        path = self._path(meta["name"], "meta.json")
        self.fs.write(path, text, 0o600, 0, 0, anchor=self.directory, make_dirs=0o700)

    def prune(self, name, keep):
        for leaf in self.fs.names(posixpath.join(self.directory, name)):
            if leaf.startswith("v") and leaf[1:].isdigit() and int(leaf[1:]) not in keep:
                self.fs.remove(self._path(name, leaf))

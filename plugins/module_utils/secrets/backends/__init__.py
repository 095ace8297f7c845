"""Where a secret store keeps its values and metadata: one interface, three backends.

Every backend answers the same questions and takes the same orders (see Backend); the rotation
(secrets/run.py) never asks which one it talks to. A backend that reaches the host takes the host layer's
objects as arguments (`fs`: host/files), so it is tested with fakes.
"""


class Backend:
    """The interface. `meta` and `value` read, `put_value`, `put_meta` and `prune` write (the run calls them
    only outside check mode); every error names the secret and never carries a value."""

    def check(self):
        """Refuses (HostError, SecretSpecError) a store this run cannot use, before anything changes."""

    def prepare(self):
        """Creates what the store needs before its first write."""

    def meta(self, name):
        """The stored metadata of secret `name` (as found, not yet checked), None when there is none."""
        raise NotImplementedError

    def value(self, name, entry):
        """The value of the version `entry` (its metadata) of secret `name`."""
        raise NotImplementedError

    def where(self, name, entry):
        """(where the version is kept, its permission bits or None) for the validate report."""
        raise NotImplementedError

    def draw(self, spec):
        """A new value for `spec`."""
        raise NotImplementedError

    def put_value(self, name, version, value):
        """Stores a new version; returns where the backend keeps it (None: at its version number)."""

    def put_meta(self, meta):
        raise NotImplementedError

    def prune(self, name, keep):
        """Forgets the versions of `name` not in `keep` (the backends that keep them elsewhere do nothing)."""


def open_backend(params, fs, specs):
    """The backend the module's options name for these secrets (by name); `fs` is host/files."""
    # Imported here: the vault backend imports hvac (slow), and only when it is used.
    from . import controller, files, vault  # noqa: PLC0415

    kind = params["backend"]
    if kind == "vault":
        return vault.VaultBackend(params)
    if kind == "ansible_vault":
        return controller.ControllerBackend(params["directory"], fs, params["store_values"], specs)
    return files.FilesBackend(params["directory"], fs)

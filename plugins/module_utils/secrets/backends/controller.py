"""Backend ansible_vault: the values come from the controller's encrypted store (O(store_values), given by the
action plugin), the metadata is kept on the host as with files. A new version takes the controller's drawn
candidate, which the controller recorded before this run: a killed run resumes with the same value.
"""

from ansible_collections.bulwark.hardening.plugins.module_utils.host.files import HostError
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import generate, policy
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets.backends.files import FilesBackend


class ControllerBackend(FilesBackend):
    def __init__(self, directory, fs, given, specs):
        super().__init__(directory, fs)
        if given is None:
            raise policy.SecretSpecError(
                "backend: ansible_vault runs through the action plugin on the controller"
            )
        self.given = given
        self.types = {name: spec["type"] for name, spec in specs.items()}

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
        raise HostError(f"store_file: {name} version {entry['version']} is not in the controller's store")

    def where(self, name, entry):
        return f"controller:{name}@{entry['version']}", None

    def draw(self, spec):
        candidate = (self.given.get(spec["name"]) or {}).get("candidate")
        if not candidate or not generate.meets(spec, candidate):
            raise HostError(f"store_file: no new value drawn for {spec['name']} on the controller")
        return candidate

    def put_value(self, name, version, value):
        """The value stays on the controller (the action plugin stores the versions this run keeps)."""

    def prune(self, name, keep):
        """Nothing on the host: the controller keeps the versions returned as RV(versions)."""

"""Backend vault: OpenBao / Vault KV v2. <vault_path>/<name> holds the value, one KV version per version of
the secret (the server keeps them, its audit device records each access); <vault_path>/<name>.meta holds the
metadata.
Every error names the secret and what is wrong, never what the server said.
"""

import json

from ansible_collections.bulwark.hardening.plugins.module_utils.host.files import HostError
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import generate, policy
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets.backends import Backend

# What a refusal of the server means, by hvac's exception: its own text is never shown, since a server or a
# proxy may echo the request, and with it the value, in its error.
REFUSALS = {
    "InvalidRequest": "HTTP 400, the server refused the request as invalid",
    "Unauthorized": "HTTP 401, the token is not valid",
    "Forbidden": "HTTP 403, the token's policy does not allow it",
    "InvalidPath": "HTTP 404, no such path or mount",
    "PreconditionFailed": "HTTP 412, a check-and-set condition failed",
    "RateLimitExceeded": "HTTP 429, the server limits the rate of requests",
    "InternalServerError": "HTTP 500, an internal error of the server",
    "VaultNotInitialized": "HTTP 501, the server is not initialised",
    "BadGateway": "HTTP 502, a proxy could not reach the server",
    "VaultDown": "HTTP 503, the server is sealed or down",
    "UnsupportedOperation": "the server does not support the operation",
}


def _hvac():
    try:
        import hvac  # noqa: PLC0415  (backend vault only: requests and hvac are slow to import)
        import hvac.exceptions  # noqa: PLC0415
    except ImportError:
        raise policy.SecretSpecError("backend: vault needs python3-hvac on the host") from None
    return hvac


class VaultBackend(Backend):
    def __init__(self, params, hvac=None):
        hvac = hvac or _hvac()
        self.errors = hvac.exceptions
        for option in ("vault_url", "vault_token"):
            if not params[option]:
                raise policy.SecretSpecError(f"{option}: required with backend vault")
        self.client = hvac.Client(url=params["vault_url"], token=params["vault_token"])
        self.kv = self.client.secrets.kv.v2
        self.mount, self.path = params["vault_mount"], params["vault_path"].strip("/")

    def check(self):
        try:
            authenticated = self.client.is_authenticated()
        except (self.errors.VaultError, OSError) as exc:
            raise HostError(f"vault_url: {type(exc).__name__} reaching the server") from None
        if not authenticated:
            raise policy.SecretSpecError("vault_token: the server refuses this token")

    def prepare(self):
        """Nothing to create: the KV v2 mount is the server's."""

    def _failed(self, name, doing, where, exc):
        if isinstance(exc, self.errors.VaultError):
            reason = REFUSALS.get(type(exc).__name__, "an unexpected HTTP status")
        else:
            reason = f"{type(exc).__name__} reaching the server"
        return HostError(f"{name}: vault: {doing} {self.mount}/{where} failed ({reason})")

    def _malformed(self, name, doing, where, what):
        return HostError(
            f"{name}: vault: the server's answer to {doing} {self.mount}/{where} is not a KV v2 answer"
            f" ({what}); is vault_url an OpenBao or Vault server and vault_mount a KV version 2 mount?"
        )

    def _read(self, name, doing, path, version=None):
        """The `data` of a KV v2 read ({"data": {...}, "metadata": {...}}), None when there is none."""
        try:
            answer = self.kv.read_secret_version(path=path, version=version, mount_point=self.mount)
        except self.errors.InvalidPath:
            return None
        except (self.errors.VaultError, OSError, ValueError) as exc:
            raise self._failed(name, doing, path, exc) from None
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("data"), dict):
            what = "no data" if isinstance(answer, dict) else "not JSON"
            raise self._malformed(name, doing, path, what)
        if not isinstance(data.get("metadata"), dict):
            raise self._malformed(name, doing, path, "no metadata")
        return data

    def meta(self, name):
        where = f"{self.path}/{name}.meta"
        data = self._read(name, "reading the metadata at", where)
        if data is None:
            return None
        try:
            return json.loads(data["data"]["meta"])
        except (KeyError, TypeError, ValueError):
            raise HostError(
                f"{name}: vault: {self.mount}/{where} holds no metadata in JSON: the store is damaged"
            ) from None

    def value(self, name, entry):
        where = f"{self.path}/{name}"
        version = entry.get("stored_as")
        if isinstance(version, bool) or not isinstance(version, int):
            raise HostError(
                f"{name}: the metadata of version {entry['version']} has no KV version (stored_as):"
                " the store is damaged"
            )
        data = self._read(name, f"reading version {entry['version']} at", where, version)
        if data is None or data["metadata"].get("deletion_time") or data["metadata"].get("destroyed"):
            raise HostError(
                f"{name}: vault: {self.mount}/{where} version {version} is gone: the store is damaged"
            )
        value = data["data"].get("value")
        if not isinstance(value, str):
            raise HostError(
                f"{name}: vault: {self.mount}/{where} version {version} holds no value: the store is damaged"
            )
        return value

    def where(self, name, entry):
        return f"{self.mount}/{self.path}/{name}@{entry['stored_as']}", None

    def draw(self, spec):
        return generate.generate(spec)

    def _write(self, name, doing, path, data):
        """The KV version the server gave what was written."""
        try:
            answer = self.kv.create_or_update_secret(path=path, secret=data, mount_point=self.mount)
        except (self.errors.VaultError, OSError, ValueError) as exc:
            raise self._failed(name, doing, path, exc) from None
        if not isinstance(answer, dict):
            raise self._malformed(name, doing, path, "not JSON")
        version = answer.get("data", {}).get("version") if isinstance(answer.get("data"), dict) else None
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise self._malformed(name, doing, path, "no version number")
        return version

    def put_value(self, name, version, value):
        return self._write(name, f"storing version {version} at", f"{self.path}/{name}", {"value": value})

    def put_meta(self, meta):
        name = meta["name"]
        text = json.dumps(meta, sort_keys=True)
        self._write(name, "writing the metadata at", f"{self.path}/{name}.meta", {"meta": text})

    def prune(self, name, keep):
        """The server keeps the versions (its max_versions decides how many)."""

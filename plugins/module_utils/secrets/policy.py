"""The secrets policy: what a declared secret and a consumer may be, checked by name (pure).

A secret is one of
- password, token: text of `length` characters drawn from an alphabet;
- symmetric: `length` random bytes (the value is their base64 text);
- rsa (`bits` >= 2048, 3072 by default) or ed25519: a key pair for signing, whose public keys are also
  published as a JWK set. Its consumers verify (they get the public keys only); those also named in
  `signers` sign and get the private key too.
Every error names the option (and index) and is raised before anything is read or written.
"""

import re

from ansible_collections.bulwark.hardening.plugins.module_utils.secrets.rotation import file_names, parse_time
from ansible_collections.bulwark.hardening.plugins.module_utils.text import plain_absolute_path

TYPES = ("password", "token", "symmetric", "rsa", "ed25519")
# ansible_vault: the values in an ansible-vault file on the controller (the action plugin),
# the metadata on the host.
BACKENDS = ("files", "vault", "ansible_vault")
DEFAULT_DIRECTORY = "/etc/bulwark/secrets"
ALPHABETS = {
    "alphanumeric": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    # URL-safe and shell-safe: a value that needs no quoting in a DSN, a header or an env file.
    "urlsafe": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
    "hex": "0123456789abcdef",
}
# The seeds' minimums: 32+ characters for admin secrets, 64+ for JWT HMAC secrets (token).
MIN_LENGTH = {"password": 32, "token": 64, "symmetric": 32}
DEFAULT_ALPHABET = {"password": "alphanumeric", "token": "urlsafe"}
RSA_MIN_BITS = 2048
RSA_DEFAULT_BITS = 3072
RSA_BITS = (2048, 3072, 4096)
DEFAULT_MAX_AGE_DAYS = 90
DEFAULT_OVERLAP = 86400
ACTIONS = ("restart", "reload", "none")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
_GROUP = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_UNIT = re.compile(r"[A-Za-z0-9:_.@-]+\.(service|socket|target|timer|path)")
_SECRET_KEYS = {
    "name",
    "type",
    "length",
    "alphabet",
    "bits",
    "max_age_days",
    "overlap",
    "consumers",
    "signers",
    "postgresql",
}
_POSTGRESQL_KEYS = {"role", "port"}
# The login roles are <role>_a and <role>_b: leave room for the suffix in PostgreSQL's 63 bytes.
_PG_ROLE = re.compile(r"[a-z_][a-z0-9_]{0,60}")
_CONSUMER_KEYS = {"directory", "group", "service", "action"}


class SecretSpecError(Exception):
    """Bad input, naming the option; nothing was applied."""


def _int(value, where, minimum=None):
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise SecretSpecError(f"{where}: {value!r} is not a whole number")
    number = int(value)
    if minimum is not None and number < minimum:
        raise SecretSpecError(f"{where}: {number} is below the minimum of {minimum}")
    return number


def _mapping(spec, keys, where, shape):
    """A mapping with only these keys, or SecretSpecError naming the first unknown one."""
    if not isinstance(spec, dict):
        raise SecretSpecError(f"{where}: a mapping with {shape}")
    unknown = sorted(set(spec) - keys)
    if unknown:
        raise SecretSpecError(f"{where}.{unknown[0]}: unknown option")


def normalise_consumers(consumers):
    """Consumer name -> {directory, group, service, action}, checked."""
    if consumers is None:
        return {}
    if not isinstance(consumers, dict):
        raise SecretSpecError(f"consumers: a mapping of consumer names, not {type(consumers).__name__}")
    result = {}
    for name, spec in consumers.items():
        where = f"consumers.{name}"
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise SecretSpecError(f"consumers: {name!r} is not a valid consumer name")
        _mapping(spec, _CONSUMER_KEYS, where, "directory, group, service, action")
        directory = spec.get("directory")
        if not isinstance(directory, str) or not plain_absolute_path(directory):
            raise SecretSpecError(f"{where}.directory: {directory!r} is not a plain absolute path")
        group = spec.get("group") or "root"
        if not isinstance(group, str) or not _GROUP.fullmatch(group):
            raise SecretSpecError(f"{where}.group: {group!r} is not a group name")
        service = spec.get("service") or None
        if service is not None and (not isinstance(service, str) or not _UNIT.fullmatch(service)):
            raise SecretSpecError(f"{where}.service: {service!r} is not a systemd unit name")
        action = spec.get("action") or ("restart" if service else "none")
        if action not in ACTIONS:
            raise SecretSpecError(f"{where}.action: {action!r} is not one of {', '.join(ACTIONS)}")
        if action != "none" and service is None:
            raise SecretSpecError(f"{where}.action: {action} needs {where}.service")
        result[name] = {"directory": directory, "group": group, "service": service, "action": action}
    return result


def normalise_secret(spec, index, consumers):
    """One declared secret with every default filled in."""
    where = f"secrets[{index}]"
    _mapping(spec, _SECRET_KEYS, where, "at least name and type")
    name = spec.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise SecretSpecError(f"{where}.name: {name!r} is not a valid secret name (letters, digits, _ . -)")
    kind = spec.get("type")
    if kind not in TYPES:
        raise SecretSpecError(f"{where}.type: {kind!r} is not one of {', '.join(TYPES)}")
    result = {"name": name, "type": kind}
    if kind in MIN_LENGTH:
        length = _int(spec.get("length", MIN_LENGTH[kind]), f"{where}.length")
        if length < MIN_LENGTH[kind]:
            raise SecretSpecError(
                f"{where}.length: {length} is below the policy minimum of {MIN_LENGTH[kind]} for a {kind}"
            )
        result["length"] = length
    elif "length" in spec:
        raise SecretSpecError(f"{where}.length: not used by a {kind} key")
    if kind in DEFAULT_ALPHABET:
        alphabet = spec.get("alphabet", DEFAULT_ALPHABET[kind])
        if alphabet not in ALPHABETS:
            raise SecretSpecError(f"{where}.alphabet: {alphabet!r} is not one of {', '.join(ALPHABETS)}")
        result["alphabet"] = alphabet
    elif "alphabet" in spec:
        raise SecretSpecError(f"{where}.alphabet: only passwords and tokens have an alphabet")
    if kind == "rsa":
        bits = _int(spec.get("bits", RSA_DEFAULT_BITS), f"{where}.bits")
        if bits < RSA_MIN_BITS:
            raise SecretSpecError(f"{where}.bits: RSA {bits} is below the minimum of {RSA_MIN_BITS}")
        if bits not in RSA_BITS:
            raise SecretSpecError(f"{where}.bits: {bits} is not one of {', '.join(map(str, RSA_BITS))}")
        result["bits"] = bits
    elif "bits" in spec:
        raise SecretSpecError(f"{where}.bits: only RSA keys have a size")
    result["max_age_days"] = _int(spec.get("max_age_days", DEFAULT_MAX_AGE_DAYS), f"{where}.max_age_days", 1)
    result["overlap"] = _int(spec.get("overlap", DEFAULT_OVERLAP), f"{where}.overlap", 0)
    if "postgresql" in spec:
        result["postgresql"] = normalise_postgresql(spec["postgresql"], kind, f"{where}.postgresql")
    _audience(spec, kind, where, consumers, result)
    return result


def _audience(spec, kind, where, consumers, result):
    """The secret's consumers, and for a key pair its signers, into `result`, checked."""
    names = spec.get("consumers", [])
    if not isinstance(names, list):
        raise SecretSpecError(f"{where}.consumers: a list of consumer names")
    for position, consumer in enumerate(names):
        if consumer not in consumers:
            raise SecretSpecError(
                f"{where}.consumers[{position}]: {consumer!r} is not a declared consumer"
                f" (declared: {', '.join(sorted(consumers)) or 'none'})"
            )
    result["consumers"] = list(dict.fromkeys(names))
    signers = spec.get("signers", [])
    if signers and kind not in ("rsa", "ed25519"):
        raise SecretSpecError(f"{where}.signers: only a key pair has signers (a {kind} has no private key)")
    if not isinstance(signers, list):
        raise SecretSpecError(f"{where}.signers: a list of consumer names")
    for position, consumer in enumerate(signers):
        if consumer not in result["consumers"]:
            raise SecretSpecError(
                f"{where}.signers[{position}]: {consumer!r} is not one of {where}.consumers"
                f" ({', '.join(result['consumers']) or 'none'}); a signer is a consumer that also gets the"
                " private key"
            )
    if kind in ("rsa", "ed25519"):
        result["signers"] = list(dict.fromkeys(signers))


def normalise_postgresql(spec, kind, where):
    """A database password: the application role whose two login roles alternate ({role, port})."""
    if kind != "password":
        raise SecretSpecError(f"{where}: only a password can be a PostgreSQL login")
    _mapping(spec, _POSTGRESQL_KEYS, where, "role (and port)")
    role = spec.get("role")
    if not isinstance(role, str) or not _PG_ROLE.fullmatch(role):
        raise SecretSpecError(f"{where}.role: {role!r} is not a role name (a-z, 0-9, _; at most 61)")
    port = _int(spec.get("port", 5432), f"{where}.port", 1)
    if port > 65535:
        raise SecretSpecError(f"{where}.port: {port} is not a port")
    return {"role": role, "port": port}


def normalise(
    secrets,
    consumers,
    backend="files",
    rotate=None,
    rollback=None,
    *,
    directory=None,
    keep_overlap=None,
    incident=None,
):
    """(secrets by name, consumers) for a module call, or SecretSpecError naming the option.

    directory: the store on the host (backends files and ansible_vault), which no consumer may write into.
    keep_overlap: the secrets an incident (rotate_all) rotates with their overlap (the operator's exception);
    incident: whether this is an incident (None: not known here, the host checks it).
    """
    if backend not in BACKENDS:
        raise SecretSpecError(f"backend: {backend!r} is not one of {', '.join(BACKENDS)}")
    consumers = normalise_consumers(consumers)
    if not isinstance(secrets, list):
        raise SecretSpecError("secrets: a list of secret definitions")
    result, indexes = {}, {}
    for index, spec in enumerate(secrets):
        secret = normalise_secret(spec, index, consumers)
        if secret["name"] in result:
            raise SecretSpecError(f"secrets[{index}].name: {secret['name']!r} is declared twice")
        result[secret["name"]] = secret
        indexes[secret["name"]] = index
    check_files(result, indexes, consumers, directory if backend != "vault" else None)
    for option, names in (
        ("rotate", rotate or []),
        ("rollback", rollback or []),
        ("keep_overlap", keep_overlap or []),
    ):
        if not isinstance(names, list):
            raise SecretSpecError(f"{option}: a list of secret names")
        for position, name in enumerate(names):
            if name not in result:
                raise SecretSpecError(f"{option}[{position}]: {name!r} is not a declared secret")
    if keep_overlap and incident is False:
        raise SecretSpecError("keep_overlap: an exception to an incident rotation, given without rotate_all")
    return result, consumers


def _inside(path, folder):
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def check_files(secrets, indexes, consumers, store=None):
    """Every file a consumer gets has one writer: two secrets whose derived names meet in one directory
    (`db` and `db.accept`, a key pair `db` and a value `db.pub`) would overwrite each other's file on
    every run, reloading the consumers with the wrong content; a consumer file that is another's directory,
    or a consumer directory inside the store, would damage what is there.
    """
    if store:
        for name, consumer in consumers.items():
            if _inside(consumer["directory"], store):
                raise SecretSpecError(
                    f"consumers.{name}.directory: {consumer['directory']} is inside the store ({store})"
                )
    writers = {}  # path -> (secret, consumer) that writes it
    for name, secret in secrets.items():
        for consumer in secret["consumers"]:
            for leaf in file_names(secret).values():
                path = f"{consumers[consumer]['directory']}/{leaf}"
                other, by = writers.setdefault(path, (name, consumer))
                if other != name:
                    raise SecretSpecError(
                        f"secrets[{indexes[name]}].name: {name!r} and secrets[{indexes[other]}].name"
                        f" {other!r} both write {path} (consumers {by} and {consumer}); rename one of them"
                    )
                if consumers[by]["group"] != consumers[consumer]["group"]:
                    raise SecretSpecError(
                        f"consumers.{consumer}.group: consumers {by} and {consumer} share"
                        f" {consumers[consumer]['directory']} with other groups, so {path} would change"
                        " owner on every run; give them one group or their own directories"
                    )
    for path, (secret, by) in writers.items():
        for name, consumer in sorted(consumers.items()):
            if _inside(consumer["directory"], path):
                raise SecretSpecError(
                    f"consumers.{name}.directory: {consumer['directory']} is inside {path}, the file"
                    f" {secret!r} gives consumer {by}"
                )
        if store and _inside(store, path):
            raise SecretSpecError(
                f"secrets[{indexes[secret]}].name: {secret!r} gives consumer {by} the file {path}, which is"
                f" (or holds) the store ({store})"
            )


def compromise_date(text):
    """Epoch seconds of compromised_since (None when empty), or SecretSpecError naming it."""
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        raise SecretSpecError(f"compromised_since: {text!r} is not a date (YYYY-MM-DD)") from None

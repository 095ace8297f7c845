"""The plan of one sshd_config run: from what the host has and what the caller asks, the candidate files,
the controller's connection as `sshd -T -C` needs it, the guard's facts, the diff and the restore steps.

Pure: the module reads the host, hands the texts in, and acts on what comes back.
"""

import ipaddress
import os
import re

from ansible_collections.bulwark.hardening.plugins.module_utils import text as text_checks
from ansible_collections.bulwark.hardening.plugins.module_utils.host import commit_confirm
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd.guard import parse_listener, serves
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd.moduli import filter_moduli
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd.render import (
    RenderError,
    ensure_include_first,
    include_line,
    render,
)

MODULI = "/etc/ssh/moduli"
HOST_KEY = "/etc/ssh/ssh_host_{}_key"
# What `sshd -T -C` is given: a name with a comma or a space would split the specification.
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?")
_UNIT = re.compile(r"[A-Za-z0-9:_.@-]+")


class PlanError(ValueError):
    """Bad input or a plan that cannot be made; the message names the option."""


def check_params(p):
    """Refuse unsound options before anything is read; returns the file mode as an int."""
    if p["rsa_host_key_bits"] and not 2048 <= p["rsa_host_key_bits"] <= 16384:
        raise PlanError("rsa_host_key_bits must be 0 or between 2048 and 16384")
    if p["rsa_host_key_bits"] and "rsa" in p["remove_host_keys"]:
        raise PlanError("rsa_host_key_bits and remove_host_keys: [rsa] contradict each other")
    if p["moduli_min_bits"] and not 1024 <= p["moduli_min_bits"] <= 8192:
        raise PlanError("moduli_min_bits must be 0 or between 1024 and 8192")
    try:
        commit_confirm.check_timeout(p["rollback_timeout"])
    except commit_confirm.TimeoutRefused as exc:
        raise PlanError(str(exc)) from None
    # The drop-in's directory is written into the main config's Include line: a quote or '#' there would
    # change what sshd includes, so only plain paths.
    if not (text_checks.plain_absolute_path(p["path"]) and p["path"].endswith(".conf")):
        raise PlanError(f"path: {p['path']!r} must be a plain absolute path ending in .conf")
    if not text_checks.plain_absolute_path(p["main_config"]):
        raise PlanError(f"main_config: {p['main_config']!r} must be a plain absolute path")
    # The backups are named in the rollback's restore script and written as root.
    if not text_checks.plain_absolute_path(p["backup_dir"]):
        raise PlanError(f"backup_dir: {p['backup_dir']!r} must be a plain absolute path")
    if not _UNIT.fullmatch(p["service"]):
        raise PlanError(f"service: {p['service']!r} is not a systemd unit name")
    if p["connecting_user"] is not None and not _USER.fullmatch(p["connecting_user"]):
        raise PlanError(f"connecting_user: {p['connecting_user']!r} is not a user name")
    for name in ("connecting_from", "local_address"):
        if p[name] is not None:
            try:
                ipaddress.ip_address(p[name])
            except ValueError:
                raise PlanError(f"{name}: {p[name]!r} is not an IP address") from None
    if p["local_port"] is not None and not 1 <= p["local_port"] <= 65535:
        raise PlanError(f"local_port: {p['local_port']} is not a port")
    try:
        mode = int(p["mode"], 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o644 or mode & 0o022:
        raise PlanError(f"mode: {p['mode']!r} is not an octal mode that only root may write (e.g. 0600)")
    return mode


def candidate(options, match, main_before, dropin_path):
    """(drop-in text, main config text) wanted; PlanError names a bad keyword, value or Match block."""
    try:
        dropin = render(options, match)
    except RenderError as exc:
        raise PlanError(str(exc)) from None
    return dropin, ensure_include_first(main_before, include_line(os.path.dirname(dropin_path)))


def connection(p, origin, fallback_user):
    """The controller's connection as the host sees it: options first, then the SSH login the module
    runs under (host.origin.Origin or None). `missing` names the options nothing could fill in."""
    origin_user = origin.user if origin else None
    conn = {
        "user": p["connecting_user"] or origin_user or fallback_user,
        "addr": p["connecting_from"] or (origin.address if origin else None),
        "laddr": p["local_address"] or (origin.local_address if origin else None),
        "lport": p["local_port"] or (origin.local_port if origin else None),
    }
    names = {"addr": "connecting_from", "laddr": "local_address", "lport": "local_port"}
    conn["missing"] = [option for key, option in names.items() if conn[key] is None]
    return conn


def quote_lines(message, path, text):
    """sshd's "<path> line N: ..." messages, with the line it means quoted from the candidate `text`."""
    lines = text.splitlines()

    def quoted(match):
        number = int(match.group(1))
        if 1 <= number <= len(lines):
            return f"{match.group(0)} ({lines[number - 1].strip()!r})"
        return match.group(0)

    return re.sub(re.escape(path) + r" line (\d+)", quoted, message)


def check_spec(conn):
    """`sshd -T -C` for the connection; what is unknown (guard off) is asked for loopback on port 22."""
    addr = conn["addr"] or "127.0.0.1"
    laddr = conn["laddr"] or "127.0.0.1"
    return f"user={conn['user']},host={addr},addr={addr},laddr={laddr},lport={conn['lport'] or 22}"


def account(shadow_text, user):
    """{"has_password", "password_locked"} of a user from /etc/shadow; password_locked None without an entry.

    `!` first is a locked password (`passwd -l`, `usermod -L`, cloud-init's default user); `*` is no
    password, which sshd without PAM does not treat as locked.
    """
    for line in (shadow_text or "").splitlines():
        fields = line.split(":")
        if fields[0] == user and len(fields) > 1:
            hashed = fields[1]
            return {
                "has_password": bool(hashed) and hashed[0] not in "!*",
                "password_locked": hashed.startswith("!"),
            }
    return {"has_password": False, "password_locked": None}


def authorized_keys_paths(patterns, user, home, uid):
    """AuthorizedKeysFile patterns (%h, %u, %U, %%) as absolute paths; relative ones are below home."""
    paths = []
    for pattern in patterns:
        if pattern == "none":
            continue
        path = (
            pattern.replace("%%", "\0")
            .replace("%h", home)
            .replace("%u", user)
            .replace("%U", str(uid))
            .replace("\0", "%")
        )
        paths.append(path if path.startswith("/") else os.path.join(home, path))
    return paths


def key_types(authorized_keys_text):
    """The key types of an authorized_keys file (options before the key are skipped)."""
    found = []
    for line in (authorized_keys_text or "").splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        kind = next((w for w in words if w.startswith(("ssh-", "ecdsa-", "sk-"))), None)
        if kind:
            found.append(kind)
    return found


def host_key_types(host_keys, public_keys, removed, regenerate_rsa):
    """Types of the host keys sshd will have: HostKey paths, minus those removed, with a regenerated RSA key.
    public_keys: path -> the text of its .pub (None when absent)."""
    types = []
    for path in host_keys:
        if path in removed:
            continue
        if path == HOST_KEY.format("rsa") and regenerate_rsa:
            types.append("ssh-rsa")
            continue
        words = (public_keys.get(path) or "").split()
        if words:
            types.append(words[0])
    return types


def facts(conn, entry, groups, shadow, *, authorized, host_keys, client_algorithms):
    """What the guard needs to know about the connecting user and the host."""
    return {
        "user": conn["user"],
        "uid": entry["uid"],
        "groups": groups,
        **shadow,
        "authorized_keys": authorized,
        "addr": conn["addr"],
        "host": conn["addr"],
        "laddr": conn["laddr"],
        "lport": conn["lport"],
        "host_key_types": host_keys,
        "client_algorithms": {k: v for k, v in (client_algorithms or {}).items() if v},
    }


def other_dropins_first(dropins, name, keywords):
    """Warnings for drop-ins read before ours that set our keywords (sshd keeps the first value).
    dropins: [(path, text)] of the directory's *.conf."""
    warnings = []
    wanted = {k.lower() for k in keywords}
    for path, text in sorted(dropins):
        if os.path.basename(path) >= name:
            break
        theirs = {line.split()[0].lower() for line in (text or "").splitlines() if line.split()}
        clash = sorted(wanted & theirs)
        if clash:
            warnings.append(f"{path} is read before {name} and sets {', '.join(clash)}: its values win")
    return warnings


def moduli(text, min_bits):
    """(new text, (before, after) summary for the diff) or (None, None) when nothing changes."""
    if not min_bits or text is None:
        return None, None
    after, removed, kept = filter_moduli(text, min_bits)
    if not removed:
        return None, None
    if kept == 0:
        raise PlanError(f"moduli_min_bits {min_bits} would remove every modulus of {MODULI}")
    return after, (
        f"{removed + kept} moduli\n",
        f"{kept} moduli of at least {min_bits} bits ({removed} removed)\n",
    )


def host_keys_summary(bits_before, bits_after, removed):
    """The host_keys result: files removed, RSA key size before and after."""
    return {"removed": removed, "rsa_bits_before": bits_before, "rsa_bits_after": bits_after}


def _entry(header, before, after):
    return {"before_header": header, "after_header": header, "before": before, "after": after}


def diff(files, moduli_summary, host_keys, wrong_modes, mode):
    """The diff entries: files [(path, before or None, after)], host_keys as returned, wrong_modes
    [(path, mode)] of files whose content stays."""
    entries = [_entry(path, before or "", after) for path, before, after in files if before != after]
    if moduli_summary:
        entries.append(_entry(MODULI, *moduli_summary))
    removed, regenerated = host_keys["removed"], host_keys["rsa_bits_after"] != host_keys["rsa_bits_before"]
    if removed or regenerated:
        before = [f"{f} present\n" for f in removed]
        after = [f"{f} removed\n" for f in removed]
        if regenerated:
            rsa = HOST_KEY.format("rsa")
            before.append(f"{rsa}: RSA {host_keys['rsa_bits_before'] or 'missing'} bits\n")
            after.append(f"{rsa}: RSA {host_keys['rsa_bits_after']} bits (regenerated)\n")
        entries.append(_entry("host keys", "".join(before), "".join(after)))
    if wrong_modes:
        entries.append(
            _entry(
                "permissions",
                "".join(f"{path} {old:04o}\n" for path, old in wrong_modes),
                "".join(f"{path} {mode:04o}\n" for path, _old in wrong_modes),
            )
        )
    return entries


def wait_targets(eff, laddr, lport):
    """Where to wait for sshd after the reload: the controller's own address and port when a listener
    serves it (the confirmation comes there), else every listener (wildcards through loopback)."""
    listeners = []
    for entry in eff.lines("listenaddress"):
        try:
            listeners.append(parse_listener(entry))
        except ValueError:
            continue
    if laddr and lport:
        local = ipaddress.ip_address(laddr)
        if any(serves(item, local, lport) for item in listeners):
            return [(str(local), lport)]
    loopback = {4: "127.0.0.1", 6: "::1"}
    return [(loopback[a.version] if a.is_unspecified else str(a), port) for a, port in listeners]


def restore_steps(main_config, dropin, *, backup_dir, dropin_existed, service, reload):
    """The commit-confirm restore: the previous main config and drop-in back (copied next to the target,
    then renamed over it, so a link put there is replaced rather than written through), or the drop-in
    removed when there was none; then sshd reloaded, if this change reloads it."""
    steps = []
    saved = [(main_config, "sshd_config")] + ([(dropin, "dropin")] if dropin_existed else [])
    for path, name in saved:
        tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.bulwark-restore")
        steps.append((f"copy back {path}", ["cp", "-p", os.path.join(backup_dir, name), tmp]))
        steps.append((f"put back {path}", ["mv", "-f", "-T", tmp, path]))
    if not dropin_existed:
        steps.append((f"remove {dropin}", ["rm", "-f", dropin]))
    if reload:
        steps.append((f"reload {service}", ["systemctl", "try-reload-or-restart", service]))
    return steps

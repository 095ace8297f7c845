"""Lockout guard: would the connecting user still get in under this effective sshd configuration?

Fed the effective configuration for the controller's real connection
(`sshd -T -C user=...,host=...,addr=...,laddr=...,lport=...`, Match blocks evaluated, LocalAddress and
LocalPort included) and facts the module gathers in the same round trip. Returns the reasons to refuse
(each names the setting); an empty list means the configuration is safe to apply. What cannot be
evaluated (the local address unknown, a listener that does not parse) is a reason to refuse too.
"""

import fnmatch
import ipaddress
import posixpath

# Public key type -> the signature algorithms a client can use with it.
_KEY_ALGORITHMS = {
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"),
    "ssh-ed25519": ("ssh-ed25519",),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
    "sk-ssh-ed25519@openssh.com": ("sk-ssh-ed25519@openssh.com",),
    "sk-ecdsa-sha2-nistp256@openssh.com": ("sk-ecdsa-sha2-nistp256@openssh.com",),
    "ssh-dss": ("ssh-dss",),
}
_AEAD = ("chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


def key_algorithms(key_type):
    """Signature algorithms usable with a key of this type (certificates map to their -cert names)."""
    if key_type.endswith("-cert-v01@openssh.com"):
        base = key_type.replace("-cert-v01@openssh.com", "")
        base = "ssh-rsa" if base == "ssh-rsa" else base
        return tuple(a + "-cert-v01@openssh.com" for a in _KEY_ALGORITHMS.get(base, (base,)))
    return _KEY_ALGORITHMS.get(key_type, (key_type,))


def _pattern(name, pattern):
    """OpenSSH match_pattern: `*` and `?` wildcards, case-sensitive."""
    return fnmatch.fnmatchcase(name, pattern)


def _host_matches(pattern, host, addr, unknown):
    if host is None and addr is None:
        return unknown  # origin unknown: the caller decides which way is safe
    if "/" in pattern and addr:
        try:
            return ipaddress.ip_address(addr) in ipaddress.ip_network(pattern, strict=False)
        except ValueError:
            return False
    return any(v is not None and _pattern(v, pattern) for v in (host, addr))


def user_matches(pattern, user, host, addr, unknown=False):
    """One AllowUsers/DenyUsers entry: USER or USER@HOST (HOST: wildcard, address or CIDR).

    With the origin unknown a host part matches as `unknown` says: False for AllowUsers, True for
    DenyUsers, so a blind guard refuses rather than lets a lockout through.
    """
    if "@" in pattern:
        upat, _unused, hpat = pattern.partition("@")
        return _pattern(user, upat) and _host_matches(hpat, host, addr, unknown)
    return _pattern(user, pattern)


def _access(eff, facts):
    user, host, addr = facts["user"], facts.get("host"), facts.get("addr")
    groups = facts.get("groups") or []
    problems = []
    blind = host is None and addr is None
    hint = " (connecting_from unknown: pass it to evaluate user@host patterns)" if blind else ""
    deny = [p for p in eff.words("denyusers") if user_matches(p, user, host, addr, unknown=True)]
    if deny:
        why = hint if any("@" in p for p in deny) else ""
        problems.append(f"DenyUsers {' '.join(deny)} matches the connecting user {user}{why}")
    allow = eff.words("allowusers")
    if allow and not any(user_matches(p, user, host, addr) for p in allow):
        problems.append(f"AllowUsers {' '.join(allow)} does not admit the connecting user {user}{hint}")
    deny_groups = [p for p in eff.words("denygroups") if any(_pattern(g, p) for g in groups)]
    if deny_groups:
        problems.append(f"DenyGroups {' '.join(deny_groups)} matches a group of {user} ({', '.join(groups)})")
    allow_groups = eff.words("allowgroups")
    if allow_groups and not any(_pattern(g, p) for p in allow_groups for g in groups):
        problems.append(
            f"AllowGroups {' '.join(allow_groups)} names no group of the connecting user {user}"
            f" (member of: {', '.join(groups) or 'none'})"
        )
    return problems


def _methods(eff, facts):
    """Authentication methods the connecting user can complete, and why the others cannot."""
    usable, reasons = set(), []
    keys = facts.get("authorized_keys") or []
    key_command = eff.get("authorizedkeyscommand", "none") != "none"
    if not eff.flag("pubkeyauthentication"):
        reasons.append("PubkeyAuthentication no")
    elif key_command:
        usable.add("publickey")  # keys come from a command we cannot see: trust it
    elif not keys:
        files = eff.get("authorizedkeysfile", "none")
        reasons.append(f"{facts['user']} has no authorized key (AuthorizedKeysFile {files})")
    else:
        accepted = set(eff.csv("pubkeyacceptedalgorithms"))
        if accepted and not any(set(key_algorithms(k)) & accepted for k in keys):
            types = ", ".join(sorted(set(keys)))
            reasons.append(f"PubkeyAcceptedAlgorithms accepts none of {facts['user']}'s key types ({types})")
        else:
            usable.add("publickey")
    has_password = facts.get("has_password", False)
    if eff.flag("passwordauthentication") and has_password:
        usable.add("password")
    if eff.flag("kbdinteractiveauthentication") and has_password and eff.flag("usepam"):
        usable.update({"keyboard-interactive", "keyboard-interactive:pam"})
    if not has_password and (eff.flag("passwordauthentication") or eff.flag("kbdinteractiveauthentication")):
        reasons.append(f"{facts['user']} has no usable password")
    if not eff.flag("passwordauthentication"):
        reasons.append("PasswordAuthentication no")
    if not eff.flag("kbdinteractiveauthentication"):
        reasons.append("KbdInteractiveAuthentication no")
    return usable, reasons


def _authentication(eff, facts):
    usable, reasons = _methods(eff, facts)
    if not usable:
        return [f"no way to log in for {facts['user']}: " + "; ".join(reasons)]
    methods = eff.get("authenticationmethods", "any")
    if methods != "any":
        chains = methods.split()
        if not any(all(m in usable for m in chain.split(",")) for chain in chains):
            return [
                f"AuthenticationMethods {methods} cannot be satisfied by {facts['user']}"
                f" (usable: {', '.join(sorted(usable))})"
            ]
    return []


def _root(eff, facts):
    if facts.get("uid") != 0:
        return []
    value = eff.get("permitrootlogin", "prohibit-password")
    if value == "no":
        return [f"PermitRootLogin no while connected as root ({facts['user']})"]
    if value == "forced-commands-only":
        return ["PermitRootLogin forced-commands-only while connected as root: Ansible cannot run"]
    return []


def _session(eff, facts):
    problems = []
    force = eff.get("forcecommand", "none")
    if force != "none":
        problems.append(f"ForceCommand {force} applies to {facts['user']}: Ansible could not run commands")
    if eff.flag("refuseconnection"):
        problems.append(f"RefuseConnection yes applies to {facts['user']}")
    return problems


def _algorithms(eff, facts):
    problems = []
    client = facts.get("client_algorithms") or {}
    host_keys = facts.get("host_key_types")
    server_hka = eff.csv("hostkeyalgorithms")
    if host_keys is not None:
        offered = [a for a in server_hka if any(a in key_algorithms(t) for t in host_keys)]
        if not offered:
            problems.append(
                f"HostKeyAlgorithms {','.join(server_hka)} matches none of the host keys"
                f" ({', '.join(host_keys) or 'none'})"
            )
    else:
        offered = server_hka
    checks = [
        ("kex", "KexAlgorithms", eff.csv("kexalgorithms")),
        ("ciphers", "Ciphers", eff.csv("ciphers")),
        ("host_key_algorithms", "HostKeyAlgorithms", offered),
    ]
    ciphers_common = set(eff.csv("ciphers")) & set(client.get("ciphers") or eff.csv("ciphers"))
    if ciphers_common - set(_AEAD):
        # The MAC matters only if a non-AEAD cipher may be chosen (none in common: Ciphers is refused).
        checks.append(("macs", "MACs", eff.csv("macs")))
    for key, keyword, server in checks:
        theirs = client.get(key)
        if theirs and server and not set(server) & set(theirs):
            problems.append(
                f"{keyword} {','.join(server)} shares nothing with the controller's client"
                f" ({','.join(theirs)})"
            )
    return problems


def _address(text):
    addr = ipaddress.ip_address(text.strip("[]").split("%")[0])
    return addr.ipv4_mapped if addr.version == 6 and addr.ipv4_mapped else addr


def parse_listener(entry):
    """`sshd -T`'s listenaddress value (`0.0.0.0:22`, `[::]:22`, `10.0.0.5:22 rdomain x`) -> (ip, port).
    ValueError when it does not parse."""
    host, sep, port = entry.split()[0].rpartition(":")
    if not sep:
        raise ValueError(entry)
    return _address(host), int(port)


def serves(listener, laddr, lport):
    """Whether a listener (ip, port) accepts connections to laddr:lport. sshd sets IPV6_V6ONLY on its
    IPv6 sockets, so `::` serves IPv6 only and `0.0.0.0` IPv4 only."""
    addr, port = listener
    if port != lport:
        return False
    if addr.is_unspecified:
        return addr.version == laddr.version
    return addr == laddr


def _listening(eff, facts):
    """Does sshd still listen where the controller is connected (its local address and port)?"""
    laddr, lport = facts.get("laddr"), facts.get("lport")
    missing = [name for name, value in (("local_address", laddr), ("local_port", lport)) if value is None]
    if missing:
        return [
            f"{' and '.join(missing)} of the controller's connection unknown: cannot tell whether Port, "
            "ListenAddress and Match LocalAddress/LocalPort still admit it"
        ]
    try:
        local = _address(str(laddr))
    except ValueError:
        return [f"local_address {laddr!r} is not an IP address: cannot evaluate ListenAddress"]
    listeners, problems = [], []
    for entry in eff.lines("listenaddress"):
        try:
            listeners.append(parse_listener(entry))
        except ValueError:
            problems.append(f"ListenAddress {entry} cannot be evaluated against the controller's connection")
    if problems or any(serves(item, local, lport) for item in listeners):
        return problems
    ports = eff.lines("port")
    here = f"{local}:{lport}" if local.version == 4 else f"[{local}]:{lport}"
    if str(lport) not in ports:
        return [
            f"Port {' '.join(ports) or 'none'} no longer includes the port the controller uses ({lport}): "
            "to move the port, serve both, confirm over the new one, then drop the old"
        ]
    listening = " ".join(eff.lines("listenaddress")) or "none"
    return [f"ListenAddress {listening} does not cover the controller's local address and port ({here})"]


def _pam(eff, facts):
    """Without PAM, sshd itself refuses an account whose password is locked (`!` in shadow), even for a
    key login; cloud images create their default user that way."""
    if eff.flag("usepam"):
        return []
    user, locked = facts["user"], facts.get("password_locked")
    if locked:
        return [
            f"UsePAM no while {user}'s password is locked ('!' in /etc/shadow): without PAM sshd refuses"
            " a locked account even with a key"
        ]
    if locked is None:
        return [f"UsePAM no, and whether {user}'s password is locked is unknown (no entry in /etc/shadow)"]
    return []


def strict_modes_paths(real_path, real_home):
    """The paths sshd's safe_path() (misc.c) checks for a keys file, in its order: the file itself, then each
    directory above it, up to and including the home when the file lies below it, else up to /.

    Both are canonical paths (realpath); real_home is None when the home has none (sshd then walks to /).
    """
    paths, current = [real_path], real_path
    while True:
        current = posixpath.dirname(current)
        paths.append(current)
        if current == real_home or current in ("/", "."):
            return paths


def _insecure(entry, user, uid):
    """(why, the fix) when sshd finds one path unsafe for the user (name, uid), else None.

    Debian's secure_permissions() (misc.c with user-group-modes.patch): owned by root or the user, not
    world-writable, and group-writable only when the group is the user's alone.
    """
    mode, owner = entry["mode"], entry["uid"]
    if owner not in (0, uid):
        return (
            f"is owned by {entry.get('owner') or 'uid ' + str(owner)}, neither {user} nor root",
            f"chown {user}",
        )
    if mode & 0o002:
        return f"is world-writable (mode {mode:04o})", "chmod o-w"
    if not mode & 0o020:
        return None
    group = entry.get("group")
    if group is None:
        return f"is group-writable (mode {mode:04o}) and its group {entry['gid']} does not exist", "chmod g-w"
    # The group must have exactly one member: accounts whose primary group it is must all be the user,
    # and its member list (gr_mem) may only name the path's owner.
    alone = all(member == uid for member in group["primary"]) and entry.get("owner") is not None
    members = len(group["primary"])
    if group["members"]:
        members += 1
        alone = alone and group["members"] == [entry.get("owner")]
    if alone and members:
        return None
    return f"is group-writable (mode {mode:04o}) by group {group['name']}, not {user}'s alone", "chmod g-w"


def strict_modes_problem(key_file, user, uid):
    """What sshd's StrictModes check says of one keys file (facts: canonical path, status of each path
    strict_modes_paths() names), or None when it passes. sshd stops at the first problem; so does this."""
    if key_file.get("real") is None:
        return f"{key_file['path']} has no canonical path (realpath fails)"
    for index, entry in enumerate(key_file["chain"]):
        if entry.get("kind") is None:
            return f"{entry['path']} cannot be read"
        if index == 0 and entry["kind"] != "file":
            return f"{entry['path']} is not a regular file"
        insecure = _insecure(entry, user, uid)
        if insecure:
            why, fix = insecure
            return f"{entry['path']} {why} ({fix} {entry['path']})"
    return None


def _strict_modes(eff, facts):
    """With StrictModes yes sshd ignores a keys file when it, or a directory above it up to the home, is
    writable by others or owned by someone else: the user's keys there stop working at the next login."""
    if not eff.flag("strictmodes") or not eff.flag("pubkeyauthentication"):
        return []
    user, problems = facts["user"], []
    for key_file in facts.get("key_files") or []:
        problem = strict_modes_problem(key_file, user, facts["uid"])
        if problem:
            problems.append(
                f"StrictModes yes: {problem}: sshd would refuse {user}'s keys in {key_file['path']}"
            )
    return problems


def check(eff, facts):
    """Reasons this configuration would lock the connecting user out (empty: safe)."""
    return (
        _listening(eff, facts)
        + _access(eff, facts)
        + _root(eff, facts)
        + _pam(eff, facts)
        + _authentication(eff, facts)
        + _strict_modes(eff, facts)
        + _session(eff, facts)
        + _algorithms(eff, facts)
    )

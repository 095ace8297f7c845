"""The audit's findings: each control judged on what the host reads as it is (pure, no host access).

The module gathers `facts` in one call (see plugins/modules/security_audit.py for their shape); every
check here turns part of them into findings. A finding passes, fails, or is skipped when the control
does not apply (no Docker, no overlay). What cannot be evaluated fails, naming what was missing:
unknown is not a pass. Remediation names the variable or playbook of this collection that fixes it.
"""

from ansible_collections.bulwark.hardening.plugins.module_utils.accounts import authorized_keys
from ansible_collections.bulwark.hardening.plugins.module_utils.audit import parse
from ansible_collections.bulwark.hardening.plugins.module_utils.fail2ban import state as fail2ban_state
from ansible_collections.bulwark.hardening.plugins.module_utils.firewall import hooks
from ansible_collections.bulwark.hardening.plugins.module_utils.secrets import rotation
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd import effective

CATEGORIES = ("authentication", "network", "data protection", "infrastructure")
SEVERITIES = ("critical", "high", "medium", "low")
PASS, FAIL, SKIP = "pass", "fail", "skip"

# Where nobody should be: the probes of the firewall checks come from documentation addresses
# (RFC 5737, RFC 3849), a source that is in no admin network.
OUTSIDE = {4: "198.51.100.7", 6: "2001:db8::7"}
PROBE_PORT = 9  # discard: a port a default-deny firewall drops when nothing admits it

HARDEN = "playbooks/harden.yml"


# id: (category, severity, title, remediation: the variable or playbook that fixes it)
CATALOG = {
    "ssh_effective_config": ("authentication", "critical", "sshd's effective configuration can be read",
                             f"make `sshd -T` succeed, then run {HARDEN} (role sshd)"),
    "ssh_password_login": ("authentication", "critical", "SSH refuses passwords",
                           "sshd_password_authentication: false, sshd_kbd_interactive_authentication: false"),
    "ssh_root_login": ("authentication", "high", "root cannot log in over SSH",
                       "sshd_permit_root_login: false"),
    "ssh_access_list": ("authentication", "medium", "SSH admits only listed groups or users",
                        "sshd_allow_groups (default: bulwark_admin_group)"),
    "ssh_max_auth_tries": ("authentication", "low", "few authentication attempts per connection",
                           "sshd_max_auth_tries"),
    "ssh_forwarding": ("authentication", "low", "no X11, TCP, agent forwarding or tunnels",
                       "sshd_x11_forwarding, sshd_tcp_forwarding, sshd_agent_forwarding, sshd_permit_tunnel"),
    "ssh_algorithms": ("authentication", "medium", "no weak SSH algorithms",
                       "the sshd role's defaults (sshd_kex_algorithms, sshd_ciphers, sshd_macs, "
                       "sshd_host_key_algorithms empty: the release's hardened set)"),
    "fail2ban_sshd": ("authentication", "high", "fail2ban bans SSH brute force",
                      f"fail2ban_sshd_enabled: true, run {HARDEN} (role fail2ban)"),
    "uid0_accounts": ("authentication", "critical", "root is the only account with uid 0",
                      "remove the extra uid 0 accounts; admins get sudo through bootstrap_admins"),
    "empty_passwords": ("authentication", "critical", "no account logs in without a password",
                        "lock the accounts (passwd -l); bootstrap_admins manages the admins"),
    "admin_keys": ("authentication", "medium", "admins' SSH keys are strong and only they can change them",
                   "bootstrap_admins with their keys, bootstrap_admins_exclusive_keys: true"),
    "firewall_default_deny": ("network", "critical", "incoming traffic is denied by default",
                              f"firewall_incoming_policy: drop, run {HARDEN} (role firewall)"),
    "exposed_services": ("network", "high", "no service but SSH is reachable from outside",
                         "stop the service, bind it to 127.0.0.1, or admit only its clients "
                         "(firewall_rules with sources)"),
    "ssh_sources": ("network", "medium", "SSH is admitted only from the admin networks",
                    "bulwark_admin_networks, firewall_ssh_restricted: true"),
    "routed_default_deny": ("network", "medium", "routed traffic is denied by default",
                            "firewall_routed_policy: drop"),
    "network_sysctl": ("network", "medium", "the kernel's network stack is hardened", "bootstrap_sysctl"),
    "docker_published": ("network", "medium", "published container ports are filtered",
                         "publish on 127.0.0.1, or firewall_docker: auto with firewall_rules for the port"),
    "shadow_files": ("data protection", "high", "password hashes readable only by root and shadow",
                     "bootstrap_permissions, bootstrap_permissions_groups"),
    "private_keys": ("data protection", "high", "private SSH keys readable only by their owner",
                     f"chmod 0600 the key (sshd's host keys: run {HARDEN})"),
    "sudoers_files": ("data protection", "medium", "sudo rules writable only by root",
                      "chmod 0440 the file (bootstrap writes its sudoers drop-ins 0440)"),
    "sshd_config_files": ("data protection", "medium", "sshd's configuration writable only by root",
                          f"chmod go-w the file, run {HARDEN} (role sshd)"),
    "cron_files": ("data protection", "low", "cron's files private to root", "bootstrap_permissions"),
    "home_dirs": ("data protection", "low", "home directories closed to other users",
                  "bootstrap_home_dirs_restricted: true"),
    "secrets": ("data protection", "high", "secrets are current and private", "playbooks/rotate_secrets.yml"),
    "overlay_handshakes": ("data protection", "medium", "overlay peers have a recent handshake",
                           "the peer's underlay reachability; bulwark_overlay_group (role overlay)"),
    "overlay_keys": ("data protection", "high", "the overlay's key and WireGuard files private to root",
                     f"chmod 0600 the file, 0700 its directory (run {HARDEN}, role overlay)"),
    "security_updates": ("infrastructure", "high", "security updates are installed",
                         f"bootstrap_upgrade_enabled: true, run {HARDEN}"),
    "unattended_upgrades": ("infrastructure", "medium", "security updates install themselves",
                            "bootstrap_unattended_upgrades_enabled: true"),
    "auditd": ("infrastructure", "medium", "the audit daemon records security events",
               "bootstrap_auditd_enabled: true"),
    "kernel_sysctl": ("infrastructure", "medium", "kernel hardening settings", "bootstrap_sysctl"),
    "docker_daemon": ("infrastructure", "medium", "Docker's daemon settings",
                      "bootstrap_docker: true writes /etc/docker/daemon.json"),
}  # fmt: skip


def finding(fid, status, evidence, severity=None):
    """A finding of CATALOG's control fid; severity overrides the catalog's (a worse case of it)."""
    category, default_severity, title, remediation = CATALOG[fid]
    return {
        "id": fid,
        "category": category,
        "severity": severity or default_severity,
        "title": title,
        "status": status,
        "passed": status == PASS,
        "evidence": evidence,
        "remediation": remediation if status == FAIL else "",
    }


def _status(ok):
    return PASS if ok else FAIL


# --- authentication --------------------------------------------------------------------------------


def _sshd(facts):
    text = facts.get("sshd")
    return effective.parse(text) if text else None


# What ssh-audit's hardened policies refuse: CBC and legacy ciphers, SHA-1, MD5 and 64-bit-tag MACs,
# SHA-1 and NIST-curve key exchanges, DSA, SHA-1 RSA signatures and NIST-curve host keys.
WEAK_ALGORITHMS = {
    "ciphers": ("cbc", "3des", "arcfour", "blowfish", "cast128", "rijndael"),
    "macs": ("md5", "sha1", "ripemd", "umac-64"),
    "kexalgorithms": ("sha1", "group1-", "nistp"),
    "hostkeyalgorithms": ("ssh-dss", "nistp"),
}


def _weak(key, algorithm):
    if key == "hostkeyalgorithms" and algorithm.split("-cert-v01@")[0] == "ssh-rsa":
        return True  # SHA-1 signatures; rsa-sha2-* on the same RSA key are fine
    return any(marker in algorithm for marker in WEAK_ALGORITHMS[key])


def _password(eff):
    keys = ("passwordauthentication", "kbdinteractiveauthentication", "permitemptypasswords")
    values = [eff.get(key, "yes") for key in keys]
    pairs = [f"{key} {value}" for key, value in zip(keys, values, strict=True)]
    return ", ".join(pairs), [pair for pair, value in zip(pairs, values, strict=True) if value != "no"]


def _root(eff):
    shown = f"permitrootlogin {eff.get('permitrootlogin', 'prohibit-password')}"
    return shown, [] if shown == "permitrootlogin no" else [shown]


def _access_list(eff):
    groups, users = eff.words("allowgroups"), eff.words("allowusers")
    shown = f"allowgroups {' '.join(groups) or '(none)'}, allowusers {' '.join(users) or '(none)'}"
    return shown, [] if groups or users else [shown]


def _max_auth_tries(eff):
    tries = eff.get("maxauthtries", "6")
    shown = f"maxauthtries {tries}"
    return shown, [] if tries.isdigit() and int(tries) <= 4 else [shown]


def _forwarding(eff):
    keys = ("x11forwarding", "allowtcpforwarding", "allowagentforwarding", "permittunnel")
    open_ = [f"{key} {eff.get(key)}" for key in keys if eff.get(key, "no") != "no"]
    return ", ".join(open_) or "all off", open_


# id: (judge(Effective) -> (shown, weak settings), judged for root's connections only)
SSHD_JUDGES = {
    "ssh_password_login": (_password, False),
    "ssh_root_login": (_root, True),  # PermitRootLogin means nothing in another user's connection
    "ssh_access_list": (_access_list, False),
    "ssh_max_auth_tries": (_max_auth_tries, False),
    "ssh_forwarding": (_forwarding, False),
}


def _makers(blocks, weak):
    """The blocks that write these weak settings (the same values; else the same keywords: sshd -T
    spells some values its own way, without-password for prohibit-password)."""
    keys = {item.split()[0] for item in weak}
    setting = [b for b in blocks if keys & set(b.settings)]
    same = [b for b in setting if any(f"{k} {v.lower()}" in weak for k, v in b.settings.items())]
    return tuple(effective.describe_block(b) for b in same or setting)


def _per_connection(fid, facts, base):
    """A control judged in the global settings AND in every connection sshd was asked about (sshd -T -C):
    it fails if any of them is weak, naming the connection and the Match blocks that make it so.

    Blocks no connection could be built for are judged on their own settings (over the global ones).
    """
    judge, root_only = SSHD_JUDGES[fid]
    shown, weak = judge(base)
    failed, parts, grouped = bool(weak), [shown], {}
    blocks = facts.get("sshd_blocks") or []
    for asked in facts.get("sshd_contexts") or []:
        context = asked["context"]
        if root_only and context.user != "root":
            continue
        if asked.get("output") is None:
            failed = True
            parts.append(
                f"cannot evaluate {context.label}: {asked.get('error') or 'sshd -T -C gave nothing'}"
            )
            continue
        _shown, found = judge(effective.parse(asked["output"]))
        failed = failed or bool(found)
        if found and found != weak:  # the same as the global settings: shown once, above
            named = _makers([blocks[i] for i in context.blocks], found)
            grouped.setdefault((tuple(found), named), []).append(context.label)
    for (found, named), labels in grouped.items():
        parts.append(
            f"{', '.join(found)} for {', '.join(labels)}" + (f" ({'; '.join(named)})" if named else "")
        )
    for item in facts.get("sshd_unjudged") or []:
        if item.never:
            continue  # sshd never applies it: its settings reach no connection
        settings = {key: [value] for key, value in item.block.settings.items()}
        found = [
            w for w in judge(effective.Effective({**base.values, **settings}))[1] if w.split()[0] in settings
        ]
        if found:
            failed = True
            parts.append(
                f"{', '.join(found)} in {effective.describe_block(item.block)}, "
                f"which the audit could not ask sshd about ({item.reason})"
            )
    return finding(fid, _status(not failed), "; ".join(parts))


def sshd_findings(facts):
    sshd = _sshd(facts)
    if sshd is None:
        return [
            finding("ssh_effective_config", FAIL, f"sshd -T failed: {facts.get('sshd_error') or 'no output'}")
        ]
    out = [_per_connection(fid, facts, sshd) for fid in SSHD_JUDGES]
    # Algorithms are global in sshd (not allowed in a Match block): the global settings say it all.
    weak = {key: [alg for alg in sshd.csv(key) if _weak(key, alg)] for key in WEAK_ALGORITHMS}
    shown = "; ".join(f"{key} {','.join(algs)}" for key, algs in weak.items() if algs)
    out.append(finding(
        "ssh_algorithms", _status(not shown),
        shown or "key exchanges, ciphers, MACs and host key algorithms all strong",
    ))  # fmt: skip
    return out


def fail2ban_findings(facts):
    f2b = facts.get("fail2ban") or {}
    if not f2b.get("installed"):
        return [finding("fail2ban_sshd", FAIL, "fail2ban is not installed")]
    if f2b.get("status") is None:
        return [finding("fail2ban_sshd", FAIL, "fail2ban is installed but its server does not answer")]
    try:
        jails = fail2ban_state.parse_status(f2b["status"])
    except ValueError:
        return [finding("fail2ban_sshd", FAIL, "fail2ban-client status could not be read")]
    details = []
    for name in jails:
        counters = fail2ban_state.parse_jail_status((f2b.get("jails") or {}).get(name, ""))
        details.append(
            f"{name} ({counters['currently_banned']} banned, {counters['total_failed']} failures seen)"
        )
    return [
        finding("fail2ban_sshd", _status("sshd" in jails), "running jails: " + (", ".join(details) or "none"))
    ]


def _key_problems(admin):
    """(problems, description) of one admin's authorized_keys and ~/.ssh."""
    name, text = admin["name"], admin.get("authorized_keys")
    problems = []
    for label, found in (
        ("authorized_keys", admin.get("keys_status")),
        ("~/.ssh", admin.get("ssh_dir_status")),
    ):
        if not found:
            continue
        kind, mode, uid, _gid = found
        if kind == "link" or mode & 0o022 or uid not in (0, admin["uid"]):
            problems.append(f"{name}: {label} is a {kind}, mode {mode:04o}, owner uid {uid}")
    if admin.get("keys_error"):  # a FIFO, a huge file, a link: what sshd reads there cannot be judged
        problems.append(f"{name}: authorized_keys cannot be evaluated: {admin['keys_error']}")
        return problems, f"{name}: authorized_keys unreadable"
    if text is None:
        return problems, f"{name}: no authorized_keys"
    keys, _other = authorized_keys.parse_file(text)
    kinds = []
    for key in keys:
        bits = parse.rsa_bits(key.blob) if key.type == "ssh-rsa" else None
        kinds.append(key.type + (f" {bits} bits" if bits else ""))
        if key.type == "ssh-dss" or (bits is not None and bits < 3072):
            problems.append(f"{name}: weak key {key.describe()}" + (f" ({bits} bits)" if bits else ""))
    return problems, f"{name}: {len(keys)} key(s) ({', '.join(kinds) or 'none'})"


def account_findings(facts):
    out = []
    uid0 = sorted(a["name"] for a in facts.get("accounts", []) if a["uid"] == 0 and a["name"] != "root")
    out.append(finding(
        "uid0_accounts", _status(not uid0),
        ("other uid 0 accounts: " + ", ".join(uid0)) if uid0 else "only root",
    ))  # fmt: skip
    empty = facts.get("empty_passwords")
    if empty is None:
        out.append(finding("empty_passwords", FAIL, "/etc/shadow could not be read"))
    else:
        evidence = (
            ("without a password: " + ", ".join(empty)) if empty else "every account has one or is locked"
        )
        out.append(finding("empty_passwords", _status(not empty), evidence))
    problems, described = [], []
    for admin in facts.get("admins", []):
        mine, description = _key_problems(admin)
        problems += mine
        described.append(description)
    out.append(
        finding("admin_keys", _status(not problems), "; ".join(problems + described) or "no admins found")
    )
    return out


# --- network ---------------------------------------------------------------------------------------


def _ruleset(facts):
    """(chains, note) of the live ruleset: chains None when it cannot be judged, {} when there is none."""
    if facts.get("nft_error"):
        return None, f"nft -j list ruleset failed: {facts['nft_error']}"
    doc = facts.get("nft")
    if doc is None:
        return {}, "nft is not installed: no nftables ruleset"
    return hooks.chains(doc), ""


def _admitted(chains, version, port, destination=None):
    """(True/False/None, why): is a new connection from outside to port admitted (None: cannot tell).

    chains: the ruleset as a TCP packet sees it; _udp_view turns it into what a UDP packet sees."""
    pkt = hooks.packet(OUTSIDE[version], destination, port)
    stops = hooks.judge(chains, pkt)
    for chain, outcome, why in stops:
        if outcome == hooks.DROP:
            return False, f"{hooks.describe(chain)}: {why}"
    if stops:
        chain, _outcome, why = stops[0]
        return None, f"{hooks.describe(chain)}: {why}"
    return True, "every base chain on the way accepts it"


_MIRROR = {"tcp": "udp", "udp": "tcp", 6: 17, 17: 6}


def _mirrored(value):
    if isinstance(value, dict) and "set" in value:
        return {**value, "set": [_mirrored(v) for v in value["set"]]}
    if isinstance(value, list):
        return [_mirrored(v) for v in value]
    return _MIRROR.get(value, value) if isinstance(value, (str, int)) else value


def _mirror_expr(expr):
    """A rule's expression with TCP and UDP swapped (`udp dport 53` reads `tcp dport 53`, and back)."""
    match = expr.get("match") if isinstance(expr, dict) else None
    if not isinstance(match, dict) or not isinstance(match.get("left"), dict):
        return expr
    left = match["left"]
    payload = left.get("payload")
    if isinstance(payload, dict) and payload.get("protocol") in _MIRROR:
        return {
            "match": {
                **match,
                "left": {**left, "payload": {**payload, "protocol": _MIRROR[payload["protocol"]]}},
            }
        }
    if isinstance(left.get("meta"), dict) and left["meta"].get("key") == "l4proto":
        return {"match": {**match, "right": _mirrored(match.get("right"))}}
    return expr


def _udp_view(chains):
    """The ruleset as a new UDP datagram sees it, in the terms the TCP judge (firewall.hooks) reads: every
    TCP and UDP match swapped, so that a UDP rule decides the probe and a TCP rule never matches it."""
    return {
        key: chain._replace(
            rules=[(handle, [_mirror_expr(e) for e in exprs]) for handle, exprs in chain.rules]
        )
        for key, chain in chains.items()
    }


def _versions(address):
    if address in ("*", ""):
        return (4, 6)  # ss prints "*" for a socket that serves both families
    return (6,) if ":" in address else (4,)


def _default_deny(chains, note):
    results = [(v, *_admitted(chains, v, PROBE_PORT)) for v in (4, 6)]
    words = {True: "admitted", False: "dropped", None: "cannot be evaluated"}
    parts = [note] if note else []
    for version, admitted, why in results:
        parts.append(
            f"IPv{version} to port {PROBE_PORT}: {words[admitted]}"
            + (f" ({why})" if admitted is not True else "")
        )
    return finding("firewall_default_deny", _status(all(r[1] is False for r in results)), "; ".join(parts))


def _exposure(facts, chains):
    """Every TCP and UDP listener off loopback, judged on its address and port against the ruleset, whatever
    its process is called. Only a port Docker publishes is left to docker_published (its traffic is DNAT'd
    to the container through the forward hook, not delivered to the listener through input)."""
    sshd = _sshd(facts)
    ssh_ports = {int(p) for p in (sshd.lines("port") if sshd else []) if p.isdigit()}
    published = parse.published_ports((facts.get("docker") or {}).get("ps") or "")
    views = {"tcp": chains, "udp": _udp_view(chains)}
    exposed, unknown, ssh_open, by_docker = [], [], [], []
    for sock in parse.listeners(facts.get("listeners", "")):
        if parse.is_loopback(sock.address):
            continue
        shown = f"[{sock.address}]" if ":" in sock.address else sock.address or "*"
        where = f"{shown}:{sock.port}" + ("/udp" if sock.proto == "udp" else "")
        if parse.is_published(published, sock):
            by_docker.append(where)
            continue
        for version in _versions(sock.address):
            destination = None if parse.is_wildcard(sock.address) else sock.address
            admitted, why = _admitted(views[sock.proto], version, sock.port, destination)
            label = f"{where} ({sock.process or 'unknown process'}, IPv{version})"
            if admitted is None:
                unknown.append(f"{label}: {why}")
            elif admitted:
                (ssh_open if sock.proto == "tcp" and sock.port in ssh_ports else exposed).append(label)
    evidence = ("admitted from anywhere: " + ", ".join(exposed)) if exposed else "no other listener admitted"
    if unknown:
        evidence += "; cannot be evaluated: " + "; ".join(unknown)
    if by_docker:
        evidence += "; published by Docker (see docker_published): " + ", ".join(by_docker)
    return [
        finding("exposed_services", _status(not exposed and not unknown), evidence),
        finding(
            "ssh_sources", _status(not ssh_open),
            ("admitted from anywhere: " + ", ".join(ssh_open)) if ssh_open else "not admitted from outside",
        ),
    ]  # fmt: skip


def _routed(facts, chains):
    sysctl = facts.get("sysctl", {})
    if sysctl.get("net.ipv4.ip_forward") in ("0", None) and sysctl.get("net.ipv6.conf.all.forwarding") in (
        "0",
        None,
    ):
        return finding("routed_default_deny", PASS, "the host does not route (forwarding off)")
    drops = [hooks.describe(c) for c in chains.values() if c.hook == "forward" and c.policy == "drop"]
    evidence = (
        ("forwarding on; " + ", ".join(drops))
        if drops
        else "forwarding on, no forward chain with policy drop"
    )
    return finding("routed_default_deny", _status(bool(drops)), evidence)


def firewall_findings(facts):
    chains, note = _ruleset(facts)
    if chains is None:
        return [finding("firewall_default_deny", FAIL, note)]
    return [_default_deny(chains, note), *_exposure(facts, chains), _routed(facts, chains)]


NETWORK_SYSCTL = {
    "net.ipv4.conf.all.rp_filter": ("1", "2"),
    "net.ipv4.conf.all.accept_redirects": ("0",),
    "net.ipv4.conf.default.accept_redirects": ("0",),
    "net.ipv6.conf.all.accept_redirects": ("0",),
    "net.ipv4.conf.all.send_redirects": ("0",),
    "net.ipv4.conf.all.accept_source_route": ("0",),
    "net.ipv6.conf.all.accept_source_route": ("0",),
    "net.ipv4.conf.all.log_martians": ("1",),
    "net.ipv4.icmp_echo_ignore_broadcasts": ("1",),
    "net.ipv4.tcp_syncookies": ("1",),
}
KERNEL_SYSCTL = {
    "kernel.randomize_va_space": ("2",),
    "kernel.kptr_restrict": ("1", "2"),
    "kernel.dmesg_restrict": ("1",),
    "kernel.yama.ptrace_scope": ("1", "2", "3"),
    "kernel.unprivileged_bpf_disabled": ("1", "2"),
    "kernel.sysrq": ("0",),
    "fs.protected_hardlinks": ("1",),
    "fs.protected_symlinks": ("1",),
    "fs.protected_fifos": ("1", "2"),
    "fs.protected_regular": ("1", "2"),
    "fs.suid_dumpable": ("0",),
}


def _sysctl_finding(facts, fid, wanted):
    live = facts.get("sysctl", {})
    wrong = [
        f"{key} = {live[key]} (wanted {' or '.join(ok)})"
        for key, ok in wanted.items()
        if live.get(key) is not None and live[key] not in ok
    ]
    absent = [key for key in wanted if live.get(key) is None]
    checked = len(wanted) - len(absent)
    evidence = "; ".join(wrong) if wrong else f"{checked} of {len(wanted)} keys as wanted"
    if absent:
        evidence += f"; not on this kernel: {', '.join(absent)}"
    return finding(fid, SKIP if not checked else _status(not wrong), evidence)


def sysctl_findings(facts):
    return [
        _sysctl_finding(facts, "network_sysctl", NETWORK_SYSCTL),
        _sysctl_finding(facts, "kernel_sysctl", KERNEL_SYSCTL),
    ]


# --- data protection -------------------------------------------------------------------------------


def _file_finding(facts, fid, paths, forbidden, groups=None):
    """Paths with a forbidden mode bit, links, files of /etc not owned by root or by a group not in groups."""
    problems, seen = [], 0
    names = facts.get("group_names", {})
    for path in paths:
        found = facts.get("paths", {}).get(path)
        if found is None:
            continue
        seen += 1
        kind, mode, uid, gid = found
        group = names.get(str(gid), str(gid))
        if kind == "link":
            problems.append(f"{path} is a symbolic link")
        elif mode & forbidden:
            problems.append(f"{path} mode {mode:04o}")
        elif path.startswith("/etc/") and uid != 0:
            problems.append(f"{path} owner uid {uid}")
        elif groups is not None and group not in groups:
            problems.append(f"{path} group {group}")
    if not seen:
        return finding(fid, SKIP, "none of these files exist")
    return finding(fid, _status(not problems), "; ".join(problems) or f"{seen} file(s) checked")


def file_findings(facts):
    paths = sorted(facts.get("paths", {}))
    host_keys = [p for p in paths if p.startswith("/etc/ssh/ssh_host_") and p.endswith("_key")]
    user_keys = [p for p in paths if "/.ssh/id_" in p and not p.endswith(".pub")]
    sudoers = [p for p in paths if p == "/etc/sudoers" or p.startswith("/etc/sudoers.d/")]
    sshd_files = [p for p in paths if p == "/etc/ssh/sshd_config" or p.startswith("/etc/ssh/sshd_config.d/")]
    homes = [p for p in paths if p.startswith("/home/") and p.count("/") == 2]
    cron = [p for p in paths if p == "/etc/crontab" or p.startswith("/etc/cron.")]
    shadow = ["/etc/shadow", "/etc/gshadow", "/etc/shadow-", "/etc/gshadow-"]
    return [
        _file_finding(facts, "shadow_files", shadow, 0o137, groups=("root", "shadow")),
        _file_finding(facts, "private_keys", host_keys + user_keys, 0o077),
        _file_finding(facts, "sudoers_files", sudoers, 0o022),
        _file_finding(facts, "sshd_config_files", sshd_files, 0o022),
        _file_finding(facts, "cron_files", cron, 0o077),
        _file_finding(facts, "home_dirs", homes, 0o027),
    ]


def _secret_problems(item, now):
    problems = [f"{path} mode {mode:04o}" for path, mode in sorted(item["modes"].items()) if mode & 0o077]
    meta = item.get("meta")
    try:
        expires = meta["current"]["expires"]
        if now >= rotation.parse_time(expires):
            problems.append(f"expired on {expires} (rotate it)")
    except (KeyError, TypeError, ValueError):
        problems.append("meta.json unreadable: its age is unknown")
    return problems


def secret_findings(facts, now):
    """The secret store (secret_store's files backend) as it is: each secret unexpired, its files private.

    Only metadata is read (versions, dates, fingerprints), never a value.
    """
    store = facts.get("secrets")
    if store is None:
        return [finding("secrets", SKIP, "no secret store on this host")]
    bad = [f"store {store['path']} mode {store['mode']:04o}"] if store["mode"] & 0o077 else []
    for item in store["secrets"]:
        bad += [f"{item['name']}: {problem}" for problem in _secret_problems(item, now)]
    evidence = "; ".join(bad) or f"{len(store['secrets'])} secret(s) unexpired, files private"
    return [finding("secrets", _status(not bad), evidence)]


HANDSHAKE_MAX_AGE = 300  # WireGuard renews a live session's handshake every 2 minutes


def overlay_findings(facts, now):
    """Handshakes (peers named as the overlay role's registry names them) and the key files' modes."""
    paths = sorted(facts.get("paths", {}))
    keys = [p for p in paths if p.startswith(("/etc/bulwark/overlay", "/etc/wireguard/"))]
    key_finding = _file_finding(facts, "overlay_keys", keys, 0o077)
    text = facts.get("wireguard")
    if text is None:
        return [finding("overlay_handshakes", SKIP, "no WireGuard interface on this host"), key_finding]
    names = facts.get("overlay_names") or {}
    peers = parse.latest_handshakes(text)
    stale = [
        f"{iface} peer {names.get(peer, peer[:8])}: " + ("never" if when == 0 else f"{now - when} s ago")
        for iface, peer, when in peers
        if when == 0 or now - when > HANDSHAKE_MAX_AGE
    ]
    evidence = "; ".join(stale) or f"{len(peers)} peer(s), all within {HANDSHAKE_MAX_AGE} s"
    return [finding("overlay_handshakes", _status(bool(peers) and not stale), evidence), key_finding]


# --- infrastructure --------------------------------------------------------------------------------


def update_findings(facts):
    out = []
    simulation = facts.get("apt_simulation")
    if simulation is None:
        out.append(finding("security_updates", FAIL, "apt-get -s upgrade failed: pending updates unknown"))
    else:
        pending = parse.security_updates(simulation)
        shown = ", ".join(f"{name} {version}" for name, version in pending[:10]) + (
            " …" if len(pending) > 10 else ""
        )
        evidence = (
            f"{len(pending)} pending: {shown}" if pending else "none pending (per the host's package lists)"
        )
        out.append(finding("security_updates", _status(not pending), evidence))
    periodic = parse.apt_config(facts.get("apt_config") or "").get(
        "APT::Periodic::Unattended-Upgrade", "unset"
    )
    installed = bool(facts.get("unattended_installed"))
    out.append(finding(
        "unattended_upgrades", _status(installed and periodic not in ("0", "", "unset")),
        f"unattended-upgrades {'installed' if installed else 'not installed'}, "
        f"APT::Periodic::Unattended-Upgrade {periodic}",
    ))  # fmt: skip
    state = facts.get("units", {}).get("auditd.service", "inactive")
    out.append(finding("auditd", _status(state == "active"), f"auditd.service {state}"))
    return out


def docker_findings(facts):
    docker = facts.get("docker")
    if docker is None:
        return [
            finding(fid, SKIP, "Docker is not installed") for fid in ("docker_daemon", "docker_published")
        ]
    settings = docker.get("daemon") or {}
    wanted = {"icc": False, "no-new-privileges": True, "live-restore": True}
    wrong = [
        f"{key} {settings.get(key, 'unset')}" for key, value in wanted.items() if settings.get(key) != value
    ]
    tcp = [h for h in settings.get("hosts", []) if h.startswith("tcp://")]
    if tcp and not settings.get("tlsverify"):
        wrong.insert(0, f"the API listens on {', '.join(tcp)} without tlsverify")
    evidence = "; ".join(wrong) or "icc off, no-new-privileges, live-restore"
    out = [finding("docker_daemon", _status(not wrong), evidence, severity="critical" if tcp else None)]
    ports = [line for line in (docker.get("ps") or "").splitlines() if "0.0.0.0:" in line or "[::]:" in line]
    # Published ports bypass the input hook (DNAT, then the forward hook): a forward policy drop filters them.
    chains, _note = _ruleset(facts)
    filtered = any(c.hook == "forward" and c.policy == "drop" for c in (chains or {}).values())
    evidence = (
        ("published on every address: " + "; ".join(ports)) if ports else "none published on every address"
    )
    out.append(finding("docker_published", _status(not ports or filtered), evidence))
    return out


def evaluate(facts, now, categories=CATEGORIES):
    """Every finding for the host, restricted to categories, in a stable order."""
    found = (
        sshd_findings(facts)
        + fail2ban_findings(facts)
        + account_findings(facts)
        + firewall_findings(facts)
        + sysctl_findings(facts)
        + file_findings(facts)
        + secret_findings(facts, now)
        + overlay_findings(facts, now)
        + update_findings(facts)
        + docker_findings(facts)
    )
    return [f for f in found if f["category"] in categories]

#!/usr/bin/python
# Copyright: (c) 2026, bulwark.hardening maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module bulwark.hardening.sshd_config: sshd settings as a validated, lockout-guarded drop-in."""
# ruff: noqa: E402  (Ansible modules put DOCUMENTATION/EXAMPLES/RETURN before the imports)

DOCUMENTATION = r"""
---
module: sshd_config
short_description: Manage sshd settings as a drop-in read first, validated and guarded against lockout
description:
  - Renders O(options) and O(match) into one drop-in (O(path)) that sshd reads before Debian's and
    cloud-init's drop-ins (sshd keeps the first value it sees for most keywords), and makes sure
    C(Include <dir of path>/*.conf) is the first directive of O(main_config).
  - Before anything live changes, the candidate is validated on a temporary copy of the configuration
    tree with C(sshd -t), and the effective configuration for the connecting user is read with
    C(sshd -T -C user=...,host=...,addr=...) (Match blocks evaluated).
  - A lockout guard refuses, with a message naming the setting and with no change, a configuration that
    would shut the connecting user out (see O(guard)).
  - Optionally removes weak host keys, regenerates a short RSA host key, and removes small DH moduli.
  - After writing, reloads sshd (if it runs); a failed reload restores the previous files. With
    O(rollback_timeout) a rollback timer on the host restores the previous files unless a later call
    with O(confirm=true) (over a new connection) stops it.
  - Unknown keywords, C(Match) and C(Include) in O(options) are refused by name.
version_added: "0.1.0"
author: bulwark.hardening maintainers (@bulwark-hardening)
options:
  options:
    description:
      - sshd keywords (case-insensitive; rendered in canonical case) and their values, in the order given.
      - A boolean renders as V(yes)/V(no). A list renders comma-joined for algorithm lists (C(KexAlgorithms),
        C(Ciphers), C(MACs), C(HostKeyAlgorithms), C(PubkeyAcceptedAlgorithms), C(CASignatureAlgorithms),
        C(HostbasedAcceptedAlgorithms), ...), space-joined for C(AllowUsers), C(AllowGroups), C(DenyUsers),
        C(DenyGroups), C(AuthenticationMethods), C(AuthorizedKeysFile), ..., and one line per element for
        C(HostKey), C(HostCertificate), C(ListenAddress), C(Port), C(AcceptEnv), C(Subsystem).
    type: dict
    default: {}
  match:
    description: C(Match) blocks rendered after the global keywords, in the order given.
    type: list
    elements: dict
    default: []
    suboptions:
      criteria:
        description: The Match criteria, e.g. V(Group sftp) or V(Address 10.0.0.0/8).
        type: str
        required: true
      options:
        description: Keywords allowed inside Match (checked against the subset OpenSSH allows there).
        type: dict
        required: true
  path:
    description: The managed drop-in. Its name must sort before the other drop-ins (C(00-) prefix).
    type: path
    default: /etc/ssh/sshd_config.d/00-bulwark.conf
  main_config:
    description: The main sshd configuration whose first directive must include the drop-in directory.
    type: path
    default: /etc/ssh/sshd_config
  remove_host_keys:
    description: Host key types whose C(/etc/ssh/ssh_host_<type>_key) and C(.pub) files are removed.
    type: list
    elements: str
    choices: [dsa, ecdsa, rsa, ed25519]
    default: []
  rsa_host_key_bits:
    description:
      - Regenerate C(/etc/ssh/ssh_host_rsa_key) with this many bits when it is missing or shorter.
        V(0) leaves it alone.
    type: int
    default: 0
  moduli_min_bits:
    description:
      - Remove the lines of C(/etc/ssh/moduli) for DH groups smaller than this many bits (the size
        field is bits-1, so 3072 keeps lines whose 5th field is at least 3071). V(0) leaves the file alone.
    type: int
    default: 0
  connecting_user:
    description:
      - The account the controller logs in as; the guard checks that it still can.
      - Defaults to the user of the SSH login the module runs under (found in its parent processes'
        environment, which survives become), else E(SUDO_USER), else the user the module runs as.
    type: str
  connecting_from:
    description:
      - The controller's address as the host sees it (for C(Match Address) and C(user@host) patterns).
      - Defaults to the client address of the SSH login the module runs under (E(SSH_CONNECTION) of its
        parent processes); without one (e.g. a local or docker connection) the guard does not evaluate
        host parts, C(sshd -T) is asked for 127.0.0.1, and the module warns.
    type: str
  assume_groups:
    description:
      - Groups the connecting user is taken to be a member of B(in check mode only), besides its current ones,
        because an earlier step of the same run puts it there (the bootstrap role adds the admins to the group
        that C(AllowGroups) names). A real run always checks the live membership.
    type: list
    elements: str
    default: []
  client_algorithms:
    description:
      - What the controller's ssh client offers (C(ssh -Q kex), C(ssh -Q cipher), C(ssh -Q mac),
        C(ssh -Q HostKeyAlgorithms) on the controller). The guard refuses a configuration sharing
        nothing with one of these lists.
    type: dict
    default: {}
    suboptions:
      kex:
        description: Key exchange algorithms.
        type: list
        elements: str
      ciphers:
        description: Ciphers.
        type: list
        elements: str
      macs:
        description: MACs.
        type: list
        elements: str
      host_key_algorithms:
        description: Host key signature algorithms.
        type: list
        elements: str
  guard:
    description:
      - Refuse configurations that would lock the connecting user out (user and group filters, root
        login, no usable authentication method, unsatisfiable C(AuthenticationMethods), C(ForceCommand),
        no host key usable with C(HostKeyAlgorithms), algorithms disjoint from O(client_algorithms)).
      - V(false) is for tests and emergencies only.
    type: bool
    default: true
  reload:
    description: Reload O(service) after a change when it is active (otherwise only validate).
    type: bool
    default: true
  service:
    description: The systemd unit of sshd (Debian's is C(ssh)).
    type: str
    default: ssh
  rollback_timeout:
    description:
      - Seconds after which a rollback timer on the host restores the previous drop-in and main config
        and reloads sshd, unless confirmed. V(0) arms no rollback. At least 5 otherwise.
    type: int
    default: 0
  confirm:
    description:
      - Confirm a change applied with O(rollback_timeout) (call this over a NEW connection); it stops the
        timer. Fails when the rollback already fired. With V(true) nothing else is done.
    type: bool
    default: false
  mode:
    description:
      - Permissions of O(main_config) and O(path) (octal string). sshd reads them as root; nobody else needs
        to read how it is hardened.
    type: str
    default: "0600"
  backup_dir:
    description: Where the previous files are kept for the rollback (created root-only, 0700).
    type: path
    default: /var/lib/bulwark/sshd
notes:
  - Check mode runs the full validation and guard on the temporary tree and shows the diff; nothing live
    changes (except creating sshd's runtime directory C(/run/sshd), which C(sshd -t) needs and ssh.service
    creates itself).
  - Host key removal and moduli filtering are not undone by the rollback; the guard checks that a usable
    host key remains.
attributes:
  check_mode:
    support: full
    description: Validates and guards the candidate on a temporary tree and reports the changes;
      nothing live changes.
  diff_mode:
    support: full
    description: Shows the drop-in and main config before and after, and summaries of moduli and
      host key changes.
"""

EXAMPLES = r"""
- name: Harden sshd, refuse lockouts, arm a 60 s rollback
  bulwark.hardening.sshd_config:
    options:
      PermitRootLogin: false
      PasswordAuthentication: false
      KbdInteractiveAuthentication: false
      AllowGroups: [sshusers]
      KexAlgorithms: [sntrup761x25519-sha512@openssh.com, curve25519-sha256]
      HostKey: [/etc/ssh/ssh_host_ed25519_key, /etc/ssh/ssh_host_rsa_key]
    match:
      - criteria: Group sftponly
        options:
          ForceCommand: internal-sftp
          AllowTcpForwarding: false
    remove_host_keys: [dsa, ecdsa]
    rsa_host_key_bits: 4096
    moduli_min_bits: 3072
    connecting_user: deploy
    connecting_from: 192.0.2.10
    rollback_timeout: 60

- name: Confirm over a new connection
  bulwark.hardening.sshd_config:
    confirm: true
"""

RETURN = r"""
changed:
  description: Whether a file, host key or the moduli changed (or, with O(confirm), a rollback was disarmed).
  returned: always
  type: bool
diff:
  description: One before/after entry per changed item (drop-in, main config, moduli and host keys summaries).
  returned: when changed
  type: list
  elements: dict
effective:
  description: The effective settings for the connecting user (C(sshd -T) of the candidate; lower-case keys,
    repeated keywords as lists).
  returned: unless O(confirm=true)
  type: dict
  sample: {"permitrootlogin": "no", "hostkey": ["/etc/ssh/ssh_host_ed25519_key"], "port": ["22"]}
refusals:
  description: Why the guard refused (also in msg); empty when it accepted.
  returned: always
  type: list
  elements: str
reloaded:
  description: Whether sshd was reloaded.
  returned: always
  type: bool
rollback_armed:
  description: Whether a rollback timer is armed (confirm it with O(confirm=true)).
  returned: always
  type: bool
host_keys:
  description: Host key actions (files removed, RSA key size before and after).
  returned: unless O(confirm=true)
  type: dict
  sample: {"removed": ["/etc/ssh/ssh_host_ecdsa_key"], "rsa_bits_before": 3072, "rsa_bits_after": 4096}
"""

import glob
import grp
import os
import pwd
import shlex
import shutil
import socket
import stat
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bulwark.hardening.plugins.module_utils import commit_confirm
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd import effective as eff_mod
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd import guard as guard_mod
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd.moduli import filter_moduli
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd.render import (
    RenderError,
    ensure_include_first,
    include_line,
    render,
    replace_include,
)

CONCERN = "sshd"
MODULI = "/etc/ssh/moduli"
HOST_KEY = "/etc/ssh/ssh_host_{}_key"


def read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write(module, path, text, mode=0o644):
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".bulwark-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    module.atomic_move(tmp, path)
    # atomic_move keeps an existing file's mode and gives a new one the umask's: set ours.
    os.chmod(path, mode)


class Runner:
    def __init__(self, module):
        self.module = module

    def run(self, argv, check=True, what=None):
        rc, out, err = self.module.run_command(argv, environ_update={"LC_ALL": "C"})
        if check and rc != 0:
            self.module.fail_json(
                msg=f"{what or argv[0]} failed (rc={rc}): {(err or out).strip()}", changed=False, refusals=[]
            )
        return rc, out, err


def login_origin():
    """(user, address) of the SSH login this module runs under, read from its ancestors' environments.

    Under become (sudo) the module's own environment has lost SSH_CONNECTION; the login shell that
    sshd started still has it, a few processes up. Reading another user's or a setuid process's
    environment needs CAP_SYS_PTRACE (root has it on a host, not in a default container): ancestors
    that cannot be read are skipped. Returns (None, None) when nothing is found.
    """
    pid = os.getpid()
    for _unused in range(16):
        if pid <= 1:
            break
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                env = dict(item.split(b"=", 1) for item in handle.read().split(b"\0") if b"=" in item)
        except OSError:
            env = {}
        conn = env.get(b"SSH_CONNECTION", b"").decode(errors="replace").split()
        if conn:
            user = (env.get(b"USER") or env.get(b"LOGNAME") or b"").decode(errors="replace") or None
            return user, conn[0]
        pid = ppid
    return None, None


def rsa_bits(runner, keygen, path):
    if not os.path.exists(path):
        return 0
    rc, out, _unused = runner.run([keygen, "-lf", path], check=False)
    try:
        return int(out.split()[0]) if rc == 0 else 0
    except (IndexError, ValueError):
        return 0


def key_type(path):
    text = read(path + ".pub") or ""
    return text.split()[0] if text.split() else None


def user_facts(module, user, eff):
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        module.fail_json(
            msg=f"connecting_user {user!r} does not exist on the host", changed=False, refusals=[]
        )
    gids = os.getgrouplist(user, entry.pw_gid)
    groups = []
    for gid in gids:
        try:
            groups.append(grp.getgrgid(gid).gr_name)
        except KeyError:
            groups.append(str(gid))
    has_password = False
    for line in (read("/etc/shadow") or "").splitlines():
        fields = line.split(":")
        if fields[0] == user and len(fields) > 1:
            has_password = bool(fields[1]) and fields[1][0] not in "!*"
    key_types = []
    for pattern in eff.words("authorizedkeysfile"):
        if pattern == "none":
            continue
        path = (
            pattern.replace("%%", "\0")
            .replace("%h", entry.pw_dir)
            .replace("%u", user)
            .replace("%U", str(entry.pw_uid))
            .replace("\0", "%")
        )
        if not path.startswith("/"):
            path = os.path.join(entry.pw_dir, path)
        for line in (read(path) or "").splitlines():
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            found = next((w for w in words if w.startswith(("ssh-", "ecdsa-", "sk-"))), None)
            if found:
                key_types.append(found)
    return {"user": user, "uid": entry.pw_uid, "groups": groups, "has_password": has_password}, key_types


def other_dropins_first(dropin_dir, name, keywords):
    warnings = []
    wanted = {k.lower() for k in keywords}
    for other in sorted(glob.glob(os.path.join(dropin_dir, "*.conf"))):
        if os.path.basename(other) >= name:
            break
        theirs = {line.split()[0].lower() for line in (read(other) or "").splitlines() if line.split()}
        clash = sorted(wanted & theirs)
        if clash:
            warnings.append(f"{other} is read before {name} and sets {', '.join(clash)}: its values win")
    return warnings


def listeners(listen_addresses):
    """(address, port) to reach each of sshd's listeners from the host itself (sshd -T's listenaddress)."""
    targets = []
    for entry in listen_addresses:
        address, _unused, port = entry.rpartition(":")
        address = address.strip("[]")
        wildcard = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104  (connected to, not bound)
        targets.append((wildcard.get(address, address), int(port)))
    return targets


def wait_for_listener(targets, timeout=10.0):
    """True once sshd answers with its banner on one of its listeners again (one is enough:
    an address family the host lacks, such as IPv6 in a container, never answers).

    A reload re-executes sshd, which closes its listeners for a moment: returning before they are
    back would make the controller's next connection (the confirm) fail for no real reason.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for target in targets:
            try:
                with socket.create_connection(target, timeout=1) as conn:
                    if conn.recv(4) == b"SSH-":
                        return True
            except OSError:
                pass
        time.sleep(0.2)
    return False


def restore_script(backup_dir, main_config, path, service):
    q = shlex.quote
    return (
        f"cp -p {q(backup_dir + '/main_config')} {q(main_config)}; "
        f"if [ -e {q(backup_dir + '/dropin.absent')} ]; then rm -f {q(path)}; "
        f"else cp -p {q(backup_dir + '/dropin')} {q(path)}; fi; "
        f"touch {q(backup_dir + '/rolled-back')}; "
        f"systemctl reload {q(service)} || systemctl restart {q(service)}"
    )


def confirm(module, runner, backup_dir):
    armed = os.path.join(backup_dir, "armed")
    rc, _unused, _unused = runner.run(commit_confirm.pending_command(CONCERN), check=False)
    if rc == 0:
        if not module.check_mode:
            runner.run(commit_confirm.disarm_command(CONCERN), what="disarming the sshd rollback")
            for name in ("armed", "rolled-back"):
                if os.path.exists(os.path.join(backup_dir, name)):
                    os.remove(os.path.join(backup_dir, name))
        module.exit_json(
            changed=True,
            msg="sshd change confirmed; rollback disarmed",
            refusals=[],
            reloaded=False,
            rollback_armed=False,
        )
    if os.path.exists(armed):
        fired = os.path.exists(os.path.join(backup_dir, "rolled-back"))
        if not module.check_mode:
            for name in ("armed", "rolled-back"):
                if os.path.exists(os.path.join(backup_dir, name)):
                    os.remove(os.path.join(backup_dir, name))
        module.fail_json(
            msg="the sshd rollback already fired"
            + (" and restored the previous configuration" if fired else " (or was stopped by someone else)")
            + ": the change was NOT kept; confirm came too late (raise rollback_timeout?)",
            changed=False,
            refusals=[],
            reloaded=False,
            rollback_armed=False,
        )
    module.exit_json(
        changed=False, msg="no sshd rollback pending", refusals=[], reloaded=False, rollback_armed=False
    )


def main():
    module = AnsibleModule(
        argument_spec={
            "options": {"type": "dict", "default": {}},
            "match": {
                "type": "list",
                "elements": "dict",
                "default": [],
                "options": {
                    "criteria": {"type": "str", "required": True},
                    "options": {"type": "dict", "required": True},
                },
            },
            "path": {"type": "path", "default": "/etc/ssh/sshd_config.d/00-bulwark.conf"},
            "main_config": {"type": "path", "default": "/etc/ssh/sshd_config"},
            "remove_host_keys": {
                "type": "list",
                "elements": "str",
                "default": [],
                "choices": ["dsa", "ecdsa", "rsa", "ed25519"],
            },
            "rsa_host_key_bits": {"type": "int", "default": 0},
            "moduli_min_bits": {"type": "int", "default": 0},
            "connecting_user": {"type": "str"},
            "connecting_from": {"type": "str"},
            "assume_groups": {"type": "list", "elements": "str", "default": []},
            "client_algorithms": {
                "type": "dict",
                "default": {},
                # Algorithm names, not secrets ("key" in a name makes the sanity test ask).
                "options": {
                    k: {"type": "list", "elements": "str", "no_log": False}
                    for k in ("kex", "ciphers", "macs", "host_key_algorithms")
                },
            },
            "guard": {"type": "bool", "default": True},
            "reload": {"type": "bool", "default": True},
            "service": {"type": "str", "default": "ssh"},
            "rollback_timeout": {"type": "int", "default": 0},
            "confirm": {"type": "bool", "default": False},
            "mode": {"type": "str", "default": "0600"},
            "backup_dir": {"type": "path", "default": "/var/lib/bulwark/sshd"},
        },
        supports_check_mode=True,
    )
    p = module.params
    runner = Runner(module)
    backup_dir = p["backup_dir"]
    if p["confirm"]:
        confirm(module, runner, backup_dir)

    def refuse(msg, **extra):
        module.fail_json(msg=msg, changed=False, refusals=extra.pop("refusals", []), **extra)

    # 1. Validate the input: nothing is read or changed before it is sound.
    try:
        dropin_text = render(p["options"], p["match"])
    except RenderError as exc:
        refuse(str(exc))
    if p["rsa_host_key_bits"] and not 2048 <= p["rsa_host_key_bits"] <= 16384:
        refuse("rsa_host_key_bits must be 0 or between 2048 and 16384")
    if p["rsa_host_key_bits"] and "rsa" in p["remove_host_keys"]:
        refuse("rsa_host_key_bits and remove_host_keys: [rsa] contradict each other")
    try:
        mode = int(p["mode"], 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o644 or mode & 0o022:
        refuse(f"mode: {p['mode']!r} is not an octal mode that only root may write (e.g. 0600)")
    if p["moduli_min_bits"] and not 1024 <= p["moduli_min_bits"] <= 8192:
        refuse("moduli_min_bits must be 0 or between 1024 and 8192")
    if p["rollback_timeout"] and p["rollback_timeout"] < 5:
        refuse("rollback_timeout must be 0 (no rollback) or at least 5 seconds")
    if not os.path.basename(p["path"]).endswith(".conf"):
        refuse("path must end in .conf (the Include reads <dir>/*.conf)")
    sshd = module.get_bin_path("sshd", opt_dirs=["/usr/sbin"])
    if sshd is None and module.check_mode:
        # A fresh host whose openssh-server the same run would install: predict, do not fail.
        module.warn("sshd is not installed yet: the drop-in was rendered but not validated")
        module.exit_json(
            changed=True,
            diff=[
                {"before_header": p["path"], "after_header": p["path"], "before": "", "after": dropin_text}
            ],
            effective={},
            refusals=[],
            reloaded=False,
            rollback_armed=False,
            host_keys={},
        )
    if sshd is None:
        refuse("sshd not found (is openssh-server installed?)")
    keygen = module.get_bin_path("ssh-keygen", required=True)
    if p["rollback_timeout"]:
        module.get_bin_path("systemd-run", required=True)

    # 2. Read the live state.
    main_before = read(p["main_config"])
    if main_before is None:
        refuse(f"main_config {p['main_config']} does not exist (is openssh-server installed?)")
    dropin_before = read(p["path"])
    dropin_dir = os.path.dirname(p["path"])
    wanted_include = include_line(dropin_dir)
    main_after = ensure_include_first(main_before, wanted_include)

    moduli_before = moduli_after = None
    moduli_summary = None
    if p["moduli_min_bits"]:
        moduli_before = read(MODULI)
        if moduli_before is not None:
            moduli_after, removed, kept = filter_moduli(moduli_before, p["moduli_min_bits"])
            if removed:
                if kept == 0:
                    refuse(f"moduli_min_bits {p['moduli_min_bits']} would remove every modulus of {MODULI}")
                moduli_summary = (
                    f"{removed + kept} moduli\n",
                    f"{kept} moduli of at least {p['moduli_min_bits']} bits ({removed} removed)\n",
                )

    remove_paths = []
    for kind in p["remove_host_keys"]:
        base = HOST_KEY.format(kind)
        remove_paths.extend(f for f in (base, base + ".pub") if os.path.lexists(f))
    rsa_path = HOST_KEY.format("rsa")
    bits_before = rsa_bits(runner, keygen, rsa_path + ".pub") if p["rsa_host_key_bits"] else 0
    regenerate_rsa = bool(p["rsa_host_key_bits"]) and bits_before < p["rsa_host_key_bits"]

    login_user, login_addr = login_origin()
    user = (
        p["connecting_user"] or login_user or os.environ.get("SUDO_USER") or pwd.getpwuid(os.getuid()).pw_name
    )
    warnings = []
    addr = p["connecting_from"] or login_addr
    if not addr:
        warnings.append(
            "connecting_from unknown: Match Address and user@host patterns evaluated for 127.0.0.1"
        )

    # 3. Validate the candidate on a temporary copy of the tree, and read its effective configuration.
    if not os.path.isdir("/run/sshd"):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd -t needs it; ssh.service creates it too
    tmp = tempfile.mkdtemp(prefix="bulwark-sshd-")
    try:
        tmp_dir = os.path.join(tmp, "sshd_config.d")
        os.mkdir(tmp_dir)
        for other in glob.glob(os.path.join(dropin_dir, "*.conf")):
            if os.path.abspath(other) != os.path.abspath(p["path"]) and os.path.isfile(other):
                shutil.copy(other, tmp_dir)
        with open(os.path.join(tmp_dir, os.path.basename(p["path"])), "w", encoding="utf-8") as handle:
            handle.write(dropin_text)
        tmp_main = os.path.join(tmp, "sshd_config")

        def untemp(text):
            """Error messages name the live files, not the temporary copies."""
            return text.replace(tmp_dir, dropin_dir).replace(tmp_main, p["main_config"])

        with open(tmp_main, "w", encoding="utf-8") as handle:
            handle.write(replace_include(main_after, wanted_include, include_line(tmp_dir)))
        rc, out, err = runner.run([sshd, "-t", "-f", tmp_main], check=False)
        if rc != 0:
            refuse(f"sshd -t rejects the candidate configuration: {untemp((err or out).strip())}")
        spec = f"user={user},host={addr or '127.0.0.1'},addr={addr or '127.0.0.1'}"
        rc, out, err = runner.run([sshd, "-T", "-f", tmp_main, "-C", spec], check=False)
        if rc != 0:
            refuse(f"sshd -T -C {spec} failed on the candidate configuration: {untemp((err or out).strip())}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    eff = eff_mod.parse(out)

    # 4. The lockout guard.
    facts, key_types = user_facts(module, user, eff)
    if module.check_mode:
        facts["groups"] = sorted(set(facts["groups"]) | set(p["assume_groups"]))
    host_key_types = []
    for path in eff.lines("hostkey"):
        if path in remove_paths:
            continue
        if path == rsa_path and regenerate_rsa:
            host_key_types.append("ssh-rsa")
        elif os.path.exists(path):
            kind = key_type(path)
            if kind:
                host_key_types.append(kind)
    facts.update(
        {
            "authorized_keys": key_types,
            "addr": addr,
            "host": addr,
            "host_key_types": host_key_types,
            "client_algorithms": {k: v for k, v in (p["client_algorithms"] or {}).items() if v},
        }
    )
    refusals = guard_mod.check(eff, facts)
    if refusals and p["guard"]:
        refuse(
            "refusing an sshd configuration that would lock out " + f"{user}: " + "; ".join(refusals),
            refusals=refusals,
            effective=eff.as_dict(),
        )
    if refusals:
        warnings.append("guard disabled; it would have refused: " + "; ".join(refusals))
    warnings.extend(other_dropins_first(dropin_dir, os.path.basename(p["path"]), p["options"]))

    # 5. The diff.
    diff = []
    config_changed = False
    if dropin_before != dropin_text:
        config_changed = True
        diff.append(
            {
                "before_header": p["path"],
                "after_header": p["path"],
                "before": dropin_before or "",
                "after": dropin_text,
            }
        )
    if main_after != main_before:
        config_changed = True
        diff.append(
            {
                "before_header": p["main_config"],
                "after_header": p["main_config"],
                "before": main_before,
                "after": main_after,
            }
        )
    if moduli_summary:
        diff.append(
            {
                "before_header": MODULI,
                "after_header": MODULI,
                "before": moduli_summary[0],
                "after": moduli_summary[1],
            }
        )
    host_keys = {
        "removed": remove_paths,
        "rsa_bits_before": bits_before,
        "rsa_bits_after": p["rsa_host_key_bits"] if regenerate_rsa else bits_before,
    }
    if remove_paths or regenerate_rsa:
        before = [f"{f} present\n" for f in remove_paths]
        after = [f"{f} removed\n" for f in remove_paths]
        if regenerate_rsa:
            before.append(f"{rsa_path}: RSA {bits_before or 'missing'} bits\n")
            after.append(f"{rsa_path}: RSA {p['rsa_host_key_bits']} bits (regenerated)\n")
        diff.append(
            {
                "before_header": "host keys",
                "after_header": "host keys",
                "before": "".join(before),
                "after": "".join(after),
            }
        )
    wrong_modes = [
        (path, stat.S_IMODE(os.stat(path).st_mode))
        for path in (p["main_config"], p["path"])
        if os.path.exists(path) and stat.S_IMODE(os.stat(path).st_mode) != mode
    ]
    if wrong_modes:
        diff.append(
            {
                "before_header": "permissions",
                "after_header": "permissions",
                "before": "".join(f"{path} {old:04o}\n" for path, old in wrong_modes),
                "after": "".join(f"{path} {mode:04o}\n" for path, _old in wrong_modes),
            }
        )
    changed = bool(diff)
    result = {
        "changed": changed,
        "diff": diff,
        "effective": eff.as_dict(),
        "refusals": refusals,
        "reloaded": False,
        "rollback_armed": False,
        "host_keys": host_keys,
    }
    for warning in warnings:
        module.warn(warning)
    if not changed or module.check_mode:
        module.exit_json(**result)

    # 6. Act: back up, write, reload (restore on failure), arm the rollback.
    pending = (
        runner.run(commit_confirm.pending_command(CONCERN), check=False)[0] == 0
        if p["rollback_timeout"]
        else False
    )
    if config_changed and not pending:
        os.makedirs(backup_dir, mode=0o700, exist_ok=True)
        os.chmod(backup_dir, 0o700)
        for name in ("armed", "rolled-back", "dropin.absent"):
            if os.path.exists(os.path.join(backup_dir, name)):
                os.remove(os.path.join(backup_dir, name))
        write(module, os.path.join(backup_dir, "main_config"), main_before, 0o600)
        if dropin_before is None:
            open(os.path.join(backup_dir, "dropin.absent"), "w").close()
        else:
            write(module, os.path.join(backup_dir, "dropin"), dropin_before, 0o600)

    def restore():
        write(module, p["main_config"], main_before, mode)
        if dropin_before is None:
            if os.path.exists(p["path"]):
                os.remove(p["path"])
        else:
            write(module, p["path"], dropin_before, mode)

    if dropin_before != dropin_text:
        write(module, p["path"], dropin_text, mode)
    if main_after != main_before:
        write(module, p["main_config"], main_after, mode)
    for path, _old in wrong_modes:
        os.chmod(path, mode)  # unchanged content, wrong mode
    for path in remove_paths:
        os.remove(path)
    if regenerate_rsa:
        gen_dir = tempfile.mkdtemp(dir=os.path.dirname(rsa_path), prefix=".bulwark-keygen-")
        try:
            new = os.path.join(gen_dir, "key")
            runner.run(
                [keygen, "-q", "-t", "rsa", "-b", str(p["rsa_host_key_bits"]), "-N", "", "-C", "", "-f", new],
                what="ssh-keygen",
            )
            os.chmod(new, 0o600)
            os.chmod(new + ".pub", 0o644)
            os.replace(new + ".pub", rsa_path + ".pub")
            os.replace(new, rsa_path)
        finally:
            shutil.rmtree(gen_dir, ignore_errors=True)
    if moduli_summary:
        write(module, MODULI, moduli_after)

    rc, out, err = runner.run([sshd, "-t"], check=False)
    if rc != 0:
        restore()
        module.fail_json(
            msg=f"sshd -t rejects the live configuration; previous files restored: {(err or out).strip()}",
            **{**result, "changed": True},
        )
    active = runner.run(["systemctl", "is-active", "--quiet", p["service"]], check=False)[0] == 0
    if p["reload"] and active:
        rc, out, err = runner.run(["systemctl", "reload", p["service"]], check=False)
        if rc != 0:
            restore()
            runner.run(["systemctl", "reload", p["service"]], check=False)
            module.fail_json(
                msg=f"reloading {p['service']} failed; previous files restored: {(err or out).strip()}",
                **{**result, "changed": True},
            )
        if not wait_for_listener(listeners(eff.lines("listenaddress"))):
            restore()
            runner.run(["systemctl", "reload", p["service"]], check=False)
            module.fail_json(
                msg="sshd did not listen again within 10 s of the reload; previous files restored",
                **{**result, "changed": True},
            )
        result["reloaded"] = True
    if p["rollback_timeout"] and config_changed:
        if pending:
            runner.run(commit_confirm.disarm_command(CONCERN), check=False)
        script = restore_script(backup_dir, p["main_config"], p["path"], p["service"])
        runner.run(
            commit_confirm.arm_command(CONCERN, p["rollback_timeout"], script), what="arming the rollback"
        )
        open(os.path.join(backup_dir, "armed"), "w").close()
        result["rollback_armed"] = True
    module.exit_json(**result)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# Copyright: (c) 2026, bulwark.hardening maintainers
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module bulwark.hardening.sshd_config: sshd settings as a validated, lockout-guarded drop-in."""
# ruff: noqa: E402  (Ansible modules put DOCUMENTATION/EXAMPLES/RETURN before the imports)

DOCUMENTATION = r"""
---
module: sshd_config
short_description: sshd settings as a drop-in read first, validated, lockout-guarded, with commit-confirm
description:
  - Renders O(options) and O(match) into one drop-in (O(path)) that sshd reads before Debian's and
    cloud-init's drop-ins (sshd keeps the first value it sees for most keywords), and makes sure
    C(Include <dir of path>/*.conf) is the first directive of O(main_config).
  - Before anything live changes, the candidate is validated on a temporary copy of the configuration
    tree with C(sshd -t), and its effective configuration for the controller's real connection is read with
    C(sshd -T -C user=...,host=...,addr=...,laddr=...,lport=...) (Match blocks evaluated, C(LocalAddress) and
    C(LocalPort) included).
  - A lockout guard refuses, with a message naming the setting and with no change, a configuration that
    would shut the connecting user out (see O(guard)).
  - Every change is applied with commit-confirm. The host's rollback is armed B(before) anything is
    written (the previous files are kept root-only in O(backup_dir)); if it cannot be armed, nothing is
    applied. Then the files are written, checked with C(sshd -t), sshd is reloaded (if it runs) and the
    module waits until sshd answers on the controller's address and port again. A failure after arming
    restores the previous files at once. The module returns RV(pending=true); the change is kept only when
    M(bulwark.hardening.commit_confirm) confirms it over a new connection within O(rollback_timeout)
    seconds, otherwise the host restores the previous drop-in and main config and reloads sshd by itself.
  - A call while an earlier change still waits for its confirmation reports RV(changed=true) and
    RV(pending=true) even if nothing more changes, so that it is confirmed rather than undone later.
  - Optionally removes weak host keys, regenerates a short RSA host key, and removes small DH moduli.
  - Unknown keywords, C(Match) and C(Include) in O(options), and control characters (a newline) in any
    keyword, value or Match criteria are refused by name.
version_added: "0.1.0"
author: bulwark.hardening maintainers (@bulwark-hardening)
extends_documentation_fragment:
  - bulwark.hardening.commit_confirm
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
        parent processes). With O(guard) on, a run where it cannot be found is refused.
      - Its alias C(controller_address) is the firewall's name for the same address.
    type: str
    aliases: [controller_address]
  local_address:
    description:
      - The host's address that the controller's SSH connection reached (the third field of
        E(SSH_CONNECTION)), for C(ListenAddress) and C(Match LocalAddress).
      - Defaults to the one of the SSH login the module runs under. With O(guard) on, a run where it cannot be
        found is refused, naming it.
    type: str
    aliases: [controller_local_address]
  local_port:
    description:
      - The port that the controller's SSH connection reached (the fourth field of E(SSH_CONNECTION)),
        for C(Port), C(ListenAddress) and C(Match LocalPort). A change that no longer serves it is refused;
        to move sshd to another port, serve both, confirm over the new one, then drop the old.
      - Defaults to the one of the SSH login the module runs under. With O(guard) on, a run where it cannot be
        found is refused, naming it.
    type: int
    aliases: [controller_port]
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
      - Refuse configurations that would lock the connecting user out, evaluated for the controller's real
        connection - C(Port) and C(ListenAddress) that no longer serve its local address and port, user and
        group filters (Match blocks included, C(LocalAddress) and C(LocalPort) too), root login, C(UsePAM no)
        while the user's password is locked (C(!) in C(/etc/shadow)), no usable authentication method,
        unsatisfiable C(AuthenticationMethods), C(ForceCommand), no host key usable with C(HostKeyAlgorithms),
        algorithms disjoint from O(client_algorithms), and C(StrictModes yes) while the connecting user's
        keys file, C(~/.ssh), home or a directory above them is owned by another user or writable by others
        (sshd's own C(safe_path) check, with Debian's one-member group rule). What it cannot evaluate (the
        connection unknown) is refused too.
      - V(false) is the emergency override, and for tests; commit-confirm still applies.
    type: bool
    default: true
  validate_only:
    description:
      - Only check the candidate with C(sshd -t) on a temporary copy of the configuration tree, and change
        nothing (RV(changed=false) always). This is what only the host can judge, asked before any role
        changes the host (M(bulwark.hardening.validate_input) does); the guard, which judges the accounts
        and groups that earlier roles create, runs when the change is made.
    type: bool
    default: false
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
      - Seconds, counted from the end of the apply, within which M(bulwark.hardening.commit_confirm) must
        confirm the change over a new connection; otherwise the host restores the previous drop-in and main
        config and reloads sshd. At least 5.
    type: int
    default: 60
  mode:
    description:
      - Permissions of O(main_config) and O(path) (octal string). sshd reads them as root; nobody else needs
        to read how it is hardened.
    type: str
    default: "0600"
  backup_dir:
    description: Where the last confirmed files are kept for the rollback (created root-only, 0700).
    type: path
    default: /var/lib/bulwark/sshd
requirements:
  - On the host, the OpenSSH server (C(sshd), C(ssh-keygen)) and systemd (C(systemctl) for the reload,
    C(systemd-run) for the rollback timer).
notes:
  - Check mode runs the full validation and guard on the temporary tree and shows the diff; nothing live
    changes (except creating sshd's runtime directory C(/run/sshd), which C(sshd -t) needs and ssh.service
    creates itself).
  - Host key removal and moduli filtering are not undone by the rollback; the guard checks that a usable
    host key remains.
seealso:
  - module: bulwark.hardening.commit_confirm
attributes:
  action:
    support: full
    description: The action plugin confirms over a new connection with O(reconnect_and_confirm).
  check_mode:
    support: full
    description: Validates and guards the candidate on a temporary tree and reports the changes;
      nothing live changes.
  diff_mode:
    support: full
    description: Shows the drop-in and main config before and after, and summaries of moduli and
      host key changes.
  platform:
    support: full
    platforms: posix
    description: Debian 12 and 13 with systemd.
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
    local_address: 192.0.2.1
    local_port: 22
    rollback_timeout: 60
  register: sshd

- name: Drop the connection so that the confirmation logs in anew
  ansible.builtin.meta: reset_connection

- name: Confirm over the new connection
  bulwark.hardening.commit_confirm:
    concern: sshd
  when: sshd.pending
"""

RETURN = r"""
confirmed:
  description: With O(reconnect_and_confirm), that the change was confirmed over a new connection.
  returned: when a change was pending and O(reconnect_and_confirm=true)
  type: bool
changed:
  description: Whether a file, host key or the moduli changed, or an earlier change still awaits confirmation.
  returned: always
  type: bool
pending:
  description:
    - Whether a change is live and waits for its confirmation (M(bulwark.hardening.commit_confirm) with
      O(bulwark.hardening.commit_confirm#module:concern=sshd) over a new connection); unconfirmed, the host
      restores the previous configuration after O(rollback_timeout) seconds.
  returned: always
  type: bool
diff:
  description: One before/after entry per changed item (drop-in, main config, moduli and host keys summaries).
  returned: when changed
  type: list
  elements: dict
effective:
  description: The effective settings for the controller's connection (C(sshd -T -C) of the candidate;
    lower-case keys, repeated keywords as lists).
  returned: when the candidate was evaluated
  type: dict
  sample: {"permitrootlogin": "no", "hostkey": ["/etc/ssh/ssh_host_ed25519_key"], "port": ["22"]}
validated:
  description: With O(validate_only), that C(sshd -t) accepted the candidate.
  returned: when O(validate_only=true)
  type: bool
refusals:
  description: Why the guard refused (also in msg); empty when it accepted.
  returned: always
  type: list
  elements: str
reloaded:
  description: Whether sshd was reloaded.
  returned: success
  type: bool
host_keys:
  description: Host key actions (files removed, RSA key size before and after).
  returned: success
  type: dict
  sample: {"removed": ["/etc/ssh/ssh_host_ecdsa_key"], "rsa_bits_before": 3072, "rsa_bits_after": 4096}
restored:
  description:
    - Whether the last confirmed configuration was put back after a step of the apply failed (V(false) - the
      restore FAILED, the host needs a person; the message names the step).
  returned: when the apply failed after the rollback was armed
  type: bool
"""

import functools
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bulwark.hardening.plugins.module_utils.host import accounts, executor, files, waits
from ansible_collections.bulwark.hardening.plugins.module_utils.host.commands import Runner
from ansible_collections.bulwark.hardening.plugins.module_utils.host.commit_confirm import Transaction
from ansible_collections.bulwark.hardening.plugins.module_utils.host.files import HostError
from ansible_collections.bulwark.hardening.plugins.module_utils.host.keys import regenerate_host_key
from ansible_collections.bulwark.hardening.plugins.module_utils.host.origin import ssh_origin
from ansible_collections.bulwark.hardening.plugins.module_utils.host.plan import Plan
from ansible_collections.bulwark.hardening.plugins.module_utils.host.sandbox import Sandbox
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd import decide, effective, guard, plan
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd.decide import Failed, nothing, refused
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd.spec import ARGUMENT_SPEC

CONCERN = "sshd"


def read_live(runner, p, keygen):
    """Everything the plan needs from the host, read before anything is decided."""
    live = {"main": files.read(p["main_config"]), "dropin": files.read(p["path"])}
    if live["main"] is None:
        raise refused(f"main_config {p['main_config']} does not exist (is openssh-server installed?)")
    others = decide.other_dropin_paths(p["path"], files.names(os.path.dirname(p["path"])))
    live["others"] = [(path, files.read(path)) for path in others if files.is_file(path)]
    live["moduli"] = files.read(plan.MODULI) if p["moduli_min_bits"] else None
    live["remove"] = [f for f in decide.host_key_files(p["remove_host_keys"]) if files.mode_of(f) is not None]
    live["rsa_bits"] = 0
    rsa_pub = plan.HOST_KEY.format("rsa") + ".pub"
    if p["rsa_host_key_bits"] and files.mode_of(rsa_pub) is not None:
        live["rsa_bits"] = decide.key_bits(*runner.run([keygen, "-lf", rsa_pub])[:2])
    live["modes"] = {path: files.mode_of(path) for path in (p["main_config"], p["path"])}
    return live


def evaluate(runner, sshd, p, live, *, dropin_text, main_after, spec):
    """`sshd -t` and `sshd -T -C spec` (spec None: only `sshd -t`) of the candidate, in a sandbox copy."""
    files.runtime_dir("/run/sshd")  # sshd -t needs it; ssh.service creates it too
    dropin_dir = os.path.dirname(p["path"])
    with Sandbox("bulwark-sshd-") as box:
        for path, text in live["others"]:
            box.write(os.path.join("sshd_config.d", os.path.basename(path)), text)
        box.write(os.path.join("sshd_config.d", os.path.basename(p["path"])), dropin_text)
        tmp_dir = box.path("sshd_config.d")
        tmp_main = box.write("sshd_config", decide.sandbox_main(main_after, dropin_dir, tmp_dir))
        renames = {tmp_dir: dropin_dir, tmp_main: p["main_config"]}  # messages name the live files
        rc, out, err = runner.run([sshd, "-t", "-f", tmp_main])
        if rc != 0:
            message = plan.quote_lines(decide.untemp(err or out, renames), p["path"], dropin_text)
            raise refused(f"sshd -t rejects the candidate configuration: {message}")
        if spec is None:
            return None
        rc, out, err = runner.run([sshd, "-T", "-f", tmp_main, "-C", spec])
        if rc != 0:
            why = decide.untemp(err or out, renames)
            raise refused(f"sshd -T -C {spec} cannot evaluate the candidate configuration: {why}")
        return effective.parse(out)


def user_facts(conn, eff, assume_groups):
    """The connecting user's account, groups, password state, authorized key types, and what sshd's
    StrictModes check reads of each keys file that holds keys."""
    entry = accounts.user(conn["user"])
    if entry is None:
        raise refused(f"connecting_user {conn['user']!r} does not exist on the host")
    keys, key_files = [], []
    for path in plan.authorized_keys_paths(
        eff.words("authorizedkeysfile"), entry.name, entry.home, entry.uid
    ):
        found = plan.key_types(files.read(path))
        keys.extend(found)
        if found:
            key_files.append({"path": path, "keys": len(found), **strict_modes_facts(path, entry.home)})
    shadow = plan.account(files.read("/etc/shadow"), entry.name)
    groups = sorted(set(accounts.group_names_of(entry)) | set(assume_groups))
    return {"uid": entry.uid}, groups, shadow, keys, key_files


def strict_modes_facts(path, home):
    """The canonical path of a keys file and the status of each path sshd's safe_path() checks above it,
    with the group's members where a path is group-writable."""
    real = files.real_path(path)  # None where sshd's realpath() fails too
    chain = []
    for name in decide.strict_modes_paths(real, files.real_path(home)):
        status = files.status(name)
        owner = accounts.user_by_uid(status[2]) if status else None
        group = accounts.group_by_gid(status[3]) if status and status[1] & 0o020 else None
        primary = [account.uid for account in accounts.users() if account.gid == group.gid] if group else []
        chain.append(decide.strict_modes_entry(name, status, owner and owner.name, group, primary))
        if status is None:
            break
    return {"real": real, "chain": chain}


def judge(module, runner, p, live, *, tools, candidate, mode):
    """The candidate evaluated for the controller's real connection and guarded: (result, what to apply);
    Failed (nothing applied) when the guard refuses or cannot evaluate the connection."""
    conn = plan.connection(p, ssh_origin(), accounts.invoking_user())
    warnings = decide.unknown_connection(conn, p["guard"])
    dropin, main = candidate
    eff = evaluate(
        runner, tools["sshd"], p, live, dropin_text=dropin, main_after=main, spec=plan.check_spec(conn)
    )
    entry, groups, shadow, keys, key_files = user_facts(
        conn, eff, p["assume_groups"] if module.check_mode else []
    )
    public = {path: files.read(path + ".pub") for path in eff.lines("hostkey")}
    host_keys = plan.host_key_types(eff.lines("hostkey"), public, live["remove"], decide.needs_rsa(p, live))
    algorithms = p["client_algorithms"]
    facts = plan.facts(
        conn, entry, groups, shadow, authorized=keys, host_keys=host_keys, client_algorithms=algorithms
    )
    facts["key_files"] = key_files  # for the StrictModes check
    refusals = guard.check(eff, facts)
    return decide.outcome(
        p, live, eff, conn, candidate=candidate, mode=mode, refusals=refusals, warnings=warnings, tools=tools
    )


def wait_for_sshd(targets):
    """A reload re-executes sshd, which closes its listeners for a moment: the confirmation's new
    connection must not find them closed."""
    if not waits.listener(targets, b"SSH-", timeout=10.0):
        where = ", ".join(f"{a}:{port}" for a, port in targets)
        raise HostError(f"sshd did not answer on {where} within 10 s of the reload")


def confirm(runner, p, live, want, transaction):
    """Commit-confirm for the change: the last confirmed files kept and restored (unless an unconfirmed
    change is armed already: its restore stays), the apply's time covered, sshd's answer awaited."""

    def prepare():
        files.private_dir(p["backup_dir"])
        existed = live["dropin"] is not None
        steps = plan.restore_steps(
            p["main_config"], p["path"], backup_dir=p["backup_dir"], dropin_existed=existed,
            service=p["service"], reload=want["reload"],
        )  # fmt: skip
        return decide.backup_ops(p, live), steps

    check = ("waiting for sshd to answer after the reload", lambda: wait_for_sshd(want["targets"]))
    return executor.Confirm(
        transaction, p["rollback_timeout"], prepare, staged=decide.PERSISTS_NOTHING,
        apply_seconds=20,  # sshd -t, the reload and the listener wait (10 s)
        check=check if want["reload"] else None, restored=f"At once, {decide.RESTORED}",
    )  # fmt: skip


def decided(module, runner, p, tools, mode):
    """(live, result, want): the host read and the candidate judged against it."""
    live = read_live(runner, p, tools["keygen"])
    candidate = plan.candidate(p["options"], p["match"], live["main"], p["path"])
    return (live, *judge(module, runner, p, live, tools=tools, candidate=candidate, mode=mode))


def run(module, runner, p):
    mode = plan.check_params(p)
    sshd = runner.which("sshd")
    if sshd is None and module.check_mode:
        return decide.predicted_install(p, mode)
    if sshd is None:
        raise refused("sshd not found (is openssh-server installed?)")
    tools = {"sshd": sshd, "keygen": runner.which("ssh-keygen", required=True)}
    runner.which("systemd-run", required=True)
    if p["validate_only"]:
        live = read_live(runner, p, tools["keygen"])
        dropin, main = plan.candidate(p["options"], p["match"], live["main"], p["path"])
        evaluate(runner, sshd, p, live, dropin_text=dropin, main_after=main, spec=None)
        return {
            "changed": False,
            "pending": False,
            "validated": True,
            "refusals": [],
            "msg": decide.VALIDATED,
        }
    live, result, want = decided(module, runner, p, tools, mode)
    # Commit-confirm: what an interrupted run left is settled first; an earlier change may still wait.
    transaction, run_plan = Transaction(runner, CONCERN), executor.Executor(runner, module.check_mode)
    settled = run_plan.settle(transaction)
    if module.check_mode:
        return decide.predicted(result, settled, transaction.pending())
    for note in decide.settled_notes(settled):
        module.warn(note)
    if settled.changed:  # a leftover was finished: judge against what is live now
        live, result, want = decided(module, runner, p, tools, mode)
    want["reload"] = False
    if result["diff"]:
        active = runner.run(["systemctl", "is-active", "--quiet", p["service"]])[0] == 0
        want["reload"] = p["reload"] and active
    regenerate = functools.partial(regenerate_host_key, runner, want["keygen"])
    changes = decide.apply_plan(p, live, want, regenerate) if result["diff"] else Plan()
    if not changes.ops and not transaction.pending():
        return result
    try:
        run_plan.run(changes, confirm(runner, p, live, want, transaction))
    except executor.ConfirmFailed as exc:
        restored = {} if exc.restored is None else {"restored": bool(exc.restored)}
        raise Failed(str(exc), **{**result, "changed": exc.changed, **restored}) from None
    result.update(pending=True, reloaded=want["reload"])
    if not changes.ops:  # reported so that the role confirms it in a full window, never left to the timer
        result.update(changed=True, msg=decide.WAITS)
    return result


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        result = run(module, Runner(module), module.params)
    except executor.ConfirmFailed as exc:  # what an earlier run left could not be settled
        module.fail_json(msg=str(exc), changed=exc.changed, refusals=[])
    except (plan.PlanError, HostError) as exc:
        module.fail_json(msg=nothing(exc), changed=False, refusals=[])
    except Failed as exc:
        for warning in exc.result.pop("warnings", []):
            module.warn(warning)
        module.fail_json(msg=str(exc), **exc.result)
    for warning in result.pop("warnings", []):
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()

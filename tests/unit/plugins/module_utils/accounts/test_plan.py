import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from ansible_collections.bulwark.hardening.plugins.module_utils.accounts import authorized_keys as ak
from ansible_collections.bulwark.hardening.plugins.module_utils.accounts import plan as p


def key(comment):
    raw = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return f"{raw} {comment}"


ALICE, ALICE2, BOB, DEPLOY, STRAY = key("alice"), key("alice2"), key("bob"), key("deploy"), key("stray")


def live(**extra):
    state = {
        "users": {
            "root": {"home": "/root", "shell": "/bin/bash", "groups": ["root"]},
            "deploy": {
                "home": "/home/deploy",
                "shell": "/bin/bash",
                "groups": ["deploy", "sudo", "sshusers"],
            },
            "bob": {"home": "/home/bob", "shell": "/bin/bash", "groups": ["bob", "sshusers"]},
        },
        "group_exists": True,
        "authorized_keys": {"deploy": DEPLOY + "\n", "bob": BOB + "\n" + STRAY + "\n", "root": None},
        "authorized_keys2": {},
    }
    state.update(extra)
    return state


def plan_for(declared, state, **options):
    return p.plan(declared, state, "sshusers", connecting_user="deploy", **options)


def admins(*entries):
    return p.validate_admins(list(entries))


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "Bad Name"}, r"admins\[0\]\.name"),
        ({"name": "x", "state": "gone"}, r"admins\[0\] \(x\)\.state"),
        ({"name": "root", "state": "absent"}, "root cannot be declared absent"),
        ({"name": "x", "shell": "bash"}, r"\.shell must be a plain absolute path"),
        ({"name": "x", "shell": "/bin/bash\n"}, r"\.shell must be a plain absolute path"),
        # fullmatch: a trailing line break would end the sudoers User_Alias line.
        ({"name": "alice\n"}, r"admins\[0\]\.name 'alice\\n' is not a valid user name"),
        ({"name": "x", "ssh_keys": ["ssh-ed25519 nope"]}, r"admins\[0\] \(x\)\.ssh_keys\[0\]"),
        ({"name": "x", "ssh_keys": [1]}, r"ssh_keys\[0\] must be a string"),
        ({"name": "x", "colour": "red"}, "unknown key"),
        ({"name": "x", "sudo": "yes"}, r"\.sudo must be true or false"),
    ],
)
def test_validation_names_the_bad_option(entry, message):
    with pytest.raises(p.AdminSpecError, match=message):
        p.validate_admins([entry])


def test_validation_refuses_duplicates_and_dedups_keys():
    with pytest.raises(p.AdminSpecError, match="declared twice"):
        p.validate_admins([{"name": "a"}, {"name": "a"}])
    (admin,) = p.validate_admins([{"name": "a", "ssh_keys": [ALICE, ALICE]}])
    assert len(admin["keys"]) == 1
    assert admin["state"] == "present"
    assert admin["shell"] == "/bin/bash"


# --- planning -------------------------------------------------------------------------------------


def test_new_admin_is_created_in_the_group_with_exactly_its_keys():
    result = plan_for(admins({"name": "alice", "ssh_keys": [ALICE, ALICE2]}), live())
    assert result["create"] == [{"name": "alice", "shell": "/bin/bash", "groups": ["sshusers"]}]
    before, after = result["keys"]["alice"]
    assert before is None
    assert [k.comment for k in ak.parse_file(after)[0]] == ["alice", "alice2"]
    assert not result["remove"]


def test_undeclared_key_is_removed_from_a_declared_admin():
    result = plan_for(admins({"name": "bob", "ssh_keys": [BOB]}), live())
    before, after = result["keys"]["bob"]
    assert ak.identities(ak.parse_file(after)[0]) == {ak.parse_key(BOB).identity}
    assert "stray" in before
    assert not result["create"]
    assert not result["modify"]


def test_nothing_to_do_when_live_matches():
    state = live()
    state["authorized_keys"]["bob"] = ak.render_file([ak.parse_key(BOB)], p.HEADER)
    result = plan_for(admins({"name": "bob", "ssh_keys": [BOB]}), state)
    assert p.describe(result, "sshusers") == []


def test_absent_admin_is_removed_and_its_keys_revoked_from_other_accounts():
    state = live()
    state["authorized_keys"]["root"] = BOB + "\n# keep me\n"
    state["authorized_keys"]["deploy"] = DEPLOY + "\n" + BOB + "\n"
    result = plan_for(admins({"name": "bob", "state": "absent", "ssh_keys": [BOB]}), state)
    assert result["remove"] == ["bob"]
    assert "bob" not in result["keys"]
    assert result["keys"]["root"][1] == "# keep me\n"
    assert result["keys"]["deploy"][1] == DEPLOY + "\n"


def test_absent_admin_that_does_not_exist_is_a_no_op():
    result = plan_for(admins({"name": "ghost", "state": "absent"}), live())
    assert p.describe(result, "sshusers") == []


def test_shell_and_group_are_corrected_on_existing_accounts():
    state = live()
    state["users"]["bob"]["groups"] = ["bob"]
    result = plan_for(admins({"name": "bob", "ssh_keys": [BOB], "shell": "/bin/sh"}), state)
    assert result["modify"] == [{"name": "bob", "shell": "/bin/sh", "add_groups": ["sshusers"]}]


def test_missing_group_is_created_and_connecting_user_joins_it():
    state = live(group_exists=False)
    state["users"]["deploy"]["groups"] = ["deploy"]
    result = plan_for([], state)
    assert result["group_create"] is True
    assert result["modify"] == [{"name": "deploy", "add_groups": ["sshusers"]}]
    assert result["keys"] == {}


def test_non_exclusive_keeps_existing_keys_and_adds_declared_ones():
    result = plan_for(admins({"name": "bob", "ssh_keys": [ALICE]}), live(), exclusive=False)
    after = result["keys"]["bob"][1]
    assert {k.comment for k in ak.parse_file(after)[0]} == {"bob", "stray", "alice"}


def test_legacy_authorized_keys2_is_removed_for_declared_admins():
    state = live(authorized_keys2={"bob": STRAY + "\n", "root": STRAY + "\n"})
    result = plan_for(admins({"name": "bob", "ssh_keys": [BOB]}), state)
    assert result["remove_keys2"] == ["bob"]


def test_sudoers_rule_lists_present_admins_with_sudo():
    declared = admins(
        {"name": "alice"},
        {"name": "bob", "state": "absent"},
        {"name": "carol", "sudo": False},
        {"name": "dan"},
    )
    text = p.render_sudoers(declared, nopasswd=True)
    assert "Defaults use_pty\n" in text
    assert 'Defaults logfile="/var/log/sudo.log"\n' in text
    assert "User_Alias BULWARK_ADMINS = alice, dan\n" in text
    assert "BULWARK_ADMINS ALL=(ALL:ALL) NOPASSWD: ALL\n" in text
    assert "NOPASSWD" not in p.render_sudoers(declared, nopasswd=False)
    assert "User_Alias" not in p.render_sudoers([], nopasswd=True)


# --- the lockout guard ----------------------------------------------------------------------------


def test_guard_refuses_to_remove_the_connecting_user():
    with pytest.raises(p.LockoutError, match="connecting_user"):
        plan_for(admins({"name": "deploy", "state": "absent"}), live())


def test_guard_refuses_a_nologin_shell_for_the_connecting_user():
    with pytest.raises(p.LockoutError, match="lock"):
        plan_for(admins({"name": "deploy", "ssh_keys": [DEPLOY], "shell": "/usr/sbin/nologin"}), live())


def test_guard_refuses_to_strip_all_keys_of_the_connecting_user():
    with pytest.raises(p.LockoutError, match="every key"):
        plan_for(admins({"name": "deploy", "ssh_keys": [ALICE]}), live())
    with pytest.raises(p.LockoutError, match="every key"):
        plan_for(admins({"name": "deploy", "ssh_keys": []}), live())


def test_guard_refuses_to_remove_the_named_connecting_key():
    state = live()
    state["authorized_keys"]["deploy"] = DEPLOY + "\n" + ALICE + "\n"
    # Keeping some key is not enough when the controller said which key it uses.
    with pytest.raises(p.LockoutError, match="SHA256:"):
        plan_for(admins({"name": "deploy", "ssh_keys": [ALICE]}), state, connecting_key=DEPLOY)
    result = plan_for(admins({"name": "deploy", "ssh_keys": [DEPLOY]}), state, connecting_key=DEPLOY)
    assert ak.identities(ak.parse_file(result["keys"]["deploy"][1])[0]) == {ak.parse_key(DEPLOY).identity}


def test_guard_message_never_contains_the_key():
    with pytest.raises(p.LockoutError) as err:
        plan_for(admins({"name": "deploy", "ssh_keys": [ALICE]}), live(), connecting_key=DEPLOY)
    assert DEPLOY.split()[1] not in str(err.value)


def test_guard_refuses_revoking_the_connecting_key_through_an_absent_admin():
    state = live()
    state["authorized_keys"]["deploy"] = BOB + "\n"
    with pytest.raises(p.LockoutError):
        plan_for(admins({"name": "bob", "state": "absent", "ssh_keys": [BOB]}), state)


def test_guard_allows_keeping_one_current_key():
    state = live()
    state["authorized_keys"]["deploy"] = DEPLOY + "\n" + STRAY + "\n"
    result = plan_for(admins({"name": "deploy", "ssh_keys": [DEPLOY]}), state)
    assert "stray" not in result["keys"]["deploy"][1]


def test_guard_counts_the_legacy_file_of_the_connecting_user():
    state = live(authorized_keys2={"deploy": ALICE + "\n"})
    state["authorized_keys"]["deploy"] = None
    result = plan_for(admins({"name": "deploy", "ssh_keys": [ALICE]}), state)
    assert result["remove_keys2"] == ["deploy"]
    with pytest.raises(p.LockoutError):
        plan_for(admins({"name": "deploy", "ssh_keys": [BOB]}), state)


def test_bad_connecting_key_is_an_option_error():
    with pytest.raises(p.AdminSpecError, match="connecting_key"):
        plan_for([], live(), connecting_key="nonsense")


def test_system_accounts_with_a_login_shell_are_found():
    users = {
        "root": {"uid": 0, "shell": "/bin/bash"},
        "daemon": {"uid": 1, "shell": "/usr/sbin/nologin"},
        "sync": {"uid": 4, "shell": "/bin/sync"},
        "postgres": {"uid": 105, "shell": "/bin/bash"},
        "svc": {"uid": 106, "shell": "/bin/sh"},
        "alice": {"uid": 1001, "shell": "/bin/bash"},
    }
    assert p.system_shells(users, 1000) == ["postgres", "svc"]
    assert p.system_shells(users, 1000, exempt={"svc"}) == ["postgres"]


OPTIONS = {"group": "sshusers", "admins": [{"name": "alice", "ssh_keys": [], "sudo": True}]}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        # A quote and a line break in the log file would add a sudoers rule that visudo -c accepts.
        (
            {"sudo_logfile": '/var/log/sudo.log"\nALL ALL=(ALL) NOPASSWD: ALL\n#'},
            r"^sudo_logfile: .* plain absolute",
        ),
        ({"sudo_logfile": "var/log/sudo.log"}, r"^sudo_logfile: "),
        ({"sudo_logfile": "/var/log/sudo log"}, r"^sudo_logfile: "),
        ({"sudo_logfile": "/var/log/../sudo.log"}, r"^sudo_logfile: "),
        ({"group": "sshusers\n"}, r"^group: 'sshusers\\n' is not a valid group name"),
        ({"sudoers_file": "/etc/sudoers.d/bulwark.admins"}, r"^sudoers_file: sudo ignores"),
        ({"shell": "/bin/ba sh"}, r"^shell: "),
        ({"connecting_key": "ssh-ed25519 nope"}, r"^connecting_key: "),
    ],
)
def test_options_rendered_into_sudoers_or_logrotate_are_refused_by_name(extra, message):
    with pytest.raises(p.AdminSpecError, match=message):
        p.validate_options({**OPTIONS, **extra})


def test_plain_options_pass_and_give_the_admins():
    admins = p.validate_options({**OPTIONS, "sudo_logfile": "/var/log/sudo-admins.log", "shell": "/bin/zsh"})
    assert [(a["name"], a["shell"]) for a in admins] == [("alice", "/bin/zsh")]
    assert p.validate_options({**OPTIONS, "sudo_logfile": ""})[0]["name"] == "alice"


def test_a_symlinked_ssh_dir_is_refused_naming_the_account_when_the_plan_writes_there():
    state = live(links={"bob": "/home/bob/.ssh"})
    state["authorized_keys"].pop("bob")  # the module does not read through the link
    admins = p.validate_admins([{"name": "bob", "ssh_keys": [BOB]}])
    with pytest.raises(p.UnsafePathError, match=r"^account 'bob': /home/bob/\.ssh is a symbolic link"):
        p.plan(admins, state, "sshusers", connecting_user="deploy")


def test_a_symlinked_ssh_dir_of_an_account_the_plan_leaves_alone_is_no_error():
    state = live(links={"bob": "/home/bob/.ssh"})
    state["authorized_keys"].pop("bob")
    result = p.plan(p.validate_admins([{"name": "deploy", "ssh_keys": [DEPLOY]}]), state, "sshusers")
    assert "bob" not in result["keys"]

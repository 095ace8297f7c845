import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.sshd import keywords
from ansible_collections.bulwark.hardening.plugins.module_utils.sshd.render import (
    HEADER,
    RenderError,
    ensure_include_first,
    include_line,
    render,
    replace_include,
)


def body(text):
    assert text.startswith(HEADER)
    return text[len(HEADER) :].splitlines()


def test_values_render_in_canonical_case_and_input_order():
    text = render(
        {"passwordauthentication": False, "PERMITROOTLOGIN": "no", "maxauthtries": 3, "UsePAM": True}
    )
    assert body(text) == ["PasswordAuthentication no", "PermitRootLogin no", "MaxAuthTries 3", "UsePAM yes"]


def test_lists_join_by_keyword_kind():
    text = render(
        {
            "KexAlgorithms": ["sntrup761x25519-sha512@openssh.com", "curve25519-sha256"],
            "macs": ["hmac-sha2-512-etm@openssh.com", "umac-128-etm@openssh.com"],
            "AllowGroups": ["admins", "deploy"],
            "AuthenticationMethods": ["publickey,password", "publickey"],
            "HostKey": ["/etc/ssh/ssh_host_ed25519_key", "/etc/ssh/ssh_host_rsa_key"],
            "Port": [22, 2222],
            "AcceptEnv": ["LANG", "LC_*"],
        }
    )
    assert body(text) == [
        "KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256",
        "MACs hmac-sha2-512-etm@openssh.com,umac-128-etm@openssh.com",
        "AllowGroups admins deploy",
        "AuthenticationMethods publickey,password publickey",
        "HostKey /etc/ssh/ssh_host_ed25519_key",
        "HostKey /etc/ssh/ssh_host_rsa_key",
        "Port 22",
        "Port 2222",
        "AcceptEnv LANG",
        "AcceptEnv LC_*",
    ]


def test_rendering_is_deterministic():
    opts = {"Ciphers": ["aes256-ctr"], "LogLevel": "VERBOSE"}
    assert render(opts) == render(dict(opts))


def test_match_blocks_come_last_and_indented():
    text = render(
        {"X11Forwarding": False},
        [
            {
                "criteria": "Group sftponly",
                "options": {"forcecommand": "internal-sftp", "AllowTcpForwarding": False},
            },
            {"criteria": "Address 10.0.0.0/8", "options": {"PasswordAuthentication": True}},
        ],
    )
    assert body(text) == [
        "X11Forwarding no",
        "",
        "Match Group sftponly",
        "    ForceCommand internal-sftp",
        "    AllowTcpForwarding no",
        "",
        "Match Address 10.0.0.0/8",
        "    PasswordAuthentication yes",
    ]


@pytest.mark.parametrize("key", ["PermitRootLogn", "Foo", ""])
def test_unknown_keyword_is_named(key):
    with pytest.raises(RenderError, match=f"unknown sshd keyword: {key!r}|invalid sshd keyword"):
        render({key: "x"})


@pytest.mark.parametrize("key", ["Match", "include", "INCLUDE"])
def test_match_and_include_are_refused_in_options(key):
    with pytest.raises(RenderError, match=f"sshd keyword {key!r} is not allowed"):
        render({key: "x"})


def test_keyword_not_allowed_in_match_is_named_with_its_block():
    with pytest.raises(
        RenderError, match=r"match\[0\]\.options: sshd keyword 'Ciphers' is not allowed inside a Match"
    ):
        render({}, [{"criteria": "User bob", "options": {"ciphers": "aes256-ctr"}}])


def test_unknown_keyword_in_match_is_named():
    with pytest.raises(RenderError, match=r"match\[1\]\.options: unknown sshd keyword: 'Bogus'"):
        render(
            {},
            [
                {"criteria": "User a", "options": {"X11Forwarding": False}},
                {"criteria": "User b", "options": {"Bogus": 1}},
            ],
        )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"Banner": "a\nb"}, r"options: Banner value 'a\\nb' contains the control character '\\n'"),
        ({"PermitRootLogin": "no\n"}, r"PermitRootLogin value 'no\\n' contains the control character '\\n'"),
        ({"AllowUsers": ["deploy", "x\tPermitRootLogin yes"]}, r"AllowUsers value 'x\\tPermitRootLogin yes'"),
        (
            {"Banner": "/etc/issue\x1b[2J"},
            r"Banner value '/etc/issue\\x1b\[2J' contains the control character",
        ),
        ({"Banner": "  "}, "Banner has an empty value"),
        ({"PermitRootLogin": ["no", "yes"]}, "PermitRootLogin takes a single value"),
        ({"AllowUsers": []}, "AllowUsers has an empty list"),
        ({"MaxAuthTries": 1.5}, "MaxAuthTries value must be"),
        ({"PermitRootLogin": "no", "permitrootlogin": "yes"}, "PermitRootLogin given twice"),
    ],
)
def test_bad_values_are_named(options, message):
    with pytest.raises(RenderError, match=message):
        render(options)


@pytest.mark.parametrize(
    "block",
    [
        {"criteria": "", "options": {"X11Forwarding": False}},
        {"criteria": "User a\nb", "options": {"X11Forwarding": False}},
        {"criteria": "User a", "options": {}},
        {"criteria": "User a", "options": {"X11Forwarding": False}, "x": 1},
    ],
)
def test_bad_match_blocks_are_refused(block):
    with pytest.raises(RenderError, match=r"match\[0\]"):
        render({}, [block])


def test_aliases_map_to_current_names():
    assert keywords.canonical("ChallengeResponseAuthentication") == "KbdInteractiveAuthentication"
    assert keywords.canonical("pubkeyacceptedkeytypes") == "PubkeyAcceptedAlgorithms"


DEBIAN_MAIN = (
    "\n# This is the sshd server system-wide configuration file.\n\n"
    "Include /etc/ssh/sshd_config.d/*.conf\n\nKbdInteractiveAuthentication no\nUsePAM yes\n"
)


def test_include_already_first_is_left_alone():
    assert ensure_include_first(DEBIAN_MAIN, include_line("/etc/ssh/sshd_config.d")) == DEBIAN_MAIN


def test_include_missing_is_added_before_the_first_directive():
    main = "# comment\nPort 22\nUsePAM yes\n"
    assert ensure_include_first(main, "Include /etc/ssh/sshd_config.d/*.conf") == (
        "# comment\nInclude /etc/ssh/sshd_config.d/*.conf\nPort 22\nUsePAM yes\n"
    )


def test_include_after_other_directives_is_moved_to_the_top():
    main = (
        "PasswordAuthentication yes\ninclude /etc/ssh/sshd_config.d/*.conf\nUsePAM yes\n"
        "Match User x\n  Include /etc/ssh/sshd_config.d/*.conf\n"
    )
    out = ensure_include_first(main, "Include /etc/ssh/sshd_config.d/*.conf").splitlines()
    assert out[0] == "Include /etc/ssh/sshd_config.d/*.conf"
    assert out[1:3] == ["PasswordAuthentication yes", "UsePAM yes"]
    assert out[-1] == "  Include /etc/ssh/sshd_config.d/*.conf"  # inside Match: not ours to move


def test_replace_include_points_the_temp_tree_elsewhere():
    out = replace_include(DEBIAN_MAIN, "Include /etc/ssh/sshd_config.d/*.conf", "Include /tmp/x/*.conf")
    assert "Include /tmp/x/*.conf" in out
    assert "/etc/ssh/sshd_config.d" not in out


@pytest.mark.parametrize(
    "key", ["PermitRootLogin\n", " PermitRootLogin", "Permit RootLogin", "X11Forwarding\x00"]
)
def test_keywords_must_be_the_whole_word(key):
    with pytest.raises(RenderError, match=r"options: invalid sshd keyword"):
        render({key: "no"})


def test_keywords_in_match_must_be_the_whole_word():
    with pytest.raises(RenderError, match=r"match\[0\]\.options: invalid sshd keyword: 'DenyUsers\\n'"):
        render({}, [{"criteria": "User a", "options": {"DenyUsers\n": "x"}}])


@pytest.mark.parametrize(
    "criteria", ["User a\n", "User a\nPermitRootLogin yes", "User\ta", "User a # x", "  "]
)
def test_match_criteria_refuse_control_characters_and_trailing_newlines(criteria):
    with pytest.raises(RenderError, match=r"match\[0\]\.criteria must be a non-empty line"):
        render({}, [{"criteria": criteria, "options": {"X11Forwarding": False}}])


def test_values_in_match_refuse_control_characters():
    with pytest.raises(RenderError, match=r"match\[0\]\.options: ForceCommand value 'true\\n'"):
        render({}, [{"criteria": "User a", "options": {"ForceCommand": "true\n"}}])


@pytest.mark.parametrize(
    ("options", "line"),
    [
        ({"Banner": "/etc/my banner"}, 'Banner "/etc/my banner"'),
        ({"ChrootDirectory": "/srv/%u"}, "ChrootDirectory /srv/%u"),
        ({"DenyUsers": ["alice", "#bob", "root"]}, 'DenyUsers alice "#bob" root'),
        ({"AllowUsers": 'alice "x'}, 'AllowUsers alice "\\"x"'),
        ({"AllowGroups": "admins  sftp"}, "AllowGroups admins sftp"),
        ({"AcceptEnv": "LANG LC_*"}, "AcceptEnv LANG LC_*"),
        ({"Banner": "=x"}, 'Banner "=x"'),
        ({"Banner": "a\\b"}, 'Banner "a\\\\b"'),
        (
            {"KexAlgorithms": "curve25519-sha256,sntrup761x25519-sha512@openssh.com"},
            "KexAlgorithms curve25519-sha256,sntrup761x25519-sha512@openssh.com",
        ),
        ({"ForceCommand": "internal-sftp -d '/srv/my dir'"}, "ForceCommand internal-sftp -d '/srv/my dir'"),
        ({"Subsystem": ["sftp internal-sftp -l INFO"]}, "Subsystem sftp internal-sftp -l INFO"),
    ],
)
def test_each_value_is_one_sshd_word_quoted_only_where_needed(options, line):
    assert body(render(options)) == [line]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"AuthorizedKeysFile": ".ssh/%k"}, r"AuthorizedKeysFile value '\.ssh/%k' has '%k'"),
        ({"ChrootDirectory": "/srv/100%"}, r"ChrootDirectory value '/srv/100%' has '%'"),
        ({"ForceCommand": "echo 'a"}, "ForceCommand value .* has an unterminated quote"),
        ({"ForceCommand": "=true"}, "ForceCommand value '=true' may not start with '='"),
        ({"AuthorizedKeysCommand": "#x"}, "AuthorizedKeysCommand value '#x' may not start with '#'"),
        ({"Subsystem": "sftp"}, "Subsystem value 'sftp' must be a name and a command"),
        ({"Ciphers": ["aes256-ctr,3des-cbc"]}, "Ciphers item 'aes256-ctr,3des-cbc' holds a ','"),
        ({"Banner": "/etc/issue\u2028PermitRootLogin yes"}, "Banner value .* contains the control character"),
    ],
)
def test_values_sshd_would_read_otherwise_are_refused_by_name(options, message):
    with pytest.raises(RenderError, match=message):
        render(options)


@pytest.mark.parametrize(
    ("criteria", "line"),
    [
        ("group sftp", "Match Group sftp"),
        ("User alice,!root  Address 10.0.0.0/8", "Match User alice,!root Address 10.0.0.0/8"),
        ("all", "Match All"),
        ("Invalid-User", "Match Invalid-User"),
    ],
)
def test_match_criteria_render_canonical(criteria, line):
    assert body(render({}, [{"criteria": criteria, "options": {"X11Forwarding": False}}]))[1] == line


@pytest.mark.parametrize(
    ("criteria", "message"),
    [
        ("User alice PermitRootLogin yes", "'PermitRootLogin' is not a Match criterion"),
        ("User", "User needs a pattern"),
        ('User "a b"', "the pattern '\"a' of User"),
        ("User a=b", "the pattern 'a=b' of User"),
        ("All User x", "All stands alone"),
    ],
)
def test_match_criteria_are_criteria_and_patterns(criteria, message):
    with pytest.raises(RenderError, match=r"match\[0\]\.criteria .*" + message):
        render({}, [{"criteria": criteria, "options": {"X11Forwarding": False}}])

"""sshd_config files as sshd reads them: Include lines and Match blocks (what `sshd -T` does not show)."""

from pathlib import Path

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.sshd import effective

AUDIT_CASES = Path(__file__).parents[1] / "audit" / "fixtures" / "sshd_contexts"


def test_a_debian_sshd_config_with_blocks_appended():
    text = (AUDIT_CASES / "hostile" / "sshd_config").read_text()
    assert effective.includes(text) == ["/etc/ssh/sshd_config.d/*.conf"]
    blocks = effective.match_blocks(text, "/etc/ssh/sshd_config")
    assert blocks == [
        effective.MatchBlock("/etc/ssh/sshd_config", 124, [("user", "root")], {"permitrootlogin": "yes"}),
        effective.MatchBlock(
            "/etc/ssh/sshd_config",
            126,
            [("address", "*")],
            {"passwordauthentication": "yes", "allowtcpforwarding": "yes"},
        ),
    ]
    assert effective.describe_block(blocks[1]) == "Match Address * at /etc/ssh/sshd_config line 126"


def test_match_lines_in_every_spelling_sshd_accepts():
    text = (
        "# Match User commented\n"
        "PasswordAuthentication no\n"
        "match user=root,admin address 10.0.0.0/8   # trailing comment\n"
        "  PermitRootLogin=yes\n"
        "  ChallengeResponseAuthentication yes\n"
        "  PermitRootLogin no\n"
        'Match Group "ssh users" LocalPort 2222\n'
        "  X11Forwarding = yes\n"
        "Match All\n"
        "  Banner none\n"
        "Include extra/*.conf other.conf\n"
    )
    blocks = effective.match_blocks(text, "/x")
    assert [b.criteria for b in blocks] == [
        [("user", "root,admin"), ("address", "10.0.0.0/8")],
        [("group", "ssh users"), ("localport", "2222")],
        [("all", "")],
    ]
    # The first value of a keyword is the one sshd keeps; old names read as `sshd -T` prints them.
    assert blocks[0].settings == {"permitrootlogin": "yes", "kbdinteractiveauthentication": "yes"}
    assert blocks[1].settings == {"x11forwarding": "yes"}
    # An Include after a Match block is the block's own; its patterns are read all the same.
    assert effective.includes(text) == ["extra/*.conf", "other.conf"]
    assert effective.describe_block(blocks[1]) == "Match Group ssh users LocalPort 2222 at /x line 7"
    assert effective.describe_block(blocks[2]) == "Match All at /x line 9"


@pytest.mark.parametrize("line", ["Match User", "Match Address"])
def test_a_criterion_without_patterns_is_unreadable_not_dropped(line):
    (block,) = effective.match_blocks(f"{line}\n  PermitRootLogin yes\n", "/x")
    assert block.criteria[0][0] == "unreadable"
    assert block.settings == {"permitrootlogin": "yes"}


def test_the_sshd_T_parser_keeps_its_api():
    eff = effective.parse("port 22\nport 2222\npermitrootlogin no\n")
    assert eff.lines("port") == ["22", "2222"] and eff.get("permitrootlogin") == "no"

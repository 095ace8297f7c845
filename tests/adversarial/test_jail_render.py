"""fail2ban's jail and filter files against fail2ban's reader, and the data values against the shell.

Every value fail2ban_jail's validation accepts is read back by fail2ban's config parser as exactly that
value, under that option, in that jail's section and nowhere else (no option, section or comment added,
no line dropped, no interpolation error); every value whose option an action puts into a shell command
(port, protocol, chain, mta, destemail, sender) is one word of that shell line. Rejected input is refused
naming the option.

The reader: fail2ban's own SafeConfigParserWithIncludes when fail2ban's Python package is on this machine
(/usr/lib/python3/dist-packages, or the directory in FAIL2BAN_PYTHONPATH, e.g. an unpacked fail2ban .deb);
otherwise Python's configparser set up exactly as fail2ban 1.0/1.1 sets it up (BasicInterpolation,
inline comments after ';'), which is what that class is. With FAIL2BAN_CONF (a copy of /etc/fail2ban)
`fail2ban-client -c ... -d` reads a whole configuration with the rendered jail too.
"""

import configparser
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ansible_collections.bulwark.hardening.plugins.module_utils.fail2ban import jail as j

SPECIAL = [*" \"'\\#;=%$`|&()[]<>*?,:/\t\n\r\x00\x0b\x0c\x7f", "é", "\u2028", "\x85"]
CHARS = st.sampled_from(SPECIAL) | st.characters(min_codepoint=0x21, max_codepoint=0x7E)
# Runs of characters, and fail2ban's own syntax among them (an escaped '%', a reference, a tag).
TEXT = st.lists(
    st.text(CHARS, max_size=6) | st.sampled_from(["%%", "%(x)s", "<HOST>", " ;"]), max_size=5
).map("".join)
SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
HOST = j.HostFacts(filters={"sshd", "recidive", "custom"}, journal_only=False)
# Options that fail2ban's actions put into a shell command line unquoted.
SHELL_WORDS = ("port", "protocol", "chain", "mta", "destemail", "sender")


def _fail2ban_parser_class():
    for root in (os.environ.get("FAIL2BAN_PYTHONPATH"), "/usr/lib/python3/dist-packages"):
        if root and os.path.exists(os.path.join(root, "fail2ban", "client", "configparserinc.py")):
            if root not in sys.path:
                sys.path.append(root)
            from fail2ban.client.configparserinc import SafeConfigParserWithIncludes  # noqa: PLC0415

            return SafeConfigParserWithIncludes, "fail2ban"
    return None, "configparser"


PARSER, READER = _fail2ban_parser_class()


def read(text, tmp_path):
    """{section: {option: (raw value, interpolated value or its error)}} as fail2ban reads text."""
    path = tmp_path / "bulwark-x.local"
    path.write_text(text, encoding="utf-8")
    if PARSER is not None:
        parser = PARSER()
        parser.read(str(path))
    else:
        parser = configparser.ConfigParser(
            interpolation=configparser.BasicInterpolation(), inline_comment_prefixes=(";",)
        )
        parser.read(str(path), encoding="utf-8")
    out = {}
    for section in parser.sections():
        out[section] = {}
        for option in parser.options(section):
            try:
                value = parser.get(section, option)
            except configparser.Error as exc:
                value = exc
            out[section][option] = (parser.get(section, option, raw=True), value)
    return out


def _built(jails, **kwargs):
    """The jail files text, or None when refused (the error must name the option)."""
    try:
        built, custom = j.build(jails, kwargs.pop("filters", None), HOST, **kwargs)
    except j.JailError as exc:
        return None, str(exc)
    return built, custom


def _one_word_in_sh(value, tmp_path):
    """The value, put unquoted into a shell line as fail2ban's actions do, is exactly one word."""
    done = subprocess.run(
        ["sh", "-c", f"printf '[%s]\\n' {value}"], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    return done.returncode == 0 and done.stdout == f"[{value}]\n" and done.stderr == ""


def _rendered_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


@SETTINGS
@given(option=st.sampled_from(SHELL_WORDS), value=TEXT)
@example(option="port", value="22;touch /tmp/x")
@example(option="port", value="ssh,$(touch /tmp/x)")
@example(option="port", value="http,https")
@example(option="port", value="1000:2000")
@example(option="protocol", value="tcp'; touch /tmp/x; '")
@example(option="chain", value="INPUT -j ACCEPT")
@example(option="destemail", value="root@localhost; touch /tmp/x")
@example(option="destemail", value="`touch /tmp/x`@example.com")
@example(option="sender", value="fail2ban@<fq-hostname>")
@example(option="mta", value="sendmail|sh")
def test_data_that_reaches_a_shell_is_one_word(tmp_path, option, value):
    built, error = _built({"web": {"filter": "custom", "logpath": "/var/log/x.log", option: value}})
    if built is None:
        assert error.startswith(f"jails.web.{option}"), error
        return
    (jail,) = built
    rendered = j.render_jail(jail)
    parsed = read(rendered, tmp_path)
    assert list(parsed) == ["web"]
    raw, got = parsed["web"][option]
    expected = ",".join(jail.options[option]) if option == "port" else jail.options[option][0]
    assert raw == got == expected == value.strip()
    if option == "sender" and "<fq-hostname>" in expected:
        expected = expected.replace("<fq-hostname>", "host.example")  # fail2ban's tag, replaced first
    assert _one_word_in_sh(expected, tmp_path), expected


@SETTINGS
@given(
    option=st.sampled_from(["failregex", "ignoreregex", "logpath", "action", "ignoreip", "journalmatch"]),
    items=st.lists(TEXT, min_size=1, max_size=3),
)
@example(option="failregex", items=["^x <HOST>$", "[sshd]", "enabled = false"])
@example(option="failregex", items=["^x <HOST> ;comment"])
@example(option="failregex", items=["^x <HOST>", "#y"])
@example(option="failregex", items=["^x <HOST>", ""])
@example(option="failregex", items=["100% <HOST>"])
@example(option="failregex", items=["100%% <HOST>"])
@example(option="failregex", items=["^x\n[sshd]\nenabled = false"])
@example(option="logpath", items=["%(sshd_log)s", "/var/log/auth.log tail"])
@example(option="logpath", items=["/var/log/x.log\n[recidive]"])
@example(option="action", items=["%(action_)s", "iptables-allports[name=x, chain=DOCKER-USER]"])
@example(option="action", items=['iptables[name=x, port="22;touch /tmp/x"]'])
@example(option="ignoreip", items=["10.0.0.0/8", "0.0.0.0/0 ;"])
@example(option="ignoreip", items=["10.0.0.0/8,0.0.0.0/0"])
def test_every_line_of_a_value_reads_back_as_given(tmp_path, option, items):
    built, error = _built({"web": {"filter": "custom", option: items, "port": "http"}})
    if built is None:
        assert error.startswith(f"jails.web.{option}"), error
        return
    (jail,) = built
    parsed = read(j.render_jail(jail), tmp_path)
    assert list(parsed) == ["web"]
    # Exactly the options the jail sets: nothing added, nothing lost.
    assert set(parsed["web"]) == set(jail.options)
    for name, value in jail.options.items():
        raw, got = parsed["web"][name]
        if isinstance(value, list):
            joined = " ".join(value) if name == "ignoreip" else "\n".join(value)
            assert raw == (",".join(value) if name == "port" else joined)
        else:
            assert raw == str(_rendered_value(value))
        if "%(" not in raw:  # a reference to jail.conf's options resolves only in the whole configuration
            assert got == raw.replace("%%", "%"), got


@SETTINGS
@given(value=TEXT)
@example(value="pass ;word")
@example(value=";pass")
@example(value="p%ss")
@example(value="p%(x)s")
@example(value="x\nenabled = false")
@example(value="x\u2028enabled = false")
def test_a_secret_reads_back_exactly_and_is_redacted(tmp_path, value):
    try:
        built, _custom = j.build(
            {"web": {"filter": "custom", "port": "http"}}, None, HOST, secrets={"web": {"token": value}}
        )
    except j.JailError as exc:
        assert str(exc).startswith("secrets.web.token"), str(exc)
        assert value not in str(exc) or not value.strip()
        return
    rendered = j.render_jail(built[0])
    parsed = read(rendered, tmp_path)
    assert parsed["web"]["token"][1] == value
    line = f"token = {value.replace('%', '%%')}\n"
    assert line in rendered
    assert j.redact(rendered, j.secret_names(built)) == rendered.replace(line, "token = <redacted>\n")


@pytest.mark.parametrize(
    "name", ["sshd]\n[recidive", "[sshd]\nenabled=false", "sshd\n", "DEFAULT", "a b", "x;y", "INCLUDES"]
)
def test_hostile_jail_names_are_refused(name):
    with pytest.raises(j.JailError, match="jails: name"):
        j.validate({name: {}})


def test_the_reader_used_is_reported(record_property):
    """Which reader judged the files here (fail2ban's own class, or configparser set up as fail2ban does)."""
    record_property("fail2ban_reader", READER)
    assert READER in ("fail2ban", "configparser")


@pytest.mark.skipif(
    not os.environ.get("FAIL2BAN_CONF"), reason="FAIL2BAN_CONF (a copy of /etc/fail2ban) not set"
)
def test_fail2ban_client_reads_the_jail_as_rendered(tmp_path):
    """The whole configuration, with fail2ban-client -d: ignoreip, port and failregex as declared."""
    conf = tmp_path / "fail2ban"
    subprocess.run(["cp", "-a", os.environ["FAIL2BAN_CONF"], str(conf)], check=True)
    log = tmp_path / "x.log"
    log.write_text("")
    built, custom = j.build(
        {"web": {"filter": "custom", "port": "http,https", "logpath": str(log), "backend": "polling"}},
        {"custom": {"failregex": ["^100%% fail from <HOST>$", "^a [sshd] b <HOST>$"]}},
        HOST,
        ignoreip=["192.0.2.0/24"],
    )
    for path, text in j.desired_files(built, custom).items():
        (conf / path).write_text(text)
    env = {**os.environ, "PYTHONPATH": os.environ.get("FAIL2BAN_PYTHONPATH", "")}
    client = os.environ.get("FAIL2BAN_CLIENT", "fail2ban-client")
    argv = [sys.executable, client] if client.endswith(".py") or "/" in client else [client]
    done = subprocess.run(
        [*argv, "-c", str(conf), "-d"], capture_output=True, text=True, check=False, env=env
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "['set', 'web', 'addignoreip', '127.0.0.1/8', '::1', '192.0.2.0/24']" in lines
    assert any("'web', 'addfailregex'" in line and "^100% fail from <HOST>$" in line for line in lines)
    assert any("['port', 'http,https']" in line for line in lines)

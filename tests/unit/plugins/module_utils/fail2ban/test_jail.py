"""The jail model: validation names the option; host facts decide backend, ban action and ignoreip."""

import configparser
import re

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.fail2ban import jail as j

STOCK = j.HostFacts(filters={"sshd", "recidive", "nginx-http-auth", "nginx-limit-req"}, journal_only=True)


def _build(jails, filters=None, host=STOCK, **kwargs):
    return j.build(jails, filters, host, **kwargs)


def _parse(content):
    parser = configparser.RawConfigParser(interpolation=None, strict=True)
    parser.read_string(content)
    return parser


def test_sshd_on_journal_only_host_reads_the_journal():
    jails, _unused = _build({"sshd": {"port": 2222}}, admin_networks=["10.0.0.0/8"])
    text = j.render_jail(jails[0])
    section = _parse(text)["sshd"]
    assert section["backend"] == "systemd"
    assert "_COMM=sshd-session" in section["journalmatch"]
    assert "_SYSTEMD_UNIT=ssh.service" in section["journalmatch"]
    assert section["enabled"] == "true"
    assert section["port"] == "2222"
    assert section["banaction"] == "nftables-multiport"
    assert section["banaction_allports"] == "nftables-allports"
    assert section["ignoreip"].split() == ["127.0.0.1/8", "::1", "10.0.0.0/8"]
    assert text.startswith(j.MARKER)
    assert jails[0].path == "jail.d/bulwark-sshd.local"


def test_sshd_with_auth_log_keeps_the_file_backend():
    host = j.HostFacts(filters={"sshd"}, journal_only=False)
    jails, _unused = _build({"sshd": {}}, host=host)
    section = _parse(j.render_jail(jails[0]))["sshd"]
    assert "backend" not in section
    assert "journalmatch" not in section


def test_explicit_backend_or_logpath_wins_over_detection():
    jails, _unused = _build({"sshd": {"backend": "polling", "logpath": "/var/log/secure"}})
    section = _parse(j.render_jail(jails[0]))["sshd"]
    assert section["backend"] == "polling"
    assert section["logpath"] == "/var/log/secure"
    jails, _unused = _build({"sshd": {"logpath": "/var/log/secure"}})
    assert "backend" not in jails[0].options


def test_backend_follows_filter_not_name():
    jails, _unused = _build({"ssh-aggressive": {"filter": "sshd[mode=aggressive]"}})
    assert jails[0].options["backend"] == "systemd"
    assert jails[0].filter_name == "sshd"


@pytest.mark.parametrize(
    ("backend", "multiport", "allports"),
    [
        ("nftables", "nftables-multiport", "nftables-allports"),
        ("iptables", "iptables-multiport", "iptables-allports"),
        ("ufw", "ufw", "ufw"),
    ],
)
def test_banaction_follows_firewall_backend(backend, multiport, allports):
    jails, _unused = _build({"sshd": {}, "recidive": {}}, firewall_backend=backend)
    by_name = {jail.name: jail.options for jail in jails}
    assert by_name["sshd"]["banaction"] == [multiport]
    assert by_name["recidive"]["banaction"] == [allports]
    assert by_name["recidive"]["banaction_allports"] == [allports]


def test_recidive_escalates_by_default_and_keeps_file_backend():
    jails, _unused = _build({"recidive": {"bantime": "1w", "bantime.maxtime": "5w", "bantime.factor": 2}})
    section = _parse(j.render_jail(jails[0]))["recidive"]
    assert section["bantime.increment"] == "true"
    assert section["bantime.maxtime"] == "5w"
    assert section["bantime.factor"] == "2"
    assert "backend" not in section


def test_recidive_increment_can_be_switched_off():
    jails, _unused = _build({"recidive": {"bantime.increment": False}})
    assert jails[0].options["bantime.increment"] is False


def test_unknown_firewall_backend_is_named():
    with pytest.raises(j.JailError, match=r"^firewall_backend"):
        _build({"sshd": {}}, firewall_backend="pf")


def test_admin_networks_are_always_ignored_and_not_duplicated():
    jails, _unused = _build(
        {"sshd": {"ignoreip": ["192.0.2.7", "10.1.0.0/16"]}},
        admin_networks=["10.1.0.0/16"],
        ignoreip=["198.51.100.0/24"],
    )
    assert jails[0].options["ignoreip"] == [
        "127.0.0.1/8",
        "::1",
        "10.1.0.0/16",
        "198.51.100.0/24",
        "192.0.2.7",
    ]


def test_bad_admin_network_is_named():
    with pytest.raises(j.JailError, match=r"^admin_networks"):
        _build({"sshd": {}}, admin_networks=["10.0.0.0/8 1.2.3.4"])


@pytest.mark.parametrize("option", ["bantime", "findtime", "bantime.maxtime"])
@pytest.mark.parametrize("value", [-1, "-1", "-10m"])
def test_negative_durations_name_the_option(option, value):
    with pytest.raises(j.JailError, match=rf"^jails\.sshd\.{re.escape(option)}: must not be negative"):
        _build({"sshd": {option: value}})


@pytest.mark.parametrize("value", [0, -3, "x", True])
def test_bad_maxretry_names_the_option(value):
    with pytest.raises(j.JailError, match=r"^jails\.sshd\.maxretry"):
        _build({"sshd": {"maxretry": value}})


def test_unknown_option_is_named():
    with pytest.raises(j.JailError, match=r"^jails\.sshd\.bantim: unknown jail option"):
        _build({"sshd": {"bantim": 600}})


def test_missing_filter_is_named():
    with pytest.raises(j.JailError, match=r"^jails\.myapp\.filter: filter 'nosuch' does not exist"):
        _build({"myapp": {"filter": "nosuch", "logpath": "/var/log/x"}})
    with pytest.raises(j.JailError, match=r"^jails\.myapp: filter 'myapp' does not exist"):
        _build({"myapp": {"logpath": "/var/log/x"}})


def test_disabled_jail_needs_no_filter_and_renders_only_enabled_false():
    jails, _unused = _build({"postfix": {"enabled": False}})
    assert j.render_jail(jails[0]).splitlines()[-2:] == ["[postfix]", "enabled = false"]


def test_custom_filter_is_rendered_and_satisfies_the_jail():
    filters = {"myapp": {"failregex": ["^auth failure from <HOST>$", "^bad token from <HOST>$"]}}
    jails, custom = _build({"myapp": {"logpath": ["/var/log/myapp.log", "/var/log/myapp2.log"]}}, filters)
    files = j.desired_files(jails, custom)
    parser = _parse(files["filter.d/myapp.conf"])
    assert parser["Definition"]["failregex"].splitlines() == [
        "^auth failure from <HOST>$",
        "^bad token from <HOST>$",
    ]
    jail_section = _parse(files["jail.d/bulwark-myapp.local"])["myapp"]
    assert jail_section["logpath"].splitlines() == ["/var/log/myapp.log", "/var/log/myapp2.log"]
    assert "backend" not in jail_section


def test_custom_filter_journalmatch_goes_to_init():
    filters = {"app": {"failregex": "^fail <HOST>$", "journalmatch": "_SYSTEMD_UNIT=app.service"}}
    _unused, custom = _build({}, filters)
    parser = _parse(j.render_filter("app", custom["app"]))
    assert parser["Init"]["journalmatch"] == "_SYSTEMD_UNIT=app.service"


def test_custom_filter_needs_failregex_and_known_options():
    with pytest.raises(j.JailError, match=r"^filters\.app\.failregex"):
        _build({}, {"app": {"ignoreregex": "x"}})
    with pytest.raises(j.JailError, match=r"^filters\.app\.regex: unknown filter option"):
        _build({}, {"app": {"regex": "x"}})


@pytest.mark.parametrize("name", ["DEFAULT", "../etc", "a b", "", "x" * 65, "INCLUDES", "sshd\n"])
def test_bad_jail_names(name):
    with pytest.raises(j.JailError, match=r"^jails: name"):
        _build({name: {}})


def test_control_characters_are_refused_in_values_and_ignore_lists():
    with pytest.raises(
        j.JailError, match=r"^jails\.sshd\.logpath: the control character '\\x1b' is not allowed"
    ):
        _build({"sshd": {"logpath": "/var/log/x\x1b[2J"}})
    with pytest.raises(j.JailError, match=r"^ignoreip: "):
        _build({"sshd": {}}, ignoreip=["10.0.0.1\x00"])


def test_validate_checks_everything_but_the_host_filters():
    j.validate({"sshd": {}, "web": {"filter": "nginx-http-auth[mode=x]"}}, firewall_backend="iptables")
    with pytest.raises(j.JailError, match=r"^jails\.sshd\.bantme: unknown jail option"):
        j.validate({"sshd": {"bantme": "1h"}})
    with pytest.raises(j.JailError, match=r"^jails: name 'sshd\\n'"):
        j.validate({"sshd\n": {}})


def test_filter_names_for_a_host_not_read_yet():
    jails = {"sshd": {}, "web": {"filter": "nginx-http-auth[mode=x]"}, "odd": None}
    assert j.filter_names(jails) == {"sshd", "nginx-http-auth", "odd"}


def test_redact_hides_action_parameter_values_and_keeps_the_rest():
    text = (
        "[sshd]\n"
        "action = %(action_)s\n"
        '    cloudflare[cfuser="ops@example.org", cftoken="s3cr,et]x"]\n'
        "banaction = abuseipdb[abuseipdb_apikey=0123abcd, abuseipdb_category=18]\n"
        "port = 22\n"
        "# note [not=redacted]\n"
    )
    assert j.redact(text) == (
        "[sshd]\n"
        "action = %(action_)s\n"
        "    cloudflare[cfuser=<redacted>, cftoken=<redacted>]\n"
        "banaction = abuseipdb[abuseipdb_apikey=<redacted>, abuseipdb_category=<redacted>]\n"
        "port = 22\n"
        "# note [not=redacted]\n"
    )


def test_line_breaks_cannot_inject_sections():
    with pytest.raises(j.JailError, match=r"^jails\.sshd\.port: line breaks"):
        _build({"sshd": {"port": "22\n[DEFAULT]\nignoreip = 0.0.0.0/0"}})


def test_single_value_options_refuse_lists():
    with pytest.raises(j.JailError, match=r"^jails\.sshd\.filter: expected a single value"):
        _build({"sshd": {"filter": ["sshd", "recidive"]}})


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (600, 600),
        ("600", 600),
        ("10m", 600),
        ("1h 30m", 5400),
        ("1w", 604800),
        ("2d", 172800),
        ("0.5h", 1800),
    ],
)
def test_durations(value, seconds):
    assert j.duration_seconds(value, "bantime") == seconds


@pytest.mark.parametrize("value", ["ten", "10 parsecs", "", True])
def test_bad_durations(value):
    with pytest.raises(j.JailError, match=r"^bantime"):
        j.duration_seconds(value, "bantime")


def test_rendering_is_stable():
    first = j.desired_files(*_build({"sshd": {"maxretry": 3}, "recidive": {}}))
    second = j.desired_files(*_build({"recidive": {}, "sshd": {"maxretry": "3"}}))
    assert first == second


def test_whole_rendered_jail():
    jails, _unused = _build({"sshd": {"maxretry": 3, "bantime": "10m"}}, admin_networks=["192.0.2.0/24"])
    assert j.render_jail(jails[0]) == "\n".join(
        [
            j.MARKER,
            "# The [sshd] jail; this file is read after jail.conf and jail.d/*.conf.",
            "[sshd]",
            "enabled = true",
            "backend = systemd",
            f"journalmatch = {j.SSHD_JOURNALMATCH}",
            "banaction = nftables-multiport",
            "banaction_allports = nftables-allports",
            "bantime = 10m",
            "ignoreip = 127.0.0.1/8 ::1 192.0.2.0/24",
            "maxretry = 3",
            "",
        ]
    )


def test_jail_name_from_path():
    assert j.jail_name_from_path("jail.d/bulwark-sshd.local") == "sshd"
    assert j.jail_name_from_path("jail.d/defaults-debian.conf") is None


@pytest.mark.parametrize(
    ("backend", "expected"),
    [
        (
            "nftables",
            "nftables-allports[name=sshd-docker, chain=f2b-docker, chain_hook=forward, actname=docker]",
        ),
        ("iptables", "iptables-allports[name=sshd-docker, chain=DOCKER-USER, actname=docker]"),
    ],
)
def test_docker_hosts_also_ban_from_forwarded_traffic(backend, expected):
    host = j.HostFacts(filters={"sshd"}, journal_only=True, docker=True)
    jails, _unused = _build({"sshd": {}}, host=host, firewall_backend=backend)
    section = _parse(j.render_jail(jails[0]))["sshd"]
    assert section["action"].splitlines() == ["%(action_)s", expected]


def test_docker_action_is_not_added_for_ufw_or_an_explicit_action():
    host = j.HostFacts(filters={"sshd"}, journal_only=True, docker=True)
    jails, _unused = _build({"sshd": {}}, host=host, firewall_backend="ufw")
    assert "action" not in jails[0].options
    jails, _unused = _build({"sshd": {"action": "%(action_mw)s"}}, host=host)
    assert jails[0].options["action"] == ["%(action_mw)s"]


def test_no_docker_no_extra_action():
    jails, _unused = _build({"sshd": {}})
    assert "action" not in jails[0].options


TOKEN = "t0k3n%-sEcReT"  # noqa: S105 - a test value, shown nowhere


def test_secrets_become_options_of_their_jail_for_the_actions_and_fail2ban_reads_them_back():
    jails, _unused = _build(
        {"sshd": {"action": ['cloudflare[cftoken="%(cf_token)s"]']}}, secrets={"sshd": {"cf_token": TOKEN}}
    )
    content = j.render_jail(jails[0])
    assert "cf_token = t0k3n%%-sEcReT\n" in content  # fail2ban's reader turns %% back into %
    parser = configparser.ConfigParser()
    parser.read_string(content)
    assert parser.get("sshd", "cf_token") == TOKEN
    assert parser.get("sshd", "action") == f'cloudflare[cftoken="{TOKEN}"]'
    assert j.secret_names(jails) == {"cf_token"}


def test_a_diff_never_shows_a_secret_value():
    jails, _unused = _build({"sshd": {}}, secrets={"sshd": {"cf_token": TOKEN}})
    redacted = j.redact(j.render_jail(jails[0]), j.secret_names(jails))
    assert "cf_token = <redacted>\n" in redacted
    assert "t0k3n" not in redacted


@pytest.mark.parametrize(
    ("secrets", "named"),
    [
        ({"nginx": {"token": TOKEN}}, "secrets.nginx: no jail of that name is declared in jails"),
        ({"sshd": {"Token": TOKEN}}, "secrets.sshd: 'Token' is not a name"),
        ({"sshd": {"maxretry": TOKEN}}, "secrets.sshd.maxretry: the name is taken"),
        ({"sshd": {"action_mw": TOKEN}}, "secrets.sshd.action_mw: the name is taken"),
        ({"sshd": {"mta": TOKEN}}, "secrets.sshd.mta: the name is taken"),
        ({"sshd": {"token": TOKEN + "\n"}}, "secrets.sshd.token: expected one line"),
        ({"sshd": {"token": TOKEN + "\x07x"}}, "secrets.sshd.token: a control character"),
        ({"sshd": {"token": ""}}, "secrets.sshd.token: expected one line"),
        ({"sshd": {"token": 42}}, "secrets.sshd.token: expected one line"),
        ({"sshd": [TOKEN]}, "secrets.sshd: expected a dictionary"),
    ],
)
def test_bad_secrets_are_named_and_their_values_never_shown(secrets, named):
    with pytest.raises(j.JailError) as caught:
        j.validate({"sshd": {}}, secrets=secrets)
    assert str(caught.value).startswith(named), str(caught.value)
    assert "t0k3n" not in str(caught.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"port": "22;touch /tmp/x"}, r"^jails\.sshd\.port: '22;touch /tmp/x' is not a port"),
        ({"port": "ssh,$(id)"}, r"^jails\.sshd\.port: 'ssh,\$\(id\)' is not a port"),
        ({"protocol": "tcp' ; id; '"}, r"^jails\.sshd\.protocol: .* has a ';'"),
        ({"protocol": "tcp'&id"}, r"^jails\.sshd\.protocol: .* is not a protocol"),
        ({"chain": "INPUT -j ACCEPT"}, r"^jails\.sshd\.chain: 'INPUT -j ACCEPT' is not a chain name"),
        ({"destemail": "root@x;id"}, r"^jails\.sshd\.destemail: 'root@x;id' is not an e-mail address"),
        ({"mta": "sendmail|sh"}, r"^jails\.sshd\.mta: 'sendmail\|sh' is not an action name"),
        ({"action": ['iptables[port="1`id`"]']}, r"^jails\.sshd\.action: .* is not %\(name\)s or an action"),
        ({"ignoreip": ["10.0.0.0/8,0.0.0.0/0"]}, r"^jails\.sshd\.ignoreip: .* is not one address"),
        (
            {"failregex": ["^x <HOST> ;c"]},
            r"^jails\.sshd\.failregex: .* has a ';' at its start or after a blank",
        ),
        ({"failregex": ["^x <HOST>", "#y"]}, r"^jails\.sshd\.failregex\[1\]: .* may not be empty or start"),
        ({"failregex": ["^x <HOST>", ""]}, r"^jails\.sshd\.failregex\[1\]: .* may not be empty or start"),
        (
            {"failregex": ["100% <HOST>"]},
            r"^jails\.sshd\.failregex: .* has a '%' that fail2ban would interpolate",
        ),
        ({"logpath": ["/var/log/a b.log"]}, r"^jails\.sshd\.logpath: .* is not an absolute path"),
        ({"bantime.formula": "ban.Time.__class__"}, r"^jails\.sshd\.bantime\.formula: .* \(no '__'\)"),
        ({"backend": "systemd[x];id"}, r"^jails\.sshd\.backend: .* is not a backend"),
    ],
)
def test_values_fail2ban_or_its_actions_would_read_otherwise_are_refused(options, message):
    with pytest.raises(j.JailError, match=message):
        _build({"sshd": options})


def test_accepted_shapes_render_unchanged():
    (jail,) = _build(
        {
            "sshd": {
                "port": "ssh,2222",
                "sender": "fail2ban@<fq-hostname>",
                "action": [
                    "%(action_)s",
                    'iptables-allports[name=x, blocktype="REJECT --reject-with tcp-reset"]',
                ],
                "logpath": ["%(sshd_log)s", "/var/log/auth*.log tail"],
                "failregex": ["^100%% <HOST>$"],
            }
        }
    )[0]
    parsed = _parse(j.render_jail(jail))
    assert parsed.get("sshd", "port") == "ssh,2222"
    assert parsed.get("sshd", "action").split("\n")[1].startswith("iptables-allports[")
    assert parsed.get("sshd", "failregex") == "^100%% <HOST>$"


@pytest.mark.parametrize("value", ["pass ;word", ";pass", "x\u2028y"])
def test_secret_values_that_fail2ban_would_cut_are_refused_unshown(value):
    with pytest.raises(j.JailError, match=r"^secrets\.sshd\.token: ") as raised:
        _build({"sshd": {}}, secrets={"sshd": {"token": value}})
    assert value not in str(raised.value)

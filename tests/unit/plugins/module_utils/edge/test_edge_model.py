"""The edge's input: every refusal names the option and its index; what is accepted is normalised."""

import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.edge import model

SITE = {"name": "app", "server_names": ["app.example.org"], "upstream": "http://127.0.0.1:8080"}
CERT = {"name": "app"}


def _options(site=None, **options):
    base = {"sites": [{**SITE, **(site or {})}], "certificates": [CERT]}
    return {**base, **options}


def _error(options, prefix="edge_"):
    with pytest.raises(model.EdgeError) as caught:
        model.build(options, prefix=prefix)
    message = str(caught.value)
    assert message.endswith("Nothing was applied"), message
    return message


# (options, the start of the error)
REFUSED = [
    (_options(profile="old"), "edge_profile: 'old' is not a TLS profile"),
    (_options(profile="Intermediate"), "edge_profile: 'Intermediate'"),
    (_options(colour="red"), "edge_colour: is not an option of the edge"),
    (
        {"sites": [{**SITE, "server_names": ["ok.example.org", "a b"]}]},
        "edge_sites[0].server_names[1]: 'a b'",
    ),
    (
        _options({"server_names": ["app.example.org;"]}),
        "edge_sites[0].server_names[0]: 'app.example.org;' is not",
    ),
    (_options({"server_names": ["x\nserver_name y"]}), "edge_sites[0].server_names[0]: contains a control"),
    (_options({"server_names": ["*.com"]}), "edge_sites[0].server_names[0]: '*.com': a wildcard needs"),
    (
        _options({"server_names": ["a.*.example.org"]}),
        "edge_sites[0].server_names[0]: 'a.*.example.org' is not",
    ),
    (_options({"server_names": ["10.0.0.1"]}), "edge_sites[0].server_names[0]: '10.0.0.1' is not a DNS name"),
    (
        _options({"server_names": ["bücher.example"]}),
        "edge_sites[0].server_names[0]: 'bücher.example' is not",
    ),
    (
        _options({"server_names": ["\u212aa.example.org"]}),
        "edge_sites[0].server_names[0]: '\u212aa.example.org' is",
    ),
    (_options({"server_names": ["-a.example.org"]}), "edge_sites[0].server_names[0]"),
    (_options({"server_names": ["a" * 64 + ".org"]}), "edge_sites[0].server_names[0]"),
    (_options({"server_names": ["~^(.*)$"]}), "edge_sites[0].server_names[0]"),
    (
        _options({"server_names": ["a.example.org", "A.example.org"]}),
        "edge_sites[0].server_names[1]: a.example",
    ),
    (_options({"server_names": []}), "edge_sites[0].server_names: is empty"),
    (_options({"name": "App"}), "edge_sites[0].name: 'App' is not a site name"),
    (_options({"name": "../x"}), "edge_sites[0].name: '../x'"),
    (
        _options({"upstream": "http://8.8.8.8:80"}),
        "edge_sites[0].upstream: 8.8.8.8 is not on a loopback, private",
    ),
    (_options({"upstream": "http://[2001:db8::1]:80"}), "edge_sites[0].upstream: 2001:db8::1 is not on"),
    (
        _options({"upstream": "ftp://127.0.0.1"}),
        "edge_sites[0].upstream: 'ftp://127.0.0.1' is not an upstream",
    ),
    (_options({"upstream": "127.0.0.1:8080"}), "edge_sites[0].upstream: '127.0.0.1:8080' is not an upstream"),
    (
        _options({"upstream": "http://127.0.0.1:8080/app"}),
        "edge_sites[0].upstream: 'http://127.0.0.1:8080/app':",
    ),
    (_options({"upstream": "http://127.0.0.1:70000"}), "edge_sites[0].upstream (port): 70000 is not between"),
    (
        _options({"upstream": "http://127.0.0.1:"}),
        "edge_sites[0].upstream: 'http://127.0.0.1:': an empty port",
    ),
    (_options({"upstream": "http://127.0.0.1:" + "9" * 5000}), "edge_sites[0].upstream (port): '99999"),
    (_options({"upstream": "http://app;x:80"}), "edge_sites[0].upstream: 'app;x' is not a DNS name"),
    (
        _options({"upstream": "http://127.1:80"}),
        "edge_sites[0].upstream: 'http://127.1:80' is not an upstream",
    ),
    (
        _options({"upstream": "http://[fe80::1%eth0]:80"}),
        "edge_sites[0].upstream: 'http://[fe80::1%eth0]:80': an",
    ),
    (_options({"upstream": "http://u@127.0.0.1:80"}), "edge_sites[0].upstream: 'http://u@127.0.0.1:80': an"),
    (_options({"upstream": "unix:/run/a b.sock"}), "edge_sites[0].upstream: '/run/a b.sock' holds ' '"),
    (
        _options({"upstream": "unix:run/app.sock"}),
        "edge_sites[0].upstream: 'run/app.sock' is not an absolute",
    ),
    (
        _options({"upstream": None, "locations": [{"path": "/"}]}),
        "edge_sites[0].locations[0].upstream: is required",
    ),
    (_options({"locations": [{"path": "x"}]}), "edge_sites[0].locations[0].path: 'x' is not a location path"),
    (_options({"locations": [{"path": "/a b"}]}), "edge_sites[0].locations[0].path: '/a b'"),
    (_options({"locations": [{"path": "/a;b"}]}), "edge_sites[0].locations[0].path"),
    (_options({"locations": [{"path": "/a{"}]}), "edge_sites[0].locations[0].path"),
    (_options({"locations": [{"path": "/$uri"}]}), "edge_sites[0].locations[0].path"),
    (_options({"locations": [{"path": "/a/../b"}]}), "edge_sites[0].locations[0].path: '/a/../b' has a '.'"),
    (_options({"locations": [{"path": "/a//b"}]}), "edge_sites[0].locations[0].path"),
    (
        _options({"locations": [{"path": "/"}, {"path": "/"}]}),
        "edge_sites[0].locations[1].path: / is listed twice",
    ),
    (
        _options({"locations": [{"path": "/", "weight": 1}]}),
        "edge_sites[0].locations[0].weight: is not an option",
    ),
    (
        _options({"locations": [{"path": "/", "login": "yes"}]}),
        "edge_sites[0].locations[0].login: 'yes' is not a",
    ),
    (
        _options({"headers": {"X-XSS-Protection": "1; mode=block"}}),
        "edge_sites[0].headers.X-XSS-Protection: X-XSS",
    ),
    (
        _options({"headers": {"strict-transport-security": "max-age=1"}}),
        "edge_sites[0].headers.strict-transport",
    ),
    (
        _options({"headers": {"X-Frame-Options": "DENY\nadd_header X 1"}}),
        "edge_sites[0].headers.X-Frame-Options: con",
    ),
    (_options({"headers": {"X-Frame-Options": "$host"}}), "edge_sites[0].headers.X-Frame-Options: holds '$'"),
    (
        _options({"headers": {"X-Frame-Options": "a\\"}}),
        "edge_sites[0].headers.X-Frame-Options: holds '\\\\'",
    ),
    (_options({"headers": {"X-Frame-Options": "é"}}), "edge_sites[0].headers.X-Frame-Options: holds 'é'"),
    (
        _options({"headers": {"X-Frame-Options": " DENY"}}),
        "edge_sites[0].headers.X-Frame-Options: has leading",
    ),
    (_options({"headers": {"X-Frame-Options": ""}}), "edge_sites[0].headers.X-Frame-Options: '' is not"),
    (_options({"headers": {"X Frame": "a"}}), "edge_sites[0].headers: 'X Frame' is not a header name"),
    (_options({"headers": {"X-A;": "a"}}), "edge_sites[0].headers: 'X-A;' is not a header name"),
    (
        _options({"headers_remove": ["X-Nothing"]}),
        "edge_sites[0].headers_remove[0]: X-Nothing is not a header",
    ),
    (_options({"headers_remove": ["a b"]}), "edge_sites[0].headers_remove[0]: 'a b' is not a header name"),
    (
        _options({"locations": [{"path": "/", "headers_remove": ["Referrer-Policy", "Referrer-Policy"]}]}),
        "edge_sites[0].locations[0].headers_remove[1]: Referrer-Policy is not a header",
    ),
    (
        _options(hsts={"preload": True, "include_subdomains": False}),
        "edge_hsts.preload: preload requires include",
    ),
    (
        _options(hsts={"preload": True, "max_age": 300}),
        "edge_hsts.preload: preload requires max_age >= 31536000",
    ),
    (_options({"hsts": {"max_age": -1}}), "edge_sites[0].hsts.max_age: -1 is not between"),
    (_options({"hsts": {"max_age": True}}), "edge_sites[0].hsts.max_age: True is not an integer"),
    (_options({"hsts": {"maxage": 1}}), "edge_sites[0].hsts.maxage: is not an option here"),
    (_options(rate_limit={"rate": "10r/h"}), "edge_rate_limit.rate: '10r/h' is not a rate"),
    (_options(rate_limit={"rate": "10 r/s"}), "edge_rate_limit.rate"),
    (_options(rate_limit={"rate": "0r/s"}), "edge_rate_limit.rate: '0r/s'"),
    (_options(rate_limit={"burst": -1}), "edge_rate_limit.burst: -1 is not between 0"),
    (_options(rate_limit={"zone_size": "1k"}), "edge_rate_limit.zone_size: '1k' is not between 65536"),
    (_options(rate_limit={"zone_size": "10g"}), "edge_rate_limit.zone_size: '10g' is not a size"),
    (_options(login_rate_limit={"nodelay": "on"}), "edge_login_rate_limit.nodelay: 'on' is not a boolean"),
    (
        _options({"locations": [{"path": "/", "rate_limit": {"rate": "1r/d"}}]}),
        "edge_sites[0].locations[0].rate_",
    ),
    (_options({"limit_conn": 0}), "edge_sites[0].limit_conn: 0 is not between 1"),
    (_options(client_max_body_size="0"), "edge_client_max_body_size: '0' is not a size"),
    (_options(client_max_body_size="2048m"), "edge_client_max_body_size: '2048m' is not between"),
    (_options({"client_max_body_size": "1 m"}), "edge_sites[0].client_max_body_size: '1 m' is not a size"),
    (_options(timeouts={"proxy_read": 0}), "edge_timeouts.proxy_read: 0 is not between 1 and 3600"),
    (_options(timeouts={"read": 5}), "edge_timeouts.read: is not an option here"),
    (_options(resolvers=["dns.example"]), "edge_resolvers[0]: 'dns.example' is not an IP address"),
    (_options(upstream_networks=["10.0.0.1/8"]), "edge_upstream_networks[0]: '10.0.0.1/8' is not a network"),
    (
        {"sites": [SITE], "certificates": []},
        "edge_sites[0].certificate: 'app' is not among edge_certificates",
    ),
    (
        _options(certificates=[{"name": "app", "source": "self"}]),
        "edge_certificates[0].source: 'self' is not one",
    ),
    (_options(certificates=[CERT, CERT]), "edge_certificates[1].name: app is listed twice"),
    (
        _options(certificates=[{"name": "app", "source": "imported"}]),
        "edge_certificates[0].certificate_file: None",
    ),
    (
        _options(certificates=[{"name": "app", "source": "acme", "key_file": "/etc/k.pem"}]),
        "edge_certificates[0].key_file: is only for an imported certificate",
    ),
    (
        _options({"server_names": ["*.example.org"]}),
        "edge_certificates[0].source: *.example.org is a wildcard, which ACME's HTTP-01",
    ),
    (
        {"sites": [SITE, {**SITE, "name": "two"}], "certificates": [CERT]},
        "edge_sites[1].server_names[0]: app.example.org is already a name of edge_sites[0]",
    ),
    (
        {"sites": [SITE, {**SITE, "server_names": ["b.example.org"]}], "certificates": [CERT]},
        "edge_sites[1].name: app is listed twice",
    ),
]


@pytest.mark.parametrize(("options", "expected"), REFUSED, ids=[e for _o, e in REFUSED])
def test_bad_input_is_refused_naming_the_option_and_index(options, expected):
    message = _error(options)
    assert message.startswith(expected), message


def test_the_module_names_options_without_the_roles_prefix():
    message = _error(_options({"server_names": ["a b"]}), prefix="")
    assert message.startswith("sites[0].server_names[0]: 'a b' is not a DNS name"), message


def test_defaults_give_a_site_intermediate_hsts_headers_and_limits():
    config = model.build(_options())
    (site,) = config.sites
    assert config.profile.name == "intermediate"
    assert site.server_names == ("app.example.org",)
    assert site.hsts == model.Hsts(max_age=63072000, include_subdomains=True, preload=False)
    assert site.hsts.value == "max-age=63072000; includeSubDomains"
    assert dict(site.headers) == model.DEFAULTS["headers"]
    (location,) = site.locations
    assert location.path == "/"
    assert location.upstream.url == "http://127.0.0.1:8080"
    assert location.rate_limit == model.RateLimit("20r/s", 40, True, "10m")
    assert site.limit_conn == 50
    assert site.client_max_body_size == location.client_max_body_size == "1m"
    assert config.certificates == (model.Certificate("app", "acme", ("app.example.org",)),)
    assert dict(config.timeouts) == model.DEFAULTS["timeouts"]


def test_names_are_lower_cased_and_wildcards_kept():
    config = model.build(
        _options({"server_names": ["App.Example.ORG", "*.Int.example.org"], "certificate": "int"},
                 certificates=[{"name": "int", "source": "internal"}])
    )  # fmt: skip
    assert config.sites[0].server_names == ("app.example.org", "*.int.example.org")
    assert config.certificates[0].names == config.sites[0].server_names


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.0.0.1", "http://127.0.0.1:80"),
        ("https://10.1.2.3/", "https://10.1.2.3:443"),
        ("http://172.17.0.2:3000", "http://172.17.0.2:3000"),
        ("http://192.168.1.9:80", "http://192.168.1.9:80"),
        ("http://100.64.0.7:80", "http://100.64.0.7:80"),
        ("http://[::1]:8080", "http://[::1]:8080"),
        ("http://[FD00::5]:9000", "http://[fd00::5]:9000"),
        ("http://App-Backend:8080", "http://app-backend:8080"),
        ("http://app.internal:8080", "http://app.internal:8080"),
        ("unix:/run/app/app.sock", "http://unix:/run/app/app.sock:"),
    ],
)
def test_upstreams_are_normalised(given, url):
    assert model.upstream(given, "upstream").url == url


def test_an_overlay_network_elsewhere_is_allowed_by_name():
    options = _options({"upstream": "http://198.18.0.5:80"})
    assert "198.18.0.5 is not on" in _error(options)
    config = model.build({**options, "upstream_networks": ["198.18.0.0/15"]})
    assert config.sites[0].locations[0].upstream.url == "http://198.18.0.5:80"


def test_headers_are_overridden_in_place_removed_and_extended_per_site_and_location():
    config = model.build(
        _options(
            {
                "headers": {"x-frame-options": "SAMEORIGIN", "Cross-Origin-Opener-Policy": "same-origin"},
                "headers_remove": ["Permissions-Policy"],
                "locations": [
                    {"path": "/"},
                    {
                        "path": "/embed",
                        "headers": {"X-Frame-Options": 'ALLOW "x"'},
                        "headers_remove": ["Content-Security-Policy"],
                    },
                ],
            },
            headers={"Referrer-Policy": "no-referrer"},
        )
    )  # fmt: skip
    site = config.sites[0]
    assert [name for name, _v in site.headers] == [
        "Content-Security-Policy",
        "X-Frame-Options",
        "X-Content-Type-Options",
        "Referrer-Policy",
        "Cross-Origin-Opener-Policy",
    ]
    assert dict(site.headers)["X-Frame-Options"] == "SAMEORIGIN"
    assert dict(site.headers)["Referrer-Policy"] == "no-referrer"
    root, embed = site.locations
    assert root.headers == site.headers
    assert dict(embed.headers) == {
        "X-Frame-Options": 'ALLOW "x"',
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


def test_login_locations_take_the_tighter_limit_unless_told():
    config = model.build(
        _options(
            {"locations": [{"path": "/"}, {"path": "/login", "login": True},
                           {"path": "/admin", "login": True, "rate_limit": {"burst": 2}}]},
            login_rate_limit={"rate": "6r/m"},
        )
    )  # fmt: skip
    root, login, admin = config.sites[0].locations
    assert root.rate_limit.rate == "20r/s"
    assert login.rate_limit == model.RateLimit("6r/m", 5, True, "10m")
    assert admin.rate_limit == model.RateLimit("6r/m", 2, True, "10m")


def test_preload_with_subdomains_and_a_year_is_accepted():
    config = model.build(_options(hsts={"preload": True, "max_age": 31536000}))
    assert config.sites[0].hsts.value == "max-age=31536000; includeSubDomains; preload"


def test_modern_profile_and_imported_certificate():
    config = model.build(
        _options(
            profile="modern",
            certificates=[{"name": "app", "source": "imported", "certificate_file": "/root/app.crt",
                           "key_file": "/root/app.key"}],
        )
    )  # fmt: skip
    assert config.profile.name == "modern"
    assert config.certificates[0].certificate_file == "/root/app.crt"
    assert config.sites[0].hsts.max_age == 63072000


def test_integers_given_as_digit_strings_are_read_as_integers():
    config = model.build(_options({"limit_conn": "7"}, timeouts={"send": "9"}))
    assert config.sites[0].limit_conn == 7
    assert dict(config.timeouts)["send"] == 9

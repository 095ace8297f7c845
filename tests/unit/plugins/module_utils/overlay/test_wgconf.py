import pytest

from ansible_collections.bulwark.hardening.plugins.module_utils.overlay import mesh, wgconf

from .test_mesh import KEYS, SETTINGS, members

PRIVATE = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
# wg pubkey of PRIVATE (RFC 7748 X25519, as `echo PRIVATE | wg pubkey` prints it).
PUBLIC = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="


def test_public_key_derivation_matches_wg():
    assert wgconf.public_from_private(PRIVATE + "\n") == PUBLIC
    fresh = wgconf.new_private()
    assert fresh.endswith("\n")
    assert len(wgconf.public_from_private(fresh)) == 44


def view():
    m = mesh.build(SETTINGS, members("a", "b", c={"endpoint": None}) + members("c", c={"endpoint": None}))
    return m, m.view("a")


def test_render_has_no_private_key_and_names_the_key_file():
    m, v = view()
    text = wgconf.render(v, 1420, "/etc/bulwark/overlay/private.key")
    assert text == (
        wgconf.HEADER + "[Interface]\n"
        f"Address = {m.members['a'].address}/24\n"
        "MTU = 1420\n"
        "ListenPort = 51820\n"
        "PostUp = wg set %i private-key /etc/bulwark/overlay/private.key\n"
        "\n[Peer]\n# b\n"
        f"PublicKey = {KEYS['b']}\n"
        f"AllowedIPs = {m.members['b'].address}/32\n"
        "Endpoint = 192.0.2.2:51820\n"
        "PersistentKeepalive = 25\n"
        "\n[Peer]\n# c\n"
        f"PublicKey = {KEYS['c']}\n"
        f"AllowedIPs = {m.members['c'].address}/32\n"
    )
    sync = wgconf.render_sync(v, PRIVATE + "\n")
    assert sync.startswith(f"[Interface]\nPrivateKey = {PRIVATE}\nListenPort = 51820\n\n[Peer]\nPublicKey = ")
    assert "Address" not in sync
    assert "PostUp" not in sync
    assert "#" not in sync


def dump(peers):
    head = f"{PRIVATE}\t{PUBLIC}\t51820\toff"
    return "\n".join([head, *peers]) + "\n"


def test_parse_dump_drops_secrets():
    text = dump([f"{KEYS['b']}\t(none)\t192.0.2.2:51820\t10.99.0.9/32\t1700000000\t10\t20\t25"])
    state = wgconf.parse_dump(text)
    assert state == {
        "public_key": PUBLIC,
        "listen_port": 51820,
        "peers": {
            KEYS["b"]: {
                "psk": None,
                "endpoint": "192.0.2.2:51820",
                "allowed_ips": ["10.99.0.9/32"],
                "latest_handshake": 1700000000,
                "keepalive": 25,
            }
        },
    }
    assert PRIVATE not in repr(state)
    assert wgconf.parse_dump("") is None


def live_of(v):
    rows = [
        "\t".join(
            [p["public_key"], "(none)", p["endpoint"] or "(none)", ",".join(p["allowed_ips"]), "0", "0", "0",
             str(p["keepalive"]) if p["keepalive"] else "off"]
        )
        for p in v["peers"]
    ]  # fmt: skip
    return wgconf.parse_dump(dump(rows))


def test_plan():
    _m, v = view()
    live = live_of(v)
    assert wgconf.plan(v, 1420, live, (v["address"], 1420), PUBLIC) == (None, [])
    assert wgconf.plan(v, 1420, None, (None, None), PUBLIC) == ("start", ["the interface is down"])
    assert wgconf.plan(v, 1380, live, (v["address"], 1420), PUBLIC) == ("restart", ["MTU 1420 -> 1380"])
    action, reasons = wgconf.plan(v, 1420, live, ("10.99.0.200/24", 1420), PUBLIC)
    assert action == "restart"
    assert reasons == [f"address 10.99.0.200/24 -> {v['address']}"]
    # A rotated key goes live with syncconf (its input carries the private key).
    assert wgconf.plan(v, 1420, live, (v["address"], 1420), KEYS["d"]) == (
        "sync",
        ["the live public key is not the key file's"],
    )
    # A peer gone, a peer added, a peer whose allowed IPs changed: a sync, no restart.
    fewer = dict(v, peers=v["peers"][:1])
    assert wgconf.plan(fewer, 1420, live, (v["address"], 1420), PUBLIC) == (
        "sync",
        [f"peer {KEYS['c']} removed"],
    )
    assert wgconf.plan(v, 1420, live_of(fewer), (v["address"], 1420), PUBLIC) == ("sync", ["peer c added"])
    moved = dict(v, peers=[dict(v["peers"][0], allowed_ips=["10.99.0.250/32"]), v["peers"][1]])
    assert wgconf.plan(moved, 1420, live, (v["address"], 1420), PUBLIC) == ("sync", ["peer b updated"])


def container_view():
    settings = {**SETTINGS, "container_cidr": "10.100.0.0/16"}
    m = mesh.build(settings, members("a", "b", "c", b={"container_subnet": "10.100.7.0/24"}))
    return m, m.view("a")


def test_docker_hole_is_opened_while_the_interface_is_up():
    m, v = container_view()
    sub = str(m.members["a"].container_subnet)
    text = wgconf.render(v, 1420, "/k", docker=True)
    assert "PostUp = iptables -N DOCKER-USER 2>/dev/null || true\n" in text
    assert (
        f"PostUp = iptables -C DOCKER-USER -i %i -d {sub} -j ACCEPT 2>/dev/null"
        f" || iptables -I DOCKER-USER -i %i -d {sub} -j ACCEPT\n"
    ) in text
    assert f"PreDown = iptables -D DOCKER-USER -i %i -d {sub} -j ACCEPT || true\n" in text
    # Without Docker, or with neither a subnet nor spokes, the interface touches no iptables chain.
    assert "iptables" not in wgconf.render(v, 1420, "/k")
    plain = mesh.build(SETTINGS, members("a", "b"))
    assert "iptables" not in wgconf.render(plain.view("a"), 1420, "/k", docker=True)
    # A hub routes for its spokes through Docker's FORWARD chain as well.
    hub = view()[1]
    assert hub["forwarding"]
    assert wgconf.docker_holes(hub) == [["-i", "%i", "-o", "%i"]]
    assert "PreDown = iptables -D DOCKER-USER -i %i -o %i -j ACCEPT || true\n" in wgconf.render(
        hub, 1420, "/k", docker=True
    )


def test_routes_are_the_peers_networks_outside_the_interface():
    m, v = container_view()
    subs = sorted(str(m.members[n].container_subnet) for n in ("b", "c"))
    assert wgconf.routes(v) == subs
    # After a sync: a new peer's subnet is missing, a departed one's is still routed.
    assert wgconf.route_changes(v, [subs[0], "10.100.99.0/24"]) == ([subs[1]], ["10.100.99.0/24"])
    assert wgconf.route_changes(v, subs) == ([], [])
    assert wgconf.routes(view()[1]) == []


PSK = "c2VjcmV0LXByZXNoYXJlZC1rZXktb2YtMzItYnl0ZXM="


def test_preshared_keys_are_named_by_file_sent_to_syncconf_and_compared_by_fingerprint():
    from ansible_collections.bulwark.hardening.plugins.module_utils.overlay import psk  # noqa: PLC0415

    m = mesh.build(SETTINGS, members("a", "b"))
    v = m.view("a")
    v["peers"][0]["psk"] = psk.fingerprint(PSK)
    text = wgconf.render(v, 1420, "/k/private.key", psk_dir="/k/psk")
    assert f"PostUp = wg set %i peer {KEYS['b']} preshared-key /k/psk/b.psk\n" in text
    assert PSK not in text
    sync = wgconf.render_sync(v, PRIVATE, {"b": PSK})
    assert f"PublicKey = {KEYS['b']}\nPresharedKey = {PSK}\n" in sync
    # The live dump's key is compared by fingerprint and dropped.
    row = "\t".join([KEYS["b"], PSK, "192.0.2.2:51820", f"{m.members['b'].address}/32", "0", "0", "0", "25"])
    live = wgconf.parse_dump(dump([row]))
    assert PSK not in repr(live)
    assert wgconf.plan(v, 1420, live, (v["address"], 1420), PUBLIC) == (None, [])
    v["peers"][0]["psk"] = psk.fingerprint("another")
    assert wgconf.plan(v, 1420, live, (v["address"], 1420), PUBLIC) == ("sync", ["peer b updated"])


def test_a_pair_has_one_key_drawn_once():
    from ansible_collections.bulwark.hardening.plugins.module_utils.overlay import psk  # noqa: PLC0415

    document, keys = psk.for_host(psk.parse(None), "b", ["a", "c"])
    assert sorted(document["pairs"]) == ["a|b", "b|c"]
    assert keys == {"a": document["pairs"]["a|b"], "c": document["pairs"]["b|c"]}
    assert keys["a"] != keys["c"] and all(len(k) == 44 for k in keys.values())
    # The other side of the pair gets the same key; nothing new is drawn for it.
    again, keys_a = psk.for_host(document, "a", ["b"])
    assert again == document and keys_a == {"b": keys["a"]}
    # Check mode draws nothing: the key is predicted as missing.
    assert psk.for_host(psk.parse(None), "a", ["b"], generate=False) == ({"pairs": {}}, {"b": None})
    psk.check(keys)
    with pytest.raises(mesh.MeshError) as err:
        psk.check({"b": "short"})
    assert "preshared_key_values['b']: not a WireGuard key" in str(err.value) and "short" not in str(
        err.value
    )


def test_every_word_of_a_hook_is_quoted_for_bash():
    import shlex  # noqa: PLC0415

    m = mesh.build(SETTINGS, members("a", "b"))
    v = m.view("a")
    v["peers"][0]["psk"] = "fingerprint"
    # The model refuses such a directory; the renderer still never lets a word become two, or a command.
    hooks = wgconf.hooks(v, "/k dir/$(id)/private.key", psk_dir="/k dir/psk")
    assert hooks[0] == ("PostUp", [(["wg", "set", "%i", "private-key", "/k dir/$(id)/private.key"], False)])
    line = wgconf.hook_line(hooks[0][1])
    assert line == "wg set %i private-key '/k dir/$(id)/private.key'"
    assert shlex.split(line) == hooks[0][1][0][0]
    assert wgconf.hook_line(hooks[1][1]) == f"wg set %i peer {KEYS['b']} preshared-key '/k dir/psk/b.psk'"


@pytest.mark.parametrize("key_path", ["/k/a\nPostUp = id", "/k/a;#", "/k/\r"])
def test_a_value_wg_quick_would_misread_is_never_written(key_path):
    m = mesh.build(SETTINGS, members("a", "b"))
    with pytest.raises(mesh.MeshError, match=r"^PostUp: a value holds .* wg-quick would misread"):
        wgconf.render(m.view("a"), 1420, key_path)


def test_a_dropped_peer_s_flows_are_deleted_both_ways_and_a_kept_address_s_never():
    three = mesh.build(SETTINGS, members("a", "b", "c"))
    live = live_of(three.view("a"))
    # A spoke's address, learned from its handshakes (wg records it), and an IPv6 one.
    live["peers"]["spoke-key"] = {"endpoint": "198.51.100.7:40000", "allowed_ips": [], "psk": None}
    live["peers"]["v6-key"] = {"endpoint": "[2001:db8::7]:51820", "allowed_ips": [], "psk": None}
    two = mesh.build(SETTINGS, members("a", "b"))
    gone = wgconf.departed_endpoints(two.view("a"), live)
    assert [str(a) for a in gone] == ["192.0.2.3", "198.51.100.7", "2001:db8::7"]
    assert wgconf.conntrack_deletions(gone[0], 51820) == [
        ["conntrack", "-D", "-f", "ipv4", "-p", "udp", "-s", "192.0.2.3", "--dport", "51820"],
        ["conntrack", "-D", "-f", "ipv4", "-p", "udp", "-d", "192.0.2.3", "--sport", "51820"],
    ]
    # Nothing dropped, no live interface, or a rotated key at a kept address: no flow is touched.
    assert wgconf.departed_endpoints(three.view("a"), live_of(three.view("a"))) == []
    assert wgconf.departed_endpoints(two.view("a"), None) == []
    rotated = mesh.build(SETTINGS, members("a", "b", b={"public_key": KEYS["d"]}))
    assert wgconf.departed_endpoints(rotated.view("a"), live_of(two.view("a"))) == []

"""The overlay's wg0.conf brought up by the real wg-quick and wireguard-go between two network namespaces.

test_overlay_injection.py reads the rendered file with wg-quick's parser and stand-ins; here the whole of
`wg-quick up` runs (wireguard-go, as there is no kernel module): the tunnel carries a TCP connection, the
PostUp hooks set exactly the key files' keys (a recording wrapper around the real wg), nothing else runs,
and `wg-quick down` removes the interface and ends wireguard-go.
"""

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from test_overlay_injection import expected_calls

from ansible_collections.bulwark.hardening.plugins.module_utils.overlay import mesh, wgconf

WG = "/etc/wireguard"
PORT = 51820
LISTEN_PORT = 8080
# Records each call (NUL-separated words, an empty field ends one), then is the real wg.
WG_RECORDER = """#!/bin/sh
for a in "$@"; do printf '%s\\0' "$a"; done >> "$WG_LOG"
printf '\\0' >> "$WG_LOG"
exec /usr/bin/wg "$@"
"""
LISTENER = (
    "import socket,sys\n"
    "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(8)\n"
    "while True: s.accept()[0].close()\n"
)


def wg_calls(log):
    found, call = [], []
    for field in log.read_bytes().decode().split("\0"):
        if field:
            call.append(field)
        elif call:
            found.append(call)
            call = []
    return found


def wireguard_go_pids(interfaces):
    """Pids of the wireguard-go processes serving these interfaces (by their command line)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [word.decode(errors="replace") for word in argv if word]
        if words and words[0].endswith("wireguard-go") and set(words[1:]) & set(interfaces):
            found.append(int(entry))
    return found


def new_key():
    private = subprocess.run(["wg", "genkey"], capture_output=True, text=True, check=True).stdout
    public = subprocess.run(["wg", "pubkey"], input=private, capture_output=True, text=True, check=True)
    return private.strip(), public.stdout.strip()


def test_a_rendered_configuration_brings_up_a_real_tunnel_and_runs_only_its_hooks(
    netns, link, private_path, tmp_path
):
    private_path(WG, copy=False)
    tag = secrets.token_hex(3)
    canary = Path(f"/tmp/pwned-{tag}")  # noqa: S108 - only ever looked for
    sides = {"a": netns(), "b": netns()}
    link(sides["a"], sides["b"], "10.231.0.1/24", "10.231.0.2/24")
    # Two interfaces' names: both wireguard-go's listen on /run/wireguard/<name>.sock in one mount namespace.
    interfaces = {side: f"wg{side}{tag}" for side in sides}
    keys = {side: new_key() for side in sides}
    the_mesh = mesh.build(
        {"cidr": "10.99.0.0/24", "port": PORT},
        [
            {"name": side, "endpoint": f"10.231.0.{n}", "public_key": keys[side][1]}
            for n, side in enumerate(sides, 1)
        ],
    )
    recorder_dir, log = tmp_path / "bin", tmp_path / "wg.log"
    recorder_dir.mkdir()
    (recorder_dir / "wg").write_text(WG_RECORDER)
    (recorder_dir / "wg").chmod(0o755)
    log.touch()
    # wg-quick puts its own directory first on PATH: a copy of it beside the recorder finds the recorder.
    wg_quick = recorder_dir / "wg-quick"
    shutil.copy2("/usr/bin/wg-quick", wg_quick)
    env = {
        **os.environ,
        "PATH": f"{recorder_dir}:{os.environ['PATH']}",
        "WG_LOG": str(log),
        "WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD": "1",
    }
    hooks, listener = {}, None
    try:
        for side, ns in sides.items():
            # As the module checks them: the key directory a plain path, the interface a name.
            checked = mesh.host_options({"interface": interfaces[side], "key_dir": f"{WG}/keys-{side}.1_@+"})
            key_dir, interface = checked["key_dir"], checked["interface"]
            os.makedirs(key_dir, mode=0o700)
            key_file = Path(key_dir, "private.key")
            key_file.write_text(keys[side][0] + "\n")
            key_file.chmod(0o600)
            view = the_mesh.view(side)
            conf = Path(WG, f"{interface}.conf")
            conf.write_text(wgconf.render(view, 1420, str(key_file)))
            conf.chmod(0o600)
            hooks[side] = wgconf.hooks(view, str(key_file))
            up = ns.run([str(wg_quick), "up", interface], check=False, env=env)
            assert up.returncode == 0, up.stdout + up.stderr
            assert wireguard_go_pids([interface]), "wg-quick did not start wireguard-go"
            shown = ns.run(["wg", "show", interface, "private-key"])
            assert shown.stdout.strip() == keys[side][0]
        # The hooks ran as rendered, and were the only `wg set`s (wg-quick's own calls are setconf, show).
        ran = [call for call in wg_calls(log) if call[0] == "set"]
        wanted = [
            ["wg", *call[1:]] for side in sides for call in expected_calls(hooks[side], interfaces[side])
        ]
        assert [["wg", *call] for call in ran] == wanted
        assert all(call[0] in ("set", "setconf", "show", "addconf") for call in wg_calls(log))
        # Across the tunnel: a's overlay address reaches a listener on b's.
        there = str(the_mesh.members["b"].address)
        listener = sides["b"].popen(
            [sys.executable, "-c", LISTENER, there, str(LISTEN_PORT)], stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 8
        while not sides["a"].connects(there, LISTEN_PORT, timeout=1.0):
            assert time.monotonic() < deadline, "no TCP connection across the tunnel"
            time.sleep(0.2)
        handshake = sides["a"].run(["wg", "show", interfaces["a"], "latest-handshakes"]).stdout.split()
        assert handshake[0] == keys["b"][1] and int(handshake[1]) > 0
        for side, ns in sides.items():
            down = ns.run([str(wg_quick), "down", interfaces[side]], check=False, env=env)
            assert down.returncode == 0, down.stdout + down.stderr
            assert ns.run(["ip", "link", "show", interfaces[side]], check=False).returncode != 0
        deadline = time.monotonic() + 3
        while wireguard_go_pids(interfaces.values()):
            assert time.monotonic() < deadline, "wireguard-go outlived wg-quick down"
            time.sleep(0.1)
        assert not canary.exists()
        assert sorted(os.listdir(WG)) == sorted(
            [f"{name}.conf" for name in interfaces.values()] + [f"keys-{side}.1_@+" for side in sides]
        )
    finally:
        if listener:
            listener.kill()
            listener.wait()
        for pid in wireguard_go_pids(interfaces.values()):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        canary.unlink(missing_ok=True)

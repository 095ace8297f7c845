"""Bounded waits on the host: poll until something holds, or until a TCP listener answers again."""

import socket
import time


def poll(probe, done, timeout, interval=0.5, *, clock=time.monotonic, sleep=time.sleep):
    """Call probe() until done(its value) or `timeout` seconds are spent; returns the last value (the
    caller judges a value that is not done). probe runs at least once."""
    deadline = clock() + timeout
    while True:
        value = probe()
        if done(value) or clock() >= deadline:
            return value
        sleep(max(0.0, min(interval, deadline - clock())))


def banner_answers(target, banner, timeout=1.0):
    """True when a TCP connection to target (address, port) opens and its first bytes are `banner`."""
    try:
        with socket.create_connection(target, timeout=timeout) as conn:
            return conn.recv(len(banner)) == banner
    except OSError:
        return False


def listener(targets, banner, timeout=10.0, interval=0.2):
    """True once one of targets [(address, port)] answers with `banner` within `timeout` seconds."""
    return poll(
        lambda: any(banner_answers(target, banner) for target in targets),
        bool,
        timeout,
        interval,
    )

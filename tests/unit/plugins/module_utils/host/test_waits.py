"""host/waits.py: one bounded polling loop."""

from ansible_collections.bulwark.hardening.plugins.module_utils.host import waits


class Clock:
    def __init__(self):
        self.now, self.slept = 0.0, []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def test_poll_returns_the_first_value_that_is_done():
    clock, values = Clock(), iter([None, ["a"], ["a", "b"], ["a", "b", "c"]])
    got = waits.poll(lambda: next(values), lambda v: v and len(v) == 2, 10, clock=clock, sleep=clock.sleep)
    assert got == ["a", "b"]
    assert clock.slept == [0.5, 0.5]


def test_poll_gives_the_last_value_when_the_time_is_up_and_never_sleeps_past_it():
    clock = Clock()
    got = waits.poll(lambda: clock.now, lambda v: False, 1.25, clock=clock, sleep=clock.sleep)
    assert got == 1.25
    assert clock.slept == [0.5, 0.5, 0.25]


def test_poll_probes_once_even_without_time():
    calls = []
    assert waits.poll(lambda: calls.append(1), lambda v: False, 0) is None
    assert calls == [1]

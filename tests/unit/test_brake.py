"""The brake on guessing the admin password, on a clock of the test's own."""
import pytest

from outwit.ui.brake import Brake, in_words


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_s_waits_double_after_its_free_tries_and_a_right_password_clears_them():
    clock = Clock()
    brake = Brake(free=3, longest=10, overall=1000, clock=clock)
    notes = [brake.failed("guesser") for _ in range(3)]
    assert brake.wait("guesser") == (0, False)  # three free tries
    assert notes[0] and notes[1:] == [None, None]  # logged once, at the start of the burst
    waits = []
    for _ in range(6):
        note = brake.failed("guesser")
        waits.append(brake.wait("guesser")[0])
        clock.now += waits[-1]  # the guesser waits as told, then tries again
    assert waits == [1, 2, 4, 8, 10, 10] and brake.wait("someone else") == (0, False)
    assert brake.failed("guesser") is None and note is None  # the brake came on once, and was logged then
    brake.succeeded("guesser")
    assert brake.wait("guesser") == (0, False) and brake.failed("guesser") is not None  # a new burst


def test_many_clients_together_brake_everyone():
    clock = Clock()
    brake = Brake(free=5, longest=60, overall=20, window=600, clock=clock)
    notes = [brake.failed(f"address-{i}") for i in range(20)]  # one wrong password each: none braked alone
    assert "20 wrong admin passwords" in notes[-1]
    assert brake.wait("the admin") == (60, True)
    clock.now += 60
    assert brake.wait("the admin") == (0, False)


def test_old_failures_leave_the_window():
    clock = Clock()
    brake = Brake(overall=3, window=10, clock=clock)
    for i in range(2):
        brake.failed(f"a{i}")
    clock.now += 11
    brake.failed("a3")
    assert brake.wait("anyone") == (0, False)


@pytest.mark.parametrize("bad", [{"free": 0}, {"longest": -1}, {"overall": 0}, {"window": 0}])
def test_bad_settings_are_named(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        Brake(**bad)


def test_waits_read_in_words():
    assert [in_words(s) for s in (0.2, 1, 44.5, 119, 300)] == ["1 s", "1 s", "45 s", "119 s", "5 min"]

"""The pure scaling decision: bounds, thresholds, the hysteresis band, windows and cooldowns."""
import pytest

from framepress.scaling.autoscale import Thresholds, decide

pytestmark = pytest.mark.timeout(10)

T = Thresholds(high=0.8, low=0.3, window_s=30, up_cooldown_s=60, down_cooldown_s=300)


def steady(value, now=1000.0, span=40, every=5):
    """Samples of `value` every `every` seconds over the last `span` seconds."""
    return [(now - span + i * every, value) for i in range(span // every + 1)]


def test_scales_up_when_above_high_for_the_window():
    d = decide(2, 1, 5, steady(0.95), last_scale_at=None, now=1000.0, thresholds=T)
    assert (d.action, d.target) == ("up", 3)
    assert d.utilization == pytest.approx(0.95)


def test_scales_down_when_below_low_for_the_window():
    d = decide(3, 1, 5, steady(0.1), last_scale_at=None, now=1000.0, thresholds=T)
    assert (d.action, d.target) == ("down", 2)


def test_between_the_marks_holds():
    for value in (0.3, 0.5, 0.8):  # the marks themselves are inside the band
        d = decide(3, 1, 5, steady(value), None, 1000.0, T)
        assert d.action == "hold", value


def test_one_dip_inside_the_window_holds():
    samples = steady(0.95)
    samples[-2] = (samples[-2][0], 0.5)
    assert decide(2, 1, 5, samples, None, 1000.0, T).action == "hold"
    samples = steady(0.1)
    samples[-3] = (samples[-3][0], 0.6)
    assert decide(3, 1, 5, samples, None, 1000.0, T).action == "hold"


def test_samples_older_than_the_window_do_not_count():
    # Busy long ago, idle for the whole window: that is idle.
    samples = [(900.0 + i, 0.99) for i in range(50)] + steady(0.1)
    assert decide(3, 1, 5, samples, None, 1000.0, T).action == "down"


def test_needs_a_whole_window_of_history():
    short = [(990.0, 0.99), (995.0, 0.99), (1000.0, 0.99)]
    d = decide(2, 1, 5, short, None, 1000.0, T)
    assert d.action == "hold" and "watching" in d.reason
    assert decide(2, 1, 5, [], None, 1000.0, T).action == "hold"


def test_bounds_win_without_cooldown():
    d = decide(0, 2, 5, [], last_scale_at=999.0, now=1000.0, thresholds=T)
    assert (d.action, d.target) == ("up", 2)
    d = decide(7, 1, 5, steady(0.99), last_scale_at=999.0, now=1000.0, thresholds=T)
    assert (d.action, d.target) == ("down", 5)


def test_at_max_or_min_holds():
    assert decide(5, 1, 5, steady(0.99), None, 1000.0, T).action == "hold"
    assert decide(1, 1, 5, steady(0.0), None, 1000.0, T).action == "hold"


def test_up_cooldown():
    samples = steady(0.99, now=2000.0, span=100)
    # Scaled 50 s ago: the window since then is covered, but the up cooldown (60 s) is not over.
    d = decide(2, 1, 5, samples, last_scale_at=1950.0, now=2000.0, thresholds=T)
    assert d.action == "hold" and "cooling down" in d.reason
    assert decide(2, 1, 5, samples, last_scale_at=1939.0, now=2000.0, thresholds=T).action == "up"


def test_down_cooldown_is_longer_than_up():
    samples = steady(0.05, now=2000.0, span=400)
    assert decide(3, 1, 5, samples, last_scale_at=1800.0, now=2000.0, thresholds=T).action == "hold"
    assert decide(3, 1, 5, samples, last_scale_at=1699.0, now=2000.0, thresholds=T).action == "down"


def test_only_samples_after_the_last_change_are_judged():
    # Busy before the scale-up 40 s ago, idle since: the window after the change is idle, but
    # the down cooldown still holds; with no cooldowns the pool would step down, not up again.
    no_cooldown = Thresholds(high=0.8, low=0.3, window_s=30, up_cooldown_s=0, down_cooldown_s=0)
    samples = [(1940.0 + i, 0.99) for i in range(20)] + [(1961.0 + i, 0.1) for i in range(40)]
    assert decide(3, 1, 5, samples, last_scale_at=1960.0, now=2000.0, thresholds=no_cooldown).action == "down"
    # A change 20 s ago: less than a window since, so it holds whatever the samples say.
    d = decide(3, 1, 5, steady(0.99, now=2000.0), last_scale_at=1980.0, now=2000.0, thresholds=no_cooldown)
    assert d.action == "hold" and "watching" in d.reason


def test_thresholds_are_validated():
    with pytest.raises(ValueError):
        Thresholds(high=0.3, low=0.5)
    with pytest.raises(ValueError):
        Thresholds(window_s=0)
    with pytest.raises(ValueError):
        decide(1, 3, 2, [], None, 0.0)


def test_describe_is_one_readable_line():
    d = decide(2, 1, 5, steady(0.95), None, 1000.0, T)
    line = d.describe(2)
    assert line.startswith("up workers=2->3 utilization=0.95")

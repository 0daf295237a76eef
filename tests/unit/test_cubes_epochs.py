"""The epoch clock and the label cache of the performance cubes."""

from __future__ import annotations

from projections.cubes import FINE, HOUR_US, PER_HOUR, EpochClock, group, label


def test_an_epoch_holds_at_most_fine_outcomes_and_a_new_hour_starts_a_new_one() -> None:
    clock, hour = EpochClock(), 500_000
    epochs = [clock.next(hour * HOUR_US + i) for i in range(2 * FINE + 1)]
    assert epochs == sorted(epochs)
    assert (
        epochs[0] == hour * PER_HOUR
        and epochs[FINE - 1] == epochs[0]
        and epochs[FINE] == epochs[0] + 1
    )
    assert epochs[-1] == epochs[0] + 2
    assert clock.next((hour + 1) * HOUR_US) == (hour + 1) * PER_HOUR
    assert (
        group(epochs[-1], 8) == epochs[0] and group(hour * PER_HOUR + 13, 8) == hour * PER_HOUR + 8
    )


def test_a_restored_clock_continues_the_count() -> None:
    whole, hour = EpochClock(), 7
    for i in range(FINE + 3):
        last = whole.next(hour * HOUR_US + i)
    restored = EpochClock(hour, FINE + 3, last)
    assert restored.next(hour * HOUR_US + 99) == whole.next(hour * HOUR_US + 99)


def test_labels_keep_types_apart_and_take_unhashable_values() -> None:
    assert [label(1), label(1.0), label(True), label("1")] == ["1", "1.0", "true", '"1"']
    assert label([1, {"b": 1, "a": 2}]) == '[1,{"a":2,"b":1}]'

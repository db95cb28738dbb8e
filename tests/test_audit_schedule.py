"""The doubling check (`nasty_tf.audit.schedule`) on hand-made validation curves: each end a
tail mean over the schedule's last tenth, the rule on the baselines' shifts, the stealers'
validation margins over the label-smoothing bar."""

import pytest

from nasty_tf.audit.schedule import (
    TOLERANCE,
    doubling_check,
    format_doubling_check,
    tail_epochs,
    tail_mean,
)


def test_a_tail_is_the_last_tenth_of_the_schedule_and_at_least_one_epoch():
    assert [tail_epochs(n) for n in (1, 2, 10, 11, 20, 80, 160)] == [1, 1, 1, 2, 2, 8, 16]
    curve = list(range(1, 21))  # accuracy n after epoch n
    assert tail_mean(curve, 20) == pytest.approx((19 + 20) / 2)
    assert tail_mean(curve, 10) == 10  # the first 10 epochs' last one
    assert tail_mean(curve, 11) == pytest.approx((10 + 11) / 2)
    for epochs in (0, 21):
        with pytest.raises(ValueError, match=f"Received: epochs={epochs}"):
            tail_mean(curve, epochs)


def _curve(half_tail, full_tail):
    """20 epochs: 9 at 50, epoch 10 at `half_tail`, 8 at 60, the last two at `full_tail`."""
    return [50.0] * 9 + [half_tail] + [60.0] * 8 + list(full_tail)


def test_the_rule_reads_the_baselines_shifts_and_reports_each_stealers_margins():
    curves = {
        "scratch": [_curve(70.0, (70.2, 70.4))],  # shift +0.3
        "label_smoothing": [_curve(71.0, (71.0, 71.0)), _curve(71.0, (71.5, 71.5))],  # +0.25
        "kd": [_curve(70.5, (71.5, 71.7))],  # -0.5 under the bar at 10, +0.35 over it at 20
        "topk": [_curve(70.0, (70.0, 70.0))],
        "dafl": [None],  # a data-free student records no curve
    }
    check = doubling_check(curves, 20)
    assert check["half_epochs"] == 10 and check["epochs"] == 20
    assert check["tail_epochs"] == {"half": 1, "full": 2}
    assert check["baselines"]["scratch"] == pytest.approx(
        {"half": 70.0, "full": 70.3, "shift": 0.3}
    )
    # Several seeds: each end is the seeds' mean.
    assert check["baselines"]["label_smoothing"] == pytest.approx(
        {"half": 71.0, "full": 71.25, "shift": 0.25}
    )
    assert check["tolerance"] == TOLERANCE and check["half_is_enough"] is True
    assert sorted(check["stealers"]) == ["kd", "topk"]
    kd = check["stealers"]["kd"]
    assert kd["half_margin"] == pytest.approx(-0.5) and kd["full_margin"] == pytest.approx(0.35)
    assert kd["verdict_changes"] is True
    assert check["stealers"]["topk"]["verdict_changes"] is False

    moved = dict(curves, scratch=[_curve(70.0, (70.6, 70.6))])  # shift +0.6
    assert doubling_check(moved, 20)["half_is_enough"] is False
    fell = dict(curves, scratch=[_curve(70.0, (69.4, 69.4))])  # shift -0.6
    assert doubling_check(fell, 20)["half_is_enough"] is False

    table = "\n".join(format_doubling_check(check))
    assert "**Would half the schedule, 10 epochs, have done?**" in table
    assert "(epoch 10 and epochs 19-20)" in table and "10 epochs is enough here" in table
    assert "| scratch | 70.00 | 70.30 | +0.30 | | | |" in table
    assert "| kd | 70.50 | 71.60 | +1.10 | -0.50 | +0.35 | **yes** |" in table
    assert "not** enough" in "\n".join(format_doubling_check(doubling_check(moved, 20)))


def test_no_check_without_both_baselines_full_curves_or_an_even_schedule():
    curves = {"scratch": [_curve(70.0, (70.0, 70.0))], "label_smoothing": [_curve(71, (71, 71))]}
    assert doubling_check(curves, 20) is not None
    assert doubling_check(curves, 19) is None  # odd: no run of half the epochs
    assert doubling_check({**curves, "scratch": [None]}, 20) is None  # recorded before curves
    assert doubling_check({**curves, "label_smoothing": [[]]}, 20) is None
    assert doubling_check({"scratch": curves["scratch"]}, 20) is None
    assert format_doubling_check(None) == []

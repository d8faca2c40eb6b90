from types import SimpleNamespace

import pytest

from embodied.eval import SuccessRate, success_table, wilson_interval
from embodied.eval.stats import difference_interval


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(50, 50)
    assert hi == 1.0 and lo == pytest.approx(0.9287, abs=1e-3)
    lo, hi = wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-3) and hi == pytest.approx(0.7634, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_difference_interval_matches_newcombe():
    """Newcombe (1998), method 10, example (56/70 - 48/80): 0.0524 to 0.3339."""
    lo, hi = difference_interval(56, 70, 48, 80)
    assert lo == pytest.approx(0.0524, abs=1e-4) and hi == pytest.approx(0.3339, abs=1e-4)
    lo, hi = difference_interval(50, 50, 0, 50)
    assert hi == 1.0 and 0.85 < lo < 0.95
    assert difference_interval(3, 50, 3, 50) == pytest.approx((-difference_interval(3, 50, 3, 50)[1],
                                                               difference_interval(3, 50, 3, 50)[1]))


def test_success_table_groups_by_robot_and_task():
    rs = [SimpleNamespace(robot="a", task="lift", success=s) for s in (True, True, False)]
    rs.append(SimpleNamespace(robot="b", task="lift", success=True))
    table = success_table(rs)
    assert table[("a", "lift")] == SuccessRate(2, 3) and table[("b", "lift")].rate == 1.0

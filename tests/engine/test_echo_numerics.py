"""The echo gate's fast order statistics agree with numpy's reference ones
(engine/echo.py computes them by doubling and partition, for speed)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from voco.engine.echo import _quantile, _sliding_max


@pytest.mark.parametrize("span", [1, 2, 3, 31, 32, 33, 61, 193])
def test_sliding_max_is_the_windowed_max(span: int) -> None:
    a = np.random.default_rng(span).random(193)
    expected = sliding_window_view(a, span).max(axis=1)
    np.testing.assert_array_equal(_sliding_max(a, span), expected)


@pytest.mark.parametrize("n", [1, 2, 7, 50, 125])
@pytest.mark.parametrize("q", [0.0, 0.5, 0.95, 1.0])
def test_quantile_is_numpys_linear_percentile(n: int, q: float) -> None:
    x = np.random.default_rng(n).random(n) ** 3
    assert _quantile(x, q) == pytest.approx(float(np.percentile(x, 100 * q)), rel=1e-12)

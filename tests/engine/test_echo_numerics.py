"""The echo gate's fast order statistics agree with numpy's reference ones
(engine/echo.py computes them by doubling and partition, for speed)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from voco.engine.echo import BLOCK_MS, _block_energies, _quantile, _sliding_max


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


@pytest.mark.parametrize("rate", [16_000, 22_050, 24_000, 44_100, 48_000])
@pytest.mark.parametrize("n", [0, 1, 191, 192, 193, 960, 4_801])
def test_block_energies_are_each_blocks_mean_energy(rate: int, n: int) -> None:
    x = (np.random.default_rng(n).standard_normal(n) * 6_000).astype(np.int16)
    f = x.astype(np.float64) / 32768.0
    block = np.arange(n) * 1000 // rate // BLOCK_MS
    expected = [float(np.mean(f[block == b] ** 2)) for b in range(int(block.max()) + 1 if n else 0)]
    np.testing.assert_allclose(_block_energies(x, rate), expected, rtol=1e-12)


def test_a_new_reply_starts_a_clean_reference() -> None:
    """The reference buffer is reused across replies (grown by doubling): a
    reset must leave nothing of the last reply's energies behind it."""
    from voco.engine.echo import EchoGate

    loud = (np.full(24_000 * 2, 20_000)).astype("<i2").tobytes()
    quiet = (np.full(960, 100)).astype("<i2").tobytes()
    g = EchoGate()
    g.add_reference(loud, 24_000, 0)
    g.reset()
    g.add_reference(quiet, 24_000, 0)
    g.add_reference(quiet, 24_000, 80)  # a gap at 40-80 ms: never written
    np.testing.assert_allclose(g._ref[:5], (100 / 32768) ** 2)
    np.testing.assert_array_equal(g._ref[5:10], 0.0)
    assert len(g._ref) == 15

"""The bootstrap shows a progress bar over samples when asked, and nothing otherwise; numbers are unchanged."""
from __future__ import annotations

import numpy as np
import pytest

from rsa_bridge.stats import BootstrapOptions, bootstrap_similarity


@pytest.mark.parametrize("method", ["spearman", "kendall_tau_a"])  # the batched and the one-by-one path
def test_bar_only_when_asked_and_same_numbers(method, rng, capsys):
    x = rng.normal(size=(12, 5))
    rdm = lambda a: np.sqrt(((a[:, None] - a[None]) ** 2).sum(-1))  # noqa: E731
    model = np.stack([rdm(x), rdm(x + rng.normal(size=x.shape))])
    neural = {"V4": np.stack([rdm(x + 0.5 * rng.normal(size=x.shape)) for _ in range(2)])}
    quiet = bootstrap_similarity(model, neural, method=method, n_samples=20, seed=3,
                                 options=BootstrapOptions(progress=False))
    assert capsys.readouterr().err == ""
    shown = bootstrap_similarity(model, neural, method=method, n_samples=20, seed=3,
                                 options=BootstrapOptions(progress=True))
    err = capsys.readouterr().err
    assert "bootstrap samples" in err and "20/20" in err
    np.testing.assert_array_equal(quiet.samples, shown.samples)

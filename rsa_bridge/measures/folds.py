"""Cross-validation folds over stimuli: seeded K-fold, stratified K-fold, or the user's own splits.

A fold is a pair ``(train, test)`` of integer index arrays into the n stimuli. :func:`make_folds`
gives ``n_splits`` folds whose test sets partition the stimuli:

- plain: a seeded permutation of 0..n-1 dealt round-robin into ``n_splits`` test sets (sizes differ by
  at most one; scikit-learn ``KFold(shuffle=True)`` gives the same kind of split, not the same indices);
- stratified by ``labels`` (e.g. a manifest column such as the object category, as Brain-Score's
  ``StratifiedShuffleSplit`` by ``object_name``): each class is permuted and dealt round-robin, continuing
  where the previous class stopped, so every test set holds each class in proportion;
- given: ``folds`` as a list of ``(train, test)`` index pairs, or any object with a scikit-learn
  splitter's ``split(X, y)`` method (called with a placeholder X and ``labels``), so that results can be
  matched to another tool's splits exactly.

Every fold is checked: indices in range, no stimulus in both train and test (a leak), train and test
non-empty.

**Smallest test set** (:data:`MIN_TEST_STIMULI`, :func:`check_test_sizes`): a fold's Pearson r over its
held-out stimuli is meaningless on very few of them: with 2 it is always +1 or -1 (or NaN), and under no
relation at all the density of r over m points is proportional to ``(1 - r^2)^((m - 4) / 2)``: U-shaped
(peaks at +-1) for m = 3, flat for m = 4, and peaked at 0 only from m = 5 on. So per-fold scoring needs at
least 5 held-out stimuli in every fold; with fewer, use fewer folds or pooled scoring (one r per neuroid
over all held-out predictions, :mod:`rsa_bridge.measures.predictivity`), which needs only that every
stimulus is held out exactly once. Example::

    >>> folds = make_folds(20, n_splits=5, seed=0)
    >>> [len(test) for _, test in folds]
    [4, 4, 4, 4, 4]
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rsa_bridge.errors import RSABridgeError, preview

Fold = tuple[np.ndarray, np.ndarray]

#: fewest held-out stimuli per fold for a per-fold Pearson r (see the module docstring: from 5 points on the
#: null distribution of r peaks at 0 instead of at +-1)
MIN_TEST_STIMULI = 5


def _dealt(order: np.ndarray, n_splits: int, start: int = 0) -> list[list[int]]:
    tests: list[list[int]] = [[] for _ in range(n_splits)]
    for k, i in enumerate(order):
        tests[(start + k) % n_splits].append(int(i))
    return tests


def check_folds(folds: Sequence[Fold], n: int, ids: Sequence[str] | None = None) -> list[Fold]:
    """The folds as int arrays; RSABridgeError for an out-of-range index, an empty side or a leak."""
    out = []
    for k, fold in enumerate(folds):
        try:
            train, test = fold
        except (TypeError, ValueError):
            raise RSABridgeError(f"fold {k} is not a (train, test) pair of index arrays") from None
        train, test = np.asarray(train).astype(np.int64).ravel(), np.asarray(test).astype(np.int64).ravel()
        if train.size == 0 or test.size == 0:
            raise RSABridgeError(f"fold {k} has an empty train or test set")
        for part in (train, test):
            if part.min() < 0 or part.max() >= n:
                raise RSABridgeError(f"fold {k} has indices outside 0..{n - 1}")
        leak = np.intersect1d(train, test)
        if leak.size:
            names = [ids[i] for i in leak] if ids is not None else [str(i) for i in leak]
            raise RSABridgeError(f"fold {k} leaks stimuli into both train and test: {preview(names)}; "
                                 "every stimulus may be in only one side of a fold")
        out.append((train, test))
    if not out:
        raise RSABridgeError("no folds given")
    return out


def make_folds(n: int, n_splits: int = 10, seed: int = 0, *, labels: Sequence | None = None,
               folds: Any = None, ids: Sequence[str] | None = None) -> list[Fold]:
    """Cross-validation folds over n stimuli (see the module docstring).

    Args:
        n: number of stimuli.
        n_splits: folds (>= 2; each stimulus is tested once).
        seed: seed of the permutation (stored by the caller).
        labels: (n,) class of each stimulus for stratified folds (None = plain).
        folds: the user's folds: a list of (train, test) index pairs or a scikit-learn splitter.
        ids: stimulus ids, for error messages.

    Returns:
        list of (train, test) int64 index arrays.

    Raises:
        RSABridgeError: fewer stimuli than folds, a class with fewer members than folds, leaking folds.
    """
    if folds is not None:
        if hasattr(folds, "split"):
            y = None if labels is None else np.asarray(labels)
            try:
                folds = list(folds.split(np.zeros((n, 1)), y))
            except ValueError as err:
                raise RSABridgeError(f"the splitter could not split {n} stimuli: {err}") from None
        return check_folds(folds, n, ids)
    if not isinstance(n_splits, (int, np.integer)) or n_splits < 2:
        raise RSABridgeError(f"cross-validation needs at least 2 folds; got {n_splits!r}")
    if n < n_splits:
        raise RSABridgeError(f"{n} stimuli cannot be split into {n_splits} folds; use fewer folds")
    rng = np.random.default_rng(seed)
    if labels is None:
        tests = _dealt(rng.permutation(n), n_splits)
    else:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise RSABridgeError(f"{labels.shape[0] if labels.ndim else 0} labels for {n} stimuli")
        classes, counts = np.unique(labels.astype(str), return_counts=True)
        small = [f"{c} ({m})" for c, m in zip(classes, counts) if m < n_splits]
        if small:
            raise RSABridgeError(f"label classes with fewer members than the {n_splits} folds: {preview(small)}; "
                                 "use fewer folds or another label column")
        tests, start = [[] for _ in range(n_splits)], 0
        for c in classes:
            members = np.flatnonzero(labels.astype(str) == c)
            for k, part in enumerate(_dealt(rng.permutation(members), n_splits, start)):
                tests[k].extend(part)
            start = (start + len(members)) % n_splits
    everything = np.arange(n)
    return check_folds([(np.setdiff1d(everything, t), np.sort(np.asarray(t, dtype=np.int64))) for t in tests], n, ids)


def largest_folds(n: int, minimum: int = MIN_TEST_STIMULI) -> int:
    """The most folds over n stimuli that leave every test set ``minimum`` stimuli (at least 2 folds, or 0 if
    even 2 cannot)."""
    k = n // minimum
    return k if k >= 2 else 0


def check_test_sizes(folds: Sequence[Fold], n: int, pooled: bool = False) -> None:
    """Raise (one line, with the fix) when the folds cannot give a meaningful held-out Pearson r.

    Per-fold scoring (``pooled=False``): every test set needs :data:`MIN_TEST_STIMULI` stimuli. Pooled
    scoring: every stimulus must be held out exactly once (the pooled predictions cover each stimulus once),
    and n must reach :data:`MIN_TEST_STIMULI`.

    Example::

        >>> check_test_sizes(make_folds(20, 10), 20)
        Traceback (most recent call last):
        ...
        rsa_bridge.errors.RSABridgeError: 10 folds over 20 stimuli leave 2 held-out stimuli in a fold; a fold's Pearson r needs at least 5 (with 2 it is +1 or -1): use --folds 4 or fewer, or --cv-score pooled
        >>> check_test_sizes(make_folds(20, 10), 20, pooled=True)
    """
    sizes = [len(test) for _, test in folds]
    if pooled:
        tested = np.sort(np.concatenate([np.asarray(test) for _, test in folds]))
        if tested.size != n or (tested != np.arange(n)).any():
            raise RSABridgeError("--cv-score pooled needs folds that hold out every stimulus exactly once "
                                 "(a K-fold partition); these folds do not: use --cv-score per-fold")
        if n < MIN_TEST_STIMULI:
            raise RSABridgeError(f"{n} stimuli are too few for a pooled Pearson r (at least {MIN_TEST_STIMULI})")
        return
    small = min(sizes)
    if small < MIN_TEST_STIMULI:
        k = largest_folds(n)
        fix = (f"use --folds {k} or fewer, or --cv-score pooled" if k else
               f"use --cv-score pooled (fewer than {2 * MIN_TEST_STIMULI} stimuli cannot fill 2 folds)")
        raise RSABridgeError(f"{len(sizes)} folds over {n} stimuli leave {small} held-out stimuli in a fold; a fold's "
                             f"Pearson r needs at least {MIN_TEST_STIMULI} (with 2 it is +1 or -1): {fix}")

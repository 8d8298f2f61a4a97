"""Cross-validation folds and bootstrap draws, by identity (group labels and stimulus ids), seeded.

A :class:`Fold` names the training and test groups (subjects) and stimuli; a :class:`Draw` is one bootstrap
sample: group labels and stimulus ids drawn with replacement. The evaluators take them explicitly, so the
same folds and draws can be fed to a peer (rsatoolbox) and compared; :func:`make_draw` and :func:`make_folds`
make them from a ``numpy.random.Generator``.

:func:`make_folds` splits like rsatoolbox ``sets_k_fold``: the distinct groups are shuffled and cut into
``k_rdm`` parts, then for each part the distinct stimuli are shuffled again and cut into ``k_pattern`` parts
(``k_rdm * k_pattern`` folds, group part major). A list of L values cut into k parts gives each part
``floor(L / k)`` consecutive values and the first ``L mod k`` parts one more value each, taken from the end.
With k = 1 training and test share all values (no cross-validation along that dimension).

Example:
    >>> import numpy as np
    >>> f = make_folds(("s1", "s2"), tuple("abcdef"), 2, 1, np.random.default_rng(0))
    >>> len(f), sorted(f[0].test_stimuli + f[0].train_stimuli) == list("abcdef")
    (2, True)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Fold:
    """One training/test split: group labels and stimulus ids (distinct values)."""

    train_groups: tuple[str, ...]
    test_groups: tuple[str, ...]
    train_stimuli: tuple[str, ...]
    test_stimuli: tuple[str, ...]


@dataclass(frozen=True)
class Draw:
    """One bootstrap sample: group labels and stimulus ids drawn with replacement (repeats allowed)."""

    groups: tuple[str, ...]
    stimuli: tuple[str, ...]


def split(values: tuple[str, ...], k: int) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """``(train, test)`` for each of k parts of ``values`` (rsatoolbox's cut; see the module docstring)."""
    n = len(values)
    size, extra = n // k, n % k
    out = []
    for i in range(k):
        test = list(range(i * size, (i + 1) * size)) + ([n - (i + 1)] if i < extra else [])
        train = test if k <= 1 else [j for j in range(n) if j not in set(test)]
        out.append((tuple(values[j] for j in train), tuple(values[j] for j in test)))
    return out


def make_folds(groups: tuple[str, ...], stimuli: tuple[str, ...], k_pattern: int, k_rdm: int,
               rng: np.random.Generator) -> list[Fold]:
    """``k_rdm * k_pattern`` folds over the distinct ``groups`` and ``stimuli`` (shuffled by ``rng``)."""
    groups = tuple(dict.fromkeys(groups))
    stimuli = tuple(dict.fromkeys(stimuli))
    folds = []
    for g_train, g_test in split(tuple(groups[i] for i in rng.permutation(len(groups))), k_rdm):
        order = tuple(stimuli[i] for i in rng.permutation(len(stimuli)))
        folds += [Fold(g_train, g_test, s_train, s_test) for s_train, s_test in split(order, k_pattern)]
    return folds


def make_draw(groups: tuple[str, ...], stimuli: tuple[str, ...], rng: np.random.Generator) -> Draw:
    """A bootstrap draw of the distinct groups and stimuli (each drawn with replacement, as many as there are)."""
    groups = tuple(dict.fromkeys(groups))
    stimuli = tuple(dict.fromkeys(stimuli))
    return Draw(tuple(groups[i] for i in rng.integers(0, len(groups), len(groups))),
                tuple(stimuli[i] for i in rng.integers(0, len(stimuli), len(stimuli))))

"""Fitters and model kinds: registries (name -> record), never an if/elif on a name.

A fitted RDM model predicts a brain RDM as ``weights @ V``, V (K, m) the candidate model RDM vectors and
``weights`` (K,) the parameters a :class:`Fitter` finds on training data:

=========== ==================================================================== ==========================
fitter      what it finds (D: training brain RDMs, pooled to one vector y)         rsatoolbox
=========== ==================================================================== ==========================
``nnls``    argmin |y - V'w|^2 over w >= 0, then w / |w|                          ``fit_regress_nn``
``regress`` the ordinary least-squares w = (V V')^-1 V y, then w / |w|            ``fit_regress``
``select``  the one-hot w of the RDM with the best mean similarity to the D       ``fit_select``
``none``    no fit: w = 1 for each RDM (a fixed model)                          ``fit_mock``
=========== ==================================================================== ==========================

For ``nnls`` and ``regress`` the vectors are first put in the space the comparison method scores
(:data:`FIT_SPACES`): for ``cosine`` V and the D as they are, each D scaled to unit root mean square before
pooling (the mean over RDMs); for ``pearson`` each row of V centred, each D z-scored (population SD) before
pooling, and the pooled y shifted to ``y - min(y) + 0.01`` (rsatoolbox ``pool_rdm``; the shift does not
change the fit because V is centred). So the least-squares fit maximises the cosine / Pearson r of the
prediction with the pooled data. ``select`` works with every comparison method.

A :class:`ModelKind` says which fitters fit it: ``weighted`` (rsatoolbox ``ModelWeighted``: non-negative
or signed weights on all its RDMs), ``select`` (rsatoolbox ``ModelSelect``: the best single RDM) and ``fixed``
(rsatoolbox ``ModelFixed``: one RDM as it is, the baseline the fitted models are compared with on the same folds).

This module imports numpy only when a fitter runs (the command line builds its choices from these registries).

Example:
    >>> import numpy as np
    >>> V = np.array([[1.0, 2.0, 3.0, 4.0], [4.0, 1.0, 1.0, 2.0]])
    >>> w = FITTERS["nnls"].fit(V, 2 * V[:1] + 0.5 * V[1:], "cosine")
    >>> np.round(w / w[0], 6).tolist()
    [1.0, 0.25]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from rsa_bridge.errors import RSABridgeError
from rsa_bridge.registry import Registry


@dataclass(frozen=True)
class FitSpace:
    """How ``nnls`` / ``regress`` prepare vectors for one comparison method.

    Attributes:
        method: the comparison method's canonical name.
        center: centre each model vector (Pearson) or not (cosine).
        pool: (R, m) training brain vectors -> (m,) the pooled target y.
    """

    method: str
    center: bool
    pool: Callable[[Any], Any]


def _pool_rms(d: Any) -> Any:
    import numpy as np

    return (d / np.sqrt(np.mean(d ** 2, axis=1, keepdims=True))).mean(axis=0)


def _pool_z(d: Any) -> Any:
    z = d - d.mean(axis=1, keepdims=True)
    y = (z / z.std(axis=1, keepdims=True)).mean(axis=0)
    return y - y.min() + 0.01


#: comparison method -> the space ``nnls`` and ``regress`` fit in
FIT_SPACES = Registry("comparison method for a least-squares fit", {
    "cosine": FitSpace("cosine", False, _pool_rms),
    "pearson": FitSpace("pearson", True, _pool_z),
}, hint="nnls and regress fit for these; the select fitter takes any method")


def _space(method: str, fitter: str) -> FitSpace:
    from rsa_bridge.methods import get

    name = get(method).name
    if name not in FIT_SPACES:
        raise RSABridgeError(f"fitter {fitter!r} fits for comparison methods {', '.join(FIT_SPACES)}; got {name!r}: "
                             "choose one of those with --method, or the select model")
    return FIT_SPACES[name]


def _prepared(V: Any, D: Any, method: str, fitter: str) -> tuple[Any, Any]:
    space = _space(method, fitter)
    V = V - V.mean(axis=1, keepdims=True) if space.center else V
    return V, space.pool(D)


def _unit(w: Any) -> Any:
    import numpy as np

    norm = np.sqrt(np.sum(w ** 2))
    return w if norm == 0 else w / norm


def fit_nnls(V: Any, D: Any, method: str) -> Any:
    """Non-negative weights (K,) of V (K, m) that best fit the pooled D (R, m), unit norm."""
    from scipy.optimize import nnls

    V, y = _prepared(V, D, method, "nnls")
    return _unit(nnls(V.T, y)[0])


def fit_regress(V: Any, D: Any, method: str) -> Any:
    """Least-squares weights (K,) of V (K, m) for the pooled D (R, m), unit norm (signs free)."""
    import numpy as np

    V, y = _prepared(V, D, method, "regress")
    gram = V @ V.T
    if np.linalg.matrix_rank(gram) < len(gram):
        raise RSABridgeError("the model RDMs are linearly dependent on the training pairs, so regression weights "
                             "are not unique; drop a redundant RDM or use --fitter nnls")
    return _unit(np.linalg.solve(gram, V @ y))


def fit_select(V: Any, D: Any, method: str) -> Any:
    """One-hot weights (K,): the RDM of V with the highest mean similarity to the rows of D (first on ties)."""
    import numpy as np

    from rsa_bridge.methods import get

    scores = get(method).similarity(V, D).mean(axis=1)
    w = np.zeros(len(V))
    w[int(np.argmax(scores))] = 1.0
    return w


def fit_none(V: Any, D: Any, method: str) -> Any:
    """No fit: weight 1 on every RDM (a fixed model predicts its RDM, or the plain sum of its RDMs)."""
    import numpy as np

    return np.ones(len(V))


@dataclass(frozen=True)
class Fitter:
    """A fitter: ``fit(V (K, m), D (R, m), method) -> weights (K,)``; see the module docstring.
    ``least_squares``: it fits in a comparison method's space (:data:`FIT_SPACES`), so only for those methods."""

    name: str
    definition: str
    fit: Callable[[Any, Any, str], Any]
    rsatoolbox: str
    least_squares: bool = True


def check_method(fitter: Fitter, method: str) -> None:
    """One-line refusal of a least-squares fitter with a comparison method it does not fit for."""
    if fitter.least_squares:
        _space(method, fitter.name)


@dataclass(frozen=True)
class ModelKind:
    """A kind of fitted model and the fitters that fit it (the first is its default); ``per_rdm``: the command
    line makes one such model per model RDM (``fixed``) instead of one over all of them."""

    name: str
    definition: str
    fitters: tuple[str, ...]
    rsatoolbox: str
    per_rdm: bool = False


#: fitter name -> record
FITTERS = Registry("fitter", {
    "nnls": Fitter("nnls", "non-negative least squares on the pooled training RDM, weights scaled to unit norm",
                   fit_nnls, "fit_regress_nn"),
    "regress": Fitter("regress", "ordinary least squares on the pooled training RDM, weights scaled to unit norm",
                      fit_regress, "fit_regress"),
    "select": Fitter("select", "the single model RDM with the best mean similarity to the training RDMs",
                     fit_select, "fit_select", least_squares=False),
    "none": Fitter("none", "no fit: weight 1 on each RDM (a fixed model)", fit_none, "fit_mock (ModelFixed)",
                   least_squares=False),
}, aliases={"fit_regress_nn": "nnls", "fit_nnls": "nnls", "fit_regress": "regress", "fit_select": "select"})

#: model kind -> record
MODEL_KINDS = Registry("fitted model kind", {
    "weighted": ModelKind("weighted", "a weighted sum of the model RDMs", ("nnls", "regress"), "ModelWeighted"),
    "select": ModelKind("select", "the best single model RDM, chosen on the training data", ("select",),
                        "ModelSelect"),
    "fixed": ModelKind("fixed", "one model RDM as it is, not fitted (one such model per RDM on the command line)",
                       ("none",), "ModelFixed", per_rdm=True),
}, aliases={"ModelWeighted": "weighted", "ModelSelect": "select", "ModelFixed": "fixed"})


@dataclass(frozen=True)
class ModelSpec:
    """One fitted model: its name, kind, fitter and the model RDMs it combines (names; () = all).

    Example:
        >>> ModelSpec("w", "weighted").fitter_name
        'nnls'
    """

    name: str
    kind: str = "weighted"
    fitter: str | None = None
    components: tuple[str, ...] = ()

    @property
    def fitter_name(self) -> str:
        kind = MODEL_KINDS.get_record(self.kind)
        fitter = kind.fitters[0] if self.fitter is None else FITTERS.resolve(self.fitter)
        if fitter not in kind.fitters:
            raise RSABridgeError(f"a {kind.name} model is fitted by {', '.join(kind.fitters)}; got fitter {fitter!r}")
        return fitter

    def rows(self, names: tuple[str, ...]) -> Any:
        """Rows of the model RDMs (names) this model combines."""
        import numpy as np

        if not self.components:
            return np.arange(len(names))
        where = {n: i for i, n in enumerate(names)}
        missing = [c for c in self.components if c not in where]
        if missing:
            from rsa_bridge.registry import unknown_name

            raise RSABridgeError(unknown_name("model RDM", missing[0], names))
        return np.array([where[c] for c in self.components])

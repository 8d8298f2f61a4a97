"""Comparison of RDMs: one function per method, looked up in :data:`METHODS`.

Every method works on the strictly upper triangles (``n*(n-1)/2`` dissimilarities) of two RDMs that
cover the same stimuli. :func:`compare_rdms` aligns them by ``stimulus_id`` first (never by position);
:func:`compare_vectors` compares many RDM vectors at once with one matrix product where the method
allows it.

================= ========================================================== ============================
name              definition on the two dissimilarity vectors a, b           rsatoolbox ``compare`` method
================= ========================================================== ============================
spearman          Pearson r of the ranks (average ranks for ties)            ``spearman``
pearson           Pearson r                                                  ``corr``
kendall_tau_a     (concordant - discordant pairs) / (m (m - 1) / 2)          ``tau-a``
rho_a             12 sum (R_a - mean)(R_b - mean) / (m^3 - m) with average   ``rho-a``
                  ranks R (Spearman's rho without the tie correction of the
                  denominator; equals ``spearman`` when there are no ties)
cosine            a.b / (|a| |b|) (no centring)                              ``cosine``
whitened_pearson  ``whitened_cosine`` of the mean-centred vectors             ``corr_cov`` (sigma_k=None)
whitened_cosine   cosine of the double-centred second-moment matrices        ``cosine_cov`` (sigma_k=None)
                  G = -H D H / 2 (H the centring matrix, D the RDM), i.e.
                  their Frobenius cosine: the RDM cosine whitened by the
                  covariance of distance estimates under i.i.d. pattern
                  noise (Diedrichsen et al. 2021; = linear CKA)
================= ========================================================== ============================

``m`` is the number of stimulus pairs, n(n-1)/2. Each method is one :class:`rsa_bridge.methods.Method`
object (one module in :mod:`rsa_bridge.methods`; :data:`rsa_bridge.definitions.COMPARISONS` is its registry):
definition, peers' names, aliases and every capability; ``docs/reference/registries.md`` is generated from those
records.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import xarray as xr

from rsa_bridge.align import align_rdms
from rsa_bridge.definitions import COMPARISONS
from rsa_bridge.duplicates import duplicates
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.methods import view
from rsa_bridge.methods._numeric import kendall_tau_a, n_stimuli_from_pairs, whitening_transform  # noqa: F401
from rsa_bridge.rdm import ROW, upper_triangle
from rsa_bridge.registry import Registry
from rsa_bridge.value_checks import asymmetric

#: method name -> function (a (L, m), b (R, m)) -> (L, R) similarities: a live view of each method's
#: ``similarity`` in :data:`rsa_bridge.definitions.COMPARISONS` (which holds everything else about it)
METHODS: Registry[Callable[[np.ndarray, np.ndarray], np.ndarray]] = view(COMPARISONS.what, lambda m: m.similarity)

#: method name -> the rsatoolbox ``compare`` method with the same definition (live view)
RSATOOLBOX_NAMES: Registry[str] = view("comparison method", lambda m: m.rsatoolbox)


def compare_vectors(a: np.ndarray, b: np.ndarray, method: str = "spearman") -> np.ndarray:
    """Similarity of every RDM vector in ``a`` with every one in ``b``.

    Args:
        a: (L, m) or (m,) upper-triangle dissimilarity vectors (e.g. one per model layer).
        b: (R, m) or (m,) vectors over the same stimulus pairs in the same order (e.g. one per subject).
        method: one of :data:`METHODS` or an alias (rsatoolbox's ``corr``, ``tau-a`` ...; case ignored).

    Returns:
        (L, R) float64 similarities (dimensionless, in [-1, 1] for the correlation methods).
    """
    method = COMPARISONS.resolve(method)
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    if a.shape[-1] != b.shape[-1]:
        raise RSABridgeError(f"RDM vectors differ in length: {a.shape[-1]} vs {b.shape[-1]}")
    if a.shape[-1] < 3:
        raise RSABridgeError("comparing RDMs needs at least 3 stimuli")
    for what, x in (("model", a), ("neural", b)):
        if not np.isfinite(x).all():
            raise RSABridgeError(f"the {what} RDM contains NaN or inf")
    return COMPARISONS[method].similarity(a, b)


def compare_rdms(model_rdm, neural_rdm, method: str = "spearman") -> float:
    """Similarity of two RDMs over their upper triangles.

    Args:
        model_rdm, neural_rdm: (n, n) RDM DataArrays (matched by ``stimulus_id``: the neural RDM is
            reordered to the model's order; differing id sets are an error), or plain square arrays
            already in the same stimulus order.
        method: ``spearman`` (default) or another name in :data:`METHODS` (see the module table).

    Returns:
        The similarity as a Python float.

    Examples:
        The same RDM with its stimuli listed in reverse order: DataArrays are matched by id, plain
        arrays are taken in the order given (by hand: Spearman of 1..6 with 6, 5, 3, 4, 2, 1 is
        1 - 6 * 68 / (6 * 35) = -0.9429):

        >>> import numpy as np
        >>> from rsa_bridge.rdm import rdm_dataarray
        >>> d = np.array([[0, 1, 2, 3], [1, 0, 4, 5], [2, 4, 0, 6], [3, 5, 6, 0]], dtype=float)
        >>> model = rdm_dataarray(d, ["a", "b", "c", "d"])
        >>> brain = model.sel(stimulus_row=["d", "c", "b", "a"], stimulus_col=["d", "c", "b", "a"])
        >>> round(compare_rdms(model, brain), 12)
        1.0
        >>> round(compare_rdms(model.values, brain.values), 4)
        -0.9429
    """
    if isinstance(model_rdm, xr.DataArray) and isinstance(neural_rdm, xr.DataArray):
        for what, rdm in (("model", model_rdm), ("neural", neural_rdm)):
            ids = [str(s) for s in rdm[ROW].values] if ROW in rdm.coords else []
            if len(set(ids)) != len(ids):
                dup = duplicates(ids)
                raise RSABridgeError(f"the {what} RDM has duplicate stimulus ids: {', '.join(map(repr, dup[:5]))}")
        model_rdm, neural_rdm = align_rdms(model_rdm, neural_rdm)
    a, b = np.asarray(model_rdm), np.asarray(neural_rdm)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape != b.shape:
        raise RSABridgeError(f"RDMs must be square and of equal size; got {a.shape} and {b.shape}")
    if a.shape[0] < 3:
        raise RSABridgeError(f"RDMs need at least 3 stimuli to be compared; got {a.shape[0]}")
    for what, m in (("model", a), ("neural", b)):
        if m.dtype.kind not in "biuf":
            raise RSABridgeError(f"the {what} RDM holds {m.dtype} values, not numbers")
        mt = m.T
        bad = asymmetric(m, mt) & ~(np.isnan(m) & np.isnan(mt))  # per entry, relative to the pair compared
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise RSABridgeError(f"the {what} RDM is not symmetric (entry [{i}, {j}] = {m[i, j]:.6g} but "
                                 f"[{j}, {i}] = {m[j, i]:.6g}); an RDM holds one dissimilarity per pair")
    return float(compare_vectors(upper_triangle(a), upper_triangle(b), method)[0, 0])

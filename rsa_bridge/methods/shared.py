"""Building blocks for comparison methods (built-in and plugins), light to import.

Each function imports its numeric code when called, so a method module that uses them stays importable
without numpy (the command line builds ``--method`` from the records at once).

- pools for the Nili noise ceiling (rsatoolbox ``pool_rdm``), (R, m) -> (m,): :func:`pool_ranks` (rank methods),
  :func:`pool_zscores` (correlations), :func:`pool_rms` (cosines), :func:`pool_mean` (raw mean);
- :func:`whitened`: the similarity, masked and permutation functions of a whitened method (rsatoolbox
  ``cosine_cov``/``corr_cov``);
- finishing steps of chunked methods (:class:`rsa_bridge.chunked_compare.Moments` -> (L, R)):
  :func:`finish_pearson`, :func:`finish_rho_a`, :func:`finish_cosine`.
"""
from __future__ import annotations


def pool_ranks(x):
    """Mean of the RDMs' average ranks."""
    from rsa_bridge.methods import _numeric

    return _numeric.pool_ranks(x)


def pool_zscores(x):
    """Mean of the z-scored RDMs, shifted to a minimum of 0."""
    from rsa_bridge.methods import _numeric

    return _numeric.pool_zscores(x)


def pool_rms(x):
    """Mean of the RDMs scaled to unit root mean square."""
    from rsa_bridge.methods import _numeric

    return _numeric.pool_rms(x)


def pool_mean(x):
    """Plain mean of the RDMs."""
    from rsa_bridge.methods import _numeric

    return _numeric.pool_mean(x)


def finish_pearson(moments):
    """Pearson r from the sums over pairs."""
    from rsa_bridge.methods import _numeric

    return _numeric.finish_pearson(moments)


def finish_rho_a(moments):
    """12 S_xy / (m^3 - m) from the sums over centred ranks."""
    from rsa_bridge.methods import _numeric

    return _numeric.finish_rho_a(moments)


def finish_cosine(moments):
    """S_xy / sqrt(S_xx S_yy) from the sums over pairs."""
    from rsa_bridge.methods import _numeric

    return _numeric.finish_cosine(moments)


def whitened(centre: bool, why: str, module: str):
    """``(similarity, masked, permutation)`` of a whitened method: ``centre`` mean-centres the vectors first
    (``whitened_pearson``), ``why`` says what makes a vector undefined (start of the error message); the
    functions belong to ``module``, the method's own module (its record's ``source``)."""

    def masked(a, b, valid):
        """Similarity over the valid pairs; ``valid`` (m,) bool among all pairs (None: all). (L, m), (R, m) -> (L, R)."""
        import numpy as np

        from rsa_bridge.methods._numeric import whitened_unit

        reason = why if valid is None else "is constant within the sample"
        return np.clip(whitened_unit(a, valid, centre, "a model", reason)
                       @ whitened_unit(b, valid, centre, "a neural", reason).T, -1.0, 1.0)

    def similarity(a, b):
        """(L, m), (R, m) -> (L, R)."""
        return masked(a, b, None)

    def permutation(vectors):
        """Unit whitened values split into the pair part (K, m) and the diagonal (K, n)."""
        from rsa_bridge.methods._numeric import whitened_unit

        t = whitened_unit(vectors, None, centre, "an", why)
        m = vectors.shape[1]
        return t[:, :m], t[:, m:]

    for function in (similarity, masked, permutation):
        function.__module__, function.__qualname__ = module, function.__name__
    return similarity, masked, permutation

"""Building blocks for comparison methods (built-in and plugins), light to import.

Each function imports its numeric code when called, so a method module that uses them stays importable
without numpy (the command line builds ``--method`` from the records at once).

- pools for the Nili noise ceiling (rsatoolbox ``pool_rdm``), (R, m) -> (m,): :func:`pool_ranks` (rank methods),
  :func:`pool_zscores` (correlations), :func:`pool_rms` (cosines), :func:`pool_mean` (raw mean);
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

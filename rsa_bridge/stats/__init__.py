"""Statistics for RDM comparisons: bootstrap CIs, permutation p-values, noise ceilings, layer comparisons.

Every random step takes a ``seed`` or a ``numpy.random.Generator``; the same seed gives bit-identical
results. Definitions follow rsatoolbox where it has them (tests check equality to 1e-10):

- :func:`bootstrap_similarity` — bootstrap over stimuli, RDMs (subjects/sessions) or both;
- :func:`permutation_test` — p-values from permuting one RDM's stimulus labels, with :func:`holm` and
  :func:`fdr_bh` corrections;
- :func:`noise_ceiling` — Nili et al. (2014) lower/upper bounds (or the Algonauts r^2 variant);
  :func:`split_half_reliability` (Spearman–Brown corrected) from repeat-level responses;
- :func:`paired_difference`, :func:`best_layer` — is layer/model A better than B, which layer is best;
- :func:`resampling_unit` — subjects/animals as the unit of ceilings, SEM and the bootstrap over RDMs
  (:mod:`.grouping`); :mod:`.time_course` — time-resolved RSA with peak latencies.
"""
from rsa_bridge.stats.bootstrap import BootstrapResult, bootstrap_similarity, percentile_ci
from rsa_bridge.stats.ceiling import NoiseCeiling, noise_ceiling
from rsa_bridge.stats.grouping import ResamplingUnit, group_bootstrap_indices, group_mean_sem, resampling_unit
from rsa_bridge.stats.layers import LayerDifference, best_layer, bootstrap_pair_p, paired_difference
from rsa_bridge.stats.permutation import CORRECTIONS, PermutationResult, fdr_bh, holm, permutation_test
from rsa_bridge.stats.resample import (as_generator, bootstrap_rdms, bootstrap_stimuli, pair_weights, permutations,
                                       split_halves)
from rsa_bridge.stats.run_options import BootstrapOptions, PermutationOptions
from rsa_bridge.stats.split_half import SplitHalfReliability, half_similarities, spearman_brown, split_half_reliability

__all__ = [
    "ResamplingUnit", "group_bootstrap_indices", "group_mean_sem", "resampling_unit",
    "BootstrapOptions", "BootstrapResult", "CORRECTIONS", "LayerDifference", "NoiseCeiling", "PermutationOptions",
    "PermutationResult", "SplitHalfReliability",
    "as_generator", "best_layer", "bootstrap_pair_p", "bootstrap_rdms", "bootstrap_similarity", "bootstrap_stimuli",
    "fdr_bh", "half_similarities", "holm", "noise_ceiling", "pair_weights", "paired_difference", "percentile_ci", "permutation_test",
    "permutations", "spearman_brown", "split_half_reliability", "split_halves",
]

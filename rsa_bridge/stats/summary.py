"""All the statistics of one compare run over one dataset, in one call (used by :mod:`rsa_bridge.app.pipeline`).

Rows are model layers (``model:layer`` when several models are scored together), columns the areas.
The same random Generator serves, in this order: the bootstrap (stimulus index sets, then RDM index
sets per area) and the permutations — so one seed fixes every number.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from rsa_bridge import timing
from rsa_bridge.datasets import area_rdms
from rsa_bridge.rdm import ROW
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.stats.bootstrap import BootstrapResult, bootstrap_similarity
from rsa_bridge.stats.ceiling import NoiseCeiling, noise_ceiling
from rsa_bridge.stats.grouping import ResamplingUnit, group_bootstrap_indices, resampling_unit
from rsa_bridge.stats.layers import LayerDifference, best_layer, paired_difference
from rsa_bridge.options import NORMALIZE, StatsOptions
from rsa_bridge.stats.permutation import CORRECTIONS, PermutationResult, permutation_test
from rsa_bridge.stats.plan import StatsPlan, plan_statistics
from rsa_bridge.stats.stores import is_store, store_size
from rsa_bridge.stats.run_options import BootstrapOptions, PermutationOptions

#: old keywords of :func:`compare_statistics` -> the StatsOptions field they set (accepted for one release)
OLD_KEYWORDS = {"n_bootstrap": "bootstrap", "n_permutations": "permutations", "over": "bootstrap_over",
                "level": "ci_level", "ceiling": "ceiling", "normalize": "normalize_by_ceiling", "progress": "progress",
                "group_by": "group_by", "split_half_seed": "seed"}


@dataclass
class CompareStatistics:
    """Statistics of a (rows x areas) similarity table.

    Attributes:
        ci_low, ci_high: (rows, areas) percentile bootstrap interval, or None.
        p_value, p_holm, p_fdr: (rows, areas) permutation p (raw, Holm, Benjamini–Hochberg within each
            family: per area, one model's layers; the image-statistics controls together), or None.
        families: (rows,) the multiple-comparison family of each row (a model name or ``controls``).
        ceilings: per area its Nili noise ceiling, None for an area with a single RDM.
        best: the best-layer table (see :func:`rsa_bridge.stats.best_layer`), per model, or None.
        model_differences: best layer of one model minus best layer of another, per area, or None.
        units: per area its unit of resampling (:mod:`rsa_bridge.stats.grouping`).
    """

    labels: list[str]
    areas: list[str]
    ceilings: dict[str, NoiseCeiling | None]
    boot: BootstrapResult | None = field(default=None, repr=False)
    perm: PermutationResult | None = field(default=None, repr=False)
    level: float = 0.95
    ci_low: np.ndarray | None = None
    ci_high: np.ndarray | None = None
    p_value: np.ndarray | None = None
    p_holm: np.ndarray | None = None
    p_fdr: np.ndarray | None = None
    best: pd.DataFrame | None = None
    model_differences: pd.DataFrame | None = None
    units: dict[str, ResamplingUnit] = field(default_factory=dict)
    ceiling_notes: dict[str, str] = field(default_factory=dict)
    families: list[str] = field(default_factory=list)
    plan: StatsPlan | None = field(default=None, repr=False)

    def family_description(self) -> str:
        """The families in words: ``per area, each model's layers (alexnet: 8 layers); controls (pixels) together``."""
        return describe_families(self.labels, self.families)

    def _label(self, layer: str) -> str:
        if layer in self.labels:
            return layer
        hits = [label for label in self.labels if label.split(":", 1)[-1] == layer]
        if len(hits) == 1:
            return hits[0]
        raise RSABridgeError(f"layer {layer!r} is {'ambiguous' if hits else 'not scored'}: name it as model:layer, "
                             f"one of {', '.join(self.labels)}")

    def layer_difference(self, a: str, b: str, area: str, level: float | None = None) -> LayerDifference:
        """Is layer ``a`` more similar to ``area`` than layer ``b``? Paired bootstrap difference.

        Args:
            a, b: layer names (``conv5``), or ``model:layer`` when several models were scored.
            area: an area of this dataset; level: CI level (default: the run's ``ci_level``).

        Returns:
            :class:`rsa_bridge.stats.LayerDifference`: observed sim(a) - sim(b), percentile CI, two-sided
            bootstrap p (rsatoolbox's ``bootstrap_pair_tests`` definition).
        """
        if self.boot is None:
            raise RSABridgeError("comparing layers needs bootstrap samples: run compare with bootstrap > 0")
        return paired_difference(self.boot, self._label(a), self._label(b), area, self.level if level is None else level)


def _model_of(label: str) -> str:
    return label.split(":", 1)[0]


CONTROLS_FAMILY = "controls"


def p_families(labels: list[str], controls=()) -> list[str]:
    """The multiple-comparison family of each row ``model:layer``: its model, or ``controls`` for the
    image-statistics control models named in ``controls`` (they are tested together, apart from networks)."""
    controls = set(controls)
    return [CONTROLS_FAMILY if _model_of(label) in controls else _model_of(label) for label in labels]


def family_corrected(p: np.ndarray, families: list[str], correction: str) -> np.ndarray:
    """Adjusted p (rows, areas): ``correction`` (``holm``/``fdr_bh``) within each family, per area (column)."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full_like(p, np.nan)
    fam = np.asarray(families)
    for name in dict.fromkeys(families):
        rows = np.flatnonzero(fam == name)
        for j in range(p.shape[1]):
            out[rows, j] = CORRECTIONS[correction](p[rows, j])
    return out


def describe_families(labels: list[str], families: list[str]) -> str:
    """``per area, each model's layers (alexnet: 8 layers); controls (pixels, gabor: 2 models) together``."""
    parts, controls = [], []
    for name in dict.fromkeys(families):
        members = [label for label, f in zip(labels, families) if f == name]
        if name == CONTROLS_FAMILY:
            controls = list(dict.fromkeys(_model_of(m) for m in members))
        else:
            parts.append(f"{name}: {len(members)} layer{'s' if len(members) != 1 else ''}")
    text = "per area, each model's layers form one family" + (f" ({'; '.join(parts)})" if parts else "")
    if controls:
        text += f"; the controls form their own family ({', '.join(controls)}: {len(controls)} tests)"
    return text


def model_differences(boot: BootstrapResult, level: float = 0.95) -> pd.DataFrame:
    """For every pair of models and every area: best layer (on the full data) of A minus that of B.

    The best layers are chosen on the observed similarities, then compared on the same bootstrap
    samples (the selection itself is not resampled, which favours the winners slightly).
    """
    models = list(dict.fromkeys(_model_of(label) for label in boot.labels))
    rows = []
    for k, area in enumerate(boot.areas):
        best = {}
        for model in models:
            idx = [i for i, label in enumerate(boot.labels) if _model_of(label) == model]
            best[model] = boot.labels[idx[int(np.argmax(boot.observed[idx, k]))]]
        for i, a in enumerate(models):
            for b in models[i + 1:]:
                d = paired_difference(boot, best[a], best[b], area, level)
                rows.append({"area": area, "model_a": a, "layer_a": best[a].split(":", 1)[1], "model_b": b,
                             "layer_b": best[b].split(":", 1)[1], "difference": d.difference,
                             "ci_low": d.ci_low, "ci_high": d.ci_high, "p_value": d.p_value})
    return pd.DataFrame(rows)


def _options(options: StatsOptions | None, old_keywords: dict) -> StatsOptions:
    """``options`` (default ``StatsOptions()``) updated by the keywords of earlier releases, with a warning."""
    from dataclasses import replace

    options = StatsOptions() if options is None else options
    if not isinstance(options, StatsOptions):
        raise RSABridgeError(f"compare_statistics: options must be a StatsOptions (rsa_bridge.options); got "
                             f"{type(options).__name__}")
    unknown = sorted(set(old_keywords) - set(OLD_KEYWORDS))
    if unknown:
        raise TypeError(f"compare_statistics() got an unexpected keyword argument {unknown[0]!r}")
    if not old_keywords:
        return options
    warnings.warn(f"compare_statistics({', '.join(f'{k}=' for k in old_keywords)}) is deprecated: pass one "
                  "StatsOptions (rsa_bridge.options) instead", DeprecationWarning, stacklevel=3)
    return replace(options, **{OLD_KEYWORDS[k]: v for k, v in old_keywords.items()})


def compare_statistics(model_rdms: xr.DataArray, dataset: xr.Dataset, areas: list[str], method: str,
                       options: StatsOptions | None = None, *, rng: np.random.Generator | None = None,
                       controls=(), executor=None, **old_keywords) -> CompareStatistics:
    """Bootstrap CIs, permutation p-values, noise ceilings, best layers and model differences.

    Args:
        model_rdms: (rows, stimulus_row, stimulus_col) with row labels ``model:layer`` (or plain layers), or
            an RDM store / :class:`rsa_bridge.stats.stores.StoreStack` whose names are those labels
            (:mod:`rsa_bridge.stats.stores`: the full-N similarity from one RDM vector at a time, the
            large-N schemes from sub-RDMs gathered with one read per RDM).
        dataset: a validated RDM dataset; areas: the areas to score; method: comparison method.
        options: :class:`rsa_bridge.options.StatsOptions`, whole: ``bootstrap`` / ``permutations`` (0 = skip),
            ``bootstrap_over``, ``ci_level``, ``ceiling`` (Nili ceiling of areas with >= 2 RDMs),
            ``normalize_by_ceiling`` (areas without a ceiling get a warning, NaN normalised values),
            ``progress``, ``group_by`` (the unit of resampling, :mod:`rsa_bridge.stats.grouping`), ``scheme``
            and ``seed`` (also the seed of a single-RDM area's split-half ceiling; the shipped V4 stores the
            result for seed 0). The planner (:func:`rsa_bridge.stats.plan.plan_statistics`) turns them into
            one :class:`rsa_bridge.stats.plan.StatsPlan` (``result.plan``) that the bootstrap and the
            permutation test follow.
        rng: the Generator for every random step (default: seeded with 0).
        controls: names of image-statistics control models among the rows (their own p-value family).
        executor: where the exact samples run (:mod:`rsa_bridge.stats.executors`; None: the innermost
            ``use_executor`` block, else here).
        old_keywords: ``n_bootstrap=``, ``n_permutations=``, ``over=``, ``level=``, ``ceiling=``, ``normalize=``,
            ``progress=``, ``group_by=``, ``split_half_seed=`` of earlier releases (DeprecationWarning).

    Example:
        >>> from rsa_bridge import load_dataset
        >>> from rsa_bridge.options import StatsOptions
        >>> ds = load_dataset("kriegeskorte2008_92images")
        >>> it = ds["IT"].expand_dims(model_layer=["toy:it"])   # the area itself as the one model layer
        >>> st = compare_statistics(it, ds, ["IT"], "spearman", StatsOptions(permutations=9, ceiling=False))
        >>> st.plan.permutation.scheme, float(st.p_value[0, 0])
        ('exact', 0.1)
    """
    options = _options(options, old_keywords)
    n_bootstrap, n_permutations, over = options.bootstrap, options.permutations, options.bootstrap_over
    level, ceiling, normalize, group_by = options.ci_level, options.ceiling, options.normalize_by_ceiling, \
        options.group_by
    rng = rng if rng is not None else np.random.default_rng(0)
    neural = {a: area_rdms(dataset, a) for a in areas}
    units = {a: resampling_unit(dataset[a], group_by) for a in areas}
    ceilings = {a: (noise_ceiling(r, method, groups=units[a].labels if units[a].grouped else None)
                    if ceiling and units[a].n_units >= 2 else None)
                for a, r in neural.items()}
    notes = _ceiling_notes(dataset, ceilings, units, method, ceiling, options.seed)
    if normalize is not None:
        if normalize not in NORMALIZE:
            raise RSABridgeError(f"--normalize-by-ceiling takes {' or '.join(NORMALIZE)}; got {normalize!r}")
        missing = [a for a, c in ceilings.items() if c is None]
        if missing:
            warnings.warn(f"no noise ceiling for area(s) {', '.join(f'{a} ({notes[a]})' for a in missing)} (a ceiling "
                          "needs RDMs from at least 2 subjects/sessions, or repeat-level rates of the single RDM): "
                          "their normalized similarities are NaN", RuntimeWarning, stacklevel=2)
    labels = (list(model_rdms.names) if is_store(model_rdms)
              else [str(v) for v in model_rdms[model_rdms.dims[0]].values])
    n = store_size(model_rdms) if is_store(model_rdms) else model_rdms.sizes[ROW]
    plan = plan_statistics(options, n, method=method, store=is_store(model_rdms), executor=executor)
    out = CompareStatistics(labels, list(areas), ceilings, level=level, units=units, ceiling_notes=notes,
                            families=p_families(labels, controls), plan=plan)
    if n_bootstrap:
        timing.begin("bootstrap")
        stim_idx, rdm_idx = _index_sets(model_rdms, neural, units, n_bootstrap, over, rng)
        out.boot = bootstrap_similarity(model_rdms, neural, method=method, n_samples=n_bootstrap, over=over, seed=rng,
                                        options=BootstrapOptions(progress=options.progress, stimulus_indices=stim_idx,
                                                                 rdm_indices=rdm_idx, scheme=plan.bootstrap,
                                                                 executor=executor))
        timing.end("bootstrap")
        out.ci_low, out.ci_high = out.boot.ci(level)
        per_model = []
        for model in dict.fromkeys(_model_of(label) for label in labels):
            rows = [label for label in labels if _model_of(label) == model]
            per_model.append(best_layer(out.boot, rows))
        out.best = pd.concat(per_model, ignore_index=True)
        if len(per_model) > 1:
            out.model_differences = model_differences(out.boot, level)
    if n_permutations:
        timing.begin("permutations")
        out.perm = permutation_test(model_rdms, neural, method=method, n_permutations=n_permutations, seed=rng,
                                    options=PermutationOptions(keep_null=False, progress=options.progress,
                                                               scheme=plan.permutation, executor=executor))
        timing.end("permutations")
        out.p_value = out.perm.p_value
        out.p_holm = family_corrected(out.p_value, out.families, "holm")
        out.p_fdr = family_corrected(out.p_value, out.families, "fdr_bh")
    return out


def _ceiling_notes(dataset, ceilings, units, method, enabled, seed=0) -> dict[str, str]:
    """Per area the ceiling's definition in words, or why it is n/a; fills single-RDM ceilings in place.

    An area with a single RDM gets the split-half reliability of that RDM when the dataset names its
    repeat-level rates (:mod:`rsa_bridge.neural.ceiling`).
    """
    notes = {}
    for area, unit in units.items():
        if not enabled:
            notes[area] = "not computed"
        elif ceilings[area] is not None:
            who = "RDM" if unit.name == "rdm" else unit.name
            notes[area] = f"Nili et al. 2014, leave one {who} out ({unit.n_units} {who}s)"
        elif unit.n_rdms == 1:
            from rsa_bridge.neural.ceiling import single_rdm_ceiling

            ceilings[area], notes[area] = single_rdm_ceiling(dataset, area, method, seed=seed)
        else:
            notes[area] = f"all RDMs belong to one {unit.name}"
    return notes


def _index_sets(model_rdms, neural, units, n_samples, over, rng):
    """Stimulus index sets first, then per area its RDM index sets (whole units), from the one Generator.

    The order of draws is that of :func:`bootstrap_similarity` drawing them itself, so with one RDM
    per unit the samples are bit-identical to an ungrouped bootstrap.
    """
    from rsa_bridge.stats.resample import bootstrap_stimuli

    if over == "stimuli":  # nothing to group: bootstrap_similarity draws them (and may use the large-N scheme)
        return None, None
    n = store_size(model_rdms) if is_store(model_rdms) else model_rdms.sizes[ROW]
    stim_idx = bootstrap_stimuli(n, n_samples, rng) if over == "both" else None
    rdm_idx = None
    if over in ("rdms", "both"):
        rdm_idx = {a: group_bootstrap_indices(units[a].labels, n_samples, rng) for a in neural}
    return stim_idx, rdm_idx


def row_columns(stats: CompareStatistics | None, label: str, area: str, similarity: float,
                normalize: str | None = None) -> dict:
    """The statistics columns of one results.csv row (model layer ``label`` x ``area``)."""
    if stats is None:
        return {}
    i, j = stats.labels.index(label), stats.areas.index(area)
    ceiling = stats.ceilings.get(area)
    cols = {"ceiling_lower": ceiling.lower if ceiling else np.nan,
            "ceiling_upper": ceiling.upper if ceiling else np.nan,
            "ceiling_definition": ceiling.definition if ceiling else "n/a",
            "ceiling_note": stats.ceiling_notes.get(area, "")}
    if stats.ci_low is not None:
        cols.update(ci_low=float(stats.ci_low[i, j]), ci_high=float(stats.ci_high[i, j]))
    if stats.p_value is not None:
        cols.update(p_value=float(stats.p_value[i, j]), p_holm=float(stats.p_holm[i, j]),
                    p_fdr=float(stats.p_fdr[i, j]), p_family=stats.families[i])
    if stats.best is not None:
        hit = stats.best[(stats.best["area"] == area) & (stats.best["layer"] == label)].iloc[0]
        cols.update(p_best=float(hit["p_best"]), is_best=bool(hit["is_best"]))
    if normalize is not None:
        if normalize not in NORMALIZE:
            raise RSABridgeError(f"--normalize-by-ceiling takes {' or '.join(NORMALIZE)}; got {normalize!r}")
        bound = cols[f"ceiling_{normalize}"]
        scale = bound if np.isfinite(bound) and bound > 0 else np.nan
        cols.update(similarity_normalized=similarity / scale, normalized_by=f"ceiling_{normalize}")
        if "ci_low" in cols:
            cols.update(ci_low_normalized=cols["ci_low"] / scale, ci_high_normalized=cols["ci_high"] / scale)
    return cols


def ceiling_variables(stats: list[CompareStatistics], areas: list[str]) -> dict:
    """``ceiling_lower`` / ``ceiling_upper`` (area,) variables for results.nc (NaN: a single RDM)."""
    out = {name: np.full(len(areas), np.nan) for name in ("ceiling_lower", "ceiling_upper")}
    for st in stats:
        for area, ceiling in st.ceilings.items():
            if ceiling is not None:
                out["ceiling_lower"][areas.index(area)] = ceiling.lower
                out["ceiling_upper"][areas.index(area)] = ceiling.upper
    definition = np.array(["n/a"] * len(areas), dtype=object)
    note = np.array([""] * len(areas), dtype=object)
    for st in stats:
        for area, ceiling in st.ceilings.items():
            definition[areas.index(area)] = ceiling.definition if ceiling is not None else "n/a"
            note[areas.index(area)] = st.ceiling_notes.get(area, "")
    variables = {name: ("area", values, {"long_name": f"noise ceiling, {name.split('_')[1]} bound (definition in "
                                                      "ceiling_definition)", "units": "1"})
                 for name, values in out.items()}
    variables["ceiling_definition"] = ("area", definition.astype(str),
                                       {"long_name": "nili (several subjects/RDMs), split-half (one RDM with "
                                                     "repeat-level rates: lower R, upper sqrt R) or n/a"})
    variables["ceiling_note"] = ("area", note.astype(str), {"long_name": "the ceiling's definition in words, or why "
                                                                         "there is none"})
    return variables


def bootstrap_variable(stats: list[CompareStatistics], labels: list[str], areas: list[str]) -> dict:
    """``similarity_bootstrap`` (bootstrap_sample, model_layer, area) for results.nc, if there was a bootstrap."""
    boots = [st.boot for st in stats if st.boot is not None]
    if not boots:
        return {}
    samples = np.full((boots[0].n_samples, len(labels), len(areas)), np.nan)
    for boot in boots:
        for j, area in enumerate(boot.areas):
            for i, label in enumerate(boot.labels):
                samples[:, labels.index(label), areas.index(area)] = boot.samples[:, i, j]
    return {"similarity_bootstrap": (("bootstrap_sample", "model_layer", "area"), samples,
                                     {"long_name": "bootstrap samples of the similarity", "units": "1",
                                      "resampled": boots[0].over,
                                      **{k: v for k, v in boots[0].attrs().items()
                                         if k.startswith(("bootstrap_scheme", "bootstrap_subset", "bootstrap_backend",
                                                          "bootstrap_executor",
                                                          "bootstrap_exact_max"))}})}


def collect_tables(stats: list[tuple[str, CompareStatistics]]) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """The best-layer and model-difference tables of all datasets, with model and dataset columns."""
    best, diffs = [], []
    for dataset, st in stats:
        if st.best is not None:
            b = st.best.copy()
            b.insert(0, "model", [label.split(":", 1)[0] for label in b["layer"]])
            b["layer"] = [label.split(":", 1)[1] for label in b["layer"]]
            b.insert(0, "dataset", dataset)
            best.append(b)
        if st.model_differences is not None:
            diffs.append(st.model_differences.assign(dataset=dataset))
    return (pd.concat(best, ignore_index=True) if best else None,
            pd.concat(diffs, ignore_index=True) if diffs else None)

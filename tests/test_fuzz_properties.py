"""Property-based tests (Hypothesis) for the array APIs: random shapes, NaN/inf/constant patterns and ids.

Every call either returns a result that has the documented properties (and equals an independent
implementation: scipy's pdist / spearmanr / pearsonr) or raises :class:`RSABridgeError` — never any
other exception. Examples are small (n <= 9 stimuli) so the whole file runs in seconds.
"""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats
from scipy.spatial.distance import pdist, squareform

from rsa_bridge.compare import METHODS, compare_rdms, compare_vectors
from rsa_bridge.data_paths import inside_folder
from rsa_bridge.duplicates import duplicates
from rsa_bridge.errors import RSABridgeError
from rsa_bridge.neural.id_patterns import MAX_PATTERN, MAX_WIDTH, format_ids
from rsa_bridge.rdm import COL, METRICS, ROW, compute_rdm, upper_triangle

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

#: floats as data arrive: ordinary values, exact repeats (constant rows), zeros, NaN and inf
values = st.one_of(st.floats(-1e3, 1e3, allow_nan=False, width=64), st.just(0.0), st.just(1.0),
                   st.just(np.nan), st.just(np.inf), st.just(-np.inf))
ids = st.lists(st.sampled_from(list("abcdefghij")), min_size=0, max_size=9)


def _activations(draw, n: int, units: int) -> np.ndarray:
    pattern = draw(st.sampled_from(["random", "constant_row", "nan", "inf", "zeros", "mixed"]))
    x = draw(arrays(np.float64, (n, units), elements=st.floats(-100, 100, allow_nan=False)))
    if n and units:
        k = draw(st.integers(0, n - 1))
        if pattern == "constant_row":
            x[k] = x[k, 0]
        elif pattern == "nan":
            x[k, 0] = np.nan
        elif pattern == "inf":
            x[k, -1] = np.inf
        elif pattern == "zeros":
            x[k] = 0.0
        elif pattern == "mixed":
            x = draw(arrays(np.float64, (n, units), elements=values))
    return x


@st.composite
def activation_cases(draw):
    n = draw(st.integers(0, 9))
    units = draw(st.integers(0, 6))
    x = _activations(draw, n, units)
    given_ids = draw(st.one_of(st.none(), ids))
    return x, given_ids, draw(st.sampled_from(sorted(METRICS)))


@SETTINGS
@given(activation_cases())
def test_compute_rdm_is_right_or_says_why(case):
    x, given_ids, metric = case
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            rdm = compute_rdm(x, metric, stimulus_ids=given_ids)
    except RSABridgeError as err:
        assert str(err) and "\n" not in str(err)
        return
    n = x.shape[0]
    m = rdm.values
    assert rdm.dims == (ROW, COL) and m.shape == (n, n) and n >= 3
    assert np.isfinite(m).all() and np.array_equal(m, m.T) and (np.diag(m) == 0).all()
    if given_ids is not None:
        assert list(rdm[ROW].values) == [str(i) for i in given_ids] and len(set(given_ids)) == n
    reference = squareform(pdist(x, metric), checks=False)
    scale = max(1.0, float(np.abs(x).max()) ** 2)
    np.testing.assert_allclose(m, reference, atol=1e-9 * scale, rtol=1e-7)


@st.composite
def rdm_pairs(draw):
    n = draw(st.integers(0, 9))
    pattern = draw(st.sampled_from(["random", "constant", "nan", "inf", "asymmetric", "ties"]))
    def one():
        v = draw(arrays(np.float64, (n * (n - 1) // 2,), elements=st.floats(0, 10, allow_nan=False)))
        if pattern == "ties":
            v = np.round(v)
        m = squareform(v, checks=False) if n > 1 else np.zeros((n, n))
        return m
    a, b = one(), one()
    if n >= 2:
        if pattern == "constant":
            a = squareform(np.full(n * (n - 1) // 2, 3.0))
        elif pattern == "nan":
            a[0, 1] = a[1, 0] = np.nan
        elif pattern == "inf":
            b[0, 1] = b[1, 0] = np.inf
        elif pattern == "asymmetric":
            a[0, 1] += 1.0
    return a, b, draw(st.sampled_from(sorted(METHODS)))


@SETTINGS
@given(rdm_pairs())
def test_compare_rdms_is_right_or_says_why(case):
    a, b, method = case
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            value = compare_rdms(a, b, method)
    except RSABridgeError as err:
        assert str(err) and "\n" not in str(err)
        return
    assert isinstance(value, float)
    assert np.isfinite(a).all() and np.isfinite(b).all() and np.array_equal(a, a.T) and a.shape[0] >= 3
    if np.isnan(value):  # undefined (a constant RDM): only for the correlation-type methods
        va, vb = upper_triangle(a), upper_triangle(b)
        assert np.ptp(va) == 0 or np.ptp(vb) == 0 or not (va.any() and vb.any())
        return
    if method in ("spearman", "pearson", "kendall_tau_a", "cosine", "whitened_cosine", "whitened_pearson"):
        assert -1 - 1e-9 <= value <= 1 + 1e-9
    va, vb = upper_triangle(a), upper_triangle(b)
    if method == "spearman" and np.ptp(va) > 0 and np.ptp(vb) > 0:
        assert value == pytest.approx(stats.spearmanr(va, vb)[0], abs=1e-9)
    if method == "pearson" and np.ptp(va) > 0 and np.ptp(vb) > 0:
        assert value == pytest.approx(stats.pearsonr(va, vb)[0], abs=1e-9)


@SETTINGS
@given(st.integers(3, 8), st.randoms(use_true_random=False), st.sampled_from(["spearman", "pearson", "cosine"]))
def test_alignment_is_by_id_not_position(n, rnd, method):
    rng = np.random.default_rng(rnd.randint(0, 2**32 - 1))
    x, y = rng.normal(size=(n, 5)), rng.normal(size=(n, 5))
    names = [f"s{k}" for k in range(n)]
    model, neural = compute_rdm(x, "euclidean", stimulus_ids=names), compute_rdm(y, "euclidean", stimulus_ids=names)
    order = rng.permutation(n)
    shuffled = neural.isel({ROW: order, COL: order})
    assert compare_rdms(model, shuffled, method) == pytest.approx(compare_rdms(model, neural, method), abs=1e-12)
    renamed = neural.assign_coords({ROW: names[:-1] + ["other"], COL: names[:-1] + ["other"]})
    with pytest.raises(RSABridgeError, match="differ"):
        compare_rdms(model, renamed, method)


@SETTINGS
@given(st.integers(1, 4), st.integers(1, 3), st.integers(0, 12), st.sampled_from(sorted(METHODS)),
       st.sampled_from(["ok", "nan", "inf", "short"]))
def test_compare_vectors_shapes(n_a, n_b, m, method, pattern):
    rng = np.random.default_rng(m)
    a, b = rng.random((n_a, m)), rng.random((n_b, m))
    if pattern == "nan" and m:
        a[0, 0] = np.nan
    if pattern == "inf" and m:
        b[-1, -1] = np.inf
    if pattern == "short":
        b = b[:, : max(m - 1, 0)]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out = compare_vectors(a, b, method)
    except RSABridgeError:
        triangular = m in {n * (n - 1) // 2 for n in range(2, 8)}
        assert pattern != "ok" or m < 3 or (method.startswith("whitened") and not triangular)
        return
    assert pattern == "ok" and m >= 3 and out.shape == (n_a, n_b)


@SETTINGS
@given(st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), min_size=3, max_size=6))
def test_duplicate_ids_are_refused_everywhere(names):
    assume(len(set(names)) < len(names))
    x = np.random.default_rng(0).normal(size=(len(names), 4))
    with pytest.raises(RSABridgeError, match="duplicate"):
        compute_rdm(x, "euclidean", stimulus_ids=names)
    good = compute_rdm(x, "euclidean")
    dup = xr.DataArray(good.values, dims=(ROW, COL), coords={ROW: names, COL: names})
    with pytest.raises(RSABridgeError, match="duplicate"):
        compare_rdms(dup, dup)


# ------------------------------------------------------------------ issue 30 round 3: one property per rule
#: an independent statement of the documented id-pattern rule: literal text ({{ and }} escaped) and fields
#: {n} / {i} with at most fill+align, 0, a width and d
_LITERAL = r"(?:[^{}]|\{\{|\}\})"
_FIELD = r"\{[ni](?::(?:[^{}]?[<>^=])?0?(?P<w>[0-9]*)d?)?\}"
_PATTERN_PIECES = ["{n}", "{i}", "{n:04d}", "{", "}", "{{", "}}", ":", "!r", ".real", "[0]", "0", "9", "65",
                   "300000000", "d", "x", "f", ">", "<", "^", "=", "_", "*", ",", "+", "#", ".3", "img", "{0}", "{}",
                   "{x}", "%", "\n", "é"]
patterns = st.one_of(st.lists(st.sampled_from(_PATTERN_PIECES), max_size=8).map("".join),
                     st.text(alphabet="{}ni:0123456789d<>^=!rs.x_[]", max_size=14))


def _documented(pattern: str) -> bool:
    if len(pattern) > MAX_PATTERN:
        return False
    token, pos, fields = re.compile(f"{_LITERAL}|{_FIELD}", re.S), 0, []
    while pos < len(pattern):  # left to right, as a format string is read
        match = token.match(pattern, pos)
        if match is None:
            return False
        if match[0].startswith("{") and match[0] != "{{":
            fields.append(match)
        pos = match.end()
    return bool(fields) and all(int(f["w"] or 0) <= MAX_WIDTH for f in fields)


@SETTINGS
@given(patterns)
def test_id_patterns_format_small_or_are_refused_in_one_line(pattern):
    """Any pattern: the documented ones give bounded ids, the rest one RSABridgeError line; never a traceback."""
    try:
        ids = format_ids(pattern, 12)
    except RSABridgeError as err:
        assert "\n" not in str(err) and "allowed:" in str(err)
        assert not _documented(pattern), pattern
        return
    assert _documented(pattern), pattern
    assert len(ids) == 12 and all(len(s) <= len(pattern) + pattern.count("{") * MAX_WIDTH for s in ids)


@SETTINGS
@given(st.lists(st.integers(0, 12), max_size=40))
def test_duplicates_are_the_keys_seen_twice_in_first_seen_order(keys):
    naive = [key for key in dict.fromkeys(keys) if keys.count(key) > 1]  # quadratic, obviously right
    assert duplicates(keys) == naive
    ids = [f"s{k}" for k in keys]
    x = np.arange(len(ids) * 2, dtype=float).reshape(-1, 2) ** 1.5
    if naive and len(ids) >= 3:
        with pytest.raises(RSABridgeError, match=re.escape(repr(f"s{naive[0]}"))):
            compute_rdm(x, "euclidean", stimulus_ids=ids)


_SEGMENTS = ["a", "b", "..", ".", "in_link", "out_link", "a/in_link", ""]


@pytest.fixture(scope="module")
def confined_root(tmp_path_factory):
    base = tmp_path_factory.mktemp("confined")
    root, outside = base / "root", base / "outside"
    for folder in (root / "a" / "b", root / "b", outside / "a"):
        folder.mkdir(parents=True)
    (root / "in_link").symlink_to(root / "a", target_is_directory=True)
    (root / "a" / "in_link").symlink_to(root / "b", target_is_directory=True)
    (root / "out_link").symlink_to(outside, target_is_directory=True)
    (root / "a" / "out_link").symlink_to(outside / "a", target_is_directory=True)
    return root


@SETTINGS
@given(st.lists(st.sampled_from(_SEGMENTS), min_size=1, max_size=6), st.booleans())
def test_confined_paths_are_inside_or_refused(confined_root, segments, absolute):
    """A name from data: its resolved path is inside the folder, or one RSABridgeError line; never outside."""
    name = "/".join(segments)
    if absolute:
        name = str(confined_root) + "/" + name
    real = Path(os.path.realpath(confined_root / name))
    try:
        got = inside_folder(confined_root, name, "attribute 'stimulus_set'")
    except RSABridgeError as err:
        assert "\n" not in str(err) and "stimulus_set" in str(err)
        return
    assert got == real and real.is_relative_to(confined_root.resolve()) and not absolute

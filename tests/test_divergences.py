"""Divergence ops against independent NumPy / SciPy / mpmath computations."""

import math

import mpmath
import numpy as np
import pytest
import scipy.spatial.distance as ssd
import scipy.special
import scipy.stats
import tensorflow as tf

import keras_cc  # noqa: F401  (configures TensorFlow's Keras routing first)
from keras_cc.ops import divergences as dv
from keras_cc.ops import softmax as sm

LN2 = math.log(2.0)


def _simplex(rng, n, k, concentration=1.0):
    return rng.dirichlet(np.full(k, concentration), size=n)


def _tempered(rng, n, k, temperature, scale=5.0):
    return scipy.special.softmax(rng.normal(scale=scale, size=(n, k)) / temperature, axis=-1)


@pytest.fixture
def rng():
    return np.random.default_rng(20240603)


def _with_zeros(rng, n, k):
    p = _simplex(rng, n, k, 0.3)
    p[rng.random((n, k)) < 0.3] = 0.0
    p[:, 0] += 1e-3  # every row keeps some mass
    return p / p.sum(-1, keepdims=True)


# ------------------------------------------------------------------ paired forms


def test_cross_entropy_and_kl_match_numpy_and_scipy(rng):
    q, p = _simplex(rng, 50, 7), _simplex(rng, 50, 7)
    np.testing.assert_allclose(
        dv.cross_entropy_divergence(q, p), -(q * np.log(p)).sum(-1), rtol=1e-12
    )
    np.testing.assert_allclose(
        dv.kullback_leibler_divergence(q, p), scipy.stats.entropy(q, p, axis=-1), rtol=1e-10
    )
    # KLD = CED - H(q) (eq. 9)
    np.testing.assert_allclose(
        dv.kullback_leibler_divergence(q, p),
        dv.cross_entropy_divergence(q, p) - scipy.stats.entropy(q, axis=-1),
        rtol=1e-10,
    )


def test_zero_probabilities_follow_limits(rng):
    q = _with_zeros(rng, 40, 6)
    p = _with_zeros(rng, 40, 6)
    expected_kl = scipy.special.rel_entr(q, p).sum(-1)  # inf where q > 0 = p
    np.testing.assert_allclose(dv.kullback_leibler_divergence(q, p), expected_kl, rtol=1e-10)
    ced = dv.cross_entropy_divergence(q, p).numpy()
    assert np.array_equal(np.isinf(ced), np.isinf(expected_kl))
    jsd = dv.jensen_shannon_divergence(q, p).numpy()
    tri = dv.triangular_divergence(q, p).numpy()
    assert np.all(np.isfinite(jsd)) and np.all(np.isfinite(tri))
    expected_jsd = [ssd.jensenshannon(a, b, base=2) ** 2 for a, b in zip(q, p, strict=True)]
    np.testing.assert_allclose(jsd, expected_jsd, rtol=1e-9, atol=1e-15)


def test_jensen_shannon_matches_scipy_and_eq4(rng):
    q, p = _simplex(rng, 60, 9), _simplex(rng, 60, 9)
    expected = np.array([ssd.jensenshannon(a, b, base=2) ** 2 for a, b in zip(q, p, strict=True)])
    np.testing.assert_allclose(dv.jensen_shannon_divergence(q, p), expected, rtol=1e-10)

    def h(x):
        return -scipy.special.xlogy(x, x) / LN2

    eq4 = 1.0 - 0.5 * (h(q) + h(p) - h(q + p)).sum(-1)
    np.testing.assert_allclose(dv.jensen_shannon_divergence(q, p), eq4, rtol=1e-9)
    # orthogonal inputs reach 1, equal inputs 0
    assert dv.jensen_shannon_divergence([1.0, 0.0], [0.0, 1.0]).numpy() == pytest.approx(1.0)
    assert dv.jensen_shannon_divergence(q, q).numpy() == pytest.approx(np.zeros(60), abs=0)


@pytest.mark.parametrize("dtype, delta, rtol", [("float64", 1e-7, 1e-8), ("float32", 1e-3, 1e-4)])
def test_jensen_shannon_is_accurate_near_equal_inputs(rng, dtype, delta, rtol):
    """Eq. 4 as written cancels catastrophically near q = p; ours keeps relative accuracy."""
    q = _simplex(rng, 8, 12, 5.0)
    p = q * np.exp(delta * rng.normal(size=q.shape))
    p /= p.sum(-1, keepdims=True)
    q, p = q.astype(dtype), p.astype(dtype)
    mpmath.mp.dps = 50
    expected = []
    for a, b in zip(q.astype(np.float64), p.astype(np.float64), strict=True):
        c = mpmath.mpf(0)
        for x, y in zip(a, b, strict=True):
            x, y = mpmath.mpf(float(x)), mpmath.mpf(float(y))
            m = (x + y) / 2
            c += x * mpmath.log(x / m) + y * mpmath.log(y / m)
        expected.append(float(c / (2 * mpmath.log(2))))
    got = dv.jensen_shannon_divergence(q, p).numpy()
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, expected, rtol=rtol)


def test_triangular_forms_match_numpy(rng):
    q, p = _simplex(rng, 50, 8), _simplex(rng, 50, 8)
    eq5 = 0.5 * ((q - p) ** 2 / (q + p)).sum(-1)
    np.testing.assert_allclose(dv.triangular_divergence(q, p), eq5, rtol=1e-12)
    # eq. 23 equals eq. 5 on the simplex
    np.testing.assert_allclose(dv.triangular_divergence_rewritten(q, p), eq5, rtol=1e-9)
    # but not off the simplex (documented precondition)
    assert not np.allclose(dv.triangular_divergence_rewritten(2 * q, p), eq5)
    # zero coordinates in both arguments contribute nothing
    a, b = np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.75, 0.0])
    assert dv.triangular_divergence(a, b).numpy() == pytest.approx(
        0.5 * (0.25**2 / 0.75 + 0.25**2 / 1.25)
    )


def test_triangular_v_matches_eq27(rng):
    q, p = _simplex(rng, 20, 5), _simplex(rng, 20, 5)
    for v in (1, 2, 5):
        expected = (np.abs(q - p) ** (2 * v) / (q + p) ** (2 * v - 1)).sum(-1)
        np.testing.assert_allclose(dv.triangular_divergence_v(q, p, v), expected, rtol=1e-10)
    np.testing.assert_allclose(
        dv.triangular_divergence_v(q, p, 1), 2 * dv.triangular_divergence(q, p), rtol=1e-12
    )
    with pytest.raises(ValueError, match="v must be a positive integer"):
        dv.triangular_divergence_v(q, p, 0)


def test_euclidean_and_cosine_match_scipy(rng):
    x, y = rng.normal(size=(30, 11)), rng.normal(size=(30, 11))
    np.testing.assert_allclose(
        dv.squared_euclidean_distance(x, y),
        [ssd.sqeuclidean(a, b) for a, b in zip(x, y, strict=True)],
        rtol=1e-12,
    )
    # COS(u, v) = EUC(u/|u|, v/|v|) = 2 * (1 - cos) = 2 * scipy's cosine distance
    np.testing.assert_allclose(
        dv.cosine_distance(x, y),
        [2 * ssd.cosine(a, b) for a, b in zip(x, y, strict=True)],
        rtol=1e-10,
    )


# ------------------------------------------------------------------ bounds and series


@pytest.mark.parametrize("concentration", [0.05, 1.0, 50.0])
def test_topsoe_bounds_eq22_in_normalized_form(rng, concentration):
    """In the [0, 1] normalizations of eqs. 4-5: TRI / (2 ln 2) <= JSD <= TRI."""
    q = _simplex(rng, 500, 10, concentration)
    p = _simplex(rng, 500, 10, concentration)
    jsd = dv.jensen_shannon_divergence(q, p).numpy()
    tri = dv.triangular_divergence(q, p).numpy()
    assert np.all(tri / (2 * LN2) <= jsd * (1 + 1e-12))
    assert np.all(jsd <= tri * (1 + 1e-12))
    # upper bound tight at orthogonal inputs, lower bound tight as p -> q
    assert dv.jensen_shannon_divergence([1.0, 0.0], [0.0, 1.0]).numpy() == pytest.approx(
        dv.triangular_divergence([1.0, 0.0], [0.0, 1.0]).numpy()
    )
    near = q * np.exp(1e-4 * rng.normal(size=q.shape))
    near /= near.sum(-1, keepdims=True)
    ratio = dv.jensen_shannon_divergence(q, near) / dv.triangular_divergence(q, near)
    np.testing.assert_allclose(ratio, 1 / (2 * LN2), rtol=1e-3)


def test_series_eq28_converges_to_jensen_shannon(rng):
    q, p = _simplex(rng, 40, 10), _simplex(rng, 40, 10)
    partial = dv.jensen_shannon_series(q, p, 400).numpy()
    jsd = dv.jensen_shannon_divergence(q, p).numpy()
    assert np.all(np.diff(partial, axis=-1) >= 0)  # monotone partial sums
    assert np.all(partial <= jsd[:, None] * (1 + 1e-12))  # from below
    np.testing.assert_allclose(partial[:, -1], jsd, rtol=2e-3)
    # first term is TRI / (2 ln 2), the eq. 22 lower bound
    np.testing.assert_allclose(
        partial[:, 0], dv.triangular_divergence(q, p).numpy() / (2 * LN2), rtol=1e-12
    )
    terms = dv.jensen_shannon_series_terms(q, p, 3).numpy()
    np.testing.assert_allclose(np.cumsum(terms, -1), partial[:, :3], rtol=1e-12)


def test_series_first_term_dominates_at_high_temperature(rng):
    """Section 7 / Figure 7: as roughness falls, TRI_1 alone gives JSD."""
    logits = rng.normal(scale=5.0, size=(2, 365))
    errors = []
    for t in (1.0, 5.0, 10.0, 100.0):
        q, p = scipy.special.softmax(logits / t, axis=-1)
        partial = dv.jensen_shannon_series(q, p, 10).numpy()
        jsd = dv.jensen_shannon_divergence(q, p).numpy()
        np.testing.assert_allclose(partial[-1], jsd, rtol=0.05)
        errors.append(abs(partial[0] - jsd) / jsd)
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 1e-3


# ------------------------------------------------------------------ all-pairs forms


@pytest.mark.parametrize("name", sorted(dv.PAIRWISE_DIVERGENCES))
def test_pairwise_forms_equal_paired_forms(rng, name):
    if name in ("EUC", "COS"):
        q, p = rng.normal(size=(13, 6)), rng.normal(size=(9, 6))
    else:
        q, p = _simplex(rng, 13, 6), _simplex(rng, 9, 6)
    paired = dv.DIVERGENCES[name](q[:, None, :], p[None, :, :]).numpy()
    pairwise = dv.PAIRWISE_DIVERGENCES[name](q, p).numpy()
    np.testing.assert_allclose(pairwise, paired, rtol=1e-9, atol=1e-12)
    # the one-against-many form is the first row
    np.testing.assert_allclose(dv.one_against_many(name, q[0], p), paired[0], rtol=1e-12)
    np.testing.assert_allclose(dv.PAIRWISE_DIVERGENCES[name](q[0], p), paired[0], rtol=1e-9)


def test_pairwise_matches_scipy_cdist(rng):
    x, y = rng.normal(size=(10, 4)), rng.normal(size=(7, 4))
    np.testing.assert_allclose(
        dv.pairwise_squared_euclidean_distance(x, y),
        ssd.cdist(x, y, "sqeuclidean"),
        rtol=1e-9,
        atol=1e-12,
    )
    q, p = _simplex(rng, 10, 4), _simplex(rng, 7, 4)
    np.testing.assert_allclose(
        dv.pairwise_jensen_shannon_divergence(q, p),
        (ssd.cdist(q, p, "jensenshannon") / np.sqrt(LN2)) ** 2,  # natural log -> base 2
        rtol=1e-9,
    )


def test_pairwise_blocks_and_zeros(rng):
    q, p = _with_zeros(rng, 23, 5), _with_zeros(rng, 6, 5)
    expected_tri = dv.triangular_divergence(q[:, None], p[None]).numpy()
    for block_size in (1, 4, 7, 23, 100):
        np.testing.assert_allclose(
            dv.pairwise_triangular_divergence(q, p, block_size=block_size), expected_tri
        )
    expected_ced = dv.cross_entropy_divergence(q[:, None], p[None]).numpy()
    got = dv.pairwise_cross_entropy_divergence(q, p).numpy()
    assert np.array_equal(np.isinf(got), np.isinf(expected_ced)) and np.isinf(got).any()
    finite = np.isfinite(expected_ced)
    np.testing.assert_allclose(got[finite], expected_ced[finite], rtol=1e-10)


def test_everything_compiles_with_xla(rng):
    q = tf.constant(_simplex(rng, 37, 8), tf.float32)
    p = tf.constant(_simplex(rng, 11, 8), tf.float32)

    @tf.function(jit_compile=True)
    def compiled(q, p):
        out = {name: fn(q, p[:1]) for name, fn in dv.DIVERGENCES.items()}
        out.update({f"all_{n}": f(q, p) for n, f in dv.PAIRWISE_DIVERGENCES.items()})
        out["blocked"] = dv.pairwise_jensen_shannon_divergence(q, p, block_size=5)
        out["series"] = dv.jensen_shannon_series(q, p[:1], 4)
        out["mr"] = sm.measure_of_roughness(sm.tempered_softmax(q, 3.0))
        return out

    got = compiled(q, p)
    for name, fn in dv.DIVERGENCES.items():
        np.testing.assert_allclose(got[name], fn(q, p[:1]), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        got["blocked"], dv.pairwise_jensen_shannon_divergence(q, p), rtol=1e-5, atol=1e-7
    )


def test_gradients_are_finite_at_zeros():
    q = tf.constant([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]])
    p = tf.Variable([[0.2, 0.8, 0.0], [0.0, 0.5, 0.5]])
    for fn in (dv.jensen_shannon_divergence, dv.triangular_divergence):
        with tf.GradientTape() as tape:
            value = tf.reduce_sum(fn(q, p))
        assert np.all(np.isfinite(tape.gradient(value, p).numpy())), fn.__name__


def test_bad_shapes_name_the_shapes(rng):
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(3, 5\)"):
        dv.triangular_divergence(np.ones((3, 4)), np.ones((3, 5)))
    with pytest.raises(ValueError, match="do not broadcast"):
        dv.jensen_shannon_divergence(np.ones((3, 4)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="p of shape"):
        dv.pairwise_triangular_divergence(np.ones((3, 4)), np.ones((2, 2, 4)))
    with pytest.raises(ValueError, match="Unknown divergence"):
        dv.one_against_many("XYZ", np.ones(4), np.ones((2, 4)))


# ------------------------------------------------- ranges, inputs off the simplex

BOUNDED = {
    "triangular_divergence": dv.triangular_divergence,
    "jensen_shannon_divergence": dv.jensen_shannon_divergence,
}
VALIDATING = {
    **BOUNDED,
    "triangular_divergence_rewritten": dv.triangular_divergence_rewritten,
    "pairwise_triangular_divergence": dv.pairwise_triangular_divergence,
    "pairwise_jensen_shannon_divergence": dv.pairwise_jensen_shannon_divergence,
    "pairwise_triangular_divergence_rewritten": dv.pairwise_triangular_divergence_rewritten,
}


@pytest.mark.parametrize("name", sorted(BOUNDED))
def test_range_on_and_off_the_simplex(rng, name):
    fn = BOUNDED[name]
    q, p = _simplex(rng, 200, 6, 0.3), _simplex(rng, 200, 6, 0.3)
    values = fn(q, p).numpy()
    assert np.all(values >= 0.0) and np.all(values <= 1.0)
    # disjoint supports reach 1, equal points 0
    assert fn([0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.25, 0.75]).numpy() == pytest.approx(1.0)
    assert fn(q[0], q[0]).numpy() == pytest.approx(0.0, abs=1e-12)
    # non-negative, not normalized: within [0, (sum q + sum p) / 2], bound reached when disjoint
    scale_q, scale_p = rng.uniform(0.0, 3.0, (200, 1)), rng.uniform(0.0, 3.0, (200, 1))
    values = fn(q * scale_q, p * scale_p).numpy()
    bound = (scale_q + scale_p)[:, 0] / 2
    assert np.all(values >= 0.0) and np.all(values <= bound * (1 + 1e-12))
    assert fn([2.0, 0.0, 0.0], [0.0, 0.0, 1.0]).numpy() == pytest.approx(1.5)


@pytest.mark.parametrize("name", sorted(VALIDATING))
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_validate_args_names_the_argument_and_the_fault(name, dtype):
    fn = VALIDATING[name]
    good = tf.constant([[0.25, 0.25, 0.5], [0.5, 0.5, 0.0]], dtype)
    expected = fn(good, good).numpy()
    np.testing.assert_array_equal(fn(good, good, validate_args=True).numpy(), expected)
    bad_rows = {
        "NaN or infinite": [[float("nan"), 0.5, 0.5], [0.5, 0.5, 0.0]],
        "negative entries": [[-0.25, 0.75, 0.5], [0.5, 0.5, 0.0]],
        "sum to 1": [[0.5, 0.25, 0.125], [0.5, 0.5, 0.0]],
    }
    for fault, rows in bad_rows.items():
        bad = tf.constant(rows, dtype)
        for argument, args in (("q", (bad, good)), ("p", (good, bad))):
            with pytest.raises(tf.errors.InvalidArgumentError) as error:
                fn(*args, validate_args=True)
            message = str(error.value)
            assert f"{name}: `{argument}` must lie on the simplex" in message
            assert fault in message
            if fault.startswith("NaN"):
                assert "negative" not in message and "sum to 1" not in message


def test_validate_args_refuses_xla():
    @tf.function(jit_compile=True)
    def validated(q, p):
        return dv.triangular_divergence(q, p, validate_args=True)

    with pytest.raises(ValueError, match="XLA"):
        validated(tf.constant([0.5, 0.5]), tf.constant([0.5, 0.5]))


# ------------------------------------------------------------------ softmax family


def test_tempered_softmax_index_of_coincidence_and_roughness(rng):
    z = rng.normal(scale=4.0, size=(20, 15))
    for t in (0.5, 1.0, 10.0):
        expected = scipy.special.softmax(z / t, axis=-1)
        np.testing.assert_allclose(sm.tempered_softmax(z, t), expected, rtol=1e-12)
        np.testing.assert_allclose(
            sm.tempered_log_softmax(z, t), np.log(expected), rtol=1e-10, atol=1e-12
        )
        np.testing.assert_allclose(sm.index_of_coincidence(expected), (expected**2).sum(-1))
        np.testing.assert_allclose(
            sm.measure_of_roughness(expected), ((expected - 1 / 15) ** 2).sum(-1), atol=1e-15
        )
        # eq. 18: MR = chi^2(p : U_n) / n
        chi2 = ((expected - 1 / 15) ** 2 / (1 / 15)).sum(-1)
        np.testing.assert_allclose(sm.measure_of_roughness(expected), chi2 / 15, rtol=1e-10)


def test_roughness_falls_as_temperature_rises(rng):
    z = rng.normal(scale=3.0, size=(50, 20))
    temperatures = np.geomspace(0.1, 1000, 30)
    mr = [sm.measure_of_roughness(sm.tempered_softmax(z, t)).numpy() for t in temperatures]
    assert np.all(np.diff(np.stack(mr), axis=0) <= 1e-15)


@pytest.mark.parametrize("temperature", [0.0, -1.0, float("nan"), float("inf"), True])
def test_bad_temperature_raises(temperature):
    with pytest.raises(ValueError, match="temperature"):
        sm.tempered_softmax(np.ones((2, 3)), temperature)


def test_tensor_temperature_is_checked_at_run_time():
    with pytest.raises(tf.errors.InvalidArgumentError, match="temperature"):
        sm.tempered_softmax(np.ones((2, 3)), tf.constant(-2.0, tf.float64))

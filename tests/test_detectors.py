"""skood.detectors: each score against a hand computation of its paper's formula, the protocol
(inputs, parameters, persistence), Fused's conformal guarantee, feature extraction and the
registry. The expected values are computed here with numpy/scipy, not with the code tested."""
import pickle

import numpy as np
import pytest
import torch
from scipy.special import logsumexp, softmax
from scipy.stats import chi2
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils._param_validation import InvalidParameterError

from skood.detectors import (DETECTORS, KNN, MSP, BaseDetector, Energy, Fused, Mahalanobis,
                             MaxLogit, ReAct, ViM, combine_pvalues, extract_features,
                             last_linear, make_detector)
from skood.conformal import conformal_pvalues
from skood.detectors import _knn, _vim
from skood.losses import energy
from skood.models import MLP


@pytest.fixture(scope="module")
def net_rows():
    """Features of 3 Gaussian classes in 16 dimensions, and the logits of a linear head."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 3
    y = rng.integers(0, 3, 400)
    features = centres[y] + rng.normal(size=(400, 16))
    weight, bias = rng.normal(size=(3, 16)), rng.normal(size=3)
    return dict(features=features, logits=features @ weight.T + bias, y=y,
                last_layer=(weight, bias))


def fit_and_score(detector, rows, train=slice(0, 300), test=slice(300, None)):
    detector.fit(rows["features"][train], rows["logits"][train], rows["y"][train],
                 last_layer=rows["last_layer"])
    if isinstance(detector, Fused):
        detector.calibrate(rows["features"][test], rows["logits"][test])
    return detector.score_samples(rows["features"][test], rows["logits"][test])


# -- logits detectors ------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_energy_is_minus_skood_losses_energy_bit_for_bit(temperature):
    logits = np.random.default_rng(1).normal(size=(50, 7)).astype(np.float32) * 4
    expected = (-energy(torch.from_numpy(logits), temperature)).numpy()
    scores = Energy(temperature).score_samples(logits=logits)
    assert scores.dtype == np.float64
    assert np.array_equal(scores.astype(np.float32), expected)   # the estimator's float32 scores
    hand = temperature * logsumexp(logits.astype(np.float64) / temperature, axis=1)
    np.testing.assert_allclose(scores, hand, rtol=1e-6)


def test_msp_and_maxlogit_by_hand():
    logits = np.random.default_rng(2).normal(size=(40, 5)) * 3
    np.testing.assert_allclose(MSP().score_samples(logits=logits),
                               softmax(logits, axis=1).max(axis=1), rtol=1e-12)
    np.testing.assert_allclose(MSP(temperature=4.0).score_samples(logits=logits),
                               softmax(logits / 4.0, axis=1).max(axis=1), rtol=1e-12)
    assert np.array_equal(MaxLogit().score_samples(logits=logits), logits.max(axis=1))


# -- Mahalanobis -----------------------------------------------------------------------------

def test_mahalanobis_with_identity_covariance_is_minus_the_squared_distance_to_the_nearest_mean():
    # Per class, the rows mean +- sqrt(D) e_i: the class-centred covariance is exactly I.
    dim, means = 4, np.array([[0.0, 0.0, 0.0, 0.0], [5.0, 1.0, -2.0, 0.0]])
    steps = np.r_[np.eye(dim), -np.eye(dim)] * np.sqrt(dim)
    features = np.concatenate([mean + steps for mean in means])
    y = np.repeat([7, 9], 2 * dim)
    queries = np.random.default_rng(3).normal(size=(30, dim)) * 3
    hand = -((queries[:, None, :] - means[None]) ** 2).sum(axis=2).min(axis=1)
    detector = Mahalanobis().fit(features, y=y)
    np.testing.assert_allclose(detector.precision_, np.eye(dim), atol=1e-12)
    np.testing.assert_allclose(detector.score_samples(queries), hand, rtol=1e-10, atol=1e-10)
    assert detector.classes_.tolist() == [7, 9]


def test_mahalanobis_with_a_shared_full_covariance(net_rows):
    features, y = net_rows["features"][:300], net_rows["y"][:300]
    mix = np.random.default_rng(4).normal(size=(16, 16))
    features = features @ mix                                # correlated columns
    means = np.stack([features[y == c].mean(axis=0) for c in range(3)])
    centred = features - means[y]
    inverse = np.linalg.inv(centred.T @ centred / len(features))
    queries = net_rows["features"][300:] @ mix
    diff = queries[:, None, :] - means[None]
    hand = -np.einsum("ncd,de,nce->nc", diff, inverse, diff).min(axis=1)
    scores = Mahalanobis().fit(features, y=y).score_samples(queries)
    np.testing.assert_allclose(scores, hand, rtol=1e-7)


def test_mahalanobis_singular_covariance_uses_the_pseudo_inverse():
    rng = np.random.default_rng(5)
    features = np.c_[rng.normal(size=(100, 2)), np.zeros(100)]   # the third column never varies
    y = np.repeat([0, 1], 50)
    detector = Mahalanobis().fit(features, y=y)
    means = np.stack([features[y == c].mean(axis=0) for c in (0, 1)])
    pinv = np.linalg.pinv(np.cov((features - means[y]).T, bias=True))
    query = np.array([[0.3, -0.2, 0.0], [0.3, -0.2, 5.0]])
    diff = query[:, None, :] - means[None]
    hand = -np.einsum("ncd,de,nce->nc", diff, pinv, diff).min(axis=1)
    scores = detector.score_samples(query)
    np.testing.assert_allclose(scores, hand, rtol=1e-8)
    assert scores[0] == pytest.approx(scores[1])   # the null direction adds nothing


# -- KNN -------------------------------------------------------------------------------------

def brute_kth_distance(train, queries, k):
    train = train / np.linalg.norm(train, axis=1, keepdims=True)
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    distances = np.linalg.norm(queries[:, None, :] - train[None], axis=2)
    return np.sort(distances, axis=1)[:, k - 1]


@pytest.mark.parametrize("k", [1, 3, 20])
def test_knn_is_minus_the_kth_nearest_normalised_distance(net_rows, k, monkeypatch):
    monkeypatch.setattr(_knn, "_BLOCK_VALUES", 300 * 7)   # blocks of 7 query rows
    train, queries = net_rows["features"][:300], net_rows["features"][300:]
    scores = KNN(k=k, backend="builtin").fit(train).score_samples(queries)
    np.testing.assert_allclose(-scores, brute_kth_distance(train, queries, k), atol=1e-5)


def test_knn_is_invariant_to_scaling_the_features(net_rows):
    train, queries = net_rows["features"][:300], net_rows["features"][300:]
    scores = KNN(k=5).fit(train).score_samples(queries)
    rescaled = KNN(k=5).fit(train * 1e3).score_samples(queries * 1e-2)
    per_row = KNN(k=5).fit(train * np.arange(1, 301)[:, None]).score_samples(queries * 7.0)
    np.testing.assert_allclose(rescaled, scores, atol=1e-5)
    np.testing.assert_allclose(per_row, scores, atol=1e-5)
    assert np.ptp(scores) > 0.1   # not a constant that would pass trivially


def test_knn_auto_k_and_seeded_subsample(net_rows):
    assert KNN().fit(np.random.default_rng(6).normal(size=(2600, 4))).k_ == 3   # round(2.6)
    assert KNN().fit(net_rows["features"][:300]).k_ == 1
    train = net_rows["features"][:300]
    a = KNN(k=2, max_stored=50, random_state=0).fit(train)
    b = KNN(k=2, max_stored=50, random_state=0).fit(train)
    c = KNN(k=2, max_stored=50, random_state=1).fit(train)
    assert a.train_features_.shape == (50, 16)
    assert np.array_equal(a.train_features_, b.train_features_)
    assert not np.array_equal(a.train_features_, c.train_features_)
    normalised = train / np.linalg.norm(train, axis=1, keepdims=True)
    kept = [np.flatnonzero(np.all(np.isclose(normalised, row, atol=1e-6), axis=1))
            for row in a.train_features_]
    assert all(len(rows) == 1 for rows in kept) and len({r[0] for r in kept}) == 50
    stored = train[[r[0] for r in kept]]
    queries = net_rows["features"][300:]
    np.testing.assert_allclose(-a.score_samples(queries), brute_kth_distance(stored, queries, 2),
                               atol=1e-5)
    with pytest.raises(ValueError, match="k=60 but only 50"):
        KNN(k=60, max_stored=50).fit(train)


def test_knn_faiss_and_torch_give_the_same_scores(net_rows):
    pytest.importorskip("faiss")
    train, queries = net_rows["features"][:300], net_rows["features"][300:]
    for k in (1, 10):
        by_builtin = KNN(k=k, backend="builtin").fit(train).score_samples(queries)
        by_faiss = KNN(k=k, backend="faiss").fit(train).score_samples(queries)
        np.testing.assert_allclose(by_faiss, by_builtin, atol=1e-6)


def test_knn_faiss_backend_without_faiss_says_how_to_install_it(net_rows, monkeypatch):
    monkeypatch.setattr(_knn, "faiss_available", lambda: False)
    with pytest.raises(ImportError, match="pip install faiss-cpu"):
        KNN(backend="faiss").fit(net_rows["features"])
    detector = KNN(k=2).fit(net_rows["features"][:300])   # "auto" falls back to the built-in search
    np.testing.assert_allclose(
        -detector.score_samples(net_rows["features"][300:]),
        brute_kth_distance(net_rows["features"][:300], net_rows["features"][300:], 2), atol=1e-5)


# -- ViM -------------------------------------------------------------------------------------

def test_vim_on_a_known_principal_subspace():
    # Offsets z = all sign patterns of (3, 3, 0.5, 0.5) around u0: the second moment of z is
    # diag(9, 9, 0.25, 0.25) exactly, so P = span(e0, e1) and the residual is z[2:].
    rng = np.random.default_rng(7)
    signs = np.array(np.meshgrid(*[[-1, 1]] * 4)).reshape(4, -1).T
    z = signs * np.array([3.0, 3.0, 0.5, 0.5])
    weight = rng.normal(size=(3, 4))
    u0 = weight.T @ rng.normal(size=3)            # in W's row space, so -pinv(W) b = u0
    bias = -weight @ u0
    features = u0 + z
    logits = features @ weight.T + bias
    detector = ViM(n_components=2).fit(features, logits, last_layer=(weight, bias))
    np.testing.assert_allclose(detector.origin_, u0, atol=1e-10)
    alpha = logits.max(axis=1).sum() / np.linalg.norm(z[:, 2:], axis=1).sum()
    assert detector.alpha_ == pytest.approx(alpha, rel=1e-10)
    queries = u0 + rng.normal(size=(20, 4)) * 2
    query_logits = queries @ weight.T + bias
    hand = (logsumexp(query_logits, axis=1)
            - alpha * np.linalg.norm((queries - u0)[:, 2:], axis=1))
    np.testing.assert_allclose(detector.score_samples(queries, query_logits), hand, rtol=1e-9)
    assert ViM().fit(features, logits, last_layer=(weight, bias)).n_components_ == 2   # 4 // 2


def test_vim_default_dimension_follows_the_papers_rule():
    assert [_vim.default_n_components(d) for d in (4096, 2048, 2047, 768, 767, 512, 3)] == [
        1000, 1000, 512, 512, 383, 256, 1]
    with pytest.raises(ValueError, match="n_components=4 leaves no residual"):
        ViM(n_components=4).fit(np.ones((10, 4)), np.ones((10, 2)),
                                last_layer=(np.ones((2, 4)), None))


# -- ReAct -----------------------------------------------------------------------------------

@pytest.mark.parametrize("percentile", [90, 50, 100])
def test_react_clips_at_the_training_percentile_then_scores_the_energy(net_rows, percentile):
    train = np.abs(net_rows["features"][:300])          # ReLU-like activations
    weight, bias = net_rows["last_layer"]
    queries = np.abs(net_rows["features"][300:]) * 2
    detector = ReAct(percentile=percentile).fit(train, last_layer=(weight, bias))
    threshold = np.percentile(train.ravel(), percentile)
    assert detector.threshold_ == threshold
    hand = logsumexp(np.minimum(queries, threshold) @ weight.T + bias, axis=1)
    np.testing.assert_allclose(detector.score_samples(queries), hand, rtol=1e-10)


def test_fitted_detectors_do_not_share_memory_with_the_network(net_rows):
    layer = torch.nn.Linear(16, 3).double()
    features = net_rows["features"][:300]
    detector = ReAct().fit(features, last_layer=layer)
    before = detector.score_samples(features[:5])
    with torch.no_grad():
        layer.weight.add_(1.0)                              # training goes on
    np.testing.assert_array_equal(detector.score_samples(features[:5]), before)


# -- Fused -----------------------------------------------------------------------------------

def test_combine_pvalues_by_hand():
    p = np.array([[0.01, 0.5, 0.9], [0.6, 0.7, 0.8], [0.2, 0.3, 0.25]])
    np.testing.assert_allclose(combine_pvalues(p), [0.03, 1.0, 0.6])
    stat = -2 * np.log(p).sum(axis=1)
    np.testing.assert_allclose(combine_pvalues(p, "fisher"), chi2.sf(stat, df=6), rtol=1e-10)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        combine_pvalues([[0.0, 0.5]])
    with pytest.raises(ValueError, match="rule must be one of"):
        combine_pvalues(p, "mean")


def test_fused_is_the_combined_conformal_pvalue_of_its_members(net_rows):
    fused = Fused(["energy", KNN(k=2)], tie_break=False)
    train, cal, new = slice(0, 200), slice(200, 300), slice(300, None)
    scores = fit_and_score(fused, net_rows, train, new)   # calibrated on the new rows...
    fused.calibrate(net_rows["features"][cal], net_rows["logits"][cal])   # ...then on others
    scores = fused.score_samples(net_rows["features"][new], net_rows["logits"][new])
    members = [Energy().fit(logits=net_rows["logits"][train]),
               KNN(k=2).fit(net_rows["features"][train])]
    pvalues = []
    for member in members:
        calibration = member.score_samples(net_rows["features"][cal], net_rows["logits"][cal])
        new_scores = member.score_samples(net_rows["features"][new], net_rows["logits"][new])
        pvalues.append((1 + (calibration[None, :] <= new_scores[:, None]).sum(1)) / 101)
    np.testing.assert_allclose(scores, np.minimum(1, 2 * np.min(pvalues, axis=0)))
    assert fused.needs == {"features", "logits"} and not fused.needs_labels
    assert not hasattr(fused.detectors[1], "k_")          # the members given are not fitted
    fused.fit(net_rows["features"][train], net_rows["logits"][train])
    with pytest.raises(NotFittedError, match="calibrate"):   # refitting drops the calibration
        fused.score_samples(net_rows["features"][new], net_rows["logits"][new])


def test_fused_min_keeps_the_conformal_guarantee_over_calibration_draws(net_rows):
    """Over many draws of calibration rows and new ID rows from one distribution,
    P(p_fused <= a) <= a for the min rule (as benchmarks/conformal_validity.py checks for
    one score); the plain minimum of the members' p-values (no factor m) exceeds it."""
    rng = np.random.default_rng(8)
    fused = Fused(["energy", "maxlogit", KNN(k=3)])
    fused.fit(net_rows["features"][:300], net_rows["logits"][:300])
    # a pool of fresh ID rows drawn like the training rows (around the same class means)
    y, weight, bias = net_rows["y"][:300], *net_rows["last_layer"]
    means = np.stack([net_rows["features"][:300][y == c].mean(axis=0) for c in range(3)])
    pool = means[rng.integers(0, 3, 60_000)] + rng.normal(size=(60_000, 16))
    pool_logits = pool @ weight.T + bias
    reps, n_cal, n_new = 1000, 99, 40     # fused p-values in steps of 3 / 100
    levels = np.array([0.05, 0.1, 0.2, 0.3])
    fused_rate, plain_rate = np.zeros(levels.size), np.zeros(levels.size)
    for _ in range(reps):
        rows = rng.choice(60_000, n_cal + n_new, replace=False)
        cal, new = rows[:n_cal], rows[n_cal:]
        fused.calibrate(pool[cal], pool_logits[cal])
        p = fused.score_samples(pool[new], pool_logits[new])
        plain = np.min([conformal_pvalues(calibration, member.score_samples(pool[new],
                                                                            pool_logits[new]))
                        for calibration, member in zip(fused.calibration_scores_.T,
                                                       fused.detectors_)], axis=0)
        fused_rate += (p[:, None] <= levels).mean(axis=0) / reps
        plain_rate += (plain[:, None] <= levels).mean(axis=0) / reps
    se = np.sqrt(levels * (1 - levels) / reps)   # generous: rows of one draw are correlated
    assert np.all(fused_rate <= levels + 3 * se), fused_rate
    assert np.all(fused_rate > 0.2 * levels), fused_rate   # not vacuous: it rejects ID rows
    assert np.all(plain_rate > levels + 3 * se), plain_rate   # the test can see a violation


def test_fisher_rule_breaks_the_guarantee_for_dependent_members():
    rng = np.random.default_rng(9)
    logits = rng.normal(size=(200_000, 4))
    # two copies of one detector: the most dependent members
    fused = Fused([Energy(), Energy()], rule="fisher").fit(logits=logits[:100])
    hits = []
    for start in range(100, 100 + 400 * 199, 199):
        fused.calibrate(logits=logits[start:start + 99])
        hits.append(np.mean(fused.score_samples(logits=logits[start + 99:start + 199]) <= 0.1))
    # P(chi2_4.sf(-4 log p) <= 0.1) = P(p <= exp(-7.78 / 4)) = 0.143 for a uniform p
    assert np.mean(hits) > 0.125
    bonferroni = Fused([Energy(), Energy()], tie_break=False).fit(logits=logits[:100])
    bonferroni.calibrate(logits=logits[100:199])
    single = Energy().score_samples(logits=logits[199:10_000])
    calibration = Energy().score_samples(logits=logits[100:199])
    expected = np.minimum(1, 2 * (1 + (calibration[None] <= single[:, None]).sum(1)) / 100)
    np.testing.assert_allclose(bonferroni.score_samples(logits=logits[199:10_000]), expected)


def test_fused_tie_break_orders_rows_at_the_floor_and_moves_pvalues_by_under_delta():
    """Rows below every calibration row share the floor p-value; the tie break orders them
    by how far the most atypical member places them, and never by more than 0.01 / (n + 1),
    so rows of different p-values keep their order."""
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(400, 3))
    fused = Fused(["energy", "maxlogit"], tie_break=False).fit(logits=logits[:200])
    fused.calibrate(logits=logits[200:300])
    n = 100
    # rows further and further below the calibration rows, and ordinary new rows
    beyond = -np.linspace(5.0, 80.0, 6)[:, None] * np.ones((1, 3))
    new = np.r_[beyond, logits[300:]]
    plain = fused.score_samples(logits=new)
    broken = fused.set_params(tie_break=True).score_samples(logits=new)
    assert np.all(plain[:6] == 2 / (n + 1))                 # one tie at the floor...
    assert np.all(np.diff(broken[:6]) < 0)                  # ...ordered by distance
    assert np.all((plain - broken > 0) & (plain - broken < 0.01 / (n + 1)))
    distinct = plain[:, None] < plain[None, :]
    assert np.all((broken[:, None] < broken[None, :])[distinct])   # order of p kept


# -- the protocol, for every detector --------------------------------------------------------

@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_every_detector_follows_the_protocol(name, net_rows):
    detector = make_detector(name)
    assert isinstance(detector, BaseDetector)
    assert detector.needs and detector.needs <= {"features", "logits"}
    scores = fit_and_score(detector, net_rows)
    assert scores.dtype == np.float64 and scores.shape == (100,)
    assert np.all(np.isfinite(scores)) and np.ptp(scores) > 0
    # tensors give the same scores as arrays; inputs a detector does not need may be None
    tensors = {key: torch.from_numpy(net_rows[key][300:]) for key in ("features", "logits")}
    given = {key: (value if key in detector.needs else None) for key, value in tensors.items()}
    np.testing.assert_allclose(detector.score_samples(**given), scores, rtol=1e-6, atol=1e-6)
    # persistence: a pickled fitted detector gives the same scores bit for bit
    restored = pickle.loads(pickle.dumps(detector))
    assert np.array_equal(restored.score_samples(**given), detector.score_samples(**given))
    # scikit-learn's parameter handling
    params = detector.get_params()
    assert clone(detector).get_params() == params and not hasattr(clone(detector), "n_features_in_")
    missing = next(iter(sorted(detector.needs)))
    with pytest.raises(ValueError, match=f"needs {missing}"):
        detector.score_samples(**dict(given, **{missing: None}))
    with pytest.raises(ValueError, match="columns"):
        detector.score_samples(**dict(given, **{missing: given[missing][:, :2]}))
    bad = given[missing].clone()
    bad[3, 0] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or inf values \(rows \[3\]\)"):
        detector.score_samples(**dict(given, **{missing: bad}))


@pytest.mark.parametrize("detector", [
    KNN(k=0), KNN(k="all"), KNN(max_stored=0), KNN(backend="annoy"), Energy(temperature=0.0),
    MSP(temperature=-1.0), ReAct(percentile=0), ReAct(percentile=101), ViM(n_components=0),
    Fused(rule="max"), Fused(detectors="energy"), KNN(k=True)], ids=repr)
def test_bad_parameters_are_refused_at_fit(detector, net_rows):
    with pytest.raises((InvalidParameterError, TypeError)):
        fit_and_score(detector, net_rows)


def test_missing_labels_and_last_layer_are_named(net_rows):
    with pytest.raises(ValueError, match="needs the class labels y"):
        Mahalanobis().fit(net_rows["features"])
    with pytest.raises(ValueError, match="last_linear"):
        ViM().fit(net_rows["features"], net_rows["logits"])
    with pytest.raises(ValueError, match="must be the input of last_layer"):
        ReAct().fit(net_rows["features"][:, :5], last_layer=net_rows["last_layer"])
    with pytest.raises(NotFittedError):
        KNN().score_samples(net_rows["features"])


# -- the registry ----------------------------------------------------------------------------

def test_make_detector_builds_names_and_refuses_the_rest_with_the_list():
    assert type(make_detector("ViM")) is ViM and type(make_detector("energy")) is Energy
    knn = KNN(k=4)
    assert make_detector(knn) is knn
    for bad, error in (("vim2", ValueError), (KNN, TypeError), (object(), TypeError),
                       (3, TypeError)):
        with pytest.raises(error) as info:
            make_detector(bad)
        assert all(repr(name) in str(info.value) for name in DETECTORS), str(info.value)
    with pytest.raises(TypeError, match=r"pass an instance such as KNN\(\)"):
        make_detector(KNN)
    with pytest.raises(ValueError, match="Unknown detector 'nope'"):
        Fused(["energy", "nope"]).fit(logits=np.zeros((5, 2)))


# -- feature extraction ----------------------------------------------------------------------

def test_features_are_the_input_of_the_last_linear_layer():
    torch.manual_seed(0)
    net = MLP(6, 4, hidden=(12, 10), dropout=0.5)
    X = np.random.default_rng(10).normal(size=(37, 6)).astype(np.float32)
    net.eval()
    with torch.no_grad():
        expected_features = net.features(torch.from_numpy(X)).numpy()
        expected_logits = net(torch.from_numpy(X)).numpy()
    net.train()
    features, logits = extract_features(net, X)             # one batch: the same product
    np.testing.assert_array_equal(features, expected_features)
    np.testing.assert_array_equal(logits, expected_logits)
    batched = extract_features(net, X, batch_size=5)        # 8 batches: the same rows
    np.testing.assert_allclose(batched[0], features, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batched[1], logits, rtol=1e-5, atol=1e-6)
    assert last_linear(net) is net.classifier
    # float64 input is cast to the network's float32; a Dataset gives the same rows
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.zeros(37))
    np.testing.assert_array_equal(extract_features(net, X.astype(np.float64))[0], features)
    np.testing.assert_allclose(extract_features(net, dataset, batch_size=8)[0], features,
                               rtol=1e-5, atol=1e-6)


def test_named_layer_gives_its_output_flattened():
    torch.manual_seed(0)
    net = MLP(6, 4, hidden=(12, 10))
    X = torch.randn(9, 6)
    with torch.no_grad():
        expected = net.features[1](net.features[0](X)).numpy()   # Flatten, Linear -> (9, 12)
    features, _ = extract_features(net, X, layer="features.1")
    np.testing.assert_array_equal(features, expected)


def test_modes_are_restored_even_when_mixed():
    net = MLP(6, 4, hidden=(12,), dropout=0.5)
    net.train()
    net.features.eval()
    modes = [m.training for m in net.modules()]
    extract_features(net, torch.randn(4, 6))
    assert [m.training for m in net.modules()] == modes
    with pytest.raises(ValueError):
        extract_features(net, torch.randn(4, 6), layer="nope")
    assert [m.training for m in net.modules()] == modes


def test_clear_errors_for_a_network_without_the_layer():
    convnet = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten())
    with pytest.raises(ValueError, match=r"no torch.nn.Linear.*layer='name'.*'0', '1'"):
        extract_features(convnet, torch.zeros(2, 1, 5, 5))
    with pytest.raises(ValueError, match=r"no submodule named 'head'.*'0', '1'"):
        extract_features(convnet, torch.zeros(2, 1, 5, 5), layer="head")
    features, _ = extract_features(convnet, torch.zeros(2, 1, 5, 5), layer="0")
    assert features.shape == (2, 2 * 3 * 3)

    class Twice(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.head = torch.nn.Linear(3, 3)

        def forward(self, x):
            return self.head(self.head(x))

    with pytest.raises(ValueError, match="ran 2 times in one forward"):
        extract_features(Twice(), torch.zeros(4, 3))


def test_extracted_features_feed_the_detectors():
    torch.manual_seed(0)
    net = MLP(6, 3, hidden=(16,))
    X = torch.randn(200, 6)
    features, logits = extract_features(net, X)
    vim = ViM(n_components=4).fit(features, logits, last_layer=last_linear(net))
    weight = net.classifier.weight.detach().double().numpy()
    bias = net.classifier.bias.detach().double().numpy()
    np.testing.assert_allclose(vim.origin_, -np.linalg.pinv(weight) @ bias, atol=1e-8)
    assert vim.score_samples(features[:10], logits[:10]).shape == (10,)


# -- the cost benchmark ----------------------------------------------------------------------

def test_detector_cost_benchmark_runs_and_its_implementations_agree(tmp_path):
    from helpers import load_benchmark_script
    script = load_benchmark_script("detector_cost")
    out = tmp_path / "report.md"
    text = script.main(["--n-train", "400", "--n-test", "60", "--dim", "16", "--classes", "3",
                        "--k", "3", "--repeats", "2", "--out", str(out)])
    assert out.read_text() == text
    rows = [line.split("|")[1:-1] for line in text.splitlines()
            if line.startswith(("| KNN", "| Mahalanobis", "| ViM"))]
    labels = {row[1].strip() for row in rows}
    assert {"skood KNN (built-in search)", "scikit-learn NearestNeighbors(brute)",
            "skood Mahalanobis", "scikit-learn EmpiricalCovariance.mahalanobis",
            "scikit-learn NearestNeighbors(brute, mahalanobis)", "skood ViM",
            "scikit-learn + numpy recipe"} <= labels
    assert ("faiss IndexFlatIP (exact)" in labels) == script.HAS_FAISS
    for row in rows:   # every reference computes the same scores as skood's detector
        assert float(row[7]) < 1e-4 and float(row[8]) > 0.9999, row
        assert float(row[6]) > 0, row                               # a fitted size
    knn_size = next(float(row[6]) for row in rows if row[1].strip().startswith("skood KNN"))
    assert knn_size == pytest.approx(400 * 16 * 4 / 1e6, rel=0.1)   # the stored float32 rows
    # --detectors times only those; the skood row's ratio to itself is 1 in every repeat
    text = script.main(["--n-train", "200", "--n-test", "20", "--dim", "8", "--classes", "2",
                        "--k", "2", "--repeats", "2", "--detectors", "ViM", "--threads", "1"])
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith("| ")]
    assert {row[0].strip() for row in rows[1:]} == {"ViM"}
    assert rows[1][5].strip() == "1.00 (1.00-1.00)"
    assert "torch 2" in text and "with 1 threads" in text


def test_features_and_logit_scores_on_the_test_device(device):
    """On the suite's device (``--device cuda``): the network stays where it was, the
    features come back on the host, and scores of device tensors match the host's."""
    torch.manual_seed(0)
    net = MLP(6, 3, hidden=(16,))
    X = torch.randn(50, 6)
    host_features, host_logits = extract_features(net, X)
    features, logits = extract_features(net, X, device=device)     # moved there and back
    assert next(net.parameters()).device.type == "cpu"
    np.testing.assert_allclose(features, host_features, rtol=1e-5, atol=1e-5)
    net.to(device)
    features, logits = extract_features(net, X)                     # computed where it is
    assert next(net.parameters()).device.type == torch.device(device).type
    np.testing.assert_allclose(logits, host_logits, rtol=1e-5, atol=1e-5)
    on_device = torch.from_numpy(logits).to(device)
    for detector in (Energy(), MSP(), MaxLogit()):
        np.testing.assert_allclose(detector.score_samples(logits=on_device),
                                   detector.score_samples(logits=host_logits), rtol=1e-5)
    knn = KNN(k=2).fit(torch.from_numpy(host_features).to(device))
    np.testing.assert_allclose(knn.score_samples(torch.from_numpy(features).to(device)),
                               KNN(k=2).fit(host_features).score_samples(features), atol=1e-5)


# -- the cross-check against independent implementations ------------------------------------

@pytest.fixture(scope="module")
def crosscheck():
    from helpers import load_benchmark_script
    return load_benchmark_script("detector_crosscheck")


def _relu_rows(seed=0, n=300, width=12, dead=3):
    """Class-structured non-negative features with ``dead`` columns that are zero on the
    training rows (never-active ReLU units) but not on the new rows."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    means = rng.normal(size=(3, width)) * 2
    rows = np.maximum(0.0, means[y] + rng.normal(size=(n, width)))
    train, new = rows[:200].copy(), rows[200:]
    train[:, :dead] = 0.0
    return train, y[:200], new


def test_mahalanobis_equals_scikit_learns_pseudo_inverse_with_dead_columns(crosscheck):
    train, y, new = _relu_rows()
    reference = crosscheck.sklearn_mahalanobis((train, None, y))
    np.testing.assert_allclose(Mahalanobis().fit(train, y=y).score_samples(new),
                               reference(new, None), rtol=1e-8, atol=1e-8)


def test_vim_equals_the_float64_formulas_of_pytorch_ood(crosscheck):
    train, y, new = _relu_rows(dead=0)
    layer = torch.nn.Linear(train.shape[1], 3)
    weight = layer.weight.detach().double().numpy()
    bias = layer.bias.detach().double().numpy()
    vim = ViM(n_components=6).fit(train, train @ weight.T + bias, last_layer=layer)
    reference = crosscheck.float64_vim((train, None, y), layer, 6)
    np.testing.assert_allclose(vim.score_samples(new, new @ weight.T + bias),
                               reference(new, None), rtol=1e-8, atol=1e-8)


@pytest.mark.filterwarnings("ignore::skood.exceptions.ChanceLevelWarning")
@pytest.mark.filterwarnings("ignore::skood.conformal.SmallCalibrationWarning")
def test_crosscheck_against_pytorch_ood_on_a_small_network(crosscheck, tmp_path):
    if crosscheck.import_pytorch_ood() is None:
        pytest.skip("pytorch-ood is not installed")
    table = crosscheck.main(["--splits", "1", "--methods", "ce", "--epochs", "2",
                             "--n-train", "300", "--n-ood", "100", "--out", str(tmp_path)])
    assert set(table["detector"]) == set(DETECTORS)
    same = table[~table["detector"].isin(["mahalanobis", "vim"])
                 | (table["reference"] != "pytorch-ood")]
    # every detector but the two whose pytorch-ood conventions differ ranks rows the same
    assert (same["spearman"] > 0.9999).all(), same[["detector", "reference", "spearman"]]
    assert (tmp_path / "report.md").read_text().count("| knn | pytorch-ood |") == 1

"""Scores: the Fréchet distance against independent computations, the Inception-style score on
hand-computed cases, scores of samples under a trained classifier's features, and nearest neighbours."""
import math

import numpy as np
import pytest
import torch

from ebmlib import metrics
from ebmlib.features import ClassifierExtractor
from ebmlib.images import to_float
from ebmlib.metrics import frechet_distance, inception_score


def random_cov(d, rng, rank=None):
    a = rng.normal(size=(d, rank or d + 3))
    return a @ a.T / a.shape[1]


def denman_beavers_sqrtm(a, iters=60):
    """An independent matrix square root of a (not symmetric) matrix, by the Denman-Beavers iteration."""
    y, z = a.copy(), np.eye(len(a))
    for _ in range(iters):
        y, z = (y + np.linalg.inv(z)) / 2, (z + np.linalg.inv(y)) / 2
    return y


def frechet_reference(mu1, s1, mu2, s2):
    root = denman_beavers_sqrtm(s1 @ s2)
    assert np.allclose(root @ root, s1 @ s2, atol=1e-9), "the reference square root itself must be right"
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(root).real)


# --- Fréchet distance ----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_frechet_matches_an_independent_sqrtm(seed):
    rng = np.random.default_rng(seed)
    d = 12
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = random_cov(d, rng), random_cov(d, rng)
    expected = frechet_reference(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    # and by the eigenvalues of the (non-symmetric) product: tr sqrt(S1 S2) = sum sqrt(eig(S1 S2))
    eig = np.linalg.eigvals(s1 @ s2)
    by_eig = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(eig.real).sum()
    assert frechet_distance(torch.tensor(mu1), torch.tensor(s1), torch.tensor(mu2), torch.tensor(s2)) == \
        pytest.approx(by_eig, rel=1e-9)


def test_frechet_of_identical_gaussians_is_zero_even_when_singular():
    rng = np.random.default_rng(3)
    mu = rng.normal(size=20)
    full, singular = random_cov(20, rng), random_cov(20, rng, rank=5)  # rank 5: fewer samples than dims
    assert abs(frechet_distance(mu, full, mu, full)) < 1e-9
    # sqrt has an infinite slope at 0: eigenvalues that are 0 up to round-off (~1e-16) give ~1e-8 each
    assert abs(frechet_distance(mu, singular, mu, singular)) < 1e-6


def test_frechet_closed_forms():
    rng = np.random.default_rng(4)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    a, b = rng.uniform(0.1, 3, size=6), rng.uniform(0.1, 3, size=6)
    diagonal = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(diagonal, rel=1e-12)
    s = random_cov(6, rng)  # S and cS commute: d^2 = tr(S) (1 - sqrt(c))^2
    assert frechet_distance(mu1, s, mu1, 4 * s) == pytest.approx(np.trace(s), rel=1e-12)
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1)  # 1-D: (m1-m2)^2 + (s1-s2)^2


def test_frechet_is_computed_in_float64():
    rng = np.random.default_rng(5)
    d = 64
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = random_cov(d, rng), random_cov(d, rng)
    as32 = [torch.tensor(v, dtype=torch.float32) for v in (mu1, s1, mu2, s2)]
    as64 = [v.double() for v in as32]  # the same numbers, exactly
    assert frechet_distance(*as32) == pytest.approx(frechet_distance(*as64), rel=1e-13)
    assert isinstance(frechet_distance(*as32), float)


def test_frechet_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="different dimensions"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match=r"\(D, D\)"):
        frechet_distance(np.zeros(3), np.eye(4), np.zeros(3), np.eye(3))


def test_feature_stats_match_numpy_and_survive_a_large_offset():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(500, 7)) * rng.uniform(0.5, 2, size=7)
    mu, sigma = metrics.feature_stats(torch.tensor(x, dtype=torch.float32))
    assert mu.dtype == sigma.dtype == torch.float64
    assert np.allclose(mu.numpy(), x.astype(np.float32).mean(0), atol=1e-6)
    assert np.allclose(sigma.numpy(), np.cov(x.astype(np.float32), rowvar=False), atol=1e-6)
    exact = metrics.feature_stats(torch.tensor(x))[1]  # float64 features: float64 all the way
    assert np.allclose(exact.numpy(), np.cov(x, rowvar=False), rtol=1e-12, atol=1e-14)
    offset = torch.tensor(x) + 1e6  # the naive E[xx^T] - mu mu^T loses every digit here
    mu_o, sigma_o = metrics.feature_stats(offset)
    assert np.allclose(sigma_o.numpy(), np.cov(x, rowvar=False), atol=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        metrics.feature_stats(torch.zeros(1, 3))


# --- Inception-style score ---------------------------------------------------------------------

def test_inception_score_hand_computed_cases():
    uniform = torch.full((100, 10), 0.1)
    assert inception_score(uniform) == pytest.approx((1.0, 0.0))
    spread = torch.eye(10).repeat(10, 1)  # one-hot, every split holds each class once
    assert inception_score(spread, splits=10) == pytest.approx((10.0, 0.0))
    grouped = torch.eye(10).repeat_interleave(10, dim=0)  # each split is one class only
    assert inception_score(grouped, splits=10) == pytest.approx((1.0, 0.0))
    # two samples by hand: p(y) = (0.75, 0.25)
    probs = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    kl = (math.log(1 / 0.75) + 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)) / 2
    assert inception_score(probs, splits=1) == pytest.approx((math.exp(kl), 0.0))
    # the std is over splits: a one-class split (score 1) and a spread split (score 2)
    two = torch.tensor([[1.0, 0], [1.0, 0], [1.0, 0], [0, 1.0]])
    assert inception_score(two, splits=2) == pytest.approx((1.5, 0.5))


@pytest.mark.parametrize("probs", [torch.full((5, 2), 0.7), torch.tensor([[1.5, -0.5]] * 5), torch.ones(5)])
def test_inception_score_rejects_non_probabilities(probs):
    with pytest.raises(ValueError):
        inception_score(probs, splits=1)


def test_inception_score_needs_a_sample_a_split():
    with pytest.raises(ValueError, match="N >= splits"):
        inception_score(torch.full((5, 2), 0.5), splits=10)


# --- scores of samples under an extractor ----------------------------------------------------------------

def test_score_reports_classifier_names_and_sample_counts(fake, classifier):
    (x, _), (xt, yt) = fake
    extractor = ClassifierExtractor(classifier)
    ref = metrics.reference_stats(x, extractor, batch_size=128)
    assert ref["n"] == 400 and ref["mu"].shape == (classifier.feature_dim,)
    out = metrics.score(xt, ref, extractor, batch_size=64)
    assert out["n_samples"] == 200 and out["n_reference"] == 400 and out["splits"] == 10
    assert {"fcd", "classifier_score", "classifier_score_std"} <= set(out)
    assert not {"fid", "inception_score"} & set(out)
    assert out["classifier_score"] > 4  # confident predictions spread over 10 classes (at most 10)
    same = metrics.score(x, ref, extractor)
    assert abs(same["fcd"]) < 1e-6
    noise = torch.randint(0, 256, (200, 3, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    assert metrics.score(noise, ref, extractor)["fcd"] > 10 * out["fcd"]
    one_class = xt[yt == 3]
    assert metrics.score(one_class, ref, extractor)["classifier_score"] < 2
    # generated samples arrive as floats in [-1, 1], or batch by batch: the same numbers
    as_float = metrics.score(to_float(xt), ref, extractor)
    streamed = metrics.score((xt[i:i + 50] for i in range(0, 200, 50)), ref, extractor)
    for other in (as_float, streamed):
        assert other["fcd"] == pytest.approx(out["fcd"], rel=1e-6)
        assert other["classifier_score"] == pytest.approx(out["classifier_score"], rel=1e-6)
    line = metrics.describe(out)
    assert "200 samples vs 400 reference" in line and "fcd" in line


def test_scoring_puts_the_net_in_eval_mode_and_restores_it(fake, classifier):
    (x, _), (xt, _) = fake
    extractor = ClassifierExtractor(classifier)
    expected = metrics.reference_stats(xt, extractor, batch_size=50)
    running_mean = classifier.body[0][1].running_mean.clone()
    classifier.train()  # as it would be in the middle of training
    try:
        got = metrics.reference_stats(xt, extractor, batch_size=50)
        assert classifier.training
    finally:
        classifier.eval()
    assert torch.allclose(got["mu"], expected["mu"], atol=1e-6)  # train-mode BatchNorm would differ
    assert torch.equal(classifier.body[0][1].running_mean, running_mean)  # and would update its stats


def test_score_refuses_statistics_from_another_extractor(fake, classifier):
    _, (xt, _) = fake
    ref = {"mu": torch.zeros(32), "sigma": torch.eye(32), "n": 10, "extractor": "inception-v3-fid"}
    with pytest.raises(ValueError, match="same extractor"):
        metrics.score(xt, ref, ClassifierExtractor(classifier))


def test_score_of_no_images_is_an_error(classifier):
    ref = {"mu": torch.zeros(32), "sigma": torch.eye(32), "n": 10, "extractor": "classifier"}
    with pytest.raises(ValueError, match="sample count of 0"):
        metrics.score(iter([]), ref, ClassifierExtractor(classifier))


# --- nearest neighbours ----------------------------------------------------------------------------

def test_nearest_neighbours_known_answers():
    # dataset: constant images of values 0..99, shuffled; the query's value is 50.3
    g = torch.Generator().manual_seed(0)
    values = torch.randperm(100, generator=g)
    dataset = values.to(torch.uint8)[:, None, None, None].expand(100, 3, 32, 32).contiguous()
    query = torch.full((1, 3, 32, 32), 50.3 / 127.5 - 1)
    idx, dist = metrics.nearest_neighbours(query, dataset, k=3, batch_size=1, chunk_size=7)
    assert values[idx[0]].tolist() == [50, 51, 49]
    per_pixel = torch.tensor([0.3, 0.7, 1.3]) / 127.5
    assert torch.allclose(dist[0], per_pixel * math.sqrt(3 * 32 * 32), rtol=1e-4)


def test_nearest_neighbours_match_brute_force_and_find_near_copies():
    g = torch.Generator().manual_seed(1)
    dataset = torch.randint(0, 256, (300, 3, 8, 8), generator=g, dtype=torch.uint8)
    queries = dataset[[5, 17, 200, 299]].clone()
    queries[:, 0, 0, 0] ^= 1  # one pixel off by one level: the copy is still the nearest
    idx, dist = metrics.nearest_neighbours(queries, dataset, k=4, batch_size=3, chunk_size=50)
    assert idx[:, 0].tolist() == [5, 17, 200, 299]
    assert torch.allclose(dist[:, 0], torch.full((4,), 1 / 127.5), rtol=1e-4)
    flat = [to_float(x).flatten(1).double() for x in (queries, dataset)]
    brute = torch.cdist(*flat)
    expected_d, expected_i = brute.topk(4, dim=1, largest=False)
    assert torch.equal(idx, expected_i) and torch.allclose(dist.double(), expected_d, rtol=1e-5)


def test_nearest_neighbours_reject_bad_input():
    data = torch.zeros(5, 3, 8, 8, dtype=torch.uint8)
    with pytest.raises(ValueError, match="larger than the dataset"):
        metrics.nearest_neighbours(data[:1], data, k=6)
    with pytest.raises(ValueError, match="one shape"):
        metrics.nearest_neighbours(torch.zeros(1, 3, 4, 4), data)


# --- modes ---------------------------------------------------------------------------------------


def test_mode_coverage_has_known_answers():
    even = metrics.mode_coverage(torch.arange(1000).repeat(3), 1000)
    assert even == {"modes": 1000, "kl": pytest.approx(0.0, abs=1e-12), "n": 3000, "n_modes": 1000}
    one = metrics.mode_coverage(torch.full((500,), 333), 1000)
    assert one["modes"] == 1 and one["kl"] == pytest.approx(math.log(1000), rel=1e-12)
    two = metrics.mode_coverage(torch.tensor([0, 7] * 50), 1000)
    assert two["modes"] == 2 and two["kl"] == pytest.approx(math.log(500), rel=1e-12)


def test_mode_coverage_of_uniform_samples_sits_at_its_finite_sample_floor():
    g = torch.Generator().manual_seed(0)
    kls = [metrics.mode_coverage(torch.randint(1000, (20_000,), generator=g), 1000)["kl"] for _ in range(5)]
    floor = 999 / (2 * 20_000)
    assert all(0.8 * floor < kl < 1.2 * floor for kl in kls)


def test_mode_coverage_rejects_modes_out_of_range_and_empty_input():
    with pytest.raises(ValueError, match=r"0\.\.9"):
        metrics.mode_coverage(torch.tensor([3, 10]), 10)
    with pytest.raises(ValueError, match="sample count of 0"):
        metrics.mode_coverage(torch.tensor([], dtype=torch.int64), 10)


def _joint(channel_probs):
    """Joint probabilities (N, K^C) of independent channels (N, C, K), first channel most significant."""
    joint = channel_probs[:, 0]
    for i in range(1, channel_probs.shape[1]):
        joint = (joint[:, :, None] * channel_probs[:, i, None, :]).flatten(1)
    return joint


def test_channel_predictions_read_each_channel_back_from_the_joint():
    g = torch.Generator().manual_seed(1)
    per_channel = torch.rand(64, 3, 10, generator=g).pow(4)
    per_channel /= per_channel.sum(2, keepdim=True)
    classes, confidence, modes = metrics.channel_predictions(_joint(per_channel), 3, 10)
    best, argbest = per_channel.max(2)
    assert torch.equal(classes, argbest) and torch.allclose(confidence.float(), best, atol=1e-6)
    assert torch.equal(modes, argbest[:, 0] * 100 + argbest[:, 1] * 10 + argbest[:, 2])
    with pytest.raises(ValueError, match=r"\(N, 1000\)"):
        metrics.channel_predictions(torch.ones(4, 100) / 100, 3, 10)


def test_mode_scores_count_a_sample_as_high_quality_only_when_every_channel_is_sure():
    sure, unsure = torch.full((10,), 0.01), torch.full((10,), 0.1)
    sure[4] = 0.91
    channels = torch.stack([torch.stack([sure, sure, sure]), torch.stack([sure, unsure, sure])])
    scores = metrics.mode_scores(_joint(channels), 3, 10, threshold=0.9)
    assert scores["high_quality"] == 0.5 and scores["threshold"] == 0.9 and scores["n_modes"] == 1000
    assert scores["modes"] == 2  # 444, and 404 (the unsure channel's argmax is its first class)


# --- FID and IS against independent computations on the same features ---------------------------------

class RandomFeatures(torch.nn.Module):
    """An Inception-like extractor without weights to download: uint8 (B, 3, 8, 8) -> (features (B, 24),
    logits (B, 10)) by fixed random maps. Its scores carry the FID/IS names, as Inception-v3's do."""

    name, score_names = "random-features", ("fid", "inception_score")

    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w1 = torch.nn.Parameter(torch.randn(192, 24, generator=g) / 8, requires_grad=False)
        self.w2 = torch.nn.Parameter(torch.randn(24, 10, generator=g), requires_grad=False)

    def forward(self, x):
        features = torch.tanh(to_float(x).flatten(1) @ self.w1) * 3 + 1
        return features, features @ self.w2


def sym_sqrt(a):
    """The symmetric PSD square root of a symmetric PSD matrix, by numpy's eigendecomposition."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def fid_by_numpy(f1, f2):
    """||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr (S1^1/2 S2 S1^1/2)^1/2 from features (N, D), in float64."""
    mu1, mu2, s1, s2 = f1.mean(0), f2.mean(0), np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    root1 = sym_sqrt(s1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(sym_sqrt(root1 @ s2 @ root1)))


def inception_score_by_numpy(logits, splits):
    """exp(E_x KL(p(y|x) || p(y))) over contiguous splits: (mean, population std), in float64."""
    z = logits - logits.max(1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    scores = []
    for part in np.split(p, splits):
        marginal = part.mean(0, keepdims=True)
        scores.append(np.exp(np.mean(np.sum(part * (np.log(part) - np.log(marginal)), axis=1))))
    return float(np.mean(scores)), float(np.std(scores))


@pytest.fixture(scope="module")
def feature_sets():
    """Reference and generated images (uint8, 3x8x8) of different laws, the extractor, and the features and
    logits it gives them (float64 numpy, from the same float32 outputs that the scores read)."""
    g = torch.Generator().manual_seed(7)
    reference = torch.randint(0, 256, (600, 3, 8, 8), generator=g, dtype=torch.uint8)
    generated = (torch.rand(400, 3, 8, 8, generator=g) ** 2 * 255).to(torch.uint8)  # darker on average
    extractor = RandomFeatures()
    with torch.no_grad():
        (f_ref, _), (f_gen, logits) = extractor(reference), extractor(generated)
    return reference, generated, extractor, f_ref.double().numpy(), f_gen.double().numpy(), logits.double().numpy()


def test_fid_and_is_of_score_match_numpy_on_the_same_features(feature_sets):
    reference, generated, extractor, f_ref, f_gen, logits = feature_sets
    ref = metrics.reference_stats(reference, extractor, batch_size=128)
    out = metrics.score(generated, ref, extractor, splits=10, batch_size=64)  # batches: moments accumulated
    assert out["n_samples"] == 400 and out["n_reference"] == 600
    fid = fid_by_numpy(f_gen, f_ref)
    assert fid > 1  # two different laws: a comparison of a number well away from 0
    assert out["fid"] == pytest.approx(fid, rel=1e-6)
    mean, std = inception_score_by_numpy(logits, 10)
    assert 1.5 < mean < 10
    assert out["inception_score"] == pytest.approx(mean, rel=1e-6)
    assert out["inception_score_std"] == pytest.approx(std, rel=1e-4, abs=1e-9)


def test_fid_matches_scipy_sqrtm_on_the_same_features(feature_sets):
    linalg = pytest.importorskip("scipy.linalg", reason="scipy (which scikit-learn brings) is not installed")
    _, _, _, f_ref, f_gen, _ = feature_sets
    mu1, mu2, s1, s2 = f_gen.mean(0), f_ref.mean(0), np.cov(f_gen, rowvar=False), np.cov(f_ref, rowvar=False)
    root = linalg.sqrtm(s1 @ s2)  # the general (non-symmetric) square root that the TTUR code uses
    expected = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(root).real)
    assert frechet_distance(*metrics.feature_stats(torch.tensor(f_gen)), *metrics.feature_stats(torch.tensor(f_ref))) \
        == pytest.approx(expected, rel=1e-6)


def torch_fidelity_metrics():
    """torch-fidelity's FID and ISC modules, or a skip saying why (any import failure: a torchvision built for
    another torch raises RuntimeError, not ImportError)."""
    try:
        from torch_fidelity import metric_fid, metric_isc
    except Exception as e:
        pytest.skip(f"torch-fidelity does not import here ({type(e).__name__}: {str(e)[:120]}); "
                    f"`make setup-inception` installs it")
    return metric_fid, metric_isc


def test_fid_and_is_match_torch_fidelity_on_the_same_features(feature_sets):
    metric_fid, metric_isc = torch_fidelity_metrics()
    reference, generated, extractor, f_ref, f_gen, logits = feature_sets
    stats = [metric_fid.fid_features_to_statistics(torch.tensor(f)) for f in (f_gen, f_ref)]
    theirs = metric_fid.fid_statistics_to_metric(*stats, verbose=False)[metric_fid.KEY_METRIC_FID]
    ours = metrics.score(generated, metrics.reference_stats(reference, extractor), extractor, splits=10)
    assert ours["fid"] == pytest.approx(theirs, rel=1e-6)
    isc = metric_isc.isc_features_to_metric(torch.tensor(logits), splits=10, shuffle=False)
    assert ours["inception_score"] == pytest.approx(isc[metric_isc.KEY_METRIC_ISC_MEAN], rel=1e-6)
    assert ours["inception_score_std"] == pytest.approx(isc[metric_isc.KEY_METRIC_ISC_STD], rel=1e-4, abs=1e-9)

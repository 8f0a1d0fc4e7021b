"""The metric pipeline: exact formulas, sanity checks that can fail, shipped features."""

import shutil

import numpy as np
import pytest
import torch
from scipy import linalg

from cgt import data, metrics
from cgt.metrics import evaluate
from cgt.metrics import features as featmod
from cgt.metrics.sanity import add_noise, gaussian_blur, shuffle_pixels


def _reference_fd(mu1, s1, mu2, s2):
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_frechet_distance_matches_scipy_and_the_diagonal_closed_form():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + np.eye(6), b @ b.T + np.eye(6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(
        _reference_fd(mu1, s1, mu2, s2), rel=1e-6)
    d1, d2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    closed = 1.0 + ((np.sqrt(d1) - np.sqrt(d2)) ** 2).sum()  # ‖μ₁−μ₂‖² = 1
    assert metrics.frechet_distance(np.zeros(3), np.diag(d1), np.array([1.0, 0, 0]),
                                    np.diag(d2)) == pytest.approx(closed, rel=1e-9)


@pytest.fixture(scope="module")
def fashion_test():
    return data.load("fashion_mnist", "test", tiny=True)


@pytest.fixture(scope="module")
def real_features(fashion_test):
    return metrics.extract_features(fashion_test.images)


def test_fid_separates_real_from_shuffled_and_noise(fashion_test, real_features):
    first, second = real_features[::2], real_features[1::2]
    real_vs_real = metrics.fid_from_features(first, second)
    shuffled = shuffle_pixels(fashion_test.images)
    noise = np.random.default_rng(0).integers(0, 256, fashion_test.images.shape, dtype=np.uint8)
    vs_shuffled = metrics.fid_from_features(first, metrics.extract_features(shuffled))
    vs_noise = metrics.fid_from_features(first, metrics.extract_features(noise))
    assert vs_shuffled > 5 * real_vs_real and vs_noise > 5 * real_vs_real


def test_fid_grows_monotonically_with_blur_and_noise(fashion_test, real_features):
    reference = real_features[::2]
    target = fashion_test.images[1::2]
    blurred = [metrics.fid_from_features(reference, metrics.extract_features(gaussian_blur(target, s)))
               for s in (0.5, 1.0, 1.5, 2.5)]
    assert all(a < b for a, b in zip(blurred, blurred[1:])), blurred
    noisy = [metrics.fid_from_features(reference, metrics.extract_features(add_noise(target, s)))
             for s in (10, 30, 60, 100)]
    assert all(a < b for a, b in zip(noisy, noisy[1:])), noisy


def _reference_kmmd(x, y, sigma):
    """The official evaluation's KMMD written out with loops (REFERENCE.md §1)."""
    def squared(a, b):
        return np.array([[((u - v) ** 2).sum() for v in b] for u in a])
    mxx, myy, mxy = squared(x, x), squared(y, y), squared(x, y)
    scale = mxx.mean()
    kxx, kyy, kxy = (np.exp(-m / (scale * 2 * sigma * sigma)) for m in (mxx, myy, mxy))
    return float(np.sqrt(kxx.mean() + kyy.mean() - 2 * kxy.mean()))


def test_kmmd_follows_the_official_definition():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 5)), rng.normal(size=(20, 5)) + 0.3
    for sigma in (1.0, 2.0):
        assert metrics.kmmd(x, y, sigma=sigma) == pytest.approx(_reference_kmmd(x, y, sigma),
                                                                rel=1e-9)
    # the distances are scaled by the real set's own, so a common rescaling changes nothing
    assert metrics.kmmd(7.0 * x, 7.0 * y) == pytest.approx(metrics.kmmd(x, y), rel=1e-9)


def test_kmmd_is_zero_for_identical_sets_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    assert metrics.kmmd(x, x) == pytest.approx(0.0, abs=1e-6)
    shifts = [metrics.kmmd(x, rng.normal(size=(200, 8)) + s) for s in (0.0, 0.5, 1.0, 2.0)]
    assert all(a < b for a, b in zip(shifts, shifts[1:])), shifts


def test_kid_is_seeded_and_near_zero_for_one_distribution(real_features):
    first, second = real_features[::2], real_features[1::2]
    kid = lambda a, b: metrics.kid_from_features(a, b)["kid"]  # noqa: E731
    assert kid(first, second) == kid(first, second)
    assert abs(kid(first, second)) < 0.5 * kid(first, second * 0.5)


def test_kid_equals_clean_fids_and_reports_its_subset_spread(real_features):
    from cleanfid import fid as clean_fid

    first, second = real_features[::2].astype(np.float64), real_features[1::2] * 0.7
    np.random.seed(3)
    reference = clean_fid.kernel_distance(first, second, 20, 50)
    ours = metrics.kid_from_features(first, second, seed=3, num_subsets=20, max_subset_size=50)
    # same subsets, same sums in another grouping: equal to float64 rounding
    assert ours["kid"] == pytest.approx(reference, rel=1e-9)
    spread = metrics.kid_subsets(first, second, seed=3, num_subsets=20, max_subset_size=50)
    assert ours["kid_std"] == pytest.approx(spread.std(ddof=1)) and ours["kid_std"] > 0


def test_classifier_score_bounds():
    uniform = np.full((100, 10), 0.1)
    assert metrics.classifier_score(uniform)[0] == pytest.approx(1.0)
    confident = np.eye(10)[np.arange(100) % 10]
    assert metrics.classifier_score(confident)[0] == pytest.approx(10.0, rel=1e-6)


def test_conditional_accuracy_on_real_images_and_shuffled_labels(fashion_test):
    predicted = metrics.predict(fashion_test.images, "fashion_mnist")
    real = metrics.conditional_accuracy(predicted, fashion_test.labels)
    shuffled = metrics.conditional_accuracy(predicted, np.random.default_rng(0).permutation(
        fashion_test.labels))
    assert real["mean"] > 0.85 and shuffled["mean"] < 0.25
    assert set(real["per_class"]) == set(range(10))


def test_shipped_weights_match_their_manifest_and_tampering_is_refused(tmp_path):
    info = metrics.feature_network_info()
    assert info["test_accuracy"]["fashion_mnist"] > 0.85 and info["sha256"]
    assert metrics.feature_network_id() == "cgt-featnet-" + info["sha256"][:12]
    copy = tmp_path / "feature_net.pt"
    shutil.copy(featmod.weights_file(), copy)
    shutil.copy(featmod.weights_file().with_suffix(".json"), tmp_path / "feature_net.json")
    featmod.load_feature_network(copy)
    copy.write_bytes(copy.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(RuntimeError, match="expected .*train-features"):
        featmod.load_feature_network(copy)


def test_real_statistics_are_cached_and_keyed_by_the_network(tmp_path, monkeypatch):
    monkeypatch.setenv("CGT_DATA_CACHE", str(tmp_path))
    monkeypatch.setattr(metrics.scores.data, "load", lambda *a, **k: data.ImageSet(
        np.random.default_rng(0).integers(0, 256, (50, 32, 32, 1), dtype=np.uint8),
        np.zeros(50, np.int64), ["x"], "fake"))
    first = metrics.real_statistics("fashion_mnist", "test", tiny=True)
    files = list((tmp_path / "stats").glob("*.npz"))
    assert len(files) == 1 and metrics.feature_network_id() in files[0].name
    real_extractor = metrics.scores.extract_features

    def refuse(*args, **kwargs):
        raise AssertionError("features recomputed although they are cached")

    monkeypatch.setattr(metrics.scores, "extract_features", refuse)
    second = metrics.real_statistics("fashion_mnist", "test", tiny=True)
    assert np.array_equal(first["mu"], second["mu"]) and np.array_equal(first["sigma"], second["sigma"])
    # another feature network must not reuse these statistics
    monkeypatch.setattr(metrics.scores, "extract_features", real_extractor)
    monkeypatch.setattr(metrics.scores, "feature_network_id", lambda: "cgt-featnet-000000000000")
    metrics.real_statistics("fashion_mnist", "test", tiny=True)
    assert len(list((tmp_path / "stats").glob("*.npz"))) == 2


def test_wrong_image_input_is_refused():
    with pytest.raises(ValueError, match="uint8 N×H×W×C"):
        metrics.extract_features(np.zeros((2, 32, 32, 1), np.float32))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        metrics.extract_features(torch.zeros(2, 4, 32, 32))
    with pytest.raises(KeyError, match="valid: fashion_mnist"):
        metrics.predict(np.zeros((1, 32, 32, 1), np.uint8), "cifar")


def test_inception_is_used_only_from_disk(monkeypatch, tmp_path):
    monkeypatch.setattr(metrics.scores.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setenv("CGT_HOME", str(tmp_path))
    assert metrics.inception_path() is None
    with pytest.raises(FileNotFoundError, match="inception-2015-12-05.pt.*nothing is downloaded"):
        metrics.scores.inception_features(np.zeros((1, 32, 32, 3), np.uint8))


def test_score_generator_reports_every_metric_with_its_feature_space():
    from cgt.checkpoints import load_source

    generator, _ = load_source("fashion8")
    result = metrics.score_generator(generator, "fashion_mnist", "test", n=80, tiny=True)
    assert result["features"] == metrics.feature_network_id()
    assert {"fid", "kid", "kmmd", "conditional_accuracy", "classifier_score"} <= set(result)
    assert result["n_real"] == 160 and result["n_fake"] == 80
    assert result["conditional_accuracy"] > 0.5  # the source model draws its classes


def test_class_scores_from_features_with_the_head_cut_to_the_scored_classes(fashion_test,
                                                                             real_features):
    from types import SimpleNamespace

    # the heads are linear on the features: probabilities without a second pass of the images
    assert np.allclose(featmod.head_probabilities(real_features[:50], "fashion_mnist"),
                       metrics.class_probabilities(fashion_test.images[:50], "fashion_mnist"),
                       atol=1e-5)
    names = fashion_test.classes[3:6]  # real images of three classes, "generated" for them
    keep = np.isin(fashion_test.labels, [3, 4, 5])
    generator = SimpleNamespace(cfg=SimpleNamespace(num_classes=3))
    labels = fashion_test.labels[keep] - 3
    cut = evaluate.class_scores(generator, real_features[keep], labels, "fashion_mnist", "test",
                                True, names, "fashion_mnist", restrict_head=True, score_splits=1)
    whole = evaluate.class_scores(generator, real_features[keep], labels, "fashion_mnist", "test",
                                  True, names, "fashion_mnist")
    assert cut["chance_accuracy"] == pytest.approx(1 / 3) and whole["chance_accuracy"] == 0.1
    assert cut["conditional_accuracy"] >= whole["conditional_accuracy"] > 0.7
    assert 2.0 < cut["classifier_score"] <= 3.0  # at most the number of scored classes
    # without splits the score is the formula over every sample at once
    probabilities = np.eye(3)[np.arange(30) % 3]
    assert metrics.classifier_score(probabilities, splits=1)[0] == pytest.approx(3.0, rel=1e-6)
    assert metrics.classifier_score(probabilities[:4], splits=4)[0] == pytest.approx(1.0)


def test_collapse_is_flagged_and_real_images_are_far_from_it():
    constant = np.full((64, 32, 32, 1), 117, dtype=np.uint8)
    assert metrics.spread(constant) == {"sample_std": 0.0, "collapsed": True}
    jitter = (constant + np.random.default_rng(0).integers(0, 2, constant.shape)).astype(np.uint8)
    assert metrics.spread(jitter)["collapsed"]  # ±1 level of noise is still one image
    for name in ("fashion_mnist", "lfw"):
        real = data.to_uint8(torch.from_numpy(data.load(name, tiny=True).images[:200]))
        assert metrics.spread(real)["sample_std"] > 5 * metrics.COLLAPSE_STD, name

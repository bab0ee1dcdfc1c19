"""Feature extractors: the Inception-v3's error paths (its weights cannot be fetched here) and the classifier
trained on the data set, whose features the scores compare."""
import math
import sys

import pytest
import torch

from ebmlib import features, images
from ebmlib.features import InceptionUnavailable

# --- the Inception-v3 extractor ------------------------------------------------------------------------

def test_inception_without_weights_says_what_to_download_and_where(monkeypatch):
    monkeypatch.delenv(features.INCEPTION_WEIGHTS_ENV, raising=False)
    with pytest.raises(InceptionUnavailable) as info:
        features.load_inception()
    assert features.INCEPTION_WEIGHTS_URL in str(info.value) and features.INCEPTION_WEIGHTS_ENV in str(info.value)


def test_inception_with_a_missing_weights_file_names_it(monkeypatch, tmp_path):
    missing = tmp_path / "weights-inception.pth"
    monkeypatch.setenv(features.INCEPTION_WEIGHTS_ENV, str(missing))
    with pytest.raises(InceptionUnavailable) as info:
        features.load_inception()
    assert str(missing) in str(info.value) and features.INCEPTION_WEIGHTS_URL in str(info.value)
    with pytest.raises(InceptionUnavailable, match="other.pth"):
        features.load_inception(tmp_path / "other.pth")  # the argument wins over the variable


def test_inception_without_the_library_says_what_to_install(monkeypatch, tmp_path):
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"placeholder")
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "torch_fidelity.feature_extractor_inceptionv3", None)
    with pytest.raises(InceptionUnavailable, match=r"torch-fidelity.*\.\[inception\]"):
        features.load_inception(weights)


@pytest.mark.parametrize("error", [
    "ModuleNotFoundError(\"No module named 'torchvision'\")",
    "RuntimeError('operator torchvision::nms does not exist')",  # PyPI's torchvision beside a CPU torch
    "OSError('libcudart.so.13: cannot open shared object file: No such file or directory')",
    "AttributeError(\"module 'torch' has no attribute 'library'\\nsecond line\")",
])
def test_inception_turns_any_import_failure_into_one_line_saying_what_to_install(monkeypatch, tmp_path, error):
    weights = tmp_path / "weights.pth"
    weights.write_bytes(b"placeholder")
    package = tmp_path / "site" / "torch_fidelity"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(f"raise {error}\n")  # a torch-fidelity whose import breaks
    (package / "feature_extractor_inceptionv3.py").write_text("FeatureExtractorInceptionV3 = None\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for name in ("torch_fidelity", "torch_fidelity.feature_extractor_inceptionv3"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(InceptionUnavailable) as info:
        features.load_inception(weights)
    message = str(info.value)
    kind = error.split("(")[0]
    assert "\n" not in message and f"({kind}: " in message
    assert "make setup-inception" in message and f"torch=={torch.__version__}" in message
    requirement, index = features.torchvision_requirement()
    assert requirement in message and (index is None or index in message)


@pytest.mark.parametrize("version, requirement, index", [
    ("2.13.0+cpu", "torchvision==0.28.*", "https://download.pytorch.org/whl/cpu"),
    ("2.14.1", "torchvision==0.29.*", None),  # PyPI's torch pairs with PyPI's torchvision
    ("2.9.1+cu126", "torchvision==0.24.*", "https://download.pytorch.org/whl/cu126"),
    ("2.2.0+rocm5.7", "torchvision==0.17.*", "https://download.pytorch.org/whl/rocm5.7"),
])
def test_torchvision_pairs_with_the_torch_release_and_comes_from_its_index(version, requirement, index):
    assert features.torchvision_requirement(version) == (requirement, index)
    args = features.torchvision_pip_args(version)
    assert args[:2] == [requirement, f"torch=={version}"]  # torch pinned: pip keeps it or stops, never swaps it
    assert args[2:] == (["--index-url", index] if index else [])
    assert features.torchvision_pip_args(version, index="default") == [requirement, f"torch=={version}"]
    assert features.torchvision_pip_args(version, index="https://mirror/whl")[2:] == ["--index-url",
                                                                                     "https://mirror/whl"]


@pytest.mark.parametrize("version", ["1.13.1", "2.13.0a0+git5e2a5b1", "2.13.0+weird"])
def test_torchvision_pairing_refuses_unknown_torch_builds(version):
    with pytest.raises(ValueError, match="from source"):
        features.torchvision_requirement(version)


# --- the CIFAR classifier as an extractor ---------------------------------------------------------

def test_classifier_learns_the_fake_classes(fake, classifier):
    _, (xt, yt) = fake
    torch.manual_seed(0)
    untrained = features.ImageClassifier(width=8)
    assert features.classifier_accuracy(untrained, xt, yt) < 0.3  # chance is 0.1
    assert features.classifier_accuracy(classifier, xt, yt) > 0.8
    assert not classifier.training
    assert classifier.history["loss"][-1] < classifier.history["loss"][0]


def test_classifier_training_is_deterministic_for_a_seed(fake):
    (x, y), _ = fake
    runs = [features.train_classifier(x, y, steps=3, batch_size=16, width=4, device="cpu", seed=s, progress=False)
            for s in (1, 1, 2)]
    a, b, c = ([p.detach() for p in m.parameters()] for m in runs)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not all(torch.equal(u, v) for u, v in zip(a, c))


def test_classifier_features_use_eval_mode_and_restore_the_mode(fake, classifier):
    _, (xt, _) = fake
    classifier.train()
    try:
        small = features.classifier_features(classifier, xt[:20], batch_size=3)
        assert classifier.training, "the caller's mode is restored"
    finally:
        classifier.eval()
    whole = features.classifier_features(classifier, xt[:20], batch_size=500)
    assert small.shape == (20, classifier.feature_dim)
    assert torch.allclose(small, whole, atol=1e-5)  # BatchNorm running stats: no batch dependence
    probs = features.classifier_probs(classifier, xt[:20])
    assert probs.shape == (20, 10) and torch.allclose(probs.sum(1), torch.ones(20), atol=1e-5)


def test_classifier_extractor_reads_uint8_images(fake, classifier):
    _, (xt, _) = fake
    extractor = features.ClassifierExtractor(classifier)
    with torch.no_grad():
        feats, logits = extractor(xt[:5])
    assert feats.shape == (5, classifier.feature_dim) and logits.shape == (5, 10)
    assert torch.allclose(feats, features.classifier_features(classifier, xt[:5]), atol=1e-5)
    assert extractor.score_names == ("fcd", "classifier_score")  # never FID or IS
    assert set(features.EXTRACTORS) == {"classifier", "inception"}
    with pytest.raises(ValueError, match=r"\(B, 3, 32, 32\)"):
        classifier.features(torch.zeros(2, 3, 16, 16))


# --- the digit classifier: the instrument that counts the modes of stacked digits --------------------


def test_the_digit_classifier_reads_held_out_digits_at_97_percent_or_better(digit_extractor):
    x_test, y_test = images.load_images("digits", train=False)
    accuracy = features.classifier_accuracy(digit_extractor.model, x_test, y_test)
    assert accuracy >= 0.97, f"the digit classifier reads {accuracy:.3f} of the 450 held-out digits"


def test_the_channel_extractor_gives_joint_log_probabilities_in_mode_order(digit_extractor):
    x, modes = images.load_images("stacked-digits", train=False)
    features_, joint = digit_extractor(x[:200])
    assert features_.shape == (200, 3 * digit_extractor.model.feature_dim) and joint.shape == (200, 1000)
    assert torch.allclose(joint.exp().sum(1), torch.ones(200), atol=1e-4)
    single = features.classifier_probs(digit_extractor.model, x[:200].reshape(600, 1, 8, 8)).argmax(1).view(200, 3)
    assert torch.equal(joint.argmax(1), single[:, 0] * 100 + single[:, 1] * 10 + single[:, 2])
    assert (joint.argmax(1) == modes[:200]).float().mean() > 0.95  # ~0.998^3 of the modes read right
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        digit_extractor(x[:2, :1])


def test_real_stacked_digits_cover_every_mode_evenly_and_one_digit_covers_one(digit_extractor):
    from ebmlib import metrics

    x_train, _ = images.load_images("stacked-digits")
    reference = metrics.reference_stats(x_train[:5000], digit_extractor)
    x_test, _ = images.load_images("stacked-digits", train=False)
    real = metrics.score(x_test, reference, digit_extractor)
    # 10,000 draws of 1,000 equal modes: ~1,000 modes, KL at its floor 999 / 20,000 ~ 0.05 plus misreadings
    assert real["modes"] >= 990 and real["kl"] < 0.08 and real["high_quality"] > 0.9 and real["n_modes"] == 1000
    threes = images.load_images("digits", train=False)[0][images.load_images("digits", train=False)[1] == 3]
    one_digit = threes[:1].expand(500, 3, 8, 8)  # a generator that only ever makes one image: 3, 3, 3
    collapsed = metrics.score(one_digit, reference, digit_extractor)
    assert collapsed["modes"] == 1 and collapsed["kl"] == pytest.approx(math.log(1000), rel=1e-9)
    assert collapsed["fcd"] > 10 * real["fcd"], (collapsed["fcd"], real["fcd"])

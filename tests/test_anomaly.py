"""aekit.AnomalyDetector: scikit-learn's outlier-detector contract, the threshold, planted
outliers ranked first, per-feature contributions, save/load, the CLI, and errors."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.utils.estimator_checks import parametrize_with_checks

import aekit
from aekit.apps.anomaly import AnomalyDetector

FAST = {"hidden_layer_sizes": (8,), "epochs": 3, "random_state": 0}


# Every check for outlier detectors passes: none is skipped or expected to fail.
@parametrize_with_checks([
    AnomalyDetector(**FAST),
    AnomalyDetector(contamination=0.1, n_estimators=2, **FAST),
])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def manifold_with_outliers(n=400, n_out=10, d=20, seed=0):
    """Rows on a 2-D curved manifold in d dimensions (small noise), then n_out planted rows
    far off it whose norms are typical of the manifold's, so that the norm cannot find them."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(-1, 1, size=(n + n_out, 2))
    A, B = rng.normal(size=(2, d)), rng.normal(size=(3, d))
    X = t @ A + np.column_stack([t[:, 0] ** 2, t[:, 1] ** 2, t[:, 0] * t[:, 1]]) @ B
    X += 0.02 * rng.normal(size=X.shape)
    out = rng.normal(size=(n_out, d))
    norms = np.linalg.norm(X[:n], axis=1)
    X[n:] = out / np.linalg.norm(out, axis=1, keepdims=True) * rng.choice(norms, n_out)[:, None]
    truth = np.r_[np.zeros(n, bool), np.ones(n_out, bool)]
    perm = rng.permutation(n + n_out)
    return X[perm].astype(np.float32), truth[perm]


@pytest.fixture(scope="module")
def planted():
    X, truth = manifold_with_outliers()
    det = AnomalyDetector(contamination=0.1, random_state=0).fit(X)
    return X, truth, det


def test_planted_outliers_are_ranked_first(planted):
    X, truth, det = planted
    order = np.argsort(det.score_samples(X))  # most anomalous first
    assert set(order[:truth.sum()]) == set(np.nonzero(truth)[0])
    # the planted rows have typical norms: ranking by the norm does not find them
    assert roc_auc_score(truth, np.linalg.norm(X, axis=1)) < 0.8


def test_contamination_flags_that_fraction_of_training_rows(planted):
    X, _, det = planted
    pred = det.predict(X)
    assert set(np.unique(pred)) == {-1, 1}
    assert np.sum(pred == -1) == round(0.1 * len(X))
    np.testing.assert_allclose(det.decision_function(X), det.score_samples(X) - det.offset_)
    for c in (0.02, 0.25):  # c·n rows, or the next integer when c·n is not one (IsolationForest's rule)
        flagged = np.sum(clone(det).set_params(contamination=c).fit_predict(X) == -1)
        assert flagged in (np.floor(c * len(X)), np.ceil(c * len(X)))


def test_contributions_sum_to_the_score_and_point_at_the_feature(planted):
    X, _, det = planted
    C = det.feature_contributions(X)
    assert C.shape == X.shape and (C >= 0).all()
    np.testing.assert_allclose(C.sum(1), -det.score_samples(X), rtol=1e-10)
    # a normal row with one feature pushed far off: that feature carries most of the error
    row = X[np.argmax(det.score_samples(X))].copy()
    row[7] += 20 * det.scale_[7]
    c = det.feature_contributions(row[None])[0]
    assert np.argmax(c) == 7 and c[7] > 0.5 * c.sum()


def test_robust_scaling_makes_scores_independent_of_feature_units(planted):
    from scipy.stats import spearmanr

    X, truth, det = planted
    units = np.logspace(-3, 3, X.shape[1]).astype(np.float32)
    other = AnomalyDetector(contamination=0.1, random_state=0).fit(X * units)
    scores = other.score_samples(X * units)
    np.testing.assert_allclose(other.scale_, det.scale_ * units, rtol=1e-4)
    assert roc_auc_score(truth, -scores) > 0.99
    assert spearmanr(scores, det.score_samples(X))[0] > 0.9  # float32 training differs, ranks agree


def test_save_load_gives_identical_scores(planted, tmp_path):
    X, _, det = planted
    again = aekit.load(aekit.save(det, tmp_path / "det.safetensors"))
    assert type(again) is AnomalyDetector and again.get_params() == det.get_params()
    assert again.score_samples(X).tobytes() == det.score_samples(X).tobytes()
    assert again.feature_contributions(X[:5]).tobytes() == det.feature_contributions(X[:5]).tobytes()
    assert again.offset_ == det.offset_


def test_images_get_a_convolutional_model_and_pixel_contributions():
    rng = np.random.default_rng(0)
    imgs = np.zeros((80, 8, 8), np.float32)
    imgs[:, 2:6, 3:5] = 1.0  # a bar
    imgs += 0.05 * rng.random(imgs.shape).astype(np.float32)
    det = AnomalyDetector(epochs=2, random_state=0).fit(imgs)
    assert det.architecture_ == "conv" and det.image_shape_ == (1, 8, 8)
    assert det.feature_contributions(imgs[:3]).shape == (3, 64)
    flat = AnomalyDetector(epochs=2, random_state=0, image_shape=(8, 8)).fit(imgs.reshape(80, -1))
    assert flat.architecture_ == "conv"
    assert AnomalyDetector(epochs=2, architecture="mlp", random_state=0).fit(imgs).architecture_ == "mlp"


@pytest.mark.parametrize("params,words", [
    ({"contamination": 0.7}, "contamination"), ({"contamination": 0.0}, "contamination"),
    ({"contamination": "most"}, "contamination"), ({"architecture": "rnn"}, "architecture"),
    ({"scaling": "log"}, "scaling"), ({"n_estimators": 0}, "n_estimators"),
    ({"architecture": "conv", "conv_channels": None}, "conv_channels"),
])
def test_bad_settings_are_named(params, words):
    X = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
    with pytest.raises(ValueError, match=words):
        AnomalyDetector(**params, **FAST).fit(X)


def test_bad_input_is_named(planted):
    X, _, det = planted
    with pytest.raises(ValueError, match="features"):
        det.predict(X[:, :5])
    with pytest.raises(ValueError, match="NaN"):
        det.score_samples(np.full((2, X.shape[1]), np.nan))
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        AnomalyDetector().predict(X)


def _csv(path, X, labels=None):
    cols = [f"f{j}" for j in range(X.shape[1])]
    data = X if labels is None else np.column_stack([X, labels])
    np.savetxt(path, data, delimiter=",", header=",".join(cols + ([] if labels is None else ["label"])), comments="")


@pytest.mark.parametrize("with_labels", [False, True])
def test_cli_round_trip(tmp_path, with_labels, capsys):
    from aekit.cli import main

    X, truth = manifold_with_outliers(n=200, n_out=10, d=12)
    _csv(tmp_path / "t.csv", X, truth.astype(int) if with_labels else None)
    out = tmp_path / "run"
    argv = ["anomalies", "--data", str(tmp_path / "t.csv"), "--out", str(out), "--contamination", "0.05", "--quiet"]
    assert main(argv + (["--labels", "label"] if with_labels else [])) == 0
    assert sorted(p.name for p in out.iterdir()) == ["flagged.csv", "metrics.json", "model.safetensors",
                                                     "report.html", "scores.csv"]
    table = np.loadtxt(out / "scores.csv", delimiter=",", skiprows=1)
    assert table.shape == (210, 5 if with_labels else 4)
    assert table[:, 3].sum() == 11  # 0.05 · 210 = 10.5, rounded up
    flagged = np.loadtxt(out / "flagged.csv", delimiter=",", skiprows=1)
    assert flagged.shape == (11, 13)
    np.testing.assert_allclose(flagged[:, 1:], X[flagged[:, 0].astype(int)], rtol=1e-6)
    assert (np.diff(table[flagged[:, 0].astype(int), 1]) >= 0).all()  # most anomalous first
    det = aekit.load(out / "model.safetensors")
    np.testing.assert_allclose(det.score_samples(X), table[:, 1], rtol=1e-6)
    page = (out / "report.html").read_text()
    assert "Anomaly scores" in page and "Top anomalies" in page
    import json

    metrics = json.loads((out / "metrics.json").read_text())
    if with_labels:
        assert "ROC and precision" in page and metrics["anomaly_roc_auc"] > 0.95
    else:
        assert "ROC and precision" not in page and "anomaly_roc_auc" not in metrics


def test_cli_errors_are_one_line(tmp_path, capsys):
    from aekit.cli import main

    X, _ = manifold_with_outliers(n=50, n_out=2, d=5)
    _csv(tmp_path / "t.csv", X)
    base = ["anomalies", "--data", str(tmp_path / "t.csv"), "--out", str(tmp_path / "r"), "--quiet"]
    assert main(base + ["--contamination", "0.9"]) == 2
    assert "contamination" in capsys.readouterr().err
    assert main(base + ["--labels", "nothing"]) == 2
    assert "nothing" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_auto_scaling_is_global_for_pixels_and_per_feature_for_tables(planted):
    X, _, det = planted
    assert det.scaling_ == "robust" and det.scale_.shape == (X.shape[1],)
    pixels = np.random.default_rng(0).random((60, 16)).astype(np.float32)
    unit = AnomalyDetector(**FAST).fit(pixels)
    assert unit.scaling_ == "global" and unit.scale_.shape == (1,)


def test_training_is_sized_from_the_data():
    det = AnomalyDetector()
    det.architecture_, det.n_components_, det.image_shape_ = "mlp", 4, None
    p = det._checked_params()
    small, large = det._member_params(p, 300, 0), det._member_params(p, 100_000, 0)
    assert small["batch_size"] == 15 and small["epochs"] == 30  # ≥ 20 steps per epoch on few rows
    assert large["batch_size"] == 128 and large["epochs"] == 8  # ~5000 steps in all on many rows
    assert AnomalyDetector().fit(np.random.default_rng(0).random((40, 3))).n_components_ == 1  # d // 4, at least 1


def test_cli_on_a_named_image_set_shows_images(tmp_path):
    from aekit.cli import main

    out = tmp_path / "digits"
    assert main(["anomalies", "--data", "digits", "--out", str(out), "--contamination", "0.02", "--quiet"]) == 0
    table = np.loadtxt(out / "scores.csv", delimiter=",", skiprows=1)
    assert table.shape == (1797, 4) and table[:, 3].sum() in (35, 36)  # 2 % of 1797 = 35.9
    page = (out / "report.html").read_text()
    assert "bright = large" in page  # the top anomalies drawn as images with their per-pixel error

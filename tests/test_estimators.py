"""The estimators: scikit-learn compatibility, save/load, input validation, and what each
variant must do (a linear AE finds PCA's subspace, a VAE samples and interpolates)."""

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA as SkPCA
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import aekit
from aekit.estimators import LinearAutoencoder

FAST = dict(epochs=3, random_state=0)


@pytest.fixture(scope="module")
def digits():
    return (load_digits().data / 16).astype(np.float32), load_digits().target


# Every check passes: none is skipped or expected to fail.
@parametrize_with_checks([
    aekit.Autoencoder(hidden_layer_sizes=(8,), **FAST),
    aekit.DenoisingAutoencoder(hidden_layer_sizes=(8,), **FAST),
    aekit.SparseAutoencoder(hidden_layer_sizes=(8,), **FAST),
    aekit.ContractiveAutoencoder(hidden_layer_sizes=(8,), **FAST),
    aekit.VAE(hidden_layer_sizes=(8,), **FAST),
    aekit.ConvAutoencoder(conv_channels=(4,), epochs=2, random_state=0),
    LinearAutoencoder(**FAST),
])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_presets_are_autoencoders_with_other_defaults():
    for cls, key, value in [(aekit.DenoisingAutoencoder, "noise", "masking"),
                            (aekit.SparseAutoencoder, "sparsity_weight", 1.0),
                            (aekit.ContractiveAutoencoder, "contractive", 0.1),
                            (LinearAutoencoder, "activation", "linear")]:
        est = cls()
        assert isinstance(est, aekit.Autoencoder)
        assert est.get_params()[key] == value
        assert set(est.get_params()) == set(aekit.Autoencoder().get_params())
    # and they combine: a denoising sparse contractive autoencoder is one estimator
    combo = aekit.Autoencoder(noise="gaussian", noise_level=0.2, code_activation="sigmoid",
                              sparsity_weight=0.5, l1=0.01, contractive=0.1, weight_decay=1e-4, **FAST)
    X = np.random.default_rng(0).random((64, 10)).astype(np.float32)
    combo.fit(X)
    assert {"recon", "kl_sparsity", "l1", "contractive", "weight_decay"} <= set(combo.history_[-1])


def test_pipeline_and_grid_search(digits):
    X, y = digits
    pipe = make_pipeline(MinMaxScaler(), aekit.Autoencoder(n_components=4, hidden_layer_sizes=(16,), epochs=2, random_state=0))
    assert pipe.fit_transform(X[:300]).shape == (300, 4)
    grid = GridSearchCV(aekit.Autoencoder(hidden_layer_sizes=(16,), epochs=20, batch_size=32, random_state=0),
                        {"n_components": [2, 8]}, cv=2).fit(X[:400])
    assert grid.best_params_["n_components"] == 8  # a wider code reconstructs better
    assert np.isfinite(grid.best_score_)


ESTIMATORS = [
    aekit.Autoencoder(n_components=5, hidden_layer_sizes=(16,), **FAST),
    aekit.Autoencoder(n_components=5, hidden_layer_sizes=(16, 8), tied=True, center=True, **FAST),
    aekit.ContractiveAutoencoder(n_components=5, hidden_layer_sizes=(16,), **FAST),
    aekit.VAE(n_components=2, hidden_layer_sizes=(16,), **FAST),
    aekit.VAE(n_components=2, conv_channels=(4, 8), **FAST),
    aekit.ConvAutoencoder(n_components=5, conv_channels=(4, 8), **FAST),
    LinearAutoencoder(n_components=5, **FAST),
]


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_save_load_gives_bit_identical_outputs(est, digits, tmp_path):
    X, _ = digits
    est.fit(X[:200])
    path = aekit.save(est, tmp_path / "m.safetensors")
    again = aekit.load(path)
    assert type(again) is type(est) and again.get_params() == est.get_params()
    assert again.history_ == est.history_
    for method in ("transform", "reconstruct", "score_samples"):
        a, b = getattr(est, method)(X[200:260]), getattr(again, method)(X[200:260])
        assert a.tobytes() == b.tobytes(), method
    # saving never pickles: the file is safetensors with a JSON header
    head = path.read_bytes()[:8]
    assert int.from_bytes(head, "little") < path.stat().st_size


def test_save_is_atomic_and_load_rejects_damaged_files(digits, tmp_path):
    X, _ = digits
    est = aekit.Autoencoder(n_components=3, hidden_layer_sizes=(8,), **FAST).fit(X[:100])
    path = tmp_path / "model.safetensors"
    aekit.save(est, path)
    good = path.read_bytes()

    class Boom(Exception):
        pass

    def failing_state():
        raise Boom

    est._get_state = failing_state
    with pytest.raises(Boom):
        aekit.save(est, path)
    assert path.read_bytes() == good  # the earlier save is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]  # no temp file left
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="model"):
        aekit.load(path)
    with pytest.raises(ValueError, match="not found"):
        aekit.load(tmp_path / "nothing.safetensors")
    with pytest.raises(ValueError, match="aekit estimator"):
        aekit.save(object(), tmp_path / "x.safetensors")


BAD_INPUTS = [
    (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN"),
    (np.array([[1.0, np.inf], [0.0, 1.0]]), "inf"),
    (np.zeros(5), "rank"),
    (np.zeros((2, 2, 2)), "rank"),
    (np.array([["a", "b"], ["c", "d"]]), "strings"),
    (np.zeros((0, 4)), "0 sample"),
    (np.zeros((3, 0)), "0 feature"),
]


@pytest.mark.parametrize("X,words", BAD_INPUTS)
def test_bad_input_raises_value_error_naming_the_problem(X, words):
    with pytest.raises(ValueError, match=words):
        aekit.Autoencoder(**FAST).fit(X)


def test_wrong_feature_count_and_bad_params(digits):
    X, _ = digits
    est = aekit.Autoencoder(n_components=3, hidden_layer_sizes=(8,), **FAST).fit(X[:100])
    with pytest.raises(ValueError, match="64 features as input"):
        est.transform(X[:5, :10])
    with pytest.raises(ValueError, match="codes have 4 columns"):
        est.inverse_transform(np.zeros((2, 4)))
    for params, words in [({"n_components": 0}, "n_components"), ({"noise": "pink"}, "noise"),
                          ({"activation": "swish"}, "activation"), ({"loss": "l2"}, "loss"),
                          ({"learning_rate": -1}, "learning_rate"), ({"early_stopping": True}, "validation_fraction"),
                          ({"sparsity_weight": 1.0}, "sigmoid"), ({"hidden_layer_sizes": (8, -1)}, "hidden_layer_sizes")]:
        with pytest.raises(ValueError, match=words):
            aekit.Autoencoder(**{**FAST, **params}).fit(X[:50])
    with pytest.raises(ValueError, match=r"needs data in \[0, 1\]"):
        aekit.Autoencoder(loss="bce", **FAST).fit(X[:50] * 3)


def test_loss_follows_the_data(digits):
    X, _ = digits
    assert aekit.Autoencoder(**FAST).fit(X[:50]).loss_ == "bce"
    assert aekit.Autoencoder(**FAST).fit(X[:50] - 0.5).loss_ == "mse"


def test_linear_autoencoder_spans_pca_subspace(digits):
    """Baldi & Hornik: under squared error a linear AE's decoder spans PCA's top-k subspace."""
    X, _ = digits
    k = 10
    pca_basis = SkPCA(k).fit(X).components_.T
    for tied in (False, True):
        est = LinearAutoencoder(n_components=k, tied=tied, random_state=0).fit(X)
        V = (est.model_.code.linear.weight.T if tied else est.model_.decoder.linears[0].weight).detach().numpy()
        angle = np.degrees(subspace_angles(V, pca_basis).max())
        assert angle < 5.0, (tied, angle)


def test_vae_sample_interpolate_and_elbo(digits):
    X, _ = digits
    vae = aekit.VAE(n_components=2, hidden_layer_sizes=(64,), epochs=15, random_state=0).fit(X)
    assert {"recon", "kl"} <= set(vae.history_[-1])
    assert vae.history_[-1]["loss"] == pytest.approx(vae.history_[-1]["recon"] + vae.history_[-1]["kl"], rel=1e-5)
    s = vae.sample(7, random_state=1)
    assert s.shape == (7, 64) and (s >= 0).all() and (s <= 1).all()
    np.testing.assert_array_equal(s, vae.sample(7, random_state=1))
    path = vae.interpolate(X[0], X[1], steps=6)
    assert path.shape == (6, 64)
    np.testing.assert_allclose(path[0], vae.reconstruct(X[:1])[0], atol=1e-6)
    np.testing.assert_allclose(path[-1], vae.reconstruct(X[1:2])[0], atol=1e-6)
    recon, kl = vae.elbo_terms(X[:100])
    assert (kl >= 0).all() and (recon > 0).all()
    np.testing.assert_allclose(vae.score_samples(X[:100]), -(recon + kl), rtol=1e-6)
    # the ELBO is a per-example sum: about the training loss, not a per-pixel mean
    assert abs(-vae.score(X) - vae.history_[-1]["loss"]) < 0.2 * vae.history_[-1]["loss"]


def test_same_random_state_same_model(digits):
    X, _ = digits
    a = aekit.Autoencoder(n_components=4, hidden_layer_sizes=(16,), **FAST).fit(X[:300])
    b = aekit.Autoencoder(n_components=4, hidden_layer_sizes=(16,), **FAST).fit(X[:300])
    assert a.transform(X[:10]).tobytes() == b.transform(X[:10]).tobytes()
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    aekit.Autoencoder(n_components=4, hidden_layer_sizes=(16,), **FAST).fit(X[:50])
    assert torch.equal(torch.rand(1), before)  # fitting leaves the user's global RNG alone


def test_image_arrays_for_convolutional_models(digits):
    X, _ = digits
    imgs = X.reshape(-1, 8, 8)
    est = aekit.ConvAutoencoder(n_components=4, conv_channels=(4,), **FAST).fit(imgs[:200])
    assert est.image_shape_ == (1, 8, 8)
    assert est.transform(imgs[:5]).shape == (5, 4)
    assert est.transform(X[:5]).shape == (5, 4)  # flattened rows work too
    assert est.reconstruct(imgs[:5]).shape == (5, 64)
    with pytest.raises(ValueError, match="image_shape"):
        aekit.ConvAutoencoder(image_shape=(3, 8, 8), **FAST).fit(X[:20])

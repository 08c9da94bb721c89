"""The report: every figure is a real PNG, no pyplot state leaks, the HTML is self-contained,
and the metrics are the numbers they claim to be."""

import base64
import io
import re

import matplotlib
import numpy as np
import pytest
from PIL import Image

import aekit
from aekit.data import Dataset
from aekit.report import build_report, evaluate, figures, squared_error_per_example
from aekit.report.html import Section, data_uri, format_value, render_html


def png_image(png: bytes, min_w: int = 100, min_h: int = 60) -> np.ndarray:
    assert isinstance(png, bytes) and png.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(png)) as im:
        im.load()
        assert im.format == "PNG" and im.size[0] >= min_w and im.size[1] >= min_h, im.size
        arr = np.asarray(im.convert("RGB"))
    assert arr.std() > 1, "blank figure"
    return arr


@pytest.fixture
def images(rng):
    return rng.random((12, 64)).astype(np.float32)


def make_dataset(rng, *, image_shape=(1, 8, 8), n=120, labels=True):
    d = int(np.prod(image_shape)) if image_shape else 12
    X = rng.random((n, d)).astype(np.float32)
    y = rng.integers(0, 3, n) if labels else None
    k = int(0.75 * n)
    return Dataset("toy", X[:k], X[k:], None if y is None else y[:k], None if y is None else y[k:], image_shape,
                   (0.0, 1.0), ["a", "b", "c"] if labels else None, "test")


# -- figures ------------------------------------------------------------------------------
def test_figures_are_pngs_and_leave_pyplot_alone(rng, images):
    import matplotlib.pyplot as plt

    backend = matplotlib.get_backend()
    open_before = plt.get_fignums()
    history = [{"epoch": i + 1, "loss": 10.0 / (i + 1), "recon": 9.0 / (i + 1), "kl": 1.0 + 0.1 * i,
                "val_loss": 11.0 / (i + 1), "lr": 1e-3, "time": 0.1} for i in range(12)]
    pngs = [
        figures.reconstructions_figure(images, images * 0.9, (1, 8, 8), n=10),
        figures.reconstructions_figure(images, {"k=5": images, "k=20": images}, (1, 8, 8), n=6),
        figures.reconstructions_figure(images, images * 0.9, None),
        figures.code_map_figure(rng.normal(size=(200, 2)), rng.integers(0, 10, 200), [str(i) for i in range(10)]),
        figures.code_map_figure(rng.normal(size=(200, 7)), None),
        figures.code_map_figure(rng.normal(size=(200, 1)), rng.integers(0, 3, 200)),
        figures.code_map_figure(rng.normal(size=(300, 5)), rng.integers(0, 40, 300)),  # many classes: colour bar
        figures.loss_curves_figure(history),
        figures.loss_curves_figure([{k: v for k, v in h.items() if k not in ("kl", "val_loss")} for h in history]),
        figures.image_grid_figure(images, (1, 8, 8), "samples"),
        figures.image_grid_figure(rng.normal(size=(5, 3 * 4 * 4)), (3, 4, 4), "colour components", normalize=True),
        figures.image_grid_figure(images[:3], None, "atoms of non-image data", labels=["a", "b", "c"]),
        figures.spectrum_figure(np.sort(rng.random(30))[::-1] / 20, np.sort(rng.random(30))[::-1]),
        figures.interpolation_figure(rng.random((3, 10, 64)), (1, 8, 8)),
        figures.interpolation_figure(rng.random((10, 12)), None),
        figures.vector_figure(rng.random(64), (1, 8, 8), "noise"),
        figures.vector_figure(rng.random(12), None, "noise"),
        figures.histogram_figure(rng.integers(0, 9, 100), "counts", bins="integer"),
    ]
    for png in pngs:
        png_image(png)
    assert plt.get_fignums() == open_before
    assert matplotlib.get_backend() == backend


def test_reconstruction_figure_grows_with_rows(images):
    one = png_image(figures.reconstructions_figure(images, images, (1, 8, 8), n=8))
    three = png_image(figures.reconstructions_figure(images, {"a": images, "b": images}, (1, 8, 8), n=8))
    assert three.shape[0] > one.shape[0]


def test_project_2d_is_the_principal_plane(rng):
    H = rng.normal(size=(500, 6)) * np.array([5.0, 3.0, 1.0, 0.5, 0.2, 0.1])
    P, what = figures.project_2d(H)
    assert "principal components" in what and "6-D" in what
    from sklearn.decomposition import PCA

    ref = PCA(2).fit_transform(H)
    for j in range(2):
        assert abs(np.corrcoef(P[:, j], ref[:, j])[0, 1]) > 0.9999
    P2, what2 = figures.project_2d(H[:, :2])
    np.testing.assert_allclose(P2, H[:, :2], rtol=1e-6)
    assert "principal" not in what2


def test_loss_curves_need_a_history():
    with pytest.raises(ValueError):
        figures.loss_curves_figure([])


# -- HTML -------------------------------------------------------------------------------------
def test_render_html_is_self_contained_and_escaped(images):
    png = figures.image_grid_figure(images, (1, 8, 8), "x")
    page = render_html("Report <b>", [Section("grid", "A grid", "caption & more", png)],
                       subtitle="sub", settings={"name": "<script>alert(1)</script>", "sizes": (256, 128)},
                       metrics={"error": 0.123456789, "n": 3, "missing": None})
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "<script" not in page and "&lt;script&gt;" in page and "Report &lt;b&gt;" in page
    assert "caption &amp; more" in page
    assert "0.123457" in page and "256, 128" in page and "—" in page
    (b64,) = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert base64.b64decode(b64) == png
    assert not re.search(r'(src|href)="(?!data:|#)', page)
    with pytest.raises(ValueError):
        data_uri(b"GIF89a...")


def test_format_value():
    assert format_value(True) == "yes" and format_value(None) == "—"
    assert format_value(3) == "3" and format_value(1234567.891) == "1.23457e+06"
    assert format_value(float("nan")) == "nan" and format_value([1, 2.5]) == "1, 2.5" and format_value(()) == "()"


# -- evaluate / build_report ------------------------------------------------------------------
def test_squared_error_per_example():
    X = np.array([[0.0, 0.0], [1.0, 1.0]])
    X_hat = np.array([[1.0, 0.0], [1.0, 3.0]])
    assert squared_error_per_example(X, X_hat) == pytest.approx((1.0 + 4.0) / 2)


def test_evaluate_an_autoencoder(rng):
    ds = make_dataset(rng)
    est = aekit.Autoencoder(4, hidden_layer_sizes=(16,), epochs=3, random_state=0).fit(ds.X_train)
    m = evaluate(est, ds)
    R = est.reconstruct(ds.X_test)
    assert m["test_squared_error_per_example"] == pytest.approx(np.mean(np.sum((ds.X_test - R) ** 2, axis=1)), rel=1e-5)
    base = np.mean(np.sum((ds.X_test - ds.X_train.mean(0)) ** 2, axis=1))
    assert m["baseline_test_squared_error_per_example"] == pytest.approx(base, rel=1e-6)
    assert m["test_score_samples_mean"] == pytest.approx(np.mean(est.score_samples(ds.X_test)), rel=1e-5)


def test_evaluate_without_a_test_set(rng):
    ds = make_dataset(rng)
    ds = Dataset("toy", ds.X_train, ds.X_train[:0], None, None, (1, 8, 8), (0.0, 1.0), None, "test")
    est = aekit.Autoencoder(4, hidden_layer_sizes=(), epochs=2, random_state=0).fit(ds.X_train)
    m = evaluate(est, ds)
    assert m["test_squared_error_per_example"] is None and m["train_squared_error_per_example"] > 0
    page = build_report(est, ds, m)
    assert "training set" in page


@pytest.mark.parametrize("image_shape", [(1, 8, 8), None])
def test_build_report_neural_and_pca(rng, tmp_path, image_shape):
    from aekit.linear import PCA

    ds = make_dataset(rng, image_shape=image_shape)
    for est, sections in [
        (aekit.VAE(2, hidden_layer_sizes=(16,), epochs=2, random_state=0).fit(ds.X_train),
         ["reconstructions", "code-map", "loss-curves", "samples", "interpolation"]),
        (PCA(8).fit(ds.X_train), ["mean", "components", "spectrum", "reconstructions", "code-map"]),
    ]:
        out = tmp_path / f"{type(est).__name__}.html"
        page = build_report(est, ds, out_path=out, settings={"seed": 0})
        assert out.read_text(encoding="utf-8") == page
        ids = re.findall(r'<section id="([^"]+)">', page)
        for sid in sections:
            assert sid in ids, (type(est).__name__, sid)
        for b64 in re.findall(r'src="data:image/png;base64,([^"]+)"', page):
            png_image(base64.b64decode(b64), min_w=50, min_h=30)
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []

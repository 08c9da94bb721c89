"""Restoration: the image corruptions (blocks, center-block, watermark, grayscale) and aekit.restore.

Each corruption is checked against what it claims (mask ratios, pixels changed only inside
the watermark's box, luma on every channel); each restoration claim about training compares
a model trained with the corruption against the same model trained without it.
"""

import numpy as np
import pytest
import torch
from conftest import requires_mnist

import aekit
from aekit import cli
from aekit.apps import restore
from aekit.parts.corruption import (
    LUMA_WEIGHTS,
    CenterBlock,
    Grayscale,
    RandomBlocks,
    Watermark,
    make_corruption,
)

pytest.importorskip("skimage")


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


# -- the corruptions ----------------------------------------------------------------------
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 20, 13)])
@pytest.mark.parametrize("p", [0.1, 0.25, 0.5])
def test_random_blocks_remove_the_asked_fraction_in_every_channel(shape, p):
    c, h, w = shape
    corr = RandomBlocks(p, shape, value_range=(-1.0, 2.0))
    x = torch.rand(64, c * h * w)
    xt, known = corr.damage(x, gen(1))
    s = corr.block
    img_known = known.reshape(64, c, h, w)
    assert torch.equal(img_known, img_known[:, :1].expand_as(img_known))  # a pixel is missing in all channels
    missing = (~img_known[:, 0]).flatten(1).float().mean(1)
    assert torch.all(missing >= p) and torch.all(missing < p + s * s / (h * w))
    assert torch.all(xt[~known] == -1.0) and torch.equal(xt[known], x[known])
    # random places: two images rarely share their mask
    assert not torch.equal(known[0], known[1])


def test_center_block_is_centred_with_area_p():
    corr = CenterBlock(0.25, (1, 28, 28))
    x = torch.rand(3, 784) + 0.5
    xt, known = corr.damage(x)
    hole = ~known.reshape(3, 28, 28)
    assert hole.float().mean() == 0.25
    assert hole[:, 7:21, 7:21].all() and hole.sum() == 3 * 14 * 14
    assert torch.all(xt[~known] == 0.0)


def test_watermark_changes_pixels_only_inside_its_box():
    shape = (3, 32, 32)
    corr = Watermark(0.0, shape, value_range=(0.0, 1.0))
    x = torch.rand(40, 3 * 32 * 32) * 0.4  # darker than any watermark level (≥ 0.5)
    xt, known = corr.damage(x, gen(3))
    changed = (xt != x).reshape(40, 3, 32, 32).any(1)
    assert changed.any(dim=(1, 2)).sum() >= 36  # nearly every image carries a visible mark
    for i, (t, left, b, r) in enumerate(corr.last_boxes):
        inside = torch.zeros(32, 32, dtype=torch.bool)
        inside[t:b, left:r] = True
        assert not (changed[i] & ~inside).any()
    # 'known' is exactly the untouched pixels, and the marks vary in place and size
    assert torch.equal(~known.reshape(40, 3, 32, 32)[:, 0], changed)
    assert len({box for box in corr.last_boxes}) > 30
    assert len({(b - t) for t, _, b, _ in corr.last_boxes}) > 3
    # repeatable with a seeded generator
    assert torch.equal(corr.damage(x, gen(3))[0], xt)


def test_grayscale_puts_bt601_luma_on_every_channel():
    corr = Grayscale((3, 8, 8))
    x = torch.rand(5, 3 * 64)
    xt, known = corr.damage(x)
    img, out = x.reshape(5, 3, 8, 8), xt.reshape(5, 3, 8, 8)
    luma = 0.299 * img[:, 0] + 0.587 * img[:, 1] + 0.114 * img[:, 2]
    for ch in range(3):
        torch.testing.assert_close(out[:, ch], luma)
    assert known is None and LUMA_WEIGHTS == (0.299, 0.587, 0.114)
    with pytest.raises(ValueError, match="3 channels"):
        Grayscale((1, 8, 8))


@pytest.mark.parametrize("name", ["blocks", "center-block", "watermark", "grayscale", "salt-pepper"])
def test_image_corruptions_are_training_only_and_declared(name):
    corr = make_corruption(name, 0.25, (0.0, 1.0), (3, 16, 16))
    x = torch.rand(4, 3 * 256)
    assert torch.equal(corr.eval()(x), x)
    assert not torch.equal(corr.train()(x), x)
    est = aekit.ConvAutoencoder(noise=name, noise_level=0.25, conv_channels=(4,), n_components=4, epochs=1,
                                random_state=0).fit(np.random.default_rng(0).random((16, 3, 16, 16), dtype=np.float32))
    assert type(est.model_.corruption) is type(corr)


def test_image_corruption_errors_are_named():
    with pytest.raises(ValueError, match="image_shape"):
        make_corruption("blocks", 0.25)
    with pytest.raises(ValueError, match="noise must be one of"):
        make_corruption("smudge", 0.1)
    with pytest.raises(ValueError, match="probability"):
        make_corruption("blocks", 1.5, image_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="noise"):
        aekit.Autoencoder(noise="smudge").fit(np.random.rand(8, 16))
    with pytest.raises(ValueError, match="3 channels"):  # grey rows cannot lose their colour
        aekit.Autoencoder(noise="grayscale", epochs=1).fit(np.random.rand(8, 16))


# -- trained models (MNIST subsets; MLPs so that the file stays fast) ------------------------
MLP = {"hidden_layer_sizes": (128,), "n_components": 32, "epochs": 10, "batch_size": 64, "learning_rate": 2e-3,
       "random_state": 0, "validation_fraction": 0.0}


@pytest.fixture(scope="module")
def mnist():
    ds = aekit.load_dataset("mnist")
    return ds.X_train[:2000], ds.X_test[:200]


@pytest.fixture(scope="module")
def models(mnist):
    X, _ = mnist
    out = {}
    for name, noise in [("plain", None), ("gaussian", "gaussian"), ("blocks", "blocks"), ("watermark", "watermark")]:
        level = {"gaussian": 0.4, "blocks": 0.25, "watermark": 0.0}.get(noise, 0.1)
        out[name] = aekit.Autoencoder(noise=noise, noise_level=level, **MLP).fit(X)
    return out


def psnr(ref, img, mask=None):
    """Mean PSNR per image, or with a mask the PSNR of all masked pixels together."""
    q = restore.image_quality(ref, np.clip(img, 0, 1), image_shape=(1, 28, 28), data_range=1.0, mask=mask)
    return q["psnr_pooled"] if mask is not None else float(np.mean(q["psnr"]))


@requires_mnist
def test_inpaint_keeps_known_pixels_and_converges(models, mnist):
    _, T = mnist
    corr = make_corruption("blocks", 0.25, image_shape=(1, 28, 28))
    damaged, known = corr.damage(torch.from_numpy(T), gen(5))
    imgs = damaged.numpy().astype(np.float64).reshape(-1, 28, 28)
    imgs += 1e-9 * np.random.default_rng(0).random(imgs.shape)  # values float32 cannot hold: copied, not recast
    mask = ~known.numpy().reshape(-1, 28, 28)
    # the iteration contracts slowly near some fixed points (measured: 219 steps for the slowest of
    # the 200 images on an Intel Xeon, under 200 on an AMD EPYC), so the cap leaves headroom
    out, n_iter = restore.inpaint(models["blocks"], imgs, mask, tol=1e-4, max_iter=1000, return_n_iter=True)
    assert out.shape == imgs.shape and out.dtype == np.float64
    assert np.array_equal(out[~mask], imgs[~mask])  # bit for bit
    assert np.all(n_iter <= 1000)  # every image converged (1001 marks one that did not)
    # a fixed point: one more step moves no unknown pixel by more than the tolerance
    step = models["blocks"].reconstruct(out.reshape(len(out), -1)).reshape(out.shape)
    assert np.max(np.abs(step - out)[mask]) <= 1e-4 * 1.0 + 1e-6
    # the plain autoencoder's iteration improves on its first pass (it fills the holes step by step)
    first = restore.inpaint(models["plain"], imgs, mask, max_iter=1)
    last = restore.inpaint(models["plain"], imgs, mask, max_iter=200)
    m2 = mask.reshape(len(T), -1)
    assert psnr(T, last.reshape(len(T), -1), m2) > psnr(T, first.reshape(len(T), -1), m2) + 0.3


@requires_mnist
def test_inpainting_model_beats_the_input_and_the_model_trained_without_blocks(models, mnist):
    _, T = mnist
    damaged, known = make_corruption("blocks", 0.25, image_shape=(1, 28, 28)).damage(torch.from_numpy(T), gen(6))
    damaged, miss = damaged.numpy(), ~known.numpy()
    # the blocks model's own estimate (one pass) against the plain model at its best (iterated)
    trained = psnr(T, restore.inpaint(models["blocks"], damaged, miss, max_iter=1), miss)
    untrained = psnr(T, restore.inpaint(models["plain"], damaged, miss), miss)
    assert trained > psnr(T, damaged, miss) + 3.0
    assert trained > untrained + 0.5


@requires_mnist
def test_denoising_model_beats_the_input_and_the_plain_model(models, mnist):
    _, T = mnist
    noisy = T + 0.4 * np.random.default_rng(0).standard_normal(T.shape).astype(np.float32)
    dae, ae = psnr(T, restore.denoise(models["gaussian"], noisy)), psnr(T, restore.denoise(models["plain"], noisy))
    assert dae > psnr(T, noisy) + 5.0 and dae > ae + 0.5


@requires_mnist
def test_watermark_removal_beats_the_input_and_the_plain_model(models, mnist):
    _, T = mnist
    marked, known = make_corruption("watermark", 0.0, image_shape=(1, 28, 28)).damage(torch.from_numpy(T), gen(7))
    marked = marked.numpy()
    mark = ~known.numpy()
    # on the marked pixels (the whole image also pays for the bottleneck's blur, see BENCHMARKS.md)
    wm = psnr(T, restore.remove_watermark(models["watermark"], marked), mark)
    assert wm > psnr(T, marked, mark) + 3.0
    assert wm > psnr(T, restore.remove_watermark(models["plain"], marked), mark) + 1.0
    # given the mark, only its pixels change
    out = restore.remove_watermark(models["watermark"], marked, mask=~known.numpy())
    assert np.array_equal(out[known.numpy()], marked[known.numpy()])


@pytest.fixture(scope="module")
def colour_images():
    """Colour is predictable from the shape: a bright disc is red, a bright square blue, on grey."""
    rng = np.random.default_rng(0)
    n, s = 600, 16
    yy, xx = np.mgrid[:s, :s]
    X = np.full((n, s, s, 3), 0.3, dtype=np.float32)
    for i in range(n):
        cy, cx, rad = rng.integers(5, 11), rng.integers(5, 11), rng.integers(3, 5)
        shape = (yy - cy) ** 2 + (xx - cx) ** 2 <= rad ** 2 if i % 2 else (abs(yy - cy) <= rad - 1) & (abs(xx - cx) <= rad - 1)
        X[i][shape] = (0.9, 0.2, 0.2) if i % 2 else (0.2, 0.3, 0.95)
    return X


def test_colorize_beats_the_grey_image_and_the_model_trained_without_grayscale(colour_images):
    X = colour_images
    kw = {"conv_channels": (8, 16), "n_components": 16, "epochs": 15, "batch_size": 32, "learning_rate": 3e-3,
          "random_state": 0, "validation_fraction": 0.0}
    chw = X[:500].transpose(0, 3, 1, 2)  # ConvAutoencoder.fit reads 4-D arrays as (N, C, H, W)
    col = aekit.ConvAutoencoder(noise="grayscale", **kw).fit(chw)
    plain = aekit.ConvAutoencoder(**kw).fit(chw)
    T = X[500:]
    grey = (T * np.asarray(LUMA_WEIGHTS, dtype=np.float32)).sum(-1)  # (N, H, W) luma
    out = restore.colorize(col, grey)
    assert out.shape == T.shape
    lo, hi = col.value_range_  # the luma is kept wherever no channel was clipped to the training range
    inside = ((out > lo) & (out < hi)).all(-1)
    assert inside.mean() > 0.9
    np.testing.assert_allclose((out * LUMA_WEIGHTS).sum(-1)[inside], grey[inside], atol=1e-5)

    def q(img):
        return float(np.mean(restore.image_quality(T, img, data_range=1.0)["psnr"]))

    assert q(out) > q(np.repeat(grey[..., None], 3, -1)) + 1.0
    assert q(out) > q(restore.colorize(plain, grey)) + 1.0
    with pytest.raises(ValueError, match="colour images"):
        restore.colorize(aekit.ConvAutoencoder(conv_channels=(4,), n_components=2, epochs=1).fit(X[:20, ..., 0]),
                         grey)


# -- layouts, blend, errors ---------------------------------------------------------------
@pytest.fixture(scope="module")
def small_colour(colour_images):
    return aekit.ConvAutoencoder(conv_channels=(4,), n_components=8, epochs=1, random_state=0).fit(
        colour_images[:64].transpose(0, 3, 1, 2))


def test_layouts_come_back_as_given(small_colour, colour_images):
    hwc = colour_images[:5]
    chw = np.ascontiguousarray(hwc.transpose(0, 3, 1, 2))
    flat = chw.reshape(5, -1)
    a, b, c = (restore.denoise(small_colour, A) for A in (hwc, chw, flat))
    assert a.shape == hwc.shape and b.shape == chw.shape and c.shape == flat.shape
    np.testing.assert_allclose(a.transpose(0, 3, 1, 2).reshape(5, -1), c, atol=1e-6)
    np.testing.assert_allclose(b.reshape(5, -1), c, atol=1e-6)
    # a spatial mask (N, H, W) stands for every channel of a colour image
    mask = np.zeros(hwc.shape[:3], dtype=bool)
    mask[:, 4:8, 4:8] = True
    out = restore.inpaint(small_colour, hwc, mask)
    assert np.array_equal(out[~mask], hwc[~mask]) and not np.array_equal(out[mask], hwc[mask])


def test_blend_decodes_the_line_between_the_codes(small_colour, colour_images):
    a, b = colour_images[0], colour_images[1]
    strip = restore.blend(small_colour, a, b, steps=5)
    assert strip.shape == (5, *a.shape)
    ends = restore.denoise(small_colour, np.stack([a, b]))
    np.testing.assert_allclose(strip[0], ends[0], atol=1e-5)
    np.testing.assert_allclose(strip[-1], ends[1], atol=1e-5)
    rows = restore.model_image_shape(small_colour)
    H = small_colour.transform(np.stack([a, b]).transpose(0, 3, 1, 2).reshape(2, -1))
    mid = small_colour.inverse_transform(0.5 * (H[:1] + H[1:])).reshape(1, *rows).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(strip[2], mid[0], atol=1e-5)
    # any autoencoder: the VAE's interpolate is the shared one
    assert aekit.VAE.interpolate is aekit.Autoencoder.interpolate


def test_errors_name_the_bad_input(small_colour, colour_images):
    with pytest.raises(ValueError, match=r"images has shape \(5, 16, 16\)"):
        restore.denoise(small_colour, colour_images[:5, ..., 0])
    with pytest.raises(ValueError, match="mask has shape"):
        restore.inpaint(small_colour, colour_images[:5], np.zeros((5, 8, 8), bool))
    with pytest.raises(ValueError, match="mask must be boolean"):
        restore.inpaint(small_colour, colour_images[:5], np.full(colour_images[:5].shape, 0.5))
    with pytest.raises(ValueError, match="max_iter"):
        restore.inpaint(small_colour, colour_images[:5], np.zeros(colour_images[:5].shape, bool), max_iter=0)
    with pytest.raises(ValueError, match="same shape"):
        restore.blend(small_colour, colour_images[0], colour_images[0, :8])
    with pytest.raises(ValueError, match="NaN"):
        restore.denoise(small_colour, np.full((1, 16, 16, 3), np.nan, np.float32))
    with pytest.raises(TypeError, match="fitted aekit autoencoder"):
        restore.denoise(object(), colour_images[:1])


# -- CLI and report -----------------------------------------------------------------------
def main(argv):
    return cli.main([str(a) for a in argv])


def test_cli_restore_round_trips_npy_png_and_folders(small_colour, colour_images, tmp_path, capsys):
    from PIL import Image

    aekit.save(small_colour, tmp_path / "model")
    X = colour_images[:3]
    np.save(tmp_path / "in.npy", X)
    assert main(["restore", "--model", tmp_path / "model", "--input", tmp_path / "in.npy",
                     "--output", tmp_path / "out.npy"]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), restore.denoise(small_colour, X), atol=1e-6)

    mask = np.zeros((3, 16, 16), bool)
    mask[:, :6, :6] = True
    np.save(tmp_path / "mask.npy", mask)
    assert main(["restore", "--model", tmp_path / "model", "--input", tmp_path / "in.npy", "--mask",
                     tmp_path / "mask.npy", "--output", tmp_path / "inp.npy"]) == 0
    inp = np.load(tmp_path / "inp.npy")
    assert np.array_equal(inp[~mask], X[~mask]) and np.allclose(inp, restore.inpaint(small_colour, X, mask))

    (tmp_path / "pngs").mkdir()
    (tmp_path / "masks").mkdir()
    for i, img in enumerate(X):
        Image.fromarray((img * 255).round().astype(np.uint8)).save(tmp_path / "pngs" / f"{i}.png")
        Image.fromarray(mask[i].astype(np.uint8) * 255).save(tmp_path / "masks" / f"{i}.png")
    assert main(["restore", "--model", tmp_path / "model", "--input", tmp_path / "pngs" / "0.png",
                     "--output", tmp_path / "one.png"]) == 0
    read = np.asarray(Image.open(tmp_path / "pngs" / "0.png"), dtype=np.float32) / 255
    expect = (np.clip(restore.denoise(small_colour, read[None])[0], 0, 1) * 255).round()
    assert np.array_equal(np.asarray(Image.open(tmp_path / "one.png")), expect.astype(np.uint8))
    assert main(["restore", "--model", tmp_path / "model", "--input", tmp_path / "pngs", "--mask",
                     tmp_path / "masks", "--task", "inpaint", "--output", tmp_path / "outdir"]) == 0
    for i in range(3):
        a = np.asarray(Image.open(tmp_path / "outdir" / f"{i}.png"))
        b = np.asarray(Image.open(tmp_path / "pngs" / f"{i}.png"))
        assert np.array_equal(a[~mask[i]], b[~mask[i]])  # the known pixels come back as they were
    # errors: one line, status 2, naming the problem
    capsys.readouterr()
    assert main(["restore", "--model", tmp_path / "model", "--input", tmp_path / "in.npy", "--task", "inpaint",
                     "--output", tmp_path / "x.npy"]) == 2
    assert "needs --mask" in capsys.readouterr().err
    assert main(["restore", "--model", tmp_path / "model", "--input", tmp_path / "in.npy",
                     "--output", tmp_path / "x.png"]) == 2
    assert "written as .npy" in capsys.readouterr().err
    np.save(tmp_path / "bad.npy", X[..., 0])
    assert main(["restore", "--model", tmp_path / "model", "--input", tmp_path / "bad.npy",
                     "--output", tmp_path / "x.npy"]) == 2
    assert "images has shape (3, 16, 16)" in capsys.readouterr().err


@pytest.mark.parametrize("noise", ["blocks", "center-block", "watermark", "grayscale", "salt-pepper", "none"])
def test_fit_offers_every_noise(noise):
    args = cli.build_parser().parse_args(["fit", "--out", "x", "--noise", noise])
    assert args.noise == noise


def test_report_shows_restoration_triplets(tmp_path):
    assert main(["fit", "--data", "digits", "--model", "ae", "--noise", "blocks", "--noise-level", "0.25",
                     "--epochs", "2", "--out", tmp_path / "run", "--quiet"]) == 0
    html = (tmp_path / "run" / "report.html").read_text()
    assert "Restorations" in html and "restore.inpaint" in html and "dB restored" in html
    assert main(["fit", "--data", "digits", "--model", "ae", "--epochs", "2", "--out", tmp_path / "plain",
                     "--quiet"]) == 0
    assert "Restorations" not in (tmp_path / "plain" / "report.html").read_text()


def test_greedy_pretraining_damages_only_the_images():
    """Stages above the first reconstruct codes, which are not images: no blocks there."""
    from sklearn.datasets import load_digits

    X = (load_digits().data / 16.0).astype(np.float32)
    est = aekit.Autoencoder(noise="blocks", noise_level=0.25, hidden_layer_sizes=(32,), n_components=8, epochs=1,
                            pretrain="greedy", pretrain_epochs=1, random_state=0).fit(X)
    assert {r["stage"] for r in est.history_} == {"layer 1", "layer 2", "end to end"}
    assert isinstance(est.model_.corruption, RandomBlocks) and est.model_.corruption.image_shape == (1, 8, 8)

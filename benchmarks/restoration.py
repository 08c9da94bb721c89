"""Image restoration with denoising autoencoders against classical methods, PSNR/SSIM from skimage.metrics.

Every task is one ConvAutoencoder trained with the damage as its corruption C (aekit's
``noise`` setting), restored with :mod:`aekit.apps.restore`, and compared in the same run with
classical methods whose parameters are tuned on a validation split (rows of the training
set the autoencoder never saw):

* denoising (MNIST, Fashion-MNIST, CIFAR-10 subset; Gaussian σ = 0.1, 0.3, 0.5 and
  salt-and-pepper 20 %): skimage's non-local means, total variation (Chambolle) and wavelet
  (BayesShrink / VisuShrink) denoisers, a median filter, PCA projection;
* inpainting (centre block 25 %, random blocks 25 %): skimage's biharmonic inpainting and
  PCA projection inside the same iteration as the autoencoder (restore.inpaint); PSNR on
  the missing pixels;
* watermark removal: the watermarked input, and biharmonic inpainting given the true mask
  (an oracle the autoencoder does not get);
* colourisation (CIFAR-10 subset): the grey image and a mean-chroma baseline (the training
  set's mean R−Y, G−Y, B−Y per pixel added to Y).

Every method's output is clipped to [0, 1] before scoring. The scale (training images,
epochs, evaluation images) is in the result file. Run: ``nice -n 5 python benchmarks/restoration.py``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS, machine_info, write_result

os.environ.setdefault("AEKIT_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))

import aekit
from aekit.apps import restore
from aekit.parts.corruption import LUMA_WEIGHTS, make_corruption

NOISES = [("gaussian", 0.1), ("gaussian", 0.3), ("gaussian", 0.5), ("salt-and-pepper", 0.2)]
DATASETS = ("mnist", "fashion-mnist", "cifar10")


def images(rows, shape):
    """(n, H, W) or (n, H, W, C) for skimage, from flat C, H, W rows."""
    c, h, w = shape
    A = rows.reshape(-1, c, h, w).transpose(0, 2, 3, 1)
    return A[..., 0] if c == 1 else A


def rows_of(imgs, shape):
    c, h, w = shape
    A = imgs.reshape(-1, h, w, c)
    return np.ascontiguousarray(A.transpose(0, 3, 1, 2).reshape(A.shape[0], -1), dtype=np.float32)


def damage(rows, noise, level, shape, seed):
    corr = make_corruption(noise, level, (0.0, 1.0), shape)
    x, known = corr.damage(torch.from_numpy(rows), generator=torch.Generator().manual_seed(seed))
    return x.numpy(), None if known is None else known.numpy()


def quality(clean_rows, out_rows, shape, mask_rows=None):
    """Mean PSNR and SSIM per image; with a mask, the PSNR of all masked pixels together."""
    out = np.clip(out_rows, 0.0, 1.0)
    q = restore.image_quality(images(clean_rows, shape), images(out, shape), data_range=1.0,
                              mask=None if mask_rows is None else images(mask_rows, shape))
    if mask_rows is not None:
        return {"psnr": q["psnr_pooled"], "ssim": None}
    return {"psnr": float(np.mean(q["psnr"])), "ssim": float(np.mean(q["ssim"]))}


def per_image(fn, rows, shape, masks=None):
    """fn applied to each image (and its spatial mask, when given)."""
    imgs = images(rows, shape)
    if masks is None:
        return rows_of(np.stack([fn(im) for im in imgs]), shape)
    spatial = images(masks, shape)
    spatial = spatial[..., 0] if spatial.ndim == 4 else spatial
    return rows_of(np.stack([fn(im, m) for im, m in zip(imgs, spatial)]), shape)


# -- the classical methods: method(params, X rows, shape, colour) -> restored rows ----------
def nl_means(f, X, shape, sigma):
    from skimage.restoration import denoise_nl_means

    ch = -1 if shape[0] == 3 else None
    return per_image(lambda im: denoise_nl_means(im, h=f * sigma, sigma=sigma, patch_size=5, patch_distance=6,
                                                 fast_mode=True, channel_axis=ch), X, shape)


def total_variation(weight, X, shape, sigma):
    from skimage.restoration import denoise_tv_chambolle

    ch = -1 if shape[0] == 3 else None
    return per_image(lambda im: denoise_tv_chambolle(im, weight=weight, channel_axis=ch), X, shape)


def wavelet(g, X, shape, sigma):
    from skimage.restoration import denoise_wavelet

    colour = shape[0] == 3
    return per_image(lambda im: denoise_wavelet(im, sigma=g[1] * sigma, method=g[0], mode="soft", rescale_sigma=True,
                                                channel_axis=-1 if colour else None, convert2ycbcr=colour), X, shape)


def median(size, X, shape, sigma):
    from scipy.ndimage import median_filter

    footprint = (size, size, 1) if shape[0] == 3 else (size, size)
    return per_image(lambda im: median_filter(im, size=footprint, mode="reflect"), X, shape)


def biharmonic(X, M, shape):
    from skimage.restoration import inpaint_biharmonic

    return per_image(inpaint_biharmonic, X, shape, M)


def tuned(name, make_fn, grid, val_noisy, val_clean, test_noisy, test_clean, shape, val_mask=None, test_mask=None):
    """Pick the grid value with the best mean validation PSNR; score it on the test images."""
    t0 = time.perf_counter()
    scores = {}
    for g in grid:
        scores[str(g)] = quality(val_clean, make_fn(g)(val_noisy, val_mask), shape, val_mask)["psnr"]
    best = max(grid, key=lambda g: scores[str(g)])
    out = make_fn(best)(test_noisy, test_mask)
    res = quality(test_clean, out, shape, test_mask)
    res.update(chosen=str(best), validation_psnr=scores, seconds=round(time.perf_counter() - t0, 2))
    print(f"    {name:22s} psnr {res['psnr']:6.2f}  ssim {res['ssim'] if res['ssim'] is None else round(res['ssim'], 4)}"
          f"  ({best})", flush=True)
    return res, out


def fit_pca(train, k):
    return aekit.PCA(n_components=k).fit(train)


def train_dae(train, shape, noise, level, args, epochs):
    t0 = time.perf_counter()
    est = aekit.ConvAutoencoder(conv_channels=(32, 64), n_components=args.code, noise=noise, noise_level=level,
                                image_shape=shape, epochs=epochs, batch_size=64, learning_rate=2e-3,
                                lr_schedule="cosine", random_state=0).fit(train)
    return est, round(time.perf_counter() - t0, 1)


def split(name, args):
    ds = aekit.load_dataset(name)
    n_val = args.n_val
    n_train = min(args.n_train, ds.X_train.shape[0] - n_val)
    return (ds.X_train[:n_train], ds.X_train[-n_val:], ds.X_test[:args.n_test], ds.image_shape)


def denoising(args, out_examples):
    results = {}
    for name in args.datasets:
        train, val, test, shape = split(name, args)
        epochs = args.epochs_colour if shape[0] == 3 else args.epochs
        pcas = {k: fit_pca(train, k) for k in args.pca_ks}
        for noise, level in NOISES:
            key = f"{name} {noise} {level}"
            print(key, flush=True)
            v_noisy, _ = damage(val, noise, level, shape, 1)
            t_noisy, _ = damage(test, noise, level, shape, 2)
            sigma = level if noise == "gaussian" else float(np.std(t_noisy - test))
            r = {"input": quality(test, t_noisy, shape)}
            est, secs = train_dae(train, shape, noise, level, args, epochs)
            t0 = time.perf_counter()
            ae_out = restore.denoise(est, t_noisy)
            r["autoencoder"] = {**quality(test, ae_out, shape), "train_seconds": secs,
                                "restore_seconds": round(time.perf_counter() - t0, 2)}
            print(f"    {'autoencoder':22s} psnr {r['autoencoder']['psnr']:6.2f}  ssim {r['autoencoder']['ssim']:.4f}"
                  f"  (input {r['input']['psnr']:.2f}; trained {secs}s)", flush=True)
            common = (v_noisy, val, t_noisy, test, shape)
            for label, method, grid in (("nl_means", nl_means, args.nlm_grid), ("total_variation", total_variation,
                                        args.tv_grid), ("wavelet", wavelet, args.wavelet_grid),
                                        ("median", median, [2, 3, 5])):
                r[label], _ = tuned(label, lambda g, method=method, sigma=sigma, shape=shape: lambda X, m: method(g, X, shape, sigma),
                                    grid, *common)
            r["pca_projection"], _ = tuned("pca_projection", lambda k, pcas=pcas: lambda X, m: pcas[k].reconstruct(X),
                                           list(args.pca_ks), *common)
            others = [m for m in r if m not in ("input", "autoencoder")]
            r["autoencoder_best_psnr"] = all(r["autoencoder"]["psnr"] > r[m]["psnr"] for m in others)
            r["autoencoder_best_ssim"] = all(r["autoencoder"]["ssim"] > r[m]["ssim"] for m in others)
            results[key] = r
            if level == 0.3 or noise == "salt-and-pepper":
                out_examples[key] = (shape, [test[:8], t_noisy[:8], ae_out[:8]])
    return results


def inpainting(args, out_examples):
    results = {}
    for name in args.inpaint_datasets:
        train, val, test, shape = split(name, args)
        pcas = {k: fit_pca(train, k) for k in args.pca_ks}
        for noise in ("center-block", "blocks"):
            key = f"{name} {noise} 0.25"
            print(key, flush=True)
            v_dam, v_known = damage(val, noise, 0.25, shape, 1)
            t_dam, t_known = damage(test, noise, 0.25, shape, 2)
            v_miss, t_miss = ~v_known, ~t_known
            r = {"missing_fraction": float(t_miss.mean()), "input": quality(test, t_dam, shape, t_miss)}
            est, secs = train_dae(train, shape, noise, 0.25, args, args.epochs)
            for steps in (1, 100):  # one pass, and iterated to convergence (tol 1e-4)
                t0 = time.perf_counter()
                out, n_iter = restore.inpaint(est, t_dam, t_miss, max_iter=steps, return_n_iter=True)
                r[f"autoencoder_max_iter_{steps}"] = {
                    **quality(test, out, shape, t_miss), "whole_image": quality(test, out, shape),
                    "restore_seconds": round(time.perf_counter() - t0, 2), "mean_iterations": float(n_iter.mean()),
                    "not_converged": int((n_iter > steps).sum()) if steps > 1 else None}
            r["autoencoder"], ae_out = tuned("autoencoder", lambda it, est=est: lambda X, m: restore.inpaint(est, X, m, max_iter=it),
                                             [1, 100], v_dam, val, t_dam, test, shape, v_miss, t_miss)
            r["autoencoder"]["train_seconds"] = secs
            t0 = time.perf_counter()
            bi = biharmonic(t_dam, t_miss, shape)
            r["biharmonic"] = {**quality(test, bi, shape, t_miss), "seconds": round(time.perf_counter() - t0, 2),
                               "whole_image": quality(test, bi, shape)}
            print(f"    {'biharmonic':22s} psnr {r['biharmonic']['psnr']:6.2f}", flush=True)
            r["pca_projection"], _ = tuned("pca_projection", lambda k, pcas=pcas: lambda X, m: restore.inpaint(pcas[k], X, m),
                                           list(args.pca_ks), v_dam, val, t_dam, test, shape, v_miss, t_miss)
            r["margin_over_biharmonic_db"] = r["autoencoder"]["psnr"] - r["biharmonic"]["psnr"]
            r["goal_2db_reached"] = bool(r["margin_over_biharmonic_db"] >= 2.0)
            results[key] = r
            out_examples[key] = (shape, [test[:8], t_dam[:8], bi[:8], ae_out[:8]])
    return results


def watermark(args, out_examples):
    name = args.watermark_dataset
    train, _, test, shape = split(name, args)
    print(f"{name} watermark", flush=True)
    t_wm, t_known = damage(test, "watermark", 0.0, shape, 2)
    t_mark = ~t_known
    r = {"marked_fraction": float(t_mark.mean()), "input": quality(test, t_wm, shape),
         "input_on_mark": quality(test, t_wm, shape, t_mark)}
    est, secs = train_dae(train, shape, "watermark", 0.0, args, args.epochs)
    out = restore.remove_watermark(est, t_wm)
    r["autoencoder"] = {**quality(test, out, shape), "on_mark": quality(test, out, shape, t_mark), "train_seconds": secs}
    bi = biharmonic(t_wm, t_mark, shape)
    r["biharmonic_oracle_mask"] = {**quality(test, bi, shape), "on_mark": quality(test, bi, shape, t_mark)}
    everywhere = np.ones_like(t_mark)  # PSNR over all pixels of all images: finite when one image comes back exact
    for m, img in (("input", t_wm), ("autoencoder", out), ("biharmonic_oracle_mask", bi)):
        r[m]["psnr_all_pixels_pooled"] = quality(test, img, shape, everywhere)["psnr"]
        r[m]["images_restored_exactly"] = int(np.sum(np.all(np.clip(img, 0, 1) == test, axis=1)))
    for m in ("input", "autoencoder", "biharmonic_oracle_mask"):
        print(f"    {m:22s} psnr {r[m]['psnr']:6.2f}  ssim {r[m]['ssim']:.4f}", flush=True)
    out_examples[f"{name} watermark"] = (shape, [test[:8], t_wm[:8], bi[:8], out[:8]])
    return {name: r}


def colourisation(args, out_examples):
    train, _, test, shape = split("cifar10", args)
    print("cifar10 grayscale", flush=True)
    w = np.asarray(LUMA_WEIGHTS, dtype=np.float32)[None, :, None, None]
    c, h, wd = shape
    T = test.reshape(-1, c, h, wd)
    Y = (T * w).sum(1, keepdims=True)
    grey = np.repeat(Y, 3, 1).reshape(len(test), -1)
    Tr = train.reshape(-1, c, h, wd)
    chroma = (Tr - (Tr * w).sum(1, keepdims=True)).mean(0, keepdims=True)   # mean (R−Y, G−Y, B−Y) per pixel
    mean_chroma = np.clip(Y + chroma, 0, 1).reshape(len(test), -1)
    r = {"grey_input": quality(test, grey, shape), "mean_chroma": quality(test, mean_chroma, shape)}
    est, secs = train_dae(train, shape, "grayscale", 0.0, args, args.epochs_colour)
    grey_hw = Y[:, 0]
    out = rows_of(restore.colorize(est, grey_hw), shape)
    raw = rows_of(restore.colorize(est, grey_hw, keep_luminance=False), shape)
    r["autoencoder"] = {**quality(test, out, shape), "train_seconds": secs}
    r["autoencoder_without_luma_fix"] = quality(test, raw, shape)
    for m in r:
        print(f"    {m:30s} psnr {r[m]['psnr']:6.2f}  ssim {r[m]['ssim']:.4f}", flush=True)
    out_examples["cifar10 colourisation"] = (shape, [test[:8], grey[:8], mean_chroma[:8], out[:8]])
    return {"cifar10": r}


def save_grid(examples, path):
    """One PNG: for each task a block of rows (original, damaged, [baseline,] autoencoder)."""
    from PIL import Image

    blocks = []
    for shape, rows in examples.values():
        c = shape[0]
        for R in rows:
            imgs = images(np.clip(R, 0, 1), shape)
            if c == 1:
                imgs = np.repeat(imgs[..., None], 3, -1)
            imgs = np.pad(imgs, ((0, 0), (1, 1), (1, 1), (0, 0)), constant_values=1.0)
            line = np.concatenate(list(imgs), 1)
            if line.shape[0] != 34:  # resize 30-px rows (MNIST) to 34 with nearest pixels, for one width
                line = np.asarray(Image.fromarray((line * 255).astype(np.uint8)).resize(
                    (line.shape[1] * 34 // line.shape[0], 34), Image.NEAREST)) / 255.0
            blocks.append(line)
        blocks.append(np.ones((6, blocks[-1].shape[1], 3)))
    width = max(b.shape[1] for b in blocks)
    blocks = [np.pad(b, ((0, 0), (0, width - b.shape[1]), (0, 0)), constant_values=1.0) for b in blocks]
    grid = (np.concatenate(blocks, 0) * 255).round().astype(np.uint8)
    img = Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST)
    tmp = path.with_suffix(".tmp.png")
    img.save(tmp)
    os.replace(tmp, path)
    print(f"wrote {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=6000)
    ap.add_argument("--n-val", type=int, default=100)
    ap.add_argument("--n-test", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--epochs-colour", type=int, default=10)
    ap.add_argument("--code", type=int, default=128)
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ap.add_argument("--inpaint-datasets", nargs="+", default=["mnist", "fashion-mnist"])
    ap.add_argument("--watermark-dataset", default="fashion-mnist")
    ap.add_argument("--tasks", nargs="+", default=["denoising", "inpainting", "watermark", "colourisation"])
    ap.add_argument("--name", default="restoration")
    args = ap.parse_args()
    args.pca_ks = (10, 20, 50, 100)
    args.nlm_grid = [0.4, 0.6, 0.8, 1.0, 1.3]
    args.wavelet_grid = [(meth, f) for meth in ("BayesShrink", "VisuShrink") for f in (0.5, 1.0)]
    args.tv_grid = [0.03, 0.06, 0.12, 0.25, 0.5]
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    result = {"machine": machine_info(), "protocol": {
        "note": "One CPU thread on a shared 2-core machine (other jobs were running); the scale is reduced to fit "
                "the benchmark in about 25 minutes: every autoencoder is a small ConvAutoencoder trained briefly.",
        "autoencoder": f"ConvAutoencoder conv_channels=(32, 64), n_components={args.code}, Adam lr 2e-3 cosine, "
                       f"batch 64, {args.epochs} epochs (MNIST/Fashion-MNIST), {args.epochs_colour} epochs (CIFAR-10 "
                       "subset), trained with the task's damage as its noise setting, one model per (dataset, damage)",
        "training_images": f"first {args.n_train} training images (CIFAR-10 subset: its 4000 minus the validation rows)",
        "validation_images": f"the last {args.n_val} training images, used only to tune the classical methods",
        "test_images": f"the first {args.n_test} test images",
        "metrics": "skimage.metrics peak_signal_noise_ratio and structural_similarity, data_range 1, outputs "
                   "clipped to [0, 1], mean over test images; inpainting and watermark 'on_mark' PSNR over the "
                   "missing / marked pixels of all test images together",
        "autoencoder_inpainting": "restore.inpaint with max_iter 1 (one pass) or 100 (to convergence, tol 1e-4), "
                                  "chosen on the validation split like the classical methods' parameters; both "
                                  "reported",
        "grids": {"nl_means h/σ": args.nlm_grid, "tv weight": args.tv_grid,
                  "wavelet": [list(g) for g in args.wavelet_grid], "median size": [2, 3, 5],
                  "pca k": list(args.pca_ks)}}}
    examples = {}
    if "denoising" in args.tasks:
        result["denoising"] = denoising(args, examples)
    if "inpainting" in args.tasks:
        result["inpainting"] = inpainting(args, examples)
    if "watermark" in args.tasks:
        result["watermark"] = watermark(args, examples)
    if "colourisation" in args.tasks:
        result["colourisation"] = colourisation(args, examples)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    if examples:
        save_grid(examples, RESULTS / f"{args.name}.png")
        result["images"] = {"file": f"{args.name}.png", "blocks": list(examples),
                            "rows": "original, damaged, [baseline: biharmonic / mean chroma,] autoencoder"}
    write_result(args.name, result)


if __name__ == "__main__":
    main()

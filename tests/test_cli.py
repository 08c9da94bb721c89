"""The command line: fit writes a model, metrics.json and a self-contained report; encode and
reconstruct round-trip; bad input is one line on stderr and exit status 2."""

import base64
import io
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import aekit
from aekit import cli
from aekit.data import load_dataset

FAST_AE = ["--epochs", "15", "--code", "8", "--hidden", "64"]


def run(argv, capsys):
    """main(argv) in-process: (status, stdout, stderr)."""
    status = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return status, out.out, out.err


def fit(tmp_path_factory, name, *options):
    out = tmp_path_factory.mktemp(name)
    status = cli.main(["fit", "--data", "digits", "--out", str(out), "--quiet", *options])
    assert status == 0
    return out


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    return fit(tmp_path_factory, "ae", "--model", "ae", *FAST_AE)


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    return fit(tmp_path_factory, "vae", "--model", "vae", "--epochs", "15", "--hidden", "64")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", test_fraction=0.2, random_state=0)


def metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


def mean_baseline(ds):
    """Squared error per example of always predicting the training mean."""
    return float(np.mean(np.sum((ds.X_test - ds.X_train.mean(axis=0)) ** 2, axis=1)))


def embedded_pngs(html_text):
    """{section id: [decoded PNG bytes]} for every data: image in the page."""
    found = {}
    for sid, body in re.findall(r'<section id="([^"]+)">(.*?)</section>', html_text, re.S):
        for b64 in re.findall(r'src="data:image/png;base64,([^"]+)"', body):
            found.setdefault(sid, []).append(base64.b64decode(b64, validate=True))
    return found


def check_report(run_dir, expected_sections):
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "<table" in text and "test_squared_error_per_example" in text
    # self-contained: nothing fetched from elsewhere, no scripts
    assert "<script" not in text.lower() and "<link" not in text.lower()
    assert not re.search(r'(src|href)="(?!data:|#)', text)
    all_imgs = re.findall(r"<img [^>]*>", text)
    pngs = embedded_pngs(text)
    assert sum(len(v) for v in pngs.values()) == len(all_imgs) > 0
    for sid in expected_sections:
        assert sid in pngs, f"section {sid!r} missing from the report"
    for sid, images in pngs.items():
        for png in images:
            assert png.startswith(b"\x89PNG\r\n\x1a\n")
            with Image.open(io.BytesIO(png)) as im:
                im.load()
                assert im.format == "PNG"
                assert im.size[0] > 100 and im.size[1] > 60, (sid, im.size)
                assert np.asarray(im.convert("L")).std() > 1  # not a blank image
    return text


# -- fit ----------------------------------------------------------------------------------
def test_fit_ae_writes_model_metrics_report(ae_run, digits):
    assert {p.name for p in ae_run.iterdir()} == {"model.safetensors", "metrics.json", "report.html"}  # no temp files left
    m = metrics(ae_run)
    for key in ("model", "data", "n_train", "n_test", "test_squared_error_per_example", "train_squared_error_per_example",
                "baseline_test_squared_error_per_example", "test_score_samples_mean", "fit_seconds", "total_seconds",
                "history", "settings", "versions"):
        assert key in m, key
    assert m["model"] == "ae" and m["data"] == "digits" and m["estimator"] == "Autoencoder"
    assert (m["n_train"], m["n_test"]) == (digits.X_train.shape[0], digits.X_test.shape[0])
    err = m["test_squared_error_per_example"]
    assert math.isfinite(err) and 0 < err < 0.8 * mean_baseline(digits)
    assert m["baseline_test_squared_error_per_example"] == pytest.approx(mean_baseline(digits), rel=1e-6)
    assert len(m["history"]) == 15 and all("loss" in h and "val_loss" in h for h in m["history"])
    assert 0 < m["fit_seconds"] <= m["total_seconds"]
    assert m["versions"]["aekit"] == aekit.__version__ and m["versions"]["torch"] == torch.__version__
    assert m["settings"]["n_components"] == 8 and m["settings"]["hidden_layer_sizes"] == [64]
    # the metric is the mean over test rows of the squared error summed over features
    est = aekit.load(ae_run)
    R = est.reconstruct(digits.X_test)
    assert err == pytest.approx(float(np.mean(np.sum((digits.X_test - R) ** 2, axis=1))), rel=1e-5)
    assert m["test_score_samples_mean"] == pytest.approx(float(np.mean(est.score_samples(digits.X_test))), rel=1e-5)
    check_report(ae_run, ["reconstructions", "code-map", "loss-curves"])


def test_fit_vae_report_has_samples_and_interpolation(vae_run, digits):
    m = metrics(vae_run)
    assert m["estimator"] == "VAE"
    assert 0 < m["test_squared_error_per_example"] < mean_baseline(digits)
    assert m["test_recon_mean"] > 0 and m["test_kl_mean"] > 0
    # bce decoder: the ELBO is −(recon + KL)
    assert m["test_score_samples_mean"] == pytest.approx(-(m["test_recon_mean"] + m["test_kl_mean"]), rel=1e-4)
    assert "kl" in m["history"][0] and "recon" in m["history"][0]
    text = check_report(vae_run, ["reconstructions", "code-map", "loss-curves", "samples", "interpolation", "manifold"])
    assert "Samples from the prior" in text and "Interpolation" in text


def test_fit_pca_report_and_reconstruction_errors_by_k(tmp_path_factory, digits):
    run_dir = fit(tmp_path_factory, "pca", "--model", "pca")
    m = metrics(run_dir)
    assert m["n_components"] == 64  # min(100, n_train, n_features)
    by_k = m["test_squared_error_by_k"]
    assert list(by_k) == ["5", "20", "50"]  # 100 > 64 components
    assert by_k["5"] > by_k["20"] > by_k["50"] > 0
    from sklearn.decomposition import PCA

    p = PCA(20).fit(digits.X_train)
    ref = np.mean(np.sum((digits.X_test - p.inverse_transform(p.transform(digits.X_test))) ** 2, axis=1))
    assert by_k["20"] == pytest.approx(ref, rel=1e-3)
    text = check_report(run_dir, ["mean", "components", "spectrum", "reconstructions", "code-map"])
    assert "loss-curves" not in embedded_pngs(text)


def test_fit_sparse_coding_and_fa(tmp_path_factory, digits):
    sc = fit(tmp_path_factory, "sc", "--model", "sparse-coding", "--code", "32", "--max-iter", "2", "--alpha", "0.2")
    m = metrics(sc)
    assert m["estimator"] == "SparseCoding" and m["n_components"] == 32
    assert 0 < m["test_squared_error_per_example"] < mean_baseline(digits)
    assert 0 < m["code_fraction_nonzero"] < 1
    check_report(sc, ["atoms", "reconstructions", "code-map", "code-histogram"])
    fa = fit(tmp_path_factory, "fa", "--model", "fa", "--code", "10")
    m = metrics(fa)
    assert m["estimator"] == "FactorAnalysis" and 0 < m["test_squared_error_per_example"] < mean_baseline(digits)
    check_report(fa, ["loadings", "noise-variance", "reconstructions", "code-map"])


def test_fit_conv_gets_the_image_shape(tmp_path_factory, digits):
    run_dir = fit(tmp_path_factory, "conv", "--model", "conv", "--epochs", "8", "--code", "8",
                  "--conv-channels", "8", "16", "--lr", "0.003")
    m = metrics(run_dir)
    assert m["settings"]["image_shape"] == [1, 8, 8] and m["settings"]["conv_channels"] == [8, 16]
    assert 0 < m["test_squared_error_per_example"] < mean_baseline(digits)
    assert aekit.load(run_dir).image_shape_ == (1, 8, 8)
    check_report(run_dir, ["reconstructions", "code-map", "loss-curves"])


@pytest.mark.parametrize("model", ["pca", "ae"])
def test_fit_on_a_csv_file_with_labels(tmp_path, capsys, model):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 150)
    X = rng.normal(size=(150, 2)) @ rng.normal(size=(2, 6)) + y[:, None]
    src = tmp_path / "table.csv"
    src.write_text("a,b,c,d,e,f,label\n" + "\n".join(",".join(f"{v:.6f}" for v in row) + f",{c}" for row, c in zip(X, y)))
    out = tmp_path / "run"
    extra = ["--epochs", "5", "--code", "2", "--hidden", "16"] if model == "ae" else ["--code", "3"]
    status, _, err = run(["fit", "--data", src, "--label-column", "label", "--model", model, "--out", out, "--quiet",
                          *extra], capsys)
    assert status == 0, err
    m = metrics(out)
    assert (m["n_train"], m["n_test"], m["n_features"], m["image_shape"]) == (120, 30, 6, None)
    assert m["test_squared_error_per_example"] > 0
    check_report(out, ["reconstructions", "code-map"])


def test_fit_restores_torch_threads(tmp_path):
    before = torch.get_num_threads()
    assert cli.main(["fit", "--model", "pca", "--code", "5", "--threads", "1", "--out", str(tmp_path), "--quiet"]) == 0
    assert torch.get_num_threads() == before


# -- options reach the estimator only when it takes them ----------------------------------
def test_estimator_params_passes_only_accepted_options():
    accepted = aekit.DenoisingAutoencoder().get_params()
    p = cli.estimator_params("dae", {"noise_level": 0.3, "hidden_layer_sizes": []}, seed=3, quiet=True, accepted=accepted)
    assert p["noise_level"] == 0.3 and p["hidden_layer_sizes"] == () and "noise" not in p  # preset keeps masking
    assert p["random_state"] == 3 and p["verbose"] is False
    p = cli.estimator_params("ae", {"noise": "none", "lr_schedule": "none"}, seed=0, quiet=False,
                             accepted=aekit.Autoencoder().get_params())
    assert p["noise"] is None and p["lr_schedule"] is None and p["verbose"] is True
    from aekit.linear import PCA

    p = cli.estimator_params("pca", {}, seed=0, quiet=False, accepted=PCA().get_params())
    assert set(p) <= set(PCA().get_params()) and "verbose" not in p and "validation_fraction" not in p
    with pytest.raises(ValueError, match="--beta"):
        cli.estimator_params("ae", {"beta": 2.0}, seed=0, quiet=True, accepted=aekit.Autoencoder().get_params())


# -- encode / reconstruct -------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_encode_reconstruct_round_trip(ae_run, digits, tmp_path, capsys, suffix):
    X = digits.X_test[:25]
    src = tmp_path / f"rows{suffix}"
    if suffix == ".npy":
        np.save(src, X)
    else:
        np.savetxt(src, X, delimiter=",", fmt="%.9g")
    est = aekit.load(ae_run)
    codes_out, recon_out = tmp_path / f"codes{suffix}", tmp_path / f"recon{suffix}"
    assert run(["encode", "--model", ae_run, "--input", src, "--output", codes_out], capsys)[0] == 0
    assert run(["reconstruct", "--model", ae_run / "model.safetensors", "--input", src, "--output", recon_out], capsys)[0] == 0
    load = np.load if suffix == ".npy" else (lambda p: np.loadtxt(p, delimiter=",", ndmin=2))
    H, R = load(codes_out), load(recon_out)
    assert H.shape == (25, 8) and R.shape == (25, 64)
    tol = dict(rtol=0, atol=0) if suffix == ".npy" else dict(rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(H, est.transform(X), **tol)
    np.testing.assert_allclose(R, est.reconstruct(X), **tol)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([src.name, codes_out.name, recon_out.name])


# -- errors: one line, status 2 -------------------------------------------------------------
@pytest.fixture
def bad_inputs(tmp_path):
    nan = np.random.default_rng(0).random((5, 64)).astype(np.float32)
    nan[2, 3] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    np.save(tmp_path / "narrow.npy", np.zeros((4, 10), np.float32))
    return tmp_path


@pytest.mark.parametrize("case", ["missing-data-file", "unknown-data-set", "nan-input", "wrong-width",
                                  "missing-model", "option-not-taken", "bad-output-type"])
def test_errors_are_one_line_with_status_2(case, ae_run, bad_inputs, capsys):
    t = bad_inputs
    out = t / "out"
    argv, needle = {
        "missing-data-file": (["fit", "--data", t / "nope.npy", "--out", out], "not found"),
        "unknown-data-set": (["fit", "--data", "no-such-set", "--out", out], "unknown data set 'no-such-set'"),
        "nan-input": (["encode", "--model", ae_run, "--input", t / "nan.npy", "--output", t / "h.npy"], "NaN"),
        "wrong-width": (["reconstruct", "--model", ae_run, "--input", t / "narrow.npy", "--output", t / "r.npy"],
                        "10 features"),
        "missing-model": (["encode", "--model", t / "no-run", "--input", t / "nan.npy", "--output", t / "h.npy"],
                          "no-run"),
        "option-not-taken": (["fit", "--model", "ae", "--beta", "2", "--out", out], "--beta"),
        "bad-output-type": (["encode", "--model", ae_run, "--input", t / "narrow.npy", "--output", t / "h.txt"], ".txt"),
    }[case]
    status, stdout, stderr = run(argv, capsys)
    assert status == 2
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("aekit: error: ") and needle in lines[0]
    assert "Traceback" not in stderr and stdout == ""
    assert not out.exists() and not (t / "h.npy").exists() and not (t / "r.npy").exists()


def test_usage_error_is_status_2(capsys):
    status, _, err = run(["fit", "--model", "nonsense", "--out", "x"], capsys)
    assert status == 2 and "invalid choice" in err


def test_keyboard_interrupt_is_status_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_datasets", interrupted)
    status, _, err = run(["datasets"], capsys)
    assert status == 130 and len(err.splitlines()) == 1 and "interrupted" in err


def test_real_subprocess_exit_status(tmp_path):
    exe = Path(sys.executable).parent / "aekit"
    if not exe.exists():
        pytest.skip("the aekit console script is not installed next to this Python")
    proc = subprocess.run([str(exe), "fit", "--model", "pca", "--epochs", "3", "--out", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("aekit: error: --epochs does not apply to --model pca"), proc.stderr
    assert not (tmp_path / "o").exists()


# -- datasets, help, version ---------------------------------------------------------------
def test_datasets_lists_names_and_locations(capsys):
    status, out, _ = run(["datasets"], capsys)
    assert status == 0
    names = [line.split()[0] for line in out.splitlines() if line.strip()]
    assert "digits" in names and "mnist" in names
    assert "bundled with scikit-learn" in out and "data folder:" in out


HELP_OPTIONS = {
    "fit": ["--data", "--model", "--code", "--hidden", "--activation", "--loss", "--noise", "--noise-level", "--l1",
            "--sparsity", "--sparsity-target", "--contractive", "--beta", "--weight-decay", "--epochs", "--batch-size",
            "--lr", "--optimizer", "--lr-schedule", "--validation-fraction", "--early-stopping", "--seed", "--device",
            "--threads", "--alpha", "--test-fraction", "--quiet", "--out"],
    "encode": ["--model", "--input", "--output"],
    "reconstruct": ["--model", "--input", "--output"],
    "datasets": [],
}


@pytest.mark.parametrize("verb", list(HELP_OPTIONS))
def test_help_explains_every_option(verb, capsys):
    status, out, _ = run([verb, "--help"], capsys)
    assert status == 0
    for option in HELP_OPTIONS[verb]:
        assert re.search(rf"^\s+{re.escape(option)}\b", out, re.M), f"{verb} --help lacks {option}"
    # every option of the parser has help text
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "verb").choices[verb]
    for action in sub._actions:
        assert action.help and action.help.strip(), action.option_strings
    for model in cli.MODELS:
        if verb == "fit":
            assert model in out


def test_version(capsys):
    status, out, _ = run(["--version"], capsys)
    assert status == 0 and out.strip() == f"aekit {aekit.__version__}"

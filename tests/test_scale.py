"""Scale-out: data-parallel training (2 gloo processes = 1 process), out-of-core rows, ONNX
export against PyTorch through onnxruntime, tracking callbacks."""

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import aekit
import aekit.train as train_module
from aekit.data.rows import NpyRows
from aekit.model import build_model
from aekit.parts.heads import SupervisedHead
from aekit.parts.penalties import Shard, kl_sparsity
from aekit.train import TrainConfig, train

N_ROWS, N_FEATURES = 203, 24  # 183 training rows in batches of 50: the last global batch (33) splits 17/16
KL_BATCH = 37


def data():
    return torch.from_numpy(np.random.RandomState(0).rand(N_ROWS, N_FEATURES).astype(np.float32))


def make():
    """Sigmoid code with KL sparsity (a batch statistic) and weight decay (parameters only)."""
    torch.manual_seed(0)
    return build_model(N_FEATURES, n_components=4, hidden_layer_sizes=(16,), code_activation="sigmoid",
                       sparsity_weight=0.5, weight_decay=1e-3)


def make_head():
    """make() with a classification head whose class-balance term is a batch statistic too."""
    model = make()
    head = SupervisedHead(2.0, 4, 3, class_balance=5.0)
    head.prior.copy_(torch.tensor([0.5, 0.3, 0.2]))
    with torch.no_grad():  # predictions that differ from row to row, so that p̄ depends on the rows
        head.net.linears[-1].weight.mul_(30.0)
    model.penalties.append(head)
    return model


def labels():
    """Classes 0-2 and -1 (unlabelled) for the rows of data()."""
    return torch.from_numpy(np.random.RandomState(1).randint(-1, 3, N_ROWS))


def config(epochs, checkpoint=None):
    return TrainConfig(epochs=epochs, batch_size=50, learning_rate=1e-2, seed=1, validation_fraction=0.1,
                       verbose=False, checkpoint_path=None if checkpoint is None else str(checkpoint))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, tmp):
    """One rank: (a) a full run that checkpoints into run/, counting who saves and who is
    called back; (b) a 1-process checkpoint resumed on 2 ranks; (c) a 2-rank checkpoint for
    the parent to resume alone; (d) one step's KL sparsity term and gradient; (e) the same for a
    classification head with a class-balance term."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    tmp = Path(tmp)
    saves, calls = [], []
    real_save = train_module.save_checkpoint
    train_module.save_checkpoint = lambda *a, **k: (saves.append(a[6]), real_save(*a, **k))
    X = data()
    out = {}
    model = make()
    out["history"] = train(model, X, config(3, tmp / "run" / "two.ckpt"), callback=lambda r: calls.append(r["epoch"]))
    out["full"] = model.state_dict()
    out["saves"], out["calls"] = list(saves), list(calls)
    model = make()
    train(model, X, config(3, tmp / "one_then_two.ckpt"), resume=True)
    out["resumed_on_two"] = model.state_dict()
    train(make(), X, config(2, tmp / "two_then_one.ckpt"))
    # (d) the terms and gradient of one global batch of KL_BATCH rows
    model = make()
    idx = torch.tensor_split(torch.arange(KL_BATCH), world)[rank]
    loss = model(X[idx], shard=Shard(rank, world, KL_BATCH))
    loss.total.backward()
    train_module._reduce_gradients(list(model.parameters()), train_module._Ranks(rank, world))
    terms = torch.stack([loss.terms[k] for k in ("kl_sparsity", "recon", "loss")])
    dist.all_reduce(terms)
    out["kl_terms"], out["kl_grads"] = terms, {n: p.grad for n, p in model.named_parameters()}
    # (e) the same for a head with a class-balance term (p̄ over the global batch)
    model = make_head()
    loss = model(X[idx], labels()[idx], shard=Shard(rank, world, KL_BATCH))
    loss.total.backward()
    train_module._reduce_gradients(list(model.parameters()), train_module._Ranks(rank, world))
    terms = torch.stack([loss.terms[k] for k in ("supervised", "loss")])
    dist.all_reduce(terms)
    out["head_terms"], out["head_grads"] = terms, {n: p.grad for n, p in model.named_parameters()}
    torch.save(out, tmp / f"rank{rank}.pt")
    dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """Run the 2-rank worker once (after the 1-process checkpoint it resumes exists)."""
    tmp = tmp_path_factory.mktemp("ddp")
    train(make(), data(), config(2, tmp / "one_then_two.ckpt"))
    mp.spawn(_worker, args=(2, free_port(), str(tmp)), nprocs=2, join=True)
    return tmp, [torch.load(tmp / f"rank{r}.pt") for r in (0, 1)]


@pytest.fixture(scope="module")
def one_rank():
    model = make()
    history = train(model, data(), config(3))
    return model.state_dict(), history


def assert_same_weights(a, b, atol=1e-5):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=atol, rtol=1e-4), (k, (a[k] - b[k]).abs().max())


def test_two_processes_train_to_the_weights_of_one(two_ranks, one_rank):
    _, results = two_ranks
    weights, history = one_rank
    for res in results:  # every rank holds the single-process weights
        assert_same_weights(res["full"], weights)
    for mine, theirs in zip(results[0]["history"], history):
        for key in ("recon", "kl_sparsity", "weight_decay", "loss", "val_loss"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-5), key


def test_rank_zero_alone_writes_checkpoints_and_calls_back(two_ranks):
    tmp, (r0, r1) = two_ranks
    assert r0["saves"] == [1, 2, 3] and r1["saves"] == []
    assert r0["calls"] == [1, 2, 3] and r1["calls"] == []
    assert sorted(p.name for p in (tmp / "run").iterdir()) == ["two.ckpt"]  # no leftovers of a second writer


def test_resume_with_another_number_of_processes(two_ranks, one_rank):
    tmp, (r0, _) = two_ranks
    weights, _ = one_rank
    assert_same_weights(r0["resumed_on_two"], weights)          # 1 process → 2 ranks
    model = make()
    history = train(model, data(), config(3, tmp / "two_then_one.ckpt"), resume=True)  # 2 ranks → 1 process
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert_same_weights(model.state_dict(), weights)


def test_kl_sparsity_across_ranks_is_the_single_process_value(two_ranks):
    """ρ̂ is the mean over the global batch: the term and its gradient equal one process's."""
    _, (r0, _) = two_ranks
    model = make()
    x = data()[:KL_BATCH]
    loss = model(x)
    loss.total.backward()
    h = model.encode(x).h
    assert r0["kl_terms"][0].item() == pytest.approx(kl_sparsity(h, 0.05).item(), rel=1e-5)
    assert r0["kl_terms"][0].item() == pytest.approx(loss.terms["kl_sparsity"].item(), rel=1e-5)
    assert r0["kl_terms"][2].item() == pytest.approx(loss.terms["loss"].item(), rel=1e-5)
    for name, p in model.named_parameters():
        assert torch.allclose(r0["kl_grads"][name], p.grad, atol=1e-6, rtol=1e-4), name
    # per-rank ρ̂ would be another number: the test can tell
    halves = torch.tensor_split(h, 2)
    per_rank = sum(kl_sparsity(part, 0.05) for part in halves) / 2
    assert abs(per_rank.item() - r0["kl_terms"][0].item()) > 1e-4


# -- out-of-core rows -------------------------------------------------------------------------
def test_rows_gather_any_order_across_shards(tmp_path):
    X = np.random.RandomState(1).rand(50, 3, 4).astype(np.float64)
    for i, (a, b) in enumerate([(0, 20), (20, 21), (21, 50)]):
        np.save(tmp_path / f"part{i}.npy", X[a:b])
    src = NpyRows(tmp_path)
    idx = np.random.RandomState(2).permutation(50)[:31]
    flat = X.reshape(50, -1).astype(np.float32)
    assert src.shape == (50, 3, 4)
    assert np.array_equal(src[torch.from_numpy(idx)].numpy(), flat[idx])
    assert np.array_equal(src[5:45].numpy(), flat[5:45])
    view = src.subset(torch.from_numpy(idx))
    assert np.array_equal(view[3:9].numpy(), flat[idx[3:9]])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no .npy"):
        NpyRows(tmp_path / "empty")
    np.save(tmp_path / "part9.npy", np.zeros((2, 5)))
    with pytest.raises(ValueError, match="trailing shape"):
        NpyRows(tmp_path)


def test_memory_mapped_training_equals_in_memory(tmp_path):
    X = np.random.RandomState(3).rand(301, 20).astype(np.float32)
    np.save(tmp_path / "x.npy", X)
    (tmp_path / "shards").mkdir()
    for i, part in enumerate(np.array_split(X, 3)):
        np.save(tmp_path / "shards" / f"{i}.npy", part)
    kw = {"n_components": 3, "hidden_layer_sizes": (8,), "epochs": 3, "batch_size": 32, "random_state": 0,
          "verbose": False, "validation_fraction": 0.1, "center": True}
    ref = aekit.Autoencoder(**kw).fit(X)
    for source in (np.load(tmp_path / "x.npy", mmap_mode="r"), NpyRows(tmp_path / "shards")):
        est = aekit.Autoencoder(**kw).fit(source)
        assert np.allclose(est.transform(X), ref.transform(X), atol=1e-5)
        assert [r["loss"] for r in est.history_] == pytest.approx([r["loss"] for r in ref.history_], rel=1e-5)
        assert est.value_range_ == ref.value_range_


def test_memory_mapped_training_does_not_load_the_array(tmp_path):
    """Under a data-segment limit smaller than the file, copying the array fails while fitting
    on its memory map succeeds: the rows are read batch by batch and the validation split is
    a view (RLIMIT_DATA counts private memory, not a read-only file mapping)."""
    pytest.importorskip("resource")
    if not Path("/proc/self/status").exists():
        pytest.skip("needs /proc/self/status (Linux) to read the data segment's size")
    path = tmp_path / "big.npy"
    np.save(path, np.random.RandomState(0).rand(120_000, 100).astype(np.float32))  # 48 MB
    script = textwrap.dedent(f"""
        import resource, numpy as np, torch, aekit
        torch.set_num_threads(1)
        warm = np.random.rand(64, 100).astype(np.float32)
        aekit.Autoencoder(n_components=2, hidden_layer_sizes=(4,), epochs=1, verbose=False).fit(warm)
        vmdata = lambda: int([l for l in open('/proc/self/status') if l.startswith('VmData')][0].split()[1]) * 1024
        limit = vmdata() + 32 * 2**20  # less than the file and than its training rows (43 MB)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
        X = np.load({str(path)!r}, mmap_mode='r')
        try:
            np.array(X)
            print('COPIED')
        except MemoryError:
            print('COPY REFUSED')
        est = aekit.Autoencoder(n_components=4, hidden_layer_sizes=(16,), epochs=1, batch_size=256,
                                validation_fraction=0.1, verbose=False).fit(X)
        print('FIT', est.n_iter_)
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300,
                          check=False)
    assert "COPY REFUSED" in proc.stdout, proc.stdout + proc.stderr
    assert "FIT 1" in proc.stdout, proc.stdout + proc.stderr


# -- ONNX -------------------------------------------------------------------------------------
def _estimators():
    return {"mlp": aekit.Autoencoder(n_components=3, hidden_layer_sizes=(8,), center=True, epochs=1, random_state=0),
            "conv": aekit.ConvAutoencoder(n_components=3, conv_channels=(4,), epochs=1, random_state=0, loss="bce"),
            "vae": aekit.VAE(n_components=2, hidden_layer_sizes=(8,), epochs=1, random_state=0)}


@pytest.mark.parametrize("name", ["mlp", "conv", "vae"])
def test_onnx_outputs_equal_pytorch(name, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install 'aekit[onnx]')")
    pytest.importorskip("onnx", reason="onnx not installed (pip install 'aekit[onnx]')")
    X = np.random.RandomState(4).rand(40, 64).astype(np.float32)
    est = _estimators()[name].fit(X)
    paths = aekit.export_onnx(est, tmp_path / "served", exporter="torchscript")
    enc, dec = (ort.InferenceSession(str(paths[k]), providers=["CPUExecutionProvider"]) for k in ("encoder", "decoder"))
    for n in (1, 7, 40):  # the batch size is dynamic
        outs = enc.run(None, {"x": X[:n]})
        z = est.transform(X[:n])
        assert outs[0].shape == z.shape
        assert np.abs(outs[0] - z).max() <= 1e-5
        if name == "vae":
            logvar = est.model_.encode(torch.from_numpy(X[:n]), sample=False).logvar.detach().numpy()
            assert [o.name for o in enc.get_outputs()] == ["mean", "logvar"]
            assert np.abs(outs[1] - logvar).max() <= 1e-5
        assert np.abs(dec.run(None, {"code": z})[0] - est.inverse_transform(z)).max() <= 1e-5


def test_onnx_dynamo_exporter(tmp_path):
    """PyTorch's supported exporter (torch.export + onnxscript), the default."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed")
    pytest.importorskip("onnxscript", reason="onnxscript not installed")
    X = np.random.RandomState(5).rand(30, 64).astype(np.float32)
    est = _estimators()["mlp"].fit(X)
    paths = aekit.export_onnx(est.model_, tmp_path)
    enc = ort.InferenceSession(str(paths["encoder"]), providers=["CPUExecutionProvider"])
    assert np.abs(enc.run(None, {"x": X[:9]})[0] - est.transform(X[:9])).max() <= 1e-5


def test_export_refuses_what_it_cannot_export(tmp_path):
    with pytest.raises(TypeError, match="fitted aekit neural estimator"):
        aekit.export_onnx(aekit.PCA(n_components=2), tmp_path)
    with pytest.raises(ValueError, match="exporter"):
        aekit.export_onnx(make(), tmp_path, exporter="tf")


# -- tracking ---------------------------------------------------------------------------------
class FakeTracker(aekit.tracking.Tracker):
    def __init__(self):
        self.epochs = []

    def log_epoch(self, epoch, values):
        self.epochs.append((epoch, values))


def test_a_tracker_receives_every_epochs_terms():
    X = np.random.RandomState(6).rand(80, 10).astype(np.float32)
    tracker = FakeTracker()
    est = aekit.SparseAutoencoder(n_components=3, hidden_layer_sizes=(6,), epochs=4, random_state=0,
                                  validation_fraction=0.2, weight_decay=1e-4).fit(X, callback=tracker)
    assert [e for e, _ in tracker.epochs] == [1, 2, 3, 4]
    for (_, values), record in zip(tracker.epochs, est.history_):
        assert set(values) == set(record) - {"epoch"}
        assert {"recon", "kl_sparsity", "weight_decay", "loss", "val_loss", "lr"} <= set(values)
        assert all(values[k] == record[k] for k in values)


def test_tensorboard_writes_event_files(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard not installed (pip install 'aekit[tensorboard]')")
    tb = aekit.tracking.TensorBoardCallback(tmp_path / "tb")
    X = np.random.RandomState(7).rand(40, 6).astype(np.float32)
    aekit.Autoencoder(n_components=2, hidden_layer_sizes=(4,), epochs=2, random_state=0).fit(X, callback=tb)
    tb.log_metrics({"mse": 0.5})
    tb.close()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    assert [s.step for s in events.Scalars("train/loss")] == [1, 2]
    assert events.Scalars("final/mse")[0].value == pytest.approx(0.5)


# -- command line -----------------------------------------------------------------------------
def test_cli_fits_out_of_core_tracks_and_exports(tmp_path):
    pytest.importorskip("onnx", reason="onnx not installed")
    pytest.importorskip("tensorboard", reason="tensorboard not installed")
    from aekit.cli import main

    np.save(tmp_path / "rows.npy", np.random.RandomState(8).rand(500, 16).astype(np.float32))
    run, tb, served = tmp_path / "run", tmp_path / "tb", tmp_path / "served"
    assert main(["fit", "--data", str(tmp_path / "rows.npy"), "--out-of-core", "yes", "--out", str(run),
                 "--epochs", "2", "--quiet", "--track", "tensorboard", "--track-dir", str(tb)]) == 0
    import json

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_train"] == 400 and "out of core" in metrics["data_source"]
    assert list((tb / "run").glob("events.out.tfevents.*"))
    assert main(["export", "--model", str(run), "--format", "onnx", "--out", str(served),
                 "--exporter", "torchscript"]) == 0
    assert sorted(p.name for p in served.iterdir()) == ["decoder.onnx", "encoder.onnx"]
    assert main(["fit", "--data", "digits", "--out-of-core", "yes", "--out", str(tmp_path / "bad")]) == 2


def test_mlflow_logs_every_epoch_and_the_final_metrics(tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason="mlflow not installed (pip install 'aekit[mlflow]'); not in the test extra")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 wants a database; a folder suffices here
    uri = (tmp_path / "mlruns").as_uri()
    tracker = aekit.tracking.MLflowCallback(experiment="scale", tracking_uri=uri)
    X = np.random.RandomState(9).rand(40, 6).astype(np.float32)
    aekit.Autoencoder(n_components=2, hidden_layer_sizes=(4,), epochs=3, random_state=0).fit(X, callback=tracker)
    tracker.log_params({"epochs": 3, "hidden_layer_sizes": (4,)})
    tracker.log_metrics({"mse": 0.25, "name": "not a number"})
    run_id = tracker.run.info.run_id
    tracker.close()
    client = mlflow.tracking.MlflowClient(uri)
    assert [m.step for m in client.get_metric_history(run_id, "recon")] == [1, 2, 3]
    run = client.get_run(run_id)
    assert run.data.metrics["final_mse"] == 0.25 and "final_name" not in run.data.metrics
    assert run.data.params["hidden_layer_sizes"] == "(4,)"


def test_class_balance_across_ranks_is_the_single_process_value(two_ranks):
    """p̄ of the class-balance term is the mean over the global batch: the head's term and the
    gradient equal one process's, and a per-rank p̄ would give another number."""
    _, (r0, _) = two_ranks
    model = make_head()
    x, y = data()[:KL_BATCH], labels()[:KL_BATCH]
    loss = model(x, y)
    loss.total.backward()
    assert r0["head_terms"][0].item() == pytest.approx(loss.terms["supervised"].item(), rel=1e-5)
    assert r0["head_terms"][1].item() == pytest.approx(loss.terms["loss"].item(), rel=1e-5)
    for name, p in model.named_parameters():
        assert torch.allclose(r0["head_grads"][name], p.grad, atol=1e-6, rtol=1e-4), name
    head = model.penalty("supervised")
    p = torch.softmax(head.net(model.encode_point(x)), 1).detach()
    kl = lambda q: (head.prior * (head.prior / q.mean(0)).log()).sum()  # noqa: E731
    per_rank = sum(kl(part) for part in torch.tensor_split(p, 2)) / 2
    assert abs(per_rank - kl(p)).item() * 5.0 / 2.0 > 1e-4

"""Semantic hashing against the classical hashing baselines, and Hamming search speed (issue 9).

Parts (each one process, results merged into benchmarks/results/hashing.json):

* ``text`` — 20 Newsgroups by date (aekit.load_dataset: counts of the 2000 most frequent
  training words; 11314 training, 7532 test documents). aekit.SemanticHasher on the counts
  with its defaults (2000-500-500-b ReLU encoder reading TF-IDF rows, straight-through binary
  code, masking noise 0.75, bit balance 10, multinomial loss, 50 epochs; ``--text-epochs``
  overrides; trained once per seed in ``--seeds``, scores averaged, each seed's kept) against
  random-hyperplane LSH on TF-IDF, PCA + sign
  (training median), ITQ (50 iterations) and spectral hashing, all on TF-IDF (scikit-learn's
  TfidfTransformer fitted on the training counts, l2 rows). Every method is fitted on the
  training documents; the test documents query the training documents by Hamming distance;
  relevant = same newsgroup. precision@100 and mAP (full Hamming ranking, ties by lower index),
  at 8, 16, 32, 64 and 128 bits; the precision-recall curve over Hamming radii at 32 bits.
  The training (database) rows are put in a fixed random order first (``shuffled_train``).
* ``nash`` — the protocol of VDSH (Chaidaroon & Fang 2017) and NASH (Shen et al. 2018) on the same
  documents: TF-IDF input for every method, the test documents query the training documents,
  each method's real-valued outputs (projections; the hasher's pre-threshold code activations)
  thresholded at their training median, relevant = shares a label; precision@100 at 16, 32,
  64, 128 bits. The hasher here reads the TF-IDF rows as given (``input_transform=None``) and is
  trained with the multinomial loss on them (VDSH's decoder: −Σ_w x_w log softmax), seed 0.
* ``images`` — MNIST: every method fitted on ``--mnist-train`` training images (the hasher with
  its defaults, ``--mnist-epochs`` epochs, once per seed in ``--seeds``)
  (pixels in [0, 1]; LSH centred); the database is all 60000 training images, the queries the
  first ``--mnist-queries`` test images; relevant = same digit; precision@1000 and mAP.
* ``speed`` — query latency for k = 100 over 10^6 64-bit codes (the 18846 20 Newsgroups codes of
  a 64-bit hasher plus uniformly random codes): numpy popcount (HammingIndex backend="numpy")
  vs faiss IndexBinaryFlat, one thread, one query at a time, interleaved, median over queries;
  the same at 10^3 … 10^6 codes (what backend="auto" is chosen by), and radius_neighbors with
  r = 4 (faiss: IndexBinaryFlat.range_search); and the time to hash
  10 000 documents (transform of count rows; LSH on TF-IDF as the reference), best of 3.

    python benchmarks/hashing.py --parts text,nash --seeds 0,1 &          # two processes, one thread each
    python benchmarks/hashing.py --parts images,speed --mnist-epochs 20 --seeds 0,1

The machine is shared with other jobs: timings are indicative; every ratio is measured inside
one run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine_info, matmul_peak, write_result  # noqa: E402

BITS = (8, 16, 32, 64, 128)
NASH_BITS = (16, 32, 64, 128)
RADIUS = 4                       # Hamming-ball radius timed in the speed part


def shuffled_train(ds):
    """The training rows and labels in a fixed random order (seed 0).

    The loaders keep documents sorted by newsgroup; since Hamming ranking breaks ties by the
    lower database index, a database in label order would make the tie order follow the
    labels (a code that maps everything to one address would score mAP near 1 on the first
    group). A random order makes tie-breaking uninformative, the same for every method."""
    perm = np.random.default_rng(0).permutation(ds.X_train.shape[0])
    return ds.X_train[perm], ds.y_train[perm]


def tfidf(counts_train, counts_test):
    from sklearn.feature_extraction.text import TfidfTransformer

    t = TfidfTransformer().fit(counts_train)
    return (t.transform(counts_train).toarray().astype(np.float32),
            t.transform(counts_test).toarray().astype(np.float32))


def baselines(n_bits: int, *, center_lsh: bool):
    from aekit.apps.hash_baselines import ITQ, PCASign, RandomHyperplaneLSH, SpectralHashing

    return {"LSH": RandomHyperplaneLSH(n_bits, center=center_lsh, random_state=0),
            "PCA+sign": PCASign(n_bits, threshold="median"),
            "ITQ": ITQ(n_bits, n_iter=50, random_state=0),
            "SH": SpectralHashing(n_bits)}


def hasher(n_bits: int, epochs: int | None, seed: int = 0, **kw):
    """aekit.SemanticHasher with its defaults (epochs None: its default, 50)."""
    import aekit

    if epochs is not None:
        kw["epochs"] = epochs
    return aekit.SemanticHasher(n_components=n_bits, random_state=seed, **kw)


def hasher_rows(fit_score, seeds) -> dict:
    """The hasher trained with each seed: the mean of its scores, each seed's, and fit times."""
    runs = []
    for seed in seeds:
        t0 = time.perf_counter()
        sc = fit_score(seed)
        runs.append({**sc, "seed": seed, "fit_seconds": round(time.perf_counter() - t0, 1)})
    keys = [k for k in runs[0] if k.startswith("precision_at") or k == "map"]
    row = {k: round(float(np.mean([r[k] for r in runs])), 4) for k in keys}
    if "pr_curve" in runs[0]:
        row["pr_curve"] = runs[0]["pr_curve"]
    return {**row, "fit_seconds": runs[0]["fit_seconds"],
            "per_seed": [{k: v for k, v in r.items() if k != "pr_curve"} for r in runs]}


def scores(B_query, B_db, y_query, y_db, k: int, curve: bool = False) -> dict:
    from aekit.apps.retrieval import evaluate_hashing

    r = evaluate_hashing(B_query, B_db, y_query, y_db, k=(k,), tie_order="index")   # databases come shuffled
    out = {f"precision_at_{k}": round(float(r["precision_at"][k]), 4), "map": round(float(r["map"]), 4)}
    if curve:
        pr = r["pr_curve"]
        out["pr_curve"] = {"radius": pr["radius"].tolist(),
                           "precision": [None if np.isnan(p) else round(float(p), 4) for p in pr["precision"]],
                           "recall": [round(float(x), 4) for x in pr["recall"]]}
    return out


def run_text(args) -> dict:
    import aekit

    ds = aekit.load_dataset("20newsgroups")
    X_tr, y_tr = shuffled_train(ds)
    T_tr, T_te = tfidf(X_tr, ds.X_test)
    out = {}
    for b in args.bits:
        row = {}

        def fit_score(seed):
            nonlocal h
            h = hasher(b, args.text_epochs, seed).fit(X_tr)
            return scores(h.transform(ds.X_test), h.train_codes(), ds.y_test, y_tr, 100, b == 32)

        h = None
        row["SemanticHasher"] = hasher_rows(fit_score, args.seeds)
        for name, m in baselines(b, center_lsh=False).items():
            t0 = time.perf_counter()
            m.fit(T_tr)
            fit_s = time.perf_counter() - t0
            row[name] = {**scores(m.transform(T_te), m.transform(T_tr), ds.y_test, y_tr, 100, b == 32),
                         "fit_seconds": round(fit_s, 2)}
        out[str(b)] = row
        print(f"text {b} bits:", {n: (v["precision_at_100"], v["map"]) for n, v in row.items()}, flush=True)
    return {"epochs": h.epochs, "seeds": args.seeds, "n_train": int(ds.X_train.shape[0]), "n_test": int(ds.X_test.shape[0]),
            "hasher_settings": hasher_settings(h), "results": out}


def hasher_settings(h) -> dict:
    """The hasher's parameters that shape its codes (recorded with the results)."""
    keep = ("hidden_layer_sizes", "activation", "binary_code", "code_noise", "loss", "input_transform", "noise",
            "noise_level", "bit_balance", "learning_rate", "batch_size", "epochs")
    return {k: v for k, v in h.get_params().items() if k in keep}


def median_bits(A_train, A):
    """1[a > training median], column by column."""
    return (A > np.median(A_train, axis=0)).astype(np.uint8)


def run_nash(args) -> dict:
    import aekit

    ds = aekit.load_dataset("20newsgroups")
    X_tr, y_tr = shuffled_train(ds)
    T_tr, T_te = tfidf(X_tr, ds.X_test)
    out = {}
    for b in NASH_BITS:
        row = {}
        # the rows are TF-IDF already (unit length): the hasher reads them as given
        h = hasher(b, args.text_epochs, loss="multinomial", input_transform=None).fit(T_tr)
        model = h.model_.eval()
        with torch.no_grad():
            act = [model.code.linear(model.pre_code(torch.from_numpy(X))).numpy() for X in (T_tr, T_te)]
        row["SemanticHasher"] = scores(median_bits(act[0], act[1]), median_bits(act[0], act[0]), ds.y_test, y_tr, 100)
        for name, m in baselines(b, center_lsh=False).items():
            m.fit(T_tr)
            if name == "LSH":
                real = [X.astype(np.float64) @ m.hyperplanes_ for X in (T_tr, T_te)]
            elif name == "ITQ":
                real = [m._project(X) @ m.rotation_ for X in (T_tr, T_te)]
            elif name == "SH":
                i = m.modes_[:, 0]
                real = [np.sin(np.pi / 2 + m.omegas_ * (m._project(X)[:, i] - m.low_[i])) for X in (T_tr, T_te)]
            else:
                real = [m._project(X) for X in (T_tr, T_te)]
            row[name] = scores(median_bits(real[0], real[1]), median_bits(real[0], real[0]), ds.y_test, y_tr, 100)
        out[str(b)] = row
        print(f"nash protocol {b} bits:", {n: v["precision_at_100"] for n, v in row.items()}, flush=True)
    return {"epochs": h.epochs, "hasher_settings": hasher_settings(h), "results": out,
            "published": "not quoted: the stored pages reachable from this machine hold the VDSH and NASH "
                         "abstracts but not their result tables, and no figure is quoted from memory"}


def run_images(args) -> dict:
    import aekit

    ds = aekit.load_dataset("mnist")
    X_db, y_db = shuffled_train(ds)
    X_fit = X_db[:args.mnist_train]
    Xq, yq = ds.X_test[:args.mnist_queries], ds.y_test[:args.mnist_queries]
    out = {}
    for b in args.bits:
        row = {}

        def fit_score(seed):
            nonlocal h
            h = hasher(b, args.mnist_epochs, seed).fit(X_fit)
            return scores(h.transform(Xq), h.transform(X_db), yq, y_db, 1000)

        h = None
        row["SemanticHasher"] = hasher_rows(fit_score, args.seeds)
        for name, m in baselines(b, center_lsh=True).items():
            m.fit(X_fit)
            row[name] = scores(m.transform(Xq), m.transform(X_db), yq, y_db, 1000)
        out[str(b)] = row
        print(f"mnist {b} bits:", {n: (v["precision_at_1000"], v["map"]) for n, v in row.items()}, flush=True)
    return {"epochs": h.epochs, "seeds": args.seeds, "hasher_settings": hasher_settings(h),
            "n_fit": int(X_fit.shape[0]), "n_database": int(X_db.shape[0]),
            "n_queries": int(Xq.shape[0]), "results": out}


def median_latency(indexes: dict, queries: np.ndarray, search) -> dict:
    """Median seconds per single-query search(index, q), backends interleaved query by query."""
    times = {name: [] for name in indexes}
    for q in queries:
        for name, index in indexes.items():
            t0 = time.perf_counter()
            search(index, q[None])
            times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(t)) for name, t in times.items()}


def run_speed(args) -> dict:
    import faiss

    import aekit
    from aekit.apps.hamming import HammingIndex
    from aekit.apps.hash_baselines import RandomHyperplaneLSH

    faiss.omp_set_num_threads(1)
    ds = aekit.load_dataset("20newsgroups")
    h = hasher(64, args.speed_epochs).fit(ds.X_train)
    real = np.concatenate([h.train_codes(), h.transform(ds.X_test)])
    rng = np.random.default_rng(0)
    db = np.concatenate([real, rng.integers(0, 2, size=(1_000_000 - len(real), 64), dtype=np.uint8)])
    queries = h.transform(ds.X_test[:args.speed_queries])
    latency = {}
    for n in (1_000, 10_000, 100_000, 1_000_000):
        idx = {be: HammingIndex(be).fit(db[:n]) for be in ("numpy", "faiss")}
        for be, index in idx.items():          # same answers: the timing compares like with like
            assert np.array_equal(index.kneighbors(queries[:3], 100)[1], idx["numpy"].kneighbors(queries[:3], 100)[1])
        med = median_latency(idx, queries, lambda index, q: index.kneighbors(q, 100))
        ball = median_latency(idx, queries, lambda index, q: index.radius_neighbors(q, RADIUS))
        latency[str(n)] = {"numpy_ms": round(med["numpy"] * 1e3, 3), "faiss_ms": round(med["faiss"] * 1e3, 3),
                           "numpy_over_faiss": round(med["numpy"] / med["faiss"], 2),
                           f"radius_{RADIUS}_numpy_ms": round(ball["numpy"] * 1e3, 3),
                           f"radius_{RADIUS}_faiss_ms": round(ball["faiss"] * 1e3, 3)}
        print(f"{n} codes:", latency[str(n)], flush=True)
    # Hashing 10 000 documents (count rows → bits); LSH on the TF-IDF rows as the reference.
    docs = np.concatenate([ds.X_train, ds.X_test])[:10_000]
    T_tr, _ = tfidf(ds.X_train, ds.X_test[:1])
    lsh = RandomHyperplaneLSH(64, random_state=0).fit(T_tr)
    T_docs = tfidf(ds.X_train, docs)[1]
    hash_s = {"SemanticHasher (64 bits, counts)": [], "LSH (64 bits, TF-IDF)": []}
    for _ in range(3):
        t0 = time.perf_counter()
        h.transform(docs)
        hash_s["SemanticHasher (64 bits, counts)"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        lsh.transform(T_docs)
        hash_s["LSH (64 bits, TF-IDF)"].append(time.perf_counter() - t0)
    return {"k": 100, "n_queries": int(len(queries)), "bits": 64, "n_real_codes": int(len(real)),
            "latency_by_database_size": latency,
            "hash_10000_documents_seconds": {n: round(min(t), 4) for n, t in hash_s.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--parts", default="text,nash,images,speed")
    p.add_argument("--bits", default=",".join(map(str, BITS)))
    p.add_argument("--text-epochs", type=int, default=None, help="the hasher's epochs (default: its own, 50)")
    p.add_argument("--mnist-epochs", type=int, default=None, help="the hasher's epochs on MNIST (default: its own)")
    p.add_argument("--seeds", default="0", help="the hasher's seeds (text and images): scores are their mean")
    p.add_argument("--mnist-train", type=int, default=20_000)
    p.add_argument("--mnist-queries", type=int, default=2_000)
    p.add_argument("--speed-epochs", type=int, default=3)
    p.add_argument("--speed-queries", type=int, default=200)
    p.add_argument("--name", default="hashing", help="results/NAME.json (parts are merged into it)")
    args = p.parse_args()
    args.bits = [int(b) for b in args.bits.split(",")]
    args.seeds = [int(s) for s in args.seeds.split(",")]
    torch.set_num_threads(1)
    os.environ.setdefault("AEKIT_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    path = RESULTS / f"{args.name}.json"
    for part in args.parts.split(","):
        t0 = time.perf_counter()
        run = {"text": run_text, "nash": run_nash, "images": run_images, "speed": run_speed}[part]
        info = {"machine": machine_info(), "matmul_peak_gflops": round(matmul_peak(1024, 5) / 1e9, 1)}
        result = {**run(args), **info, "wall_seconds": round(time.perf_counter() - t0, 1)}
        # read back just before writing: another process may have written other parts meanwhile
        doc = json.loads(path.read_text()) if path.exists() else {"benchmark": "hashing"}
        doc["note"] = ("one torch thread per process; timings indicative, ratios measured inside one run; "
                       "see the docstring of benchmarks/hashing.py for the protocol of each part")
        doc[part] = result
        write_result(args.name, doc)


if __name__ == "__main__":
    main()

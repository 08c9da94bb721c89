"""Semantic hashing: the binary code, the multinomial loss, text data, SemanticHasher, the CLI."""

import io
import math
import os
import re
import tarfile
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch

import aekit
from aekit.cli import main
from aekit.data import text
from aekit.model import build_model
from aekit.parts.codes import BinaryCode
from aekit.parts.losses import ReconstructionLoss, is_count_data, multinomial, resolve_loss

hamming = pytest.importorskip("aekit.apps.hamming")


# -- corpora -----------------------------------------------------------------------------------
TOPICS = {
    "space": "orbit rocket launch shuttle moon planet nasa satellite astronaut mission",
    "cars": "engine wheel brake driver speed highway tire motor fuel garage",
    "food": "bread cheese recipe kitchen oven flavor dinner butter garlic pasta",
    "music": "guitar melody concert singer piano rhythm album chorus band violin",
}
FILLER = "market window answer letter number people office paper story water"


def _documents(n_per_topic: int, seed: int = 0, length: int = 30):
    """Documents mixing one topic's words (70%) with shared filler words (30%)."""
    rng = np.random.default_rng(seed)
    filler = FILLER.split()
    docs, labels = [], []
    for k, words in enumerate(TOPICS.values()):
        words = words.split()
        for _ in range(n_per_topic):
            n = int(rng.integers(length // 2, length * 2))
            picks = [words[i] if rng.random() < 0.7 else filler[j]
                     for i, j in zip(rng.integers(0, len(words), n), rng.integers(0, len(filler), n))]
            docs.append(" ".join(picks))
            labels.append(k)
    return docs, np.array(labels)


@pytest.fixture(scope="module")
def corpus():
    docs, y = _documents(60, seed=0)
    vocab = text.build_vocabulary(docs, 100)
    docs_te, y_te = _documents(15, seed=1)
    return text.count_matrix(docs, vocab), y, text.count_matrix(docs_te, vocab), y_te


def _precision_at(hasher_or_bits, X_tr_bits, y_tr, X_te_bits, y_te, k):
    _, idx = hamming.HammingIndex(backend="numpy").fit(X_tr_bits).kneighbors(X_te_bits, k)
    return float(np.mean(y_tr[idx] == y_te[:, None]))


# -- the binary code ------------------------------------------------------------------------
def test_binary_code_is_exactly_zero_one_at_inference():
    torch.manual_seed(0)
    for method in ("noise", "straight-through"):
        code = BinaryCode(6, 16, method, noise=4.0).eval()
        f = 3 * torch.randn(50, 6)
        out = code(f)
        assert set(out.h.unique().tolist()) <= {0.0, 1.0} and out.h.unique().numel() == 2
        assert torch.equal(out.h, (torch.sigmoid(code.linear(f)) > 0.5).float())
        assert torch.equal(out.z, out.h)


def test_straight_through_forward_is_bits_and_gradient_is_the_sigmoids():
    torch.manual_seed(0)
    code = BinaryCode(5, 4, "straight-through", noise=0.5).train()
    f = torch.randn(7, 5)
    eps = torch.randn(7, 4)
    a = code.linear(f).detach().requires_grad_(True)
    code_lin = code.linear
    code.linear = torch.nn.Identity()  # feed a directly, so ∂z/∂a is read off a.grad
    try:
        z = code(a, eps=eps).z
    finally:
        code.linear = code_lin
    s = torch.sigmoid(a.detach() + 0.5 * eps)
    assert torch.equal(z.detach(), (s > 0.5).float())                    # forward: the bits
    w = torch.randn(7, 4)
    (z * w).sum().backward()
    assert torch.allclose(a.grad, w * s * (1 - s), atol=1e-6)             # backward: σ'(a + σ_c ε)


def test_noise_code_is_the_sigmoid_of_the_noisy_input_with_its_gradient():
    torch.manual_seed(1)
    code = BinaryCode(5, 4, "noise", noise=4.0).train()
    code_lin, code.linear = code.linear, torch.nn.Identity()
    a = torch.randn(6, 4, requires_grad=True)
    eps = torch.randn(6, 4)
    z = code(a, eps=eps).z
    code.linear = code_lin
    expected = 1 / (1 + torch.exp(-(a.detach() + 4.0 * eps)))
    assert torch.allclose(z.detach(), expected, atol=1e-6)
    z.sum().backward()
    assert torch.allclose(a.grad, expected * (1 - expected), atol=1e-6)
    # drawn noise in training: the same input gives other outputs on another call
    assert not torch.equal(code(torch.zeros(2, 5)).z, code(torch.zeros(2, 5)).z)


def test_binary_code_combines_with_conv_encoders_and_penalties():
    torch.manual_seed(0)
    model = build_model(64, n_components=8, conv_channels=(4,), image_shape=(1, 8, 8), binary_code="straight-through",
                        l1=0.01, sparsity_weight=0.1, weight_decay=1e-4, noise="masking", noise_level=0.2)
    assert isinstance(model.code, BinaryCode)
    x = torch.rand(5, 64)
    loss = model(x)
    loss.total.backward()
    assert {"recon", "l1", "kl_sparsity", "weight_decay"} <= set(loss.terms)
    assert model.code.linear.weight.grad.abs().sum() > 0
    model.eval()
    assert set(model.encode_point(x).unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(ValueError, match="Gaussian .* or binary"):
        build_model(64, n_components=8, binary_code="noise", variational=True)


# -- the multinomial loss --------------------------------------------------------------------
def test_multinomial_loss_matches_its_formula_by_brute_force():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 7))
    counts = rng.poisson(2.0, size=(4, 7)).astype(float)
    got = multinomial(torch.tensor(logits), torch.tensor(counts)).numpy()
    for i in range(4):
        norm = sum(math.exp(v) for v in logits[i])
        brute = -sum(counts[i, w] * math.log(math.exp(logits[i, w]) / norm) for w in range(7))
        assert got[i] == pytest.approx(brute, rel=1e-10)
    loss = ReconstructionLoss("multinomial")
    assert torch.allclose(loss.to_data(torch.tensor(logits)).sum(1), torch.ones(4, dtype=torch.float64))


def test_auto_loss_picks_the_multinomial_for_counts_only():
    counts = np.array([[0, 3, 1], [2, 0, 0]], dtype=np.float32)
    assert is_count_data(counts)
    assert resolve_loss("auto", (0.0, 3.0), counts) == "multinomial"
    assert not is_count_data(np.array([[0, 1, 1], [1, 0, 0]], np.float32))      # 0/1: Bernoulli
    assert resolve_loss("auto", (0.0, 1.0), np.array([[0, 1], [1, 1]], np.float32)) == "bce"
    assert not is_count_data(counts + 0.5)                                     # not integers
    assert not is_count_data(counts - 1)                                       # negative
    assert not is_count_data(np.array([[0, 2]] + [[0, 0]] * 5, np.float32))    # < 1 count per row
    assert resolve_loss("mse", (0.0, 3.0), counts) == "mse"                     # explicit wins


# -- text data --------------------------------------------------------------------------------
def _tarball(path: Path, messages: dict) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, body in messages.items():
            data = body.encode("latin-1")
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_newsgroups_tarball_counts_match_a_direct_count(tmp_path):
    msgs = {
        "20news-bydate-train/sci.space/2": "From: a@b.edu\nOrganization: Nowhere\n\nOrbit orbit ORBIT; the moon's moon.\n",
        "20news-bydate-train/sci.space/10": "Subject: Moon launch\nLines: 3\n\nlaunch 42 launch_orbit caf\xe9\n",
        "20news-bydate-train/rec.autos/5": "Subject: brakes\n\nBrake brake engine engine engine orbit\n",
        "20news-bydate-test/rec.autos/7": "From: x\n\nengine moon moon and the orbit\n",
    }
    ds = text.load_newsgroups_tarball(_tarball(tmp_path / "t.tar.gz", msgs), n_words=50)
    assert ds.label_names == ["rec.autos", "sci.space"]
    assert ds.y_train.tolist() == [0, 1, 1] and ds.y_test.tolist() == [0]   # sorted group, then file name
    col = {w: j for j, w in enumerate(ds.vocabulary)}
    # Direct counts, by hand: the header lines (From, Organization, Lines) are dropped, Subject kept;
    # "the"/"and" are stop words; "42" is no word; "launch_orbit" is two words; "moon's" gives "moon".
    # File names sort as strings (scikit-learn's order): sci.space/10 before sci.space/2.
    expected = [
        {"brake": 2, "brakes": 1, "engine": 3, "orbit": 1},
        {"moon": 1, "launch": 3, "orbit": 1, "café": 1},
        {"orbit": 3, "moon": 2},
    ]
    for i, want in enumerate(expected):
        got = {w: int(ds.X_train[i, j]) for w, j in col.items() if ds.X_train[i, j]}
        assert got == want
    assert {w: int(ds.X_test[0, j]) for w, j in col.items() if ds.X_test[0, j]} == {"engine": 1, "moon": 2, "orbit": 1}
    assert "organization" not in col and "nowhere" not in col and "lines" not in col
    assert ds.vocabulary[0] == "orbit"  # the most frequent training word comes first


_NEWS = Path(os.environ.get("AEKIT_DATA", "/nonexistent")) / "20newsgroups" / "20news-bydate.tar.gz"


@pytest.mark.slow  # reads and counts the whole corpus (~10 s)
@pytest.mark.skipif(not _NEWS.is_file(), reason="20 Newsgroups not found under $AEKIT_DATA")
def test_20newsgroups_counts_match_a_direct_count_on_a_few_documents():
    ds = aekit.load_dataset("20newsgroups", download=False)
    assert ds.X_train.shape == (11314, 2000) and ds.X_test.shape == (7532, 2000) and len(ds.label_names) == 20
    assert np.bincount(ds.y_train).tolist()[:3] == [480, 584, 591]
    with tarfile.open(_NEWS) as tar:
        names = tar.getnames()
        # rows are in scikit-learn's order: sorted group, then file names sorted as strings
        space = sorted(n for n in names if n.startswith("20news-bydate-train/sci.space/"))[0]
        atheism = sorted(n for n in names if n.startswith("20news-bydate-train/alt.atheism/"))[0]
        raw = {n: tar.extractfile(n).read().decode("latin-1") for n in (atheism, space)}
    rows = {atheism: 0, space: int(np.flatnonzero(ds.y_train == ds.label_names.index("sci.space"))[0])}
    for name, i in rows.items():
        body = text.strip_header(raw[name]).lower()
        for w in ("atheist", "god", "space", "nasa", "people", "book"):
            direct = len(re.findall(rf"(?<![^\W\d_]){w}(?![^\W\d_])", body))
            assert ds.X_train[i, ds.vocabulary.index(w)] == direct, (name, w)


def test_user_text_folder_and_csv(tmp_path):
    for label, words in (("a", "apple pear plum"), ("b", "stone rock gravel")):
        (tmp_path / "docs" / label).mkdir(parents=True)
        for i in range(4):
            (tmp_path / "docs" / label / f"{i}.txt").write_text(f"{words} {words.split()[i % 3]}")
    ds = aekit.load_dataset(tmp_path / "docs", test_fraction=0.25)
    assert ds.label_names == ["a", "b"] and ds.vocabulary is not None and ds.X_train.shape == (6, 6)
    assert ds.X_train.sum(1).tolist() == [4.0] * 6
    csv = tmp_path / "docs.csv"
    csv.write_text('id,text,topic\n1,"apple pear, apple",fruit\n2,rock stone,rocks\n3,pear plum,fruit\n4,gravel rock,rocks\n')
    ds = aekit.load_dataset(csv, label_column="topic", test_fraction=0.5)
    assert ds.label_names == ["fruit", "rocks"] and ds.X_train.shape[0] == 2
    assert sorted(ds.texts_train + ds.texts_test) == ["apple pear, apple", "gravel rock", "pear plum", "rock stone"]
    with pytest.raises(ValueError, match="text_column 'body' not found"):
        aekit.load_dataset(csv, text_column="body")


# -- SemanticHasher ---------------------------------------------------------------------------
def _hasher(**kw):
    params = dict(n_components=8, hidden_layer_sizes=(64,), epochs=25, batch_size=32, learning_rate=5e-3,
                  random_state=0)
    return aekit.SemanticHasher(**{**params, **kw})


@pytest.fixture(scope="module")
def fitted(corpus):
    X, y, _, _ = corpus
    return _hasher().fit(X)


def test_hasher_bits_loss_and_shapes(fitted, corpus):
    X, _, X_te, _ = corpus
    B = fitted.transform(X_te)
    assert B.dtype == np.uint8 and B.shape == (X_te.shape[0], 8) and set(np.unique(B)) == {0, 1}
    assert fitted.loss_ == "multinomial" and fitted.n_bits == 8
    with torch.inference_mode():  # the model's own code, before any cast, is already exactly 0/1
        h = fitted.model_.encode_point(torch.from_numpy(X_te))
    assert set(h.unique().tolist()) == {0.0, 1.0} and 0.1 < float(h.mean()) < 0.9
    assert np.array_equal(fitted.train_codes(), fitted.transform(X))
    assert np.array_equal(fitted.transform_packed(X_te), hamming.pack_bits(B))
    import scipy.sparse

    assert np.array_equal(fitted.transform(scipy.sparse.csr_matrix(X_te)), B)


def test_hasher_retrieves_by_topic_better_than_random_bits(fitted, corpus):
    X, y, X_te, y_te = corpus
    _, idx = fitted.kneighbors(X_te, 10)
    p_hash = float(np.mean(y[idx] == y_te[:, None]))
    rng = np.random.default_rng(0)
    random_tr, random_te = rng.integers(0, 2, (len(y), 8)), rng.integers(0, 2, (len(y_te), 8))
    p_random = _precision_at(None, random_tr, y, random_te, y_te, 10)
    assert p_hash > p_random + 0.3, (p_hash, p_random)
    assert p_hash > 0.8


def test_radius_neighbors_returns_the_hamming_ball(fitted, corpus):
    X, _, X_te, _ = corpus
    dist, idx = fitted.radius_neighbors(X_te[:5], 1)
    codes, queries = fitted.train_codes(), fitted.transform(X_te[:5])
    for q, (d, i) in enumerate(zip(dist, idx)):
        brute = np.flatnonzero((codes != queries[q]).sum(1) <= 1)
        assert sorted(np.asarray(i).tolist()) == brute.tolist()
        assert np.all(np.asarray(d) <= 1)
    with pytest.raises(ValueError, match="r must be"):
        fitted.radius_neighbors(X_te[:1], -1)


def test_kneighbors_distances_are_hamming_distances_of_the_codes(fitted, corpus):
    X, _, X_te, _ = corpus
    dist, idx = fitted.kneighbors(X_te[:6], 5)
    codes, queries = fitted.train_codes(), fitted.transform(X_te[:6])
    brute = (codes[None, :, :] != queries[:, None, :]).sum(2)
    assert np.array_equal(np.take_along_axis(brute, idx, 1), dist)
    assert np.array_equal(np.sort(brute, 1)[:, :5], dist)


def test_hasher_needs_a_binary_code():
    with pytest.raises(ValueError, match="binary code"):
        aekit.SemanticHasher(binary_code=None, epochs=1).fit(np.ones((4, 3), np.float32) * 2)


def test_saved_hasher_round_trips(fitted, corpus, tmp_path):
    _, _, X_te, _ = corpus
    path = aekit.save(fitted, tmp_path / "h.safetensors")
    again = aekit.load(path)
    assert type(again) is aekit.SemanticHasher
    assert np.array_equal(again.transform(X_te), fitted.transform(X_te))
    assert np.array_equal(again.train_codes_, fitted.train_codes_)
    for a, b in zip(again.kneighbors(X_te, 5), fitted.kneighbors(X_te, 5)):
        assert np.array_equal(np.asarray(a), np.asarray(b))


# -- the CLI ------------------------------------------------------------------------------------
def test_cli_fit_hash_then_search(tmp_path):
    docs, y = _documents(12, seed=3)
    names = list(TOPICS)
    for i, (doc, label) in enumerate(zip(docs, y)):
        folder = tmp_path / "corpus" / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i}.txt").write_text(doc)
    out = tmp_path / "run"
    rc = main(["fit", "--data", str(tmp_path / "corpus"), "--model", "hash", "--bits", "8", "--hidden", "32",
               "--epochs", "20", "--lr", "0.005", "--batch-size", "16", "--out", str(out), "--quiet"])
    assert rc == 0
    assert {"model.safetensors", "metrics.json", "report.html", "search.json"} <= {p.name for p in out.iterdir()}
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(["search", "--model", str(out), "--query", "rocket orbit launch moon nasa", "--k", "5"])
    assert rc == 0
    lines = [ln for ln in buf.getvalue().splitlines() if re.match(r"\s*\d+\s+\d+\s", ln)]
    assert len(lines) == 5
    assert sum("space" in ln for ln in lines) >= 4, buf.getvalue()
    query = tmp_path / "q.txt"
    query.write_text("guitar piano concert melody band")
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["search", "--model", str(out), "--query-file", str(query)]) == 0
    lines = [ln for ln in buf.getvalue().splitlines() if re.match(r"\s*\d+\s+\d+\s", ln)]
    assert len(lines) == 10 and sum("music" in ln for ln in lines) >= 8, buf.getvalue()
    assert main(["search", "--model", str(out)]) == 2  # neither --query nor --query-file


def test_log1p_input_transform_is_what_the_encoder_reads():
    X = torch.tensor([[0.0, 3.0, 1.0], [2.0, 0.0, 5.0]])
    model = build_model(3, n_components=2, hidden_layer_sizes=(), binary_code="straight-through",
                        input_transform="log1p", center=True)
    model.init_from_data(X)
    assert torch.allclose(model.offset, torch.log1p(X).mean(0))
    assert torch.allclose(model.centred(X), torch.log1p(X) - torch.log1p(X).mean(0))
    assert torch.allclose(model.pre_code(X), torch.log1p(X) - torch.log1p(X).mean(0))  # no hidden layer
    plain = build_model(3, n_components=2, hidden_layer_sizes=())
    assert torch.equal(plain.centred(X), X)


def test_tfidf_input_transform_matches_scikit_learns_tfidf():
    from sklearn.feature_extraction.text import TfidfTransformer

    rng = np.random.default_rng(0)
    X = rng.poisson(0.6, size=(40, 12)).astype(np.float32)
    X[:, 3] = 0                                              # a word in no document
    model = build_model(12, n_components=4, hidden_layer_sizes=(), binary_code="straight-through",
                        loss="multinomial", input_transform="tfidf")
    model.init_from_data(torch.from_numpy(X))
    ref = TfidfTransformer(norm="l2", smooth_idf=True, sublinear_tf=False).fit(X)
    assert np.allclose(model.idf.numpy(), ref.idf_, atol=1e-6)
    X_new = rng.poisson(0.6, size=(9, 12)).astype(np.float32)  # new rows use the training idf
    assert np.allclose(model.transformed(torch.from_numpy(X_new)).numpy(), ref.transform(X_new).toarray(), atol=1e-6)
    assert torch.equal(model.transformed(torch.zeros(1, 12)), torch.zeros(1, 12))  # an empty document stays 0
    # 'auto': TF-IDF for the multinomial loss of word counts, the data as given otherwise
    assert build_model(12, n_components=4, loss="multinomial", input_transform="auto").input_transform == "tfidf"
    assert build_model(12, n_components=4, loss="bce", input_transform="auto").input_transform is None


def test_tfidf_input_is_saved_with_the_hasher_and_refused_where_it_has_no_meaning(corpus, tmp_path):
    X, y, X_te, y_te = corpus
    h = aekit.SemanticHasher(n_components=8, hidden_layer_sizes=(16,), epochs=2, random_state=0,
                             input_transform="tfidf").fit(X)
    df = (X > 0).sum(0)
    assert np.allclose(h.model_.idf.numpy(), np.log((1 + len(X)) / (1 + df)) + 1, atol=1e-5)
    back = aekit.load(aekit.save(h, tmp_path / "h.safetensors"))
    assert torch.equal(back.model_.idf, h.model_.idf) and np.array_equal(back.transform(X_te), h.transform(X_te))
    with pytest.raises(ValueError, match="counts"):
        aekit.SemanticHasher(n_components=4, epochs=1, input_transform="tfidf", loss="mse").fit(X - 1.0)
    with pytest.raises(ValueError, match="convolutional"):
        build_model(64, n_components=4, conv_channels=(4,), image_shape=(1, 8, 8), input_transform="tfidf")
    path = tmp_path / "counts.npy"
    np.save(path, X)
    with pytest.raises(ValueError, match="in memory"):
        aekit.SemanticHasher(n_components=4, epochs=1, loss="multinomial",
                             input_transform="auto").fit(np.load(path, mmap_mode="r"))


def test_bit_balance_spreads_the_bits_over_the_data(corpus):
    """Each bit on for about half the training rows with the penalty, against the same hasher without."""
    X = corpus[0]

    def imbalance(weight):
        h = aekit.SemanticHasher(n_components=16, hidden_layer_sizes=(32,), epochs=20, random_state=0,
                                 bit_balance=weight, noise=None).fit(X)
        return float(np.abs(h.train_codes().mean(0) - 0.5).mean())

    assert imbalance(10.0) < 0.7 * imbalance(0.0)
    f = torch.randn(4, 5)
    for method in ("straight-through", "noise"):  # the penalty reads σ(a) before noise and threshold
        code = BinaryCode(5, 3, method, noise=2.0).train()
        assert torch.allclose(code(f).prob, torch.sigmoid(code.linear(f)))
    with pytest.raises(ValueError, match="binary code"):
        build_model(10, n_components=3, bit_balance=1.0)


def test_report_precision_recall_curves_hold_the_hasher_and_the_baselines(fitted, corpus):
    from aekit.apps.retrieval import precision_recall_by_radius
    from aekit.report.build import hash_pr_curves

    X, y, X_te, y_te = corpus
    ds = aekit.Dataset("topics", X, X_te, y, y_te, None, (0.0, float(X.max())), list(TOPICS), "test")
    rows = np.arange(0, len(y_te), 2)
    curves, skipped = hash_pr_curves(fitted, ds, rows)
    assert set(curves) == {"aekit SemanticHasher (8 bits)", "LSH (random hyperplanes)", "PCA + sign", "ITQ",
                           "spectral hashing"} and skipped == []
    pr = precision_recall_by_radius(fitted.transform(X_te[rows]), fitted.train_codes(), y_te[rows], y)
    ok = np.isfinite(pr["precision"])
    recall, precision = curves["aekit SemanticHasher (8 bits)"]
    assert np.array_equal(recall, pr["recall"][ok]) and np.array_equal(precision, pr["precision"][ok])
    assert recall[-1] == pytest.approx(1.0)  # the ball of radius n_bits holds every training row

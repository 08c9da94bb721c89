"""Documents as word counts: the tokeniser, 20 Newsgroups (by date) and the user's own text.

Every text data set becomes a :class:`Dataset` of **word counts**: row i, column w is how many
times vocabulary word w occurs in document i (float32, whole numbers). The vocabulary is the
``n_words`` most frequent words of the *training* documents (total occurrences, ties broken
alphabetically), the protocol of Salakhutdinov & Hinton's semantic hashing (2000 words for 20
Newsgroups); test documents are counted over that vocabulary.

The tokeniser (:func:`tokenize`): lower-case the text, take every maximal run of two or more
letters (Unicode letters; digits and underscores split words and are dropped), drop the
English stop words of scikit-learn's list (318 words such as "the", "and", "would"). No
stemming. The same function counts the documents, the search queries of ``aekit search``,
and the tests' direct counts.

20 Newsgroups: the official "bydate" split (11314 training and 7532 test messages, 20 groups),
read straight from ``20news-bydate.tar.gz`` (checksummed; decoded as latin-1 as scikit-learn
does). Each message's header block (the lines before the first empty line) is dropped except
its ``Subject:`` line; quoted replies and signatures are kept. Labels are the 20 group names in
sorted order; documents are in scikit-learn's order (sorted group, then file name).
"""

from __future__ import annotations

import csv
import re
import tarfile
import zlib
from collections import Counter
from pathlib import Path

import numpy as np

from .dataset import Dataset, split

N_WORDS = 2000
SNIPPET_CHARS = 200  # characters of each document kept for display (aekit search, the report)
_WORD = re.compile(r"[^\W\d_]{2,}")


def stop_words() -> frozenset:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return ENGLISH_STOP_WORDS


def tokenize(text: str) -> list[str]:
    """The words of ``text``: lower-cased runs of ≥ 2 letters, English stop words removed."""
    stop = stop_words()
    return [w for w in _WORD.findall(text.lower()) if w not in stop]


def _counts(text: str) -> Counter:
    """Occurrences of each word of ``text`` (stop words included: they never enter a vocabulary)."""
    return Counter(_WORD.findall(text.lower()))


def build_vocabulary(documents, n_words: int = N_WORDS, *, counts=None) -> list[str]:
    """The ``n_words`` most frequent words over ``documents`` (ties: alphabetical).
    ``counts``: the documents' word counts (:func:`_counts`), when already made."""
    if counts is None:
        total = _counts("\n".join(documents))  # one pass in C over all the text
    else:
        total = Counter()
        for c in counts:
            total.update(c)
    for w in stop_words():
        total.pop(w, None)
    ranked = sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))
    return [w for w, _ in ranked[:int(n_words)]]


def count_matrix(documents, vocabulary, *, counts=None) -> np.ndarray:
    """float32 (n_documents, len(vocabulary)): occurrences of each vocabulary word (as
    :func:`tokenize` splits the text; stop words in ``vocabulary`` are never counted)."""
    stop = stop_words()
    index = {w: j for j, w in enumerate(vocabulary) if w not in stop}
    counts = counts if counts is not None else [_counts(d) for d in documents]
    X = np.zeros((len(counts), len(vocabulary)), dtype=np.float32)
    for i, c in enumerate(counts):
        for w, n in c.items():
            j = index.get(w)
            if j is not None:
                X[i, j] = n
    return X


def snippet(text: str, n: int = SNIPPET_CHARS) -> str:
    """The first ``n`` characters of a document, whitespace collapsed: what listings show."""
    return " ".join(text.split())[:n]


def text_dataset(name, source, docs_train, docs_test, y_train, y_test, label_names, n_words: int = N_WORDS) -> Dataset:
    """A count :class:`Dataset` over the training documents' vocabulary."""
    counts = [_counts(d) for d in docs_train]
    vocabulary = build_vocabulary(docs_train, n_words, counts=counts)
    if not vocabulary:
        raise ValueError(f"{name}: the training documents hold no words (runs of two or more letters that are "
                         "not English stop words).")
    X_tr, X_te = count_matrix(docs_train, vocabulary, counts=counts), count_matrix(docs_test, vocabulary)
    hi = float(max(X_tr.max(initial=0.0), X_te.max(initial=0.0)))
    return Dataset(name, X_tr, X_te, y_train, y_test, None, (0.0, hi), label_names, str(source),
                   vocabulary=vocabulary, texts_train=[snippet(d) for d in docs_train],
                   texts_test=[snippet(d) for d in docs_test])


# -- 20 Newsgroups -------------------------------------------------------------------------
def strip_header(message: str) -> str:
    """The body of a news message with its Subject line: the header block (up to the first
    empty line) is dropped except ``Subject:``."""
    head, sep, body = message.partition("\n\n")
    if not sep:
        return message
    subject = [line[len("subject:"):].strip() for line in head.splitlines() if line.lower().startswith("subject:")]
    return ("\n".join(subject) + "\n\n" if subject else "") + body


def newsgroups_from_tarball(path) -> dict:
    """{'train': (documents, groups), 'test': (...)} from a 20news-bydate tarball, without
    extracting it: members ``20news-bydate-{train,test}/<group>/<file>``, in scikit-learn's
    order (sorted group, then file name), headers stripped (:func:`strip_header`)."""
    found = {"train": [], "test": []}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                parts = member.name.strip("/").split("/")
                if not member.isfile() or len(parts) != 3 or not parts[0].startswith("20news-bydate-"):
                    continue
                which = parts[0][len("20news-bydate-"):]
                if which in found:
                    text = tar.extractfile(member).read().decode("latin-1")
                    found[which].append((parts[1], parts[2], strip_header(text)))
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"cannot read {path} as the 20news-bydate tarball: {exc}") from None
    if not found["train"] or not found["test"]:
        raise ValueError(f"{path} lacks 20news-bydate-train/ or 20news-bydate-test/ messages.")
    out = {}
    for which, items in found.items():
        items.sort(key=lambda t: (t[0], t[1]))
        out[which] = ([t[2] for t in items], [t[0] for t in items])
    return out


_NEWSGROUPS_MEMO: dict = {}


def load_newsgroups_tarball(path: Path, n_words: int = N_WORDS) -> Dataset:
    """The 20 Newsgroups count :class:`Dataset` of a (checksummed) by-date tarball; memoised
    per process by (path, size, mtime, n_words), as reading and counting take ~15 s."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, int(n_words))
    if key not in _NEWSGROUPS_MEMO:
        parts = newsgroups_from_tarball(path)
        groups = sorted(set(parts["train"][1]) | set(parts["test"][1]))
        code = {g: i for i, g in enumerate(groups)}
        y_tr, y_te = (np.array([code[g] for g in parts[w][1]], dtype=np.int64) for w in ("train", "test"))
        _NEWSGROUPS_MEMO.clear()  # one corpus at a time
        _NEWSGROUPS_MEMO[key] = text_dataset("20newsgroups", path, parts["train"][0], parts["test"][0],
                                             y_tr, y_te, groups, n_words)
    ds = _NEWSGROUPS_MEMO[key]
    return Dataset(ds.name, ds.X_train.copy(), ds.X_test.copy(), ds.y_train.copy(), ds.y_test.copy(), None,
                   ds.value_range, list(ds.label_names), ds.source, vocabulary=list(ds.vocabulary),
                   texts_train=list(ds.texts_train), texts_test=list(ds.texts_test))


# -- the user's own text -------------------------------------------------------------------
def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def is_text_folder(path: Path) -> bool:
    """A folder whose class sub-folders hold .txt files (and no images)."""
    return any(f.suffix.lower() == ".txt" for d in path.iterdir() if d.is_dir() and not d.name.startswith(".")
               for f in d.iterdir() if f.is_file())


def load_text_folder(path: Path, test_fraction, random_state, n_words: int = N_WORDS) -> Dataset:
    """One sub-folder of .txt files per class: label = the sub-folder's name (sorted)."""
    classes = sorted(d for d in path.iterdir() if d.is_dir() and not d.name.startswith("."))
    docs, y, names = [], [], []
    for d in classes:
        files = sorted(f for f in d.iterdir() if f.is_file() and f.suffix.lower() == ".txt" and not f.name.startswith("."))
        if not files:
            continue
        names.append(d.name)
        for f in files:
            try:
                docs.append(_read_text(f))
            except OSError as exc:
                raise ValueError(f"cannot read {f}: {exc}") from None
            y.append(len(names) - 1)
    if not docs:
        raise ValueError(f"{path} holds no .txt files in class sub-folders.")
    return _split_texts(path.name, path, docs, np.array(y, dtype=np.int64), names, test_fraction, random_state, n_words)


def load_text_csv(path: Path, test_fraction, random_state, text_column="text", label_column=None,
                  n_words: int = N_WORDS) -> Dataset:
    """A CSV (TSV for .tsv) with a header row, a text column and an optional label column."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh, delimiter=delimiter))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"cannot read {path} as a text CSV file: {exc}") from None
    if len(rows) < 2:
        raise ValueError(f"{path} needs a header row and at least one document row.")
    header = [c.strip() for c in rows[0]]

    def column(name, what):
        if name in header:
            return header.index(name)
        raise ValueError(f"{what} {name!r} not found in {path}; its columns are {header}.")

    t = column(text_column, "text_column")
    lab = None if label_column is None else column(label_column, "label_column")
    body = [r for r in rows[1:] if any(c.strip() for c in r)]
    for i, r in enumerate(body, start=2):
        if len(r) != len(header):
            raise ValueError(f"{path}, row {i}: {len(r)} columns, but the header has {len(header)}.")
    docs = [r[t] for r in body]
    y, names = None, None
    if lab is not None:
        raw = [r[lab].strip() for r in body]
        names = sorted(set(raw))
        y = np.array([names.index(v) for v in raw], dtype=np.int64)
    return _split_texts(path.stem, path, docs, y, names, test_fraction, random_state, n_words)


def _split_texts(name, source, docs, y, names, test_fraction, random_state, n_words) -> Dataset:
    idx = np.arange(len(docs))[:, None].astype(np.float32)
    i_tr, i_te, y_tr, y_te = split(idx, y, test_fraction, random_state)
    i_tr, i_te = i_tr[:, 0].astype(int), i_te[:, 0].astype(int)
    return text_dataset(name, source, [docs[i] for i in i_tr], [docs[i] for i in i_te], y_tr, y_te, names, n_words)

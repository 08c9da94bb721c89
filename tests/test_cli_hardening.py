"""The command line against careless and hostile input: every user error is one line
``aekit: error: ...`` with status 2 and no traceback, and a run folder is replaced whole or
not at all (failures, divergence, kill -9, two runs into one --out)."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import aekit
from aekit import cli
from aekit.data import load_dataset

SMALL = ["--data", "digits", "--epochs", "2", "--code", "4", "--hidden", "16", "--quiet"]
SRC = str(Path(aekit.__file__).resolve().parents[1])  # the aekit under test, for subprocesses


def run(argv, capsys):
    status = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return status, out.out, out.err


def assert_one_line_error(status, stdout, stderr, *needles):
    assert status == 2, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("aekit: error: "), stderr
    assert "Traceback" not in stderr and stdout == ""
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def fit_argv(out, *extra):
    return ["fit", *SMALL, "--out", out, *extra]


def snapshot(folder):
    """{name: bytes} of the files of a folder."""
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}


def leftovers(parent):
    """Temporaries and moved-aside runs of aekit in ``parent`` (the lock file is expected)."""
    return sorted(p.name for p in Path(parent).iterdir() if re.search(r"\.(tmp|old)-\d+-", p.name))


def assert_complete_run(out):
    """``out`` holds exactly one run whose model, metrics and report belong together."""
    out = Path(out)
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.safetensors", "report.html"]
    m = json.loads((out / "metrics.json").read_text())
    seed = m["settings"]["seed"]
    assert aekit.io.read_header(out)["params"]["random_state"] == seed
    ds = load_dataset("digits", test_fraction=0.2, random_state=seed)
    R = aekit.load(out).reconstruct(ds.X_test)
    err = float(np.mean(np.sum((ds.X_test - R) ** 2, axis=1)))
    assert err == pytest.approx(m["test_squared_error_per_example"], rel=1e-5)
    assert (out / "report.html").read_text(encoding="utf-8").rstrip().endswith("</html>")
    return m


@pytest.fixture(scope="module")
def model_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hard") / "run"
    assert cli.main([str(a) for a in fit_argv(out)]) == 0
    return out


@pytest.fixture
def rows(tmp_path):
    path = tmp_path / "rows.npy"
    np.save(path, np.random.default_rng(0).random((5, 64)).astype(np.float32))
    return path


# -- paths that the OS refuses: one line naming the path --------------------------------------
def test_out_name_too_long(tmp_path, capsys):
    out = tmp_path / ("x" * 300)
    assert_one_line_error(*run(fit_argv(out), capsys), "File name too long", "x" * 300)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("which", ["input", "output", "model"])
def test_encode_paths_too_long(which, model_run, rows, tmp_path, capsys):
    paths = {"model": model_run, "input": rows, "output": tmp_path / "h.npy"}
    paths[which] = tmp_path / ("y" * 300 + (".npy" if which != "model" else ""))
    status, out, err = run(["encode", "--model", paths["model"], "--input", paths["input"],
                            "--output", paths["output"]], capsys)
    assert_one_line_error(status, out, err, "File name too long", "y" * 300)


@pytest.mark.parametrize("where", ["file/h.npy", "file/sub/h.npy"])
def test_output_under_a_file(where, model_run, rows, tmp_path, capsys):
    (tmp_path / "file").write_text("mine")
    status, out, err = run(["encode", "--model", model_run, "--input", rows, "--output", tmp_path / where], capsys)
    assert_one_line_error(status, out, err, "file")
    assert (tmp_path / "file").read_text() == "mine"


@pytest.mark.parametrize("where", ["file", "file/sub", "file/sub/deeper"])
def test_fit_out_at_or_under_a_file(where, tmp_path, monkeypatch, capsys):
    (tmp_path / "file").write_text("mine")

    def no_data(*args, **kwargs):
        raise AssertionError("a bad --out must be reported before the data are loaded and the model trained")

    monkeypatch.setattr("aekit.data.load_dataset", no_data)
    assert_one_line_error(*run(fit_argv(tmp_path / where), capsys), "--out", "file")
    assert (tmp_path / "file").read_text() == "mine"


def test_long_out_name_that_fits(tmp_path, capsys):
    """A name of 250 bytes is legal; the temporaries beside it must not exceed the limit."""
    out = tmp_path / ("z" * 250)
    status, _, err = run(fit_argv(out), capsys)
    assert status == 0, err
    assert_complete_run(out)
    assert leftovers(tmp_path) == []


def test_os_error_in_a_verb_is_one_line(monkeypatch, capsys):
    """Any OSError a verb meets (a full disk, a vanished folder) is one line naming the path."""
    def full(args):
        raise OSError(28, "No space left on device", "/some/where/model.safetensors")

    monkeypatch.setattr(cli, "cmd_datasets", full)
    assert_one_line_error(*run(["datasets"], capsys), "No space left on device: /some/where/model.safetensors")


# -- files that are not numeric arrays -----------------------------------------------------------
def _hostile(tmp_path):
    """name -> path of files that np.load does not turn into a numeric array."""
    files = {}
    with zipfile.ZipFile(tmp_path / "raw.npz", "w") as z:  # a member that is not .npy: np.load gives bytes
        z.writestr("x", b"hello")
    files["raw-member"] = tmp_path / "raw.npz"
    import pickle

    with zipfile.ZipFile(tmp_path / "pickled.npz", "w") as z:  # a pickled object under an .npy name
        z.writestr("x.npy", pickle.dumps({"a": np.zeros(3)}))
    files["pickled-member"] = tmp_path / "pickled.npz"
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}, 2], dtype=object))
    files["object-array"] = tmp_path / "objects.npz"
    np.savez(tmp_path / "inner.npz", x=np.zeros((10, 3)))
    (tmp_path / "archive.npy").write_bytes((tmp_path / "inner.npz").read_bytes())  # np.load gives an NpzFile
    files["npz-named-npy"] = tmp_path / "archive.npy"
    np.savez_compressed(tmp_path / "deflate.npz", x=np.random.default_rng(0).random((50, 8)))
    raw = bytearray((tmp_path / "deflate.npz").read_bytes())
    raw[60] ^= 0xFF  # inside the deflate stream: zlib.error on reading
    (tmp_path / "damaged.npz").write_bytes(bytes(raw))
    files["damaged-deflate"] = tmp_path / "damaged.npz"
    return files


HOSTILE = ["raw-member", "pickled-member", "object-array", "npz-named-npy", "damaged-deflate"]


@pytest.mark.parametrize("case", HOSTILE)
def test_fit_on_a_file_that_is_not_an_array(case, tmp_path, capsys):
    path = _hostile(tmp_path)[case]
    out = tmp_path / "out"
    assert_one_line_error(*run(fit_argv(out, "--data", path), capsys), path.name)
    assert not out.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("case", HOSTILE)
def test_encode_a_file_that_is_not_an_array(case, model_run, tmp_path, capsys):
    path = _hostile(tmp_path)[case]
    status, out, err = run(["encode", "--model", model_run, "--input", path, "--output", tmp_path / "h.npy"], capsys)
    assert_one_line_error(status, out, err, path.name)
    assert not (tmp_path / "h.npy").exists()


def test_decompression_bomb_image_is_one_line(tmp_path, monkeypatch, capsys):
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(12):
        Image.fromarray(np.full((8, 8), i * 20, np.uint8)).save(folder / f"{i}.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # 64 pixels > 2 x 10: refused as a bomb
    assert_one_line_error(*run(fit_argv(tmp_path / "out", "--data", folder), capsys), "decompression bomb")


# -- a non-UTF-8 file name ------------------------------------------------------------------------
def test_non_utf8_data_path_gives_a_complete_run(tmp_path, capsys):
    name = os.fsdecode(b"bad\xff.npy")  # not valid UTF-8: Python carries the byte as a lone surrogate
    data = tmp_path / name
    try:
        np.save(data, load_dataset("digits").X_train)
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses non-UTF-8 names")
    out = tmp_path / "out"
    status, _, err = run(fit_argv(out, "--data", data), capsys)
    assert status == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model.safetensors", "report.html"]
    m = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert m["data"] == "bad\\xff" and m["settings"]["data"].endswith("bad\\xff.npy")
    assert "bad\\xff.npy" in (out / "report.html").read_text(encoding="utf-8")
    assert leftovers(tmp_path) == []


# -- --out that holds something other than a run --------------------------------------------------
def test_refuses_to_replace_a_folder_that_is_not_a_run(tmp_path, capsys):
    out = tmp_path / "photos"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"precious")
    assert_one_line_error(*run(fit_argv(out), capsys), "does not hold an aekit run", "photos")
    assert snapshot(out) == {"holiday.jpg": b"precious"} and leftovers(tmp_path) == []


def test_refuses_to_replace_a_run_holding_other_files(model_run, tmp_path, capsys):
    """Codes written into a run folder (encode --output RUN/codes.npy) are the user's: kept."""
    out = tmp_path / "run"
    out.mkdir()
    for name, data in snapshot(model_run).items():
        (out / name).write_bytes(data)
    (out / "codes.npy").write_bytes(b"mine")
    before = snapshot(out)
    assert_one_line_error(*run(fit_argv(out), capsys), "codes.npy")
    assert snapshot(out) == before


def test_out_filled_by_the_user_while_training_is_not_replaced(tmp_path, monkeypatch, capsys):
    """--out is checked again, under the lock, just before the run is moved in."""
    import aekit.data

    out = tmp_path / "out"
    real = aekit.data.load_dataset

    def load_then_user_writes(*args, **kwargs):
        ds = real(*args, **kwargs)
        out.mkdir()
        (out / "notes.txt").write_text("mine")
        return ds

    monkeypatch.setattr(aekit.data, "load_dataset", load_then_user_writes)
    assert_one_line_error(*run(fit_argv(out), capsys), "does not hold an aekit run")
    assert snapshot(out) == {"notes.txt": b"mine"} and leftovers(tmp_path) == []


def test_refuses_the_current_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(*run(fit_argv("."), capsys), "current folder")


def test_an_empty_folder_and_a_symlink_are_fine(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(fit_argv(empty), capsys)[0] == 0
    assert_complete_run(empty)
    link = tmp_path / "link"
    link.symlink_to(empty)
    assert run(fit_argv(link, "--seed", "5"), capsys)[0] == 0
    assert link.is_symlink() and assert_complete_run(empty)["settings"]["seed"] == 5
    assert leftovers(tmp_path) == []


# -- replacing a run: whole or not at all ---------------------------------------------------------
def test_rerun_replaces_the_previous_run_whole(model_run, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(fit_argv(out), capsys)[0] == 0
    assert run(fit_argv(out, "--seed", "7"), capsys)[0] == 0
    assert assert_complete_run(out)["settings"]["seed"] == 7
    assert leftovers(tmp_path) == []


def test_failure_while_writing_leaves_the_previous_run(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert run(fit_argv(out), capsys)[0] == 0
    before = snapshot(out)

    def disk_full(*args, **kwargs):  # after model.safetensors is written, before metrics.json
        raise OSError(28, "No space left on device", str(args[3]))

    monkeypatch.setattr("aekit.report.build_report", disk_full)
    assert_one_line_error(*run(fit_argv(out, "--seed", "3"), capsys), "No space left on device")
    assert snapshot(out) == before and leftovers(tmp_path) == []


def test_failure_on_a_new_out_leaves_nothing(tmp_path, monkeypatch, capsys):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(args[3]))

    monkeypatch.setattr("aekit.report.build_report", disk_full)
    out = tmp_path / "new"
    assert_one_line_error(*run(fit_argv(out), capsys), "No space left on device")
    assert not out.exists() and leftovers(tmp_path) == []


def test_failed_move_puts_the_previous_run_back(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    assert run(fit_argv(out), capsys)[0] == 0
    before = snapshot(out)
    real_rename = os.rename

    def rename(src, dst):
        if ".tmp-" in os.fspath(src) and os.fspath(dst) == os.fspath(out):
            raise OSError(5, "Input/output error", os.fspath(dst))
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    assert_one_line_error(*run(fit_argv(out, "--seed", "3"), capsys), "Input/output error")
    assert snapshot(out) == before and leftovers(tmp_path) == []


# -- divergence and None metrics ---------------------------------------------------------------
def test_divergence_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert_one_line_error(*run(fit_argv(out, "--lr", "1e3", "--optimizer", "sgd"), capsys), "diverged")
    assert sorted(os.listdir(tmp_path)) == []  # no run folder, no temporary, not even a lock


def test_summary_line_survives_missing_metrics(tmp_path, monkeypatch, capsys):
    import aekit.report

    real = aekit.report.evaluate

    def evaluate(est, dataset):
        m = real(est, dataset)
        m.update(test_squared_error_per_example=None, baseline_test_squared_error_per_example=None,
                 train_squared_error_per_example=None)
        return m

    monkeypatch.setattr(aekit.report, "evaluate", evaluate)
    argv = [a for a in fit_argv(tmp_path / "run") if a != "--quiet"]
    status, out, err = run(argv, capsys)
    assert status == 0, err
    assert "training squared error per example n/a" in out
    monkeypatch.setattr(aekit.report, "evaluate", lambda est, ds: {**real(est, ds), "baseline_test_squared_error_per_example": None})
    status, out, err = run(argv, capsys)
    assert status == 0, err
    assert "(predicting the training mean: n/a)" in out


# -- processes: two at once, kill -9 -----------------------------------------------------------------
def _fit_process(out, *extra):
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "aekit.cli", *map(str, fit_argv(out, *extra))], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_concurrent_runs_leave_one_complete_run(tmp_path):
    out = tmp_path / "run"
    procs = [_fit_process(out, "--seed", str(seed)) for seed in (1, 2)]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    for stdout, stderr, rc in results:
        assert rc == 0, stderr
    assert assert_complete_run(out)["settings"]["seed"] in (1, 2)
    assert leftovers(tmp_path) == []


def _blocked_on(lock: Path, pid: int) -> bool:
    """Whether process ``pid`` waits for a flock on ``lock`` (from /proc/locks)."""
    ino = os.stat(lock).st_ino
    text = Path("/proc/locks").read_text()
    return any("-> FLOCK" in line and f" {pid} " in line and f":{ino} " in line for line in text.splitlines())


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs /proc/locks (Linux)")
def test_a_writer_waits_for_the_lock(tmp_path):
    """While another writer holds the lock on --out, a run neither writes nor replaces it."""
    import fcntl

    out = tmp_path / "run"
    with open(tmp_path / ".run.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        proc = _fit_process(out)
        deadline = time.monotonic() + 240
        while not _blocked_on(tmp_path / ".run.lock", proc.pid):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never waited for the lock"
            time.sleep(0.05)
        assert not out.exists() and leftovers(tmp_path) == []
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert_complete_run(out)


def _kill_once_writing(out):
    proc = _fit_process(out, "--seed", "9")
    deadline = time.monotonic() + 240
    while not any(p.name.startswith(f".{out.name}.tmp-{proc.pid}-") for p in out.parent.iterdir()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    return proc.pid


def test_kill_9_leaves_the_previous_run_and_next_run_tidies(tmp_path, capsys):
    out = tmp_path / "run"
    assert run(fit_argv(out), capsys)[0] == 0
    before = snapshot(out)
    pid = _kill_once_writing(out)
    assert snapshot(out) == before  # the previous complete run, untouched
    assert any(f".tmp-{pid}-" in name for name in leftovers(tmp_path))  # the dead writer's temporary
    assert run(fit_argv(out, "--seed", "4"), capsys)[0] == 0
    assert assert_complete_run(out)["settings"]["seed"] == 4
    assert leftovers(tmp_path) == []  # removed: its writer is dead


def test_kill_9_on_a_new_out_leaves_no_run_folder(tmp_path):
    out = tmp_path / "run"
    _kill_once_writing(out)
    assert not out.exists()


def test_a_run_moved_aside_by_a_dead_writer_is_put_back(model_run, tmp_path):
    """kill -9 between moving the previous run aside and moving the new one in: the next
    writer puts the previous run back before anything else."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "run"
    aside = tmp_path / f".run.old-{dead.pid}-abcd"
    aside.mkdir()
    for name, data in snapshot(model_run).items():
        (aside / name).write_bytes(data)
    (tmp_path / f".run.tmp-{dead.pid}-efgh").mkdir()
    cli._tidy(out)
    assert snapshot(out) == snapshot(model_run) and leftovers(tmp_path) == []

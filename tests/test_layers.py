"""The layers of DESIGN.md are a checked contract: an import that runs back up, or a circle,
fails this test (import-linter's layers contract, configured in pyproject.toml)."""

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_imports_point_down_the_layers(monkeypatch):
    cli = pytest.importorskip("importlinter.cli")
    monkeypatch.chdir(ROOT)
    assert cli.lint_imports(config_filename=str(ROOT / "pyproject.toml")) == 0, "an import breaks the layers (see output)"

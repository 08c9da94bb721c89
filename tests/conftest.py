"""Test settings: real data sets come from a local folder, never the network."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if "AEKIT_DATA" not in os.environ and _SHARED.is_dir():
    os.environ["AEKIT_DATA"] = str(_SHARED)

# Two cores on CI: keep torch from oversubscribing them. AEKIT_TEST_THREADS overrides (1 on a
# machine shared with other jobs, where two threads of small matmuls wait on each other).
torch.set_num_threads(int(os.environ.get("AEKIT_TEST_THREADS", 0)) or max(1, min(2, os.cpu_count() or 1)))


def _have(name: str) -> bool:
    root = os.environ.get("AEKIT_DATA")
    return bool(root) and (Path(root) / name).is_dir()


requires_mnist = pytest.mark.skipif(not _have("mnist"), reason="MNIST not found under $AEKIT_DATA")
requires_olivetti = pytest.mark.skipif(not _have("olivetti-faces"), reason="Olivetti faces not found under $AEKIT_DATA")


@pytest.fixture
def rng():
    return np.random.default_rng(0)

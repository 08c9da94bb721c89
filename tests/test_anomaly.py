"""aekit.AnomalyDetector: scikit-learn's outlier-detector contract, the threshold, planted
outliers ranked first, per-feature contributions, save/load, the CLI, and errors."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.utils.estimator_checks import parametrize_with_checks

import aekit
from aekit.apps.anomaly import AnomalyDetector

FAST = dict(hidden_layer_sizes=(8,), epochs=3, random_state=0)


# Every check for outlier detectors passes: none is skipped or expected to fail.
@parametrize_with_checks([
    AnomalyDetector(**FAST),
    AnomalyDetector(contamination=0.1, n_estimators=2, **FAST),
])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)

"""Applications built on the estimators (DESIGN.md layer 5): restoration, manifold tangents,
semantic hashing and search, anomaly detection.

Each module here is a thin layer over an estimator and the parts it composes: a restoration
task is a corruption, hashing is a code, an anomaly score is the model's own loss terms. None
of them has its own training loop or its own copy of a loss.
"""

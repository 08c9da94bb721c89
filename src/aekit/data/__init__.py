"""Data sets for aekit: named benchmarks (digits, mnist, fashion-mnist, olivetti-faces,
cifar10) and the user's own files (.npy, .npz, .csv, folders of images).

Every loader returns a :class:`Dataset` of flat float32 rows; see :func:`load_dataset`.
"""

from .cache import data_home
from .dataset import Dataset
from .registry import available_datasets, load_dataset

__all__ = ["Dataset", "load_dataset", "available_datasets", "data_home"]

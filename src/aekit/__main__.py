"""``python -m aekit``: the command line, also as ``torchrun --nproc-per-node N -m aekit fit ...``."""

import sys

from .cli import main

sys.exit(main())

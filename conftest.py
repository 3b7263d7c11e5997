"""Root pytest configuration: the gallery notebooks (collected by nbmake) run in fast mode."""

import os

os.environ.setdefault("BAYESREC_FAST", "1")

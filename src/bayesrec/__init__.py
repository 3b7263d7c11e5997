"""bayesrec: a Bayesian recommender model zoo on PyMC, with honest uncertainty."""

from bayesrec.data import (
    Ratings,
    RatingScale,
    Split,
    load_movielens,
    load_synthetic,
    simulate_ratings,
)
from bayesrec.errors import FitError, FitWarning, InputError, UnknownIdError

__version__ = "0.1.0"

__all__ = [
    "Ratings",
    "RatingScale",
    "FitError",
    "FitWarning",
    "InputError",
    "UnknownIdError",
    "__version__",
    "Split",
    "load_movielens",
    "load_synthetic",
    "simulate_ratings",
]

"""bayesrec: a Bayesian recommender model zoo on PyMC, with honest uncertainty."""

from bayesrec.data import Ratings, RatingScale
from bayesrec.errors import InputError, UnknownIdError

__version__ = "0.1.0"

__all__ = ["Ratings", "RatingScale", "InputError", "UnknownIdError", "__version__"]

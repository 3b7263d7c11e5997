"""Shared inference: fit any model factory by MAP, NUTS or ADVI; predict; recommend; fold in."""

from bayesrec.inference.fit import METHODS, SAMPLERS, fit, method_defaults
from bayesrec.inference.foldin import fold_in
from bayesrec.inference.io import load_fit, save_fit
from bayesrec.inference.predict import (
    expected_ratings,
    model_from_fit,
    predict,
    ratings_from_fit,
    recommend,
)
from bayesrec.inference.recommender import BayesianRecommender

__all__ = [
    "METHODS",
    "SAMPLERS",
    "BayesianRecommender",
    "expected_ratings",
    "fit",
    "fold_in",
    "load_fit",
    "save_fit",
    "method_defaults",
    "model_from_fit",
    "predict",
    "ratings_from_fit",
    "recommend",
]

"""Ratings data: the container, scales, splits, MovieLens, the simulators and the embedded dataset."""

from bayesrec.data.movielens import (
    get_data_home,
    load_movielens,
    load_movielens_fold,
    movielens_folds,
)
from bayesrec.data.ratings import Ratings
from bayesrec.data.scale import RatingScale
from bayesrec.data.simulate import (
    load_synthetic,
    simulate_mmsbm,
    simulate_mpma,
    simulate_ratings,
    true_mean,
)
from bayesrec.data.splits import Split, holdout, kfold, leave_k_out, temporal

__all__ = [
    "Ratings",
    "RatingScale",
    "Split",
    "holdout",
    "kfold",
    "leave_k_out",
    "temporal",
    "get_data_home",
    "load_movielens",
    "load_movielens_fold",
    "movielens_folds",
    "load_synthetic",
    "simulate_mmsbm",
    "simulate_mpma",
    "simulate_ratings",
    "true_mean",
]

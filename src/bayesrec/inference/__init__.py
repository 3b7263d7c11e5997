"""Shared inference: fit any model factory by MAP, NUTS, ADVI or Gibbs; predict; recommend.

One module per method (:mod:`~bayesrec.inference.map`, :mod:`~bayesrec.inference.nuts`,
:mod:`~bayesrec.inference.advi`, :mod:`~bayesrec.inference.minibatch`,
:mod:`~bayesrec.inference.gibbs`; EM in :mod:`~bayesrec.inference.em`), a short
dispatcher (:func:`fit`), the one reader of fit records
(:mod:`~bayesrec.inference.record`), prediction, population prediction of unseen
ids, fold-in, similar items and users (:mod:`~bayesrec.inference.similarity`) and saving.
"""

from bayesrec.inference.fit import METHODS, SAMPLERS, fit, method_defaults, method_options
from bayesrec.inference.foldin import fold_in
from bayesrec.inference.io import load_fit, save_fit
from bayesrec.inference.loglik import add_log_likelihood
from bayesrec.inference.predict import expected_ratings, predict, recommend
from bayesrec.inference.record import FitRecord, model_from_fit, ratings_from_fit
from bayesrec.inference.similarity import similar_items, similar_users

__all__ = [
    "METHODS",
    "SAMPLERS",
    "FitRecord",
    "add_log_likelihood",
    "expected_ratings",
    "fit",
    "fold_in",
    "load_fit",
    "method_defaults",
    "method_options",
    "model_from_fit",
    "predict",
    "ratings_from_fit",
    "recommend",
    "save_fit",
    "similar_items",
    "similar_users",
]

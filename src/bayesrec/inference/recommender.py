"""A registered Bayesian model behind the common Recommender interface."""

from __future__ import annotations

from typing import Self

import numpy as np
import xarray as xr

from bayesrec.data.ratings import Ratings
from bayesrec.errors import UnknownIdError
from bayesrec.inference.fit import fit as run_fit
from bayesrec.inference.predict import predict, recommend
from bayesrec.models.base import Recommender
from bayesrec.models.registry import build_model

__all__ = ["BayesianRecommender"]


class BayesianRecommender(Recommender):
    """Build a registered model on the training ratings and fit it with one method.

    Parameters
    ----------
    name : str
        Registry name of the model (``"pmf"``, ``"bpmf"``, ...).
    method : str
        Inference method for :func:`bayesrec.inference.fit`.
    options : dict
        Model (factory) options.
    fit_options : dict
        Method options (draws, tune, chains, ...).
    random_seed : int, optional

    After :meth:`fit`, ``model_`` is the PyMC model and ``fit_`` the DataTree.
    """

    def __init__(self, name: str, *, method: str = "map", options: dict | None = None,
                 fit_options: dict | None = None, random_seed: int | None = None,
                 progressbar: bool = False):
        self.name = name
        self.method = method
        self.options = dict(options or {})
        self.fit_options = dict(fit_options or {})
        self.random_seed = random_seed
        self.progressbar = progressbar
        self.model_ = None
        self.fit_: xr.DataTree | None = None

    def fit(self, train: Ratings) -> Self:
        self.model_ = build_model(self.name, train, **self.options)
        self.fit_ = run_fit(self.model_, self.method, random_seed=self.random_seed,
                            progressbar=self.progressbar, **self.fit_options)
        self.train_ = train
        return self

    def predict_codes(self, user_codes, item_codes, **kwargs) -> xr.Dataset:
        train = self._require_fitted()
        user_codes, item_codes = np.asarray(user_codes), np.asarray(item_codes)
        if (user_codes < 0).any() or (item_codes < 0).any():
            raise UnknownIdError(
                f"{int((user_codes < 0).sum())} user(s) and {int((item_codes < 0).sum())} "
                f"item(s) are unknown to the fitted {self.name} model; predict them by id "
                "with .predict(users, items) to get population predictions"
            )
        return predict(self.fit_, train.users.to_numpy()[user_codes],
                       train.items.to_numpy()[item_codes], model=self.model_,
                       random_seed=self.random_seed, **kwargs)

    def predict(self, users, items, **kwargs) -> xr.Dataset:
        """Predict pairs by raw ids; ids unseen in training get population predictions."""
        self._require_fitted()
        return predict(self.fit_, users, items, model=self.model_,
                       random_seed=self.random_seed, **kwargs)

    def recommend(self, users, n: int = 10, *, exclude_rated: bool = True, **kwargs) -> xr.Dataset:
        self._require_fitted()
        return recommend(self.fit_, users, n, exclude_rated=exclude_rated, model=self.model_,
                         **kwargs)

    def __repr__(self) -> str:
        state = "fitted" if self.fit_ is not None else "not fitted"
        return f"BayesianRecommender({self.name!r}, method={self.method!r}, {state})"

"""Every registered model behind one fit/predict/recommend interface.

:func:`make_recommender` makes a :class:`~bayesrec.models.base.Recommender` for any
registered model: a baseline's own class, or a :class:`BayesianRecommender` that
builds the model with :func:`~bayesrec.models.build_model` and fits it with
:func:`~bayesrec.inference.fit`.  It is what evaluation and the CLI use, and it adds
nothing of its own: ``make_recommender(name, method, random_seed=s).fit(train)``
makes the same fit as ``fit(build_model(name, train), method, random_seed=s)``.
"""

from __future__ import annotations

import inspect
from typing import Self

import numpy as np
import xarray as xr

from bayesrec.data.ratings import Ratings
from bayesrec.errors import UnknownIdError
from bayesrec.inference.fit import fit as run_fit
from bayesrec.inference.fit import method_options
from bayesrec.inference.predict import predict, recommend
from bayesrec.models.base import Recommender
from bayesrec.models.registry import build_model, get_spec

__all__ = ["BayesianRecommender", "make_recommender"]


class BayesianRecommender(Recommender):
    """Build a registered model on the training ratings and fit it with one method.

    Parameters
    ----------
    name : str
        Registry name of the model (``"pmf"``, ``"bpmf"``, ...).
    method : str
        Inference method for :func:`bayesrec.inference.fit`.
    options : dict
        Model (factory) options, a ``preset`` among them if wanted.
    fit_options : dict
        Method options (draws, tune, chains, ...).
    random_seed : int, optional
    progressbar : bool, optional
        As for :func:`bayesrec.inference.fit` (default: automatic).
    max_memory : "auto", int, str or None
        As for :func:`bayesrec.inference.fit` (default: half of this machine's memory).

    After :meth:`fit`, ``model_`` is the PyMC model and ``fit_`` the DataTree.
    Predictions use the seed :func:`~bayesrec.inference.predict` derives from the fit,
    and keep no per-pair draws unless asked (``predict(..., keep_draws=True)``): what
    evaluation scores (mean, median, mode, quantiles) never needs them.
    """

    def __init__(self, name: str, *, method: str = "map", options: dict | None = None,
                 fit_options: dict | None = None, random_seed: int | None = None,
                 progressbar: bool | None = None, max_memory="auto"):
        self.name = name
        self.method = method
        self.options = dict(options or {})
        self.fit_options = dict(fit_options or {})
        self.random_seed = random_seed
        self.progressbar = progressbar
        self.max_memory = max_memory
        self.model_ = None
        self.fit_: xr.DataTree | None = None

    def fit(self, train: Ratings) -> Self:
        self.model_ = build_model(self.name, train, **self.options)
        self.fit_ = run_fit(self.model_, self.method, random_seed=self.random_seed,
                            progressbar=self.progressbar, max_memory=self.max_memory,
                            **self.fit_options)
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
                       train.items.to_numpy()[item_codes], model=self.model_, **kwargs)

    def predict(self, users, items, **kwargs) -> xr.Dataset:
        """Predict pairs by raw ids; ids unseen in training get population predictions."""
        self._require_fitted()
        return predict(self.fit_, users, items, model=self.model_, **kwargs)

    def predict_ratings(self, test: Ratings) -> xr.Dataset:
        """Predict the pairs of ``test``; a model with a day context predicts each on the
        day of its timestamp (see :func:`~bayesrec.inference.predict`)."""
        train = self._require_fitted()
        times = {} if test.timestamp is None else {"timestamps": test.timestamp}
        if train.same_universe(test):
            return self.predict_codes(test.user, test.item, **times)
        return self.predict(test.user_ids, test.item_ids, **times)

    def recommend(self, users, n: int = 10, *, exclude_rated: bool = True, by: str = "mean",
                  threshold: float | None = None, q: float | None = None,
                  **kwargs) -> xr.Dataset:
        """Top-``n`` items per user, ranked ``by`` the posterior (``"mean"``,
        ``"prob_at_least"`` with ``threshold``, ``"quantile"`` with ``q``); see
        :func:`bayesrec.inference.recommend`, which takes the other keywords."""
        self._require_fitted()
        return recommend(self.fit_, users, n, exclude_rated=exclude_rated, model=self.model_,
                         by=by, threshold=threshold, q=q, **kwargs)

    def __repr__(self) -> str:
        state = "fitted" if self.fit_ is not None else "not fitted"
        return f"BayesianRecommender({self.name!r}, method={self.method!r}, {state})"


def make_recommender(name: str, method: str | None = None, *, options: dict | None = None,
                     fit_options: dict | None = None, fast: bool = False,
                     random_seed: int | None = None, progressbar: bool | None = None,
                     max_memory="auto") -> Recommender:
    """A fit/predict :class:`~bayesrec.models.base.Recommender` for any registered model.

    Parameters
    ----------
    name : str
        Registry name.
    method : str, optional
        Inference method for Bayesian models (default: the model's default);
        baselines accept only ``None`` or ``"fit"``.
    options : dict
        Model options (factory keywords, a ``preset``, or baseline constructor keywords).
    fit_options : dict
        Options for :func:`bayesrec.inference.fit` (draws, tune, chains, ...).  The
        model's own settings for the method (its spec's ``fit_defaults``) are applied
        by ``fit`` itself, whatever the entry point.
    fast : bool
        Start from the model's fast settings (demo, tests): its fast model options,
        its fast fit options for the method and, when ``method`` is None, its fast
        method.
    random_seed : int, optional
    progressbar : bool, optional
        For Bayesian models, as for :func:`bayesrec.inference.fit`.
    max_memory : "auto", int, str or None
        For Bayesian models, as for :func:`bayesrec.inference.fit`: the fit is refused
        when its estimated memory is above it (``None``: no check).

    Options are checked here, before any data is touched.
    """
    spec = get_spec(name)
    method = spec.resolve_method(method, fast=fast)
    options = spec.model_options(options, fast=fast)
    if spec.kind == "baseline":
        kwargs = dict(options)
        if "random_seed" in inspect.signature(spec.build).parameters:
            kwargs["random_seed"] = random_seed
        return spec.build(**kwargs)
    fit_options = spec.fit_options(method, fit_options, fast=fast)
    method_options(method, spec=spec, **fit_options)  # check names and values now
    return BayesianRecommender(name, method=method, options=options, fit_options=fit_options,
                               random_seed=random_seed, progressbar=progressbar,
                               max_memory=max_memory)

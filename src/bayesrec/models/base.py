"""The fit/predict/recommend interface shared by baselines and Bayesian models.

:class:`Recommender` is what the evaluation code, the CLI and the contract tests
talk to.  A baseline implements it directly; a Bayesian model reaches it through
:class:`bayesrec.inference.BayesianRecommender`, which builds the model with its
factory and fits it with :func:`bayesrec.inference.fit`.
"""

from __future__ import annotations

import abc
from typing import Self

import numpy as np
import xarray as xr

from bayesrec.data.ids import id_array
from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError
from bayesrec.ranking import check_n, top_n_from_scores

__all__ = ["Recommender"]


class Recommender(abc.ABC):
    """Common interface: ``fit(train)``, ``predict(users, items)``, ``recommend(users)``.

    Ids unknown to the training ratings are handled by each recommender's
    documented policy (baselines fall back to a population value); they never
    index out of bounds.
    """

    #: registry name, set by subclasses
    name: str = "recommender"

    train_: Ratings | None = None

    # -- to implement ---------------------------------------------------------------------------
    @abc.abstractmethod
    def fit(self, train: Ratings) -> Self:
        """Fit to training ratings; returns ``self``."""

    @abc.abstractmethod
    def predict_codes(self, user_codes: np.ndarray, item_codes: np.ndarray) -> xr.Dataset:
        """Predict pairs given by codes of the training universe (-1 = unknown id).

        Returns a prediction dataset (see :mod:`bayesrec.predictions`).
        """

    # -- shared ---------------------------------------------------------------------------------
    def _require_fitted(self) -> Ratings:
        if self.train_ is None:
            raise InputError(f"{type(self).__name__} is not fitted yet; call .fit(train) first")
        return self.train_

    def predict(self, users, items) -> xr.Dataset:
        """Predict ratings for (user, item) pairs given by raw ids (equal-length sequences)."""
        train = self._require_fitted()
        users, items = id_array(users), id_array(items)  # each id keeps its own type
        if users.shape != items.shape:
            raise InputError(
                f"mismatched lengths: {len(users)} users and {len(items)} items; give one user "
                "and one item per pair"
            )
        return self.predict_codes(
            train.user_codes_of(users, unknown="mask"), train.item_codes_of(items, unknown="mask")
        )

    def predict_ratings(self, test: Ratings) -> xr.Dataset:
        """Predict the pairs of ``test`` (for instance a held-out split)."""
        train = self._require_fitted()
        if train.same_universe(test):
            return self.predict_codes(test.user, test.item)
        return self.predict(test.user_ids, test.item_ids)

    def recommend(self, users, n: int = 10, *, exclude_rated: bool = True,
                  batch_size: int = 64) -> xr.Dataset:
        """Top-``n`` items per user by predicted mean rating.

        Returns a Dataset over (user, rank) with the item ids and their predicted
        ``mean`` and ``sd``.  Items the user rated in training are excluded by
        default.
        """
        train = self._require_fitted()
        users = id_array(users)
        ucodes = train.user_codes_of(users, unknown="mask")
        n = check_n(n, train.n_items)
        means = np.empty((len(users), train.n_items))
        sds = np.empty_like(means)
        all_items = np.arange(train.n_items)
        for start in range(0, len(users), batch_size):
            block = ucodes[start:start + batch_size]
            pred = self.predict_codes(np.repeat(block, train.n_items), np.tile(all_items, len(block)))
            means[start:start + len(block)] = pred["mean"].values.reshape(len(block), -1)
            sds[start:start + len(block)] = pred["sd"].values.reshape(len(block), -1)
        return top_n_from_scores(train, users, ucodes, means, sds, n, exclude_rated)

    def __repr__(self) -> str:
        state = "fitted" if self.train_ is not None else "not fitted"
        return f"{type(self).__name__}({state})"

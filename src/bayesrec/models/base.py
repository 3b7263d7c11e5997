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
from bayesrec.ranking import (
    RankBy,
    check_n,
    rank_by,
    scores_from_draws,
    scores_from_levels,
    top_n_from_scores,
)

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

    def ranking_scores(self, user_codes: np.ndarray, item_codes: np.ndarray,
                       rank: RankBy) -> dict[str, np.ndarray]:
        """The score of each pair for a ranking ``rank``, with what a top-N list reports.

        Returns ``score`` (what items are ranked on), ``expected`` (the unclipped
        expected rating, which breaks ties), ``mean`` (the expected rating clipped to
        the scale) and ``sd``.  This default reads :meth:`predict_codes`: ``expected``
        (or ``mean``) for ``by="mean"``; level probabilities ``prob`` or predictive
        draws ``rating`` for the other choices.  Baselines override it with their
        predictive distribution (Normal or uniform).
        """
        train = self._require_fitted()
        pred = self.predict_codes(user_codes, item_codes)
        expected = (pred["expected"] if "expected" in pred else pred["mean"]).values
        if not rank.needs_draws:
            score = expected
        elif "prob" in pred:
            score = scores_from_levels(pred["prob"].values, train.scale.levels, rank)
        elif "rating" in pred:
            draws = pred["rating"].transpose("chain", "draw", "pair").values
            score = scores_from_draws(draws.reshape(-1, draws.shape[-1]), rank,
                                      train.scale.low, train.scale.high, train.scale.levels)
        else:
            raise InputError(f"{type(self).__name__} predicts no distribution to rank by "
                             f"{rank.by!r}; rank by='mean'")
        return {"score": score, "expected": expected, "mean": pred["mean"].values,
                "sd": pred["sd"].values}

    def recommend(self, users, n: int = 10, *, exclude_rated: bool = True,
                  batch_size: int = 64, by: str = "mean", threshold: float | None = None,
                  q: float | None = None) -> xr.Dataset:
        """Top-``n`` items per user, ranked on a score of the predictive distribution.

        ``by`` is ``"mean"`` (the expected rating, not clipped, so that items predicted
        above the top of the scale keep their order), ``"prob_at_least"`` (with
        ``threshold``: the probability that the rating reaches it) or ``"quantile"``
        (with ``q``: a lower predictive quantile); see :mod:`bayesrec.ranking`.  Ties
        are broken by the expected rating, then by item position.

        Returns a Dataset over (user, rank) with the item ids, their predicted
        ``mean`` (clipped to the scale), ``sd`` and the ranking ``score``.  Items the
        user rated in training are excluded by default.  Users are scored
        ``batch_size`` at a time (every item of each).
        """
        train = self._require_fitted()
        rank = rank_by(by, threshold, q)
        users = id_array(users)
        ucodes = train.user_codes_of(users, unknown="mask")
        n = check_n(n, train.n_items)
        all_items = np.arange(train.n_items)
        parts = []
        for start in range(0, len(users), batch_size):
            block = ucodes[start:start + batch_size]
            got = self.ranking_scores(np.repeat(block, train.n_items),
                                      np.tile(all_items, len(block)), rank)
            grid = {k: np.asarray(v, dtype=float).reshape(len(block), -1) for k, v in got.items()}
            parts.append(top_n_from_scores(
                train, users[start:start + batch_size], block, grid["score"], grid["sd"], n,
                exclude_rated, reported=grid["mean"], tiebreak=grid["expected"], rank=rank))
        return xr.concat(parts, dim="user") if len(parts) > 1 else parts[0]

    def __repr__(self) -> str:
        state = "fitted" if self.train_ is not None else "not fitted"
        return f"{type(self).__name__}({state})"

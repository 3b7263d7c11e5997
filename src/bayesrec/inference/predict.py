"""Posterior-predictive ratings and top-N recommendations from any fit.

Prediction swaps the model's data containers (``user_idx``, ``item_idx``) for the
requested pairs with :func:`pymc.set_data` and reruns the model's generative
graph over the posterior draws: nothing model-specific is rebuilt by hand.  A fit
from :func:`bayesrec.inference.fit` carries its model's name, config and training
data, so the model is rebuilt from the fit alone (for instance after loading it
from disk); a fit of a model that :func:`~bayesrec.models.build_model` did not make
predicts given ``model=``.

**Bounded memory.**  Pairs are predicted a block at a time
(:mod:`bayesrec.inference.forward`): a block's draws are summarised
(:class:`bayesrec.predictions.DrawSummary`) and dropped before the next block, so the
working memory is that of one block whatever the number of pairs.  A block holds
``block_size`` pairs; by default as many as keep one array of its draws (samples x
pairs) at :data:`BLOCK_ELEMENTS` numbers (8 MB), for example 5,242 pairs with 200
draws (a MAP fit's plug-in predictive) or 1,048 pairs with 1,000 draws; the few
arrays of that size a block needs (draws of ``mu`` and the rating, their sorted copy)
take about 40 MB.  The result holds about 15 numbers per pair (plus the level
probabilities of categorical models), and the full draws only when asked for
(``keep_draws=True``: two numbers per pair and draw).  Posterior draws are read in
place (thinning picks draws by index, a MAP point is reused rather than tiled), and
the compiled sampling function is cached per model, so repeated predictions do not
pile up compiled code.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from bayesrec.data.ids import id_array
from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError, UnknownIdError
from bayesrec.inference.draws import DrawEvaluator, draw_evaluator, iter_draw_blocks
from bayesrec.inference.forward import forward_sampler, sample_columns
from bayesrec.inference.population import extend_with_new_ids
from bayesrec.inference.progress import quiet_pymc
from bayesrec.inference.record import FitRecord, day_codes_of, swapped_pairs, thin_index
from bayesrec.predictions import DrawSummary
from bayesrec.ranking import (
    RankBy,
    check_n,
    rank_by,
    scores_from_draws,
    scores_from_levels,
    top_n_from_scores,
)

__all__ = ["BLOCK_ELEMENTS", "LEVEL_PROB_DRAWS", "predict", "recommend", "expected_ratings",
           "pair_ids", "pair_times"]

#: Numbers in one array of a block's draws (samples x pairs): 2**20, 8 MB of float64.
BLOCK_ELEMENTS = 2**20
#: Draws (evenly thinned) over which the level probabilities of a continuous likelihood
#: are averaged: the exact mass given each draw varies little between draws (its Monte
#: Carlo error at 250 draws moves a log predictive density by well under 1e-3), while
#: every draw costs one CDF per level edge and pair.  Categorical models' own ``prob``
#: (their whole predictive distribution) uses every draw.
LEVEL_PROB_DRAWS = 250


# ---------------------------------------------------------------------------------------------
# the pairs asked for
# ---------------------------------------------------------------------------------------------
def _as_ids(ids, what: str) -> np.ndarray:
    """Ids as a 1-d array that keeps each id's own type (no conversion between types)."""
    try:
        return id_array(ids)
    except InputError:
        raise InputError(f"{what} ids must be one-dimensional, got shape {np.shape(ids)}") from None


def pair_ids(users=None, items=None, pairs=None) -> tuple[np.ndarray, np.ndarray]:
    """The (user, item) id pairs asked for: ``users=``/``items=`` sequences, or ``pairs=`` a
    :class:`~bayesrec.data.Ratings` (a test split) or a DataFrame with ``user`` and ``item``
    columns."""
    if pairs is not None:
        if users is not None or items is not None:
            raise InputError("give either pairs= or users= and items=, not both")
        if isinstance(pairs, Ratings):
            users, items = pairs.user_ids, pairs.item_ids
        elif isinstance(pairs, pd.DataFrame):
            missing = [c for c in ("user", "item") if c not in pairs.columns]
            if missing:
                raise InputError(f"pairs= as a DataFrame needs columns 'user' and 'item'; it "
                                 f"lacks {missing} (its columns are {list(pairs.columns)})")
            users, items = pairs["user"], pairs["item"]
        else:
            raise InputError(f"pairs= must be a bayesrec.Ratings (a test split) or a DataFrame "
                             f"with 'user' and 'item' columns, got {type(pairs).__name__}")
    if users is None or items is None:
        raise InputError("predict needs users= and items= (equal-length id sequences) or pairs=")
    users, items = _as_ids(users, "user"), _as_ids(items, "item")
    if len(users) != len(items):
        raise InputError(f"mismatched lengths: {len(users)} users and {len(items)} items")
    if len(users) == 0:
        raise InputError("no pairs to predict")
    return users, items


def pair_times(pairs=None, timestamps=None):
    """The times of the pairs asked for: ``timestamps=``, else those of ``pairs=`` (a
    :class:`~bayesrec.data.Ratings`' timestamps, a DataFrame's ``timestamp`` column), or
    None.  They are read (and checked) only by a model with a day context."""
    if timestamps is None and pairs is not None:
        if isinstance(pairs, Ratings):
            timestamps = pairs.timestamp
        elif isinstance(pairs, pd.DataFrame) and "timestamp" in pairs.columns:
            timestamps = pairs["timestamp"].to_numpy()
    return timestamps


def _new_ids(ids: np.ndarray, codes: np.ndarray) -> list:
    return pd.unique(ids[codes < 0]).tolist()


def _warn_population(new_users: list, new_items: list, stacklevel: int = 3,
                     features: bool = False) -> None:
    parts = [f"{len(ids)} {what}(s) ({', '.join(map(repr, ids[:3]))}"
             f"{', ...' if len(ids) > 3 else ''})"
             for what, ids in (("user", new_users), ("item", new_items)) if ids]
    warnings.warn(
        f"{' and '.join(parts)} the fit has never seen: predicted from the population "
        "distribution (wide intervals" + ("; the features given set their prior means"
                                          if features else "")
        + "). Pass unknown='error' to refuse them instead.",
        UserWarning, stacklevel=stacklevel)


def _encode(record: FitRecord, users, items, unknown: str):
    """Codes of the pairs in the fit's universe, and the distinct unknown ids."""
    if unknown not in ("population", "error"):
        raise InputError(f"unknown must be 'population' or 'error', got {unknown!r}")
    train = record.ratings
    ucodes = train.user_codes_of(users, unknown="mask")
    icodes = train.item_codes_of(items, unknown="mask")
    new_users, new_items = _new_ids(users, ucodes), _new_ids(items, icodes)
    if unknown == "error" and (new_users or new_items):
        parts = [f"{what} id(s) {ids[:5]}" + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
                 for what, ids in (("user", new_users), ("item", new_items)) if ids]
        raise UnknownIdError(f"unknown {' and unknown '.join(parts)}: not among the "
                             f"{train.n_users} users and {train.n_items} items this model was "
                             "fitted with")
    return ucodes, icodes, new_users, new_items


# ---------------------------------------------------------------------------------------------
# which posterior draws, without copying them
# ---------------------------------------------------------------------------------------------
class _Draws:
    """The posterior draws a prediction uses, read in place.

    ``positions`` are the draw positions kept in every chain: evenly spaced to keep at
    most ``max_draws`` in all; for a point fit (one draw per chain) the point repeated
    so that ``min_draws`` are used in all (shared between the chains, e.g. MAP
    restarts) and its plug-in predictive samples rating noise.  These are the draws
    of :func:`~bayesrec.inference.record.thin_posterior`; ``index`` numbers them in
    the chain-major order of the posterior's (chain x draw) samples, and nothing is
    copied until :meth:`materialised` is called.
    """

    def __init__(self, posterior: xr.Dataset, max_draws: int | None, min_draws: int = 1):
        n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
        if n_draw == 1 and min_draws > 1:
            self.positions = np.zeros(max(1, -(-min_draws // n_chain)), dtype=int)
        else:
            kept = thin_index(n_chain, n_draw, max_draws)
            self.positions = np.arange(n_draw) if kept is None else kept
        self.index = (np.arange(n_chain)[:, None] * n_draw + self.positions[None, :]).ravel()
        self.shape = (n_chain, len(self.positions))
        self.posterior = posterior

    @property
    def n(self) -> int:
        """The number of samples used (chains x kept draws)."""
        return len(self.index)

    @property
    def tiled(self) -> bool:
        return len(np.unique(self.positions)) < len(self.positions)

    def materialised(self) -> xr.Dataset:
        """The draws as a Dataset of their own (a copy), as ``thin_posterior`` gives them."""
        out = self.posterior.isel(draw=self.positions)
        return out.assign_coords(draw=np.arange(len(self.positions))) if self.tiled else out

    def distinct(self, names) -> xr.Dataset:
        """The distinct draws of the variables ``names`` only (a point is not repeated)."""
        sub = self.posterior[list(names)]
        kept = np.unique(self.positions)
        return sub if len(kept) == sub.sizes["draw"] else sub.isel(draw=kept)


def _stored_draws(record: FitRecord, max_draws, min_draws, new_ids: bool, seed: int,
                  model: pm.Model, new_users: list, new_items: list):
    """The model and draws to predict with; for unseen ids, the model and posterior
    extended by their population draws (see :func:`extend_with_new_ids`)."""
    plan = _Draws(record.fit["posterior"].to_dataset(), max_draws, min_draws)
    if not new_ids:
        return model, plan, None
    with quiet_pymc():
        model, posterior, extended = extend_with_new_ids(
            model, plan.materialised(), new_users, new_items, random_seed=seed)
    return model, _Draws(posterior, None), extended
def _block_size(block_size: int | None, n_samples: int, width: int = 1) -> int:
    """Pairs per block: ``block_size``, or as many as keep ``n_samples x pairs x width``
    at :data:`BLOCK_ELEMENTS` numbers."""
    if block_size is None:
        return max(1, BLOCK_ELEMENTS // max(1, n_samples * width))
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) \
            or block_size < 1:
        raise InputError(f"block_size must be a positive integer or None, got {block_size!r}")
    return int(block_size)


def _prob_evaluator(model: pm.Model, scale) -> DrawEvaluator | None:
    """What gives a prediction's level probabilities: the model's own ``prob`` (categorical
    models), the mass of its continuous rating distribution between the levels' edges
    (discrete scales), or nothing (continuous scales)."""
    if "prob" in model.named_vars:
        return draw_evaluator(model, ("prob",))
    if scale.levels is None:
        return None
    return draw_evaluator(model, (), level_edges=scale.edges)


def _prob_posterior(model: pm.Model, evaluator: DrawEvaluator,
                    draws) -> tuple[xr.Dataset, np.ndarray | None]:
    """The draws the level probabilities average over: every distinct draw for a model's
    own ``prob``, at most :data:`LEVEL_PROB_DRAWS` for a continuous likelihood's masses;
    as the posterior and the draw positions to read from it (None: all), not a copy."""
    posterior = draws.distinct(evaluator.inputs)
    if "prob" in model.named_vars:
        return posterior, None
    return posterior, thin_index(posterior.sizes["chain"], posterior.sizes["draw"],
                                 LEVEL_PROB_DRAWS)


def _posterior_mean(evaluator: DrawEvaluator, name: str,
                    posterior: tuple[xr.Dataset, np.ndarray | None],
                    n_pairs: int) -> np.ndarray:
    """Posterior mean of a deterministic (e.g. the level probabilities ``prob``) for the
    current pairs, over the given draws (a posterior and the positions of the draws to
    use, from :func:`_prob_posterior`), as a running sum over blocks of draws.

    (Level probabilities are pairs x levels per draw: storing them for every draw, or
    for every repeat of a MAP point, would take gigabytes.)
    """
    posterior, positions = posterior
    total, count = 0.0, 0
    for _, out in iter_draw_blocks(posterior[evaluator.inputs], evaluator, n_pairs=n_pairs,
                                   max_elements=BLOCK_ELEMENTS, positions=positions):
        values = out[name]
        total = total + values.sum(axis=(0, 1))
        count += values.shape[0] * values.shape[1]
    return total / count


def _extended(record: FitRecord, model: pm.Model, draws: _Draws, new_users: list,
              new_items: list, seed: int, user_features=None, item_features=None):
    """The model and draws extended by the population draws of unseen ids."""
    with quiet_pymc():
        model, posterior, extended = extend_with_new_ids(
            model, draws.materialised(), new_users, new_items, random_seed=seed,
            user_features=user_features, item_features=item_features)
    return model, _Draws(posterior, None), extended


def _rating_values(rating: np.ndarray, scale) -> np.ndarray:
    """Rating draws as values (categorical models draw level codes)."""
    if np.issubdtype(rating.dtype, np.integer) and scale.levels is not None:
        return scale.values_of(rating)
    return rating


# ---------------------------------------------------------------------------------------------
# prediction
# ---------------------------------------------------------------------------------------------
def predict(fit: xr.DataTree, users=None, items=None, *, pairs=None,
            model: pm.Model | None = None, max_draws: int | None = 1000,
            point_draws: int = 200, keep_draws: bool = False,
            unknown: str = "population", random_seed: int | None = None,
            block_size: int | None = None, user_features=None,
            item_features=None, timestamps=None) -> xr.Dataset:
    """Posterior-predictive ratings for (user, item) pairs.

    Parameters
    ----------
    fit : DataTree
        A fit from :func:`bayesrec.inference.fit`.
    users, items : sequences of raw ids, equal length
        The pairs to predict.  Or give ``pairs``: a :class:`Ratings` (e.g. a test
        split) or a DataFrame with ``user`` and ``item`` columns.
    model : pm.Model, optional
        The fitted model; rebuilt from the fit when omitted (needed for fits of
        models that :func:`~bayesrec.models.build_model` did not make).
    max_draws : int or None
        Use at most this many posterior draws in all (evenly thinned).
    point_draws : int
        For point fits (MAP: one draw per chain), the number of predictive
        draws sampled around the point (the plug-in predictive).
    keep_draws : bool
        Also return the per-draw ``mu`` and ``rating`` arrays (dims chain, draw,
        pair): two numbers per pair and draw (320 MB for 20,000 pairs and 1,000
        draws), so they are kept only when asked for.  The summaries never need them.
    unknown : {"population", "error"}
        Users or items the fit has never seen: predict them from the population
        distribution (their variables drawn from the model given each posterior
        draw's hyperparameters, see :mod:`bayesrec.inference.population`; the
        uncertainty is correspondingly wide), with a warning that names them, or
        raise :class:`UnknownIdError`.  Ids are matched by value and type: ``"1"``
        is not the user ``1``, and asking for it raises an error that says so.
    random_seed : int, optional
        Seed of the predictive draws; by default one derived from the fit's own seed,
        so that repeated calls give the same numbers.
    block_size : int, optional
        Pairs predicted at once (see the module docstring): by default as many as
        keep one array of a block's draws at :data:`BLOCK_ELEMENTS` (2**20) numbers,
        8 MB.  The same seed and block size give the same numbers; predictions that
        fit in one block are those of :func:`pymc.sample_posterior_predictive` with
        the same seed.
    user_features, item_features : DataFrame, optional
        For a model with side information (``user_features`` / ``item_features``
        options): the features of ids the fit has never seen, as DataFrames indexed by
        id with the columns of the info table the model was fitted with.  A new id then
        gets its own prior mean (``X_new @ coefficients``) per posterior draw.  Without
        them the ``user_info`` / ``item_info`` of the model's ratings are used (when the
        model in memory was built from ratings that have them); an id with no row at
        all is predicted as the average of the population, with a warning.
    timestamps : array-like, optional
        For a model with a day context (``context="day"``): the time of each pair (Unix
        seconds, datetime64, ``datetime`` objects or ISO 8601 strings; timezone-aware
        times count in UTC, see :func:`bayesrec.data.context.day_labels`); by default
        those of ``pairs=`` (a Ratings' timestamps, a DataFrame's ``timestamp`` column).
        A pair on a day the fit has not seen, or without a time (NaN, NaT or None), is
        predicted with the population of days (the ``"unseen"`` day slot, whose
        variables keep their prior), with a warning.  Other models ignore times.

    Returns
    -------
    xarray.Dataset
        The prediction format of :mod:`bayesrec.predictions`: ``mean`` (the
        posterior mean of the expected rating, clipped to the scale), ``expected``
        (the same, not clipped), ``median``, ``mode``, ``sd``, ``quantiles`` of the
        predictive rating (clipped to the scale, as its draws are); ``prob`` for
        categorical models; with ``keep_draws`` the draws ``mu``/``rating``
        (chain, draw, pair).
    """
    record = FitRecord(fit)
    users, items = pair_ids(users, items, pairs)
    times = pair_times(pairs, timestamps)
    ucodes, icodes, new_users, new_items = _encode(record, users, items, unknown)
    seed = record.default_seed("predict") if random_seed is None else random_seed
    model = record.model(model)
    scale = record.scale
    draws = _Draws(record.fit["posterior"].to_dataset(), max_draws, point_draws)
    prob_draws = _Draws(draws.posterior, max_draws)  # level probabilities: distinct draws
    if new_users or new_items:
        _warn_population(new_users, new_items,
                         features=user_features is not None or item_features is not None)
        model, draws, extended = _extended(record, model, draws, new_users, new_items, seed,
                                           user_features, item_features)
        prob_draws = draws
        ucodes, icodes = extended.user_codes_of(users), extended.item_codes_of(items)
    dcodes = day_codes_of(model, times, len(users))
    categorical = "prob" in model.named_vars
    # A categorical model's level probabilities are its whole predictive distribution (and
    # its mu is their mean): without keep_draws, no rating needs to be drawn.
    sampled = keep_draws or not categorical
    if sampled:
        sampler = forward_sampler(model, draws.posterior)
        sampler.reseed(seed)
        columns = sample_columns(draws.posterior, sampler.inputs)
    prob_of = _prob_evaluator(model, scale)
    if prob_of is not None:
        prob_posterior = _prob_posterior(model, prob_of, prob_draws)
    n = len(users)
    step = _block_size(block_size, draws.n)
    summary = DrawSummary(n, scale, with_prob=prob_of is not None, keep_draws=keep_draws,
                          n_chain=draws.shape[0], n_draw=draws.shape[1],
                          categorical=categorical)
    for start in range(0, n, step):
        where = slice(start, min(n, start + step))
        with swapped_pairs(model, ucodes[where], icodes[where],
                           None if dcodes is None else dcodes[where]), quiet_pymc():
            out = (sampler.draws(columns, where.stop - where.start, draws.index) if sampled
                   else None)
            prob = (_posterior_mean(prob_of, "prob", prob_posterior, where.stop - where.start)
                    if prob_of is not None else None)
        if out is None:
            summary.add_levels(where, prob)
        else:
            summary.add(where, _rating_values(out["rating"], scale), mu=out["mu"], prob=prob)
        del out
    return summary.dataset(users, items, attrs={
        "model": record.model_name, "method": record.method, "n_draws": int(draws.n)})


# ---------------------------------------------------------------------------------------------
# expected ratings of every item, and recommendations
# ---------------------------------------------------------------------------------------------
def _mu_moments(model: pm.Model, posterior: xr.Dataset, ucodes: np.ndarray,
                icodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and sd (ddof 1) of ``mu`` over the given draws, for the given pairs,
    from running sums over blocks of draws (vectorised over the draws of a block)."""
    evaluator = draw_evaluator(model, ("mu",))
    total = np.zeros(len(ucodes))
    total_sq = np.zeros(len(ucodes))
    count = 0
    with swapped_pairs(model, ucodes, icodes):
        for _, out in iter_draw_blocks(posterior[evaluator.inputs], evaluator,
                                       n_pairs=len(ucodes), max_elements=BLOCK_ELEMENTS):
            mu = out["mu"].reshape(-1, len(ucodes))
            total += mu.sum(0)
            total_sq += np.square(mu).sum(0)
            count += mu.shape[0]
    mean = total / count
    var = np.maximum(total_sq / count - mean * mean, 0.0) * (count / max(count - 1, 1))
    return mean, np.sqrt(var)


class _ItemScorer:
    """Scores of every item for blocks of users, under one ranking choice."""

    def __init__(self, record: FitRecord, users: np.ndarray, *, model, max_draws,
                 point_draws: int, unknown: str, rank: RankBy, seed: int):
        known, _, new_users, _ = _encode(record, users, np.array([], dtype=object), unknown)
        self.known_codes, self.rank = known, rank
        self.model = record.model(model)
        self.scale, self.n_items = record.scale, record.ratings.n_items
        min_draws = point_draws if rank.needs_draws else 1
        self.draws = _Draws(record.fit["posterior"].to_dataset(), max_draws, min_draws)
        self.codes = known
        if new_users:  # point fits are repeated so that the population draws vary
            _warn_population(new_users, [], stacklevel=5)
            if not rank.needs_draws:
                self.draws = _Draws(self.draws.posterior, max_draws, min(max_draws or 50, 50))
            self.model, self.draws, extended = _extended(
                record, self.model, self.draws, new_users, [],
                record.default_seed("population"))
            self.codes = extended.user_codes_of(users)
        if rank.needs_draws:
            self.sampler = forward_sampler(self.model, self.draws.posterior)
            self.sampler.reseed(seed)
            self.columns = sample_columns(self.draws.posterior, self.sampler.inputs)
        self.seed = int(seed)
        # level probabilities rank categorical models, and "rating >= threshold" of every
        # model on a discrete scale (the masses predict reports, not a count of draws)
        self.by_levels = ("prob" in self.model.named_vars
                          or (rank.by == "prob_at_least" and self.scale.levels is not None))

    def users_per_block(self, block_size: int | None) -> int:
        """Users whose items make one block of pairs (at least one user)."""
        samples = self.draws.n if self.rank.needs_draws else 1
        return max(1, _block_size(block_size, samples) // self.n_items)

    def _user_draws(self, codes: np.ndarray) -> dict[str, np.ndarray]:
        """Predictive draws of every item for the users ``codes`` (the model's pairs are
        theirs), each user's from its own stream seeded by (seed, user): a user's ranking
        does not depend on which other users are asked for with it."""
        n = self.n_items
        parts = []
        for code in codes:
            self.sampler.reseed(int(np.random.SeedSequence([self.seed, int(code)])
                                    .generate_state(1)[0]))
            with swapped_pairs(self.model, np.full(n, code), np.arange(n)):
                parts.append(self.sampler.draws(self.columns, n, self.draws.index))
        return {name: np.concatenate([p[name] for p in parts], axis=-1) for name in parts[0]}

    def scores(self, codes: np.ndarray) -> dict[str, np.ndarray]:
        """``score``, ``expected`` and ``sd`` (of the expected rating), users x items."""
        ucodes = np.repeat(codes, self.n_items)
        icodes = np.tile(np.arange(self.n_items), len(codes))
        if not self.rank.needs_draws:
            posterior = self.draws.distinct(draw_evaluator(self.model, ("mu",)).inputs)
            expected, sd = _mu_moments(self.model, posterior, ucodes, icodes)
            score = expected
        else:
            with swapped_pairs(self.model, ucodes, icodes), quiet_pymc():
                out = self._user_draws(codes)
                if self.by_levels:
                    evaluator = _prob_evaluator(self.model, self.scale)
                    prob = _posterior_mean(evaluator, "prob",
                                           _prob_posterior(self.model, evaluator, self.draws),
                                           len(ucodes))
            mu = out["mu"]
            expected = mu.mean(0)
            sd = mu.std(0, ddof=1) if mu.shape[0] > 1 else np.zeros(len(ucodes))
            score = (scores_from_levels(prob, self.scale.levels, self.rank) if self.by_levels
                     else scores_from_draws(_rating_values(out["rating"], self.scale), self.rank,
                                            self.scale.low, self.scale.high,
                                            self.scale.levels))
        shape = (len(codes), self.n_items)
        return {"score": score.reshape(shape), "expected": expected.reshape(shape),
                "sd": sd.reshape(shape)}


def expected_ratings(fit: xr.DataTree, users=None, *, model: pm.Model | None = None,
                     max_draws: int | None = 200, batch_pairs: int | None = None,
                     unknown: str = "population") -> tuple:
    """Posterior mean and sd of the expected rating ``mu`` for every item, per user.

    Returns ``(user_codes, mean, sd)`` with ``mean``/``sd`` of shape (users, items)
    and the users' codes in the fit's universe (-1 for users it has never seen,
    whose expected ratings come from the population distribution, see
    :func:`predict`).  ``mean`` is not clipped to the scale.  Batched over users
    (``batch_pairs`` pairs at a time, by default as many as the block size of
    :func:`predict` allows); the work per batch is vectorised over pairs and draws.
    """
    record = FitRecord(fit)
    users = record.users.to_numpy() if users is None else _as_ids(users, "user")
    scorer = _ItemScorer(record, users, model=model, max_draws=max_draws, point_draws=1,
                         unknown=unknown, rank=RankBy(), seed=0)
    per_block = scorer.users_per_block(batch_pairs)
    mean = np.empty((len(users), scorer.n_items))
    sd = np.empty_like(mean)
    for start in range(0, len(users), per_block):
        got = scorer.scores(scorer.codes[start:start + per_block])
        mean[start:start + per_block], sd[start:start + per_block] = got["expected"], got["sd"]
    return scorer.known_codes, mean, sd


def recommend(fit: xr.DataTree, users, n: int = 10, *, exclude_rated: bool = True,
              model: pm.Model | None = None, max_draws: int | None = 200,
              unknown: str = "population", by: str = "mean", threshold: float | None = None,
              q: float | None = None, point_draws: int = 200,
              random_seed: int | None = None, block_size: int | None = None) -> xr.Dataset:
    """Top-``n`` items for one or many users, ranked on the posterior.

    ``by`` chooses the ranking score (see :mod:`bayesrec.ranking`):

    * ``"mean"`` (default): the posterior mean of the expected rating, **not clipped**
      to the scale, so that items predicted above its top keep their order;
    * ``"prob_at_least"`` with ``threshold``: the posterior-predictive probability that
      the user's rating reaches ``threshold`` (e.g. ``threshold=4``);
    * ``"quantile"`` with ``q``: the ``q`` quantile of the predictive rating (e.g.
      ``q=0.1``, a cautious ranking), not clipped.

    The last two sample predictive draws (``max_draws`` posterior draws, or
    ``point_draws`` around a point fit's point, seeded by ``random_seed``, by default
    one derived from the fit's).  Ties in the score are broken by the expected rating,
    then by item position.  Each item is reported with its expected rating clipped to
    the scale (``mean``), the posterior ``sd`` of the expected rating (uncertainty about
    the user's taste, not rating noise) and its ranking ``score``.  Items the user
    rated in training are excluded by default.  ``unknown`` is as for :func:`predict`.
    Users are scored a block at a time (``block_size`` pairs, as for :func:`predict`,
    but at least one user's items).  A model with a day context ranks for a day the fit
    has not seen (the population of days: the ``"unseen"`` day slot).
    """
    record = FitRecord(fit)
    rank = rank_by(by, threshold, q)
    scalar = np.ndim(users) == 0
    users = _as_ids(users, "user")
    repeated = pd.unique(users[pd.Index(users).duplicated()]).tolist()
    if repeated:
        warnings.warn(f"users lists {len(repeated)} id(s) more than once "
                      f"({', '.join(map(repr, repeated[:3]))}{', ...' if len(repeated) > 3 else ''}"
                      "): each repeat gets the same recommendations again", UserWarning,
                      stacklevel=2)
    train = record.ratings
    n = check_n(n, train.n_items)
    seed = record.default_seed("recommend") if random_seed is None else random_seed
    scorer = _ItemScorer(record, users, model=model, max_draws=max_draws,
                         point_draws=point_draws, unknown=unknown, rank=rank, seed=seed)
    per_block = scorer.users_per_block(block_size)
    parts = []
    for start in range(0, len(users), per_block):
        block = slice(start, start + per_block)
        got = scorer.scores(scorer.codes[block])
        parts.append(top_n_from_scores(
            train, users[block], scorer.known_codes[block], got["score"], got["sd"], n,
            exclude_rated, reported=train.scale.clip(got["expected"]),
            tiebreak=got["expected"], rank=rank))
    out = xr.concat(parts, dim="user") if len(parts) > 1 else parts[0]
    return out.isel(user=0) if scalar else out

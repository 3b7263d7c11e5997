"""Interpretation helpers for the MMSBM: simulation, memberships, rating patterns, label matching.

Group labels are exchangeable: two restarts (or chains) that found the same
solution number their groups differently.  :func:`align_groups` permutes each
chain's labels onto a reference chain (Hungarian matching of memberships) so that
chains can be compared or averaged, and :func:`match_groups` does the same
against known memberships (simulation tests).  Convergence and agreement claims
should still rest on predictions and log-likelihood, not on these tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr
from scipy.optimize import linear_sum_assignment

from bayesrec.data.ratings import Ratings
from bayesrec.data.scale import RatingScale
from bayesrec.errors import InputError
from bayesrec.models._common import check_positive, check_positive_int

__all__ = [
    "simulate_mmsbm",
    "match_groups",
    "best_chain",
    "align_groups",
    "memberships",
    "rating_patterns",
    "level_probabilities_np",
    "package_probabilities",
]


def level_probabilities_np(theta, eta, p, user, item) -> np.ndarray:
    """P(r = level | u, i) for pairs (codes ``user``, ``item``): pairs x levels (NumPy)."""
    n_user_groups, n_item_groups, n_levels = p.shape
    flat = np.asarray(theta)[user] @ np.asarray(p).reshape(n_user_groups, -1)
    return (flat.reshape(len(user), n_item_groups, n_levels)
            * np.asarray(eta)[item][:, :, None]).sum(axis=1)


def simulate_mmsbm(n_users: int, n_items: int, n_ratings: int, *, n_user_groups: int = 3,
                   n_item_groups: int = 3, scale: RatingScale | Sequence[float] | str = "1-5",
                   membership_concentration: float = 0.2, p_concentration: float = 0.3,
                   seed: int | None = 0) -> tuple[Ratings, dict[str, np.ndarray]]:
    """Ratings drawn from the MMSBM's generative process, with the true parameters.

    Draws ``theta_u ~ Dirichlet(c)``, ``eta_i ~ Dirichlet(c)`` (``c`` =
    ``membership_concentration``; small values give nearly pure memberships),
    ``p_kl ~ Dirichlet(p_concentration)``, then ``n_ratings`` distinct (user, item)
    pairs uniformly at random and, for each, a user group ``k ~ theta_u``, an item
    group ``l ~ eta_i`` and a rating level ``r ~ p_kl``.

    Returns
    -------
    ratings : Ratings
        User and item ids are ``0..n_users-1`` and ``0..n_items-1`` (codes equal ids).
    truth : dict
        ``theta`` (users x K), ``eta`` (items x L), ``p`` (K x L x levels).
    """
    n_users, n_items = check_positive_int(n_users, "n_users"), check_positive_int(n_items, "n_items")
    n_ratings = check_positive_int(n_ratings, "n_ratings", maximum=n_users * n_items)
    n_user_groups = check_positive_int(n_user_groups, "n_user_groups")
    n_item_groups = check_positive_int(n_item_groups, "n_item_groups")
    membership_concentration = check_positive(membership_concentration, "membership_concentration")
    p_concentration = check_positive(p_concentration, "p_concentration")
    scale = RatingScale.coerce(scale, None)
    if scale.levels is None:
        raise InputError("simulate_mmsbm needs a discrete scale (levels), got a continuous one")
    levels = np.asarray(scale.levels)
    rng = np.random.default_rng(seed)
    theta = rng.dirichlet(np.full(n_user_groups, membership_concentration), n_users)
    eta = rng.dirichlet(np.full(n_item_groups, membership_concentration), n_items)
    p = rng.dirichlet(np.full(len(levels), p_concentration), (n_user_groups, n_item_groups))
    pairs = rng.choice(n_users * n_items, size=n_ratings, replace=False)
    user, item = pairs // n_items, pairs % n_items
    k = _draw_categorical(theta[user], rng)
    l = _draw_categorical(eta[item], rng)  # noqa: E741 (the paper's notation)
    level = _draw_categorical(p[k, l], rng)
    ratings = Ratings.from_arrays(user, item, levels[level], scale=scale,
                                  user_ids=np.arange(n_users), item_ids=np.arange(n_items))
    return ratings, {"theta": theta, "eta": eta, "p": p}


def _draw_categorical(prob: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cdf = np.cumsum(prob, axis=-1)
    u = rng.random(prob.shape[0])[:, None] * cdf[:, -1:]
    return np.minimum((cdf < u).sum(axis=-1), prob.shape[-1] - 1)


def match_groups(estimate, reference) -> np.ndarray:
    """The permutation of ``estimate``'s groups that best matches ``reference``'s.

    Both are memberships (nodes x groups, same shape).  Returns ``perm`` such
    that ``estimate[:, perm]`` is aligned with ``reference`` (maximum total
    overlap ``sum_n estimate[n, perm[g]] * reference[n, g]``, Hungarian method).
    """
    estimate, reference = np.asarray(estimate), np.asarray(reference)
    if estimate.shape != reference.shape:
        raise InputError(f"memberships of different shapes: {estimate.shape} and {reference.shape}")
    overlap = reference.T @ estimate  # (reference group, estimate group)
    rows, cols = linear_sum_assignment(-overlap)
    return cols[np.argsort(rows)]


def best_chain(fit: xr.DataTree) -> int:
    """The chain with the highest training log-likelihood (MAP restarts), else the highest
    mean log density (samplers), else 0."""
    if "optimizer_result" in fit.children:
        report = fit["optimizer_result"].to_dataset()
        kept = np.flatnonzero(report["kept"].values)
        return int(np.argmax(report["log_likelihood"].values[kept]))
    if "sample_stats" in fit.children and "lp" in fit["sample_stats"].to_dataset():
        return int(fit["sample_stats"].to_dataset()["lp"].mean("draw").argmax("chain"))
    return 0


def _posterior(fit) -> xr.Dataset:
    if isinstance(fit, xr.DataTree):
        if "posterior" not in fit.children:
            raise InputError("expected a fit (a DataTree with a posterior group)")
        fit = fit["posterior"].to_dataset()
    missing = [v for v in ("theta", "eta", "p") if v not in fit]
    if missing:
        raise InputError(f"not an MMSBM posterior: it has no {missing}")
    return fit


def align_groups(fit, reference: int | None = None) -> xr.Dataset:
    """The posterior with every chain's group labels permuted onto the ``reference`` chain.

    ``reference`` defaults to :func:`best_chain` (for a DataTree) or chain 0.
    Labels are matched by the posterior-mean memberships (users for the user
    groups, items for the item groups); ``p`` is permuted accordingly, so every
    chain's predictions are unchanged.
    """
    if reference is None:
        reference = best_chain(fit) if isinstance(fit, xr.DataTree) else 0
    post = _posterior(fit)
    mean = post[["theta", "eta"]].mean("draw")
    ref_theta, ref_eta = mean["theta"].isel(chain=reference), mean["eta"].isel(chain=reference)
    chains = []
    for c in range(post.sizes["chain"]):
        perm_k = match_groups(mean["theta"].isel(chain=c).values, ref_theta.values)
        perm_l = match_groups(mean["eta"].isel(chain=c).values, ref_eta.values)
        one = post.isel(chain=[c])
        one = one.assign(
            theta=one["theta"].isel(user_group=perm_k).assign_coords(user_group=post["user_group"]),
            eta=one["eta"].isel(item_group=perm_l).assign_coords(item_group=post["item_group"]),
            p=one["p"].isel(user_group=perm_k, item_group=perm_l).assign_coords(
                user_group=post["user_group"], item_group=post["item_group"]),
        )
        chains.append(one)
    return xr.concat(chains, dim="chain")


def memberships(fit, *, chain: int | str = "best") -> xr.Dataset:
    """User and item memberships, ``theta (chain, draw, user, user_group)`` and ``eta``.

    ``chain``: an index, ``"best"`` (:func:`best_chain`) or ``"all"`` (every chain,
    labels aligned on the best one by :func:`align_groups`).  Labelled with the
    users' and items' own ids.
    """
    post = _select(fit, chain)
    return post[["theta", "eta"]]


def _select(fit, chain) -> xr.Dataset:
    post = _posterior(fit)
    if chain == "all":
        return align_groups(fit)
    if chain == "best":
        chain = best_chain(fit) if isinstance(fit, xr.DataTree) else 0
    if not isinstance(chain, (int, np.integer)) or not 0 <= chain < post.sizes["chain"]:
        raise InputError(f"chain must be 'best', 'all' or an index below "
                         f"{post.sizes['chain']}, got {chain!r}")
    return post.isel(chain=[int(chain)])


def rating_patterns(fit, *, chain: int | str = "best") -> xr.Dataset:
    """The K x L table of rating patterns, averaged over draws (and aligned chains).

    Returns a Dataset over ``user_group``, ``item_group`` (and ``rating_level``):

    * ``p``: the rating distribution of each pair of groups (posterior mean);
    * ``expected_rating``: its mean rating, ``sum_r r p_kl(r)``, and
      ``expected_rating_sd``, its posterior sd (0 for a MAP restart);
    * ``user_group_size``, ``item_group_size``: expected numbers of users and
      items in each group (column sums of the memberships).
    """
    post = _select(fit, chain)
    levels = post["rating_level"].astype(float)
    expected = (post["p"] * levels).sum("rating_level")
    sample = ("chain", "draw")
    n = post.sizes["chain"] * post.sizes["draw"]
    return xr.Dataset({
        "p": post["p"].mean(sample),
        "expected_rating": expected.mean(sample),
        "expected_rating_sd": expected.std(sample, ddof=1) if n > 1 else expected.mean(sample) * 0,
        "user_group_size": post["theta"].sum("user").mean(sample),
        "item_group_size": post["eta"].sum("item").mean(sample),
    })


def package_probabilities(em, train, test) -> np.ndarray:
    """The ``mmsbm`` package's restart-averaged P(r | u, i) for every pair of ``test``.

    ``em`` is a fitted ``mmsbm.MMSBM`` on ``train`` (ids as given to it); users or items
    it never saw get uniform memberships, as bayesrec's model does (prior mean).
    Returns (pairs, levels) in ``train.scale.levels`` order.
    """
    handler = em.data_handler

    def codes(mapping: dict, universe, c) -> np.ndarray:  # unseen ids: the extra last row
        return np.array([mapping.get(str(x), len(mapping)) for x in universe])[c]

    users = codes(handler.obs_dict, train.users, test.user)
    items = codes(handler.items_dict, train.items, test.item)
    # the package keys levels by their string form, as it read them from the data
    labels = [str(v) for v in pd.Series(train.scale.levels).astype(train.rating.dtype)]
    levels = [handler.ratings_dict[x] for x in labels]
    out = []
    for run in em.results:
        n_k, n_l = run["theta"].shape[1], run["eta"].shape[1]
        theta = np.vstack([run["theta"], np.full(n_k, 1 / n_k)])
        eta = np.vstack([run["eta"], np.full(n_l, 1 / n_l)])
        out.append(level_probabilities_np(theta, eta, run["pr"][:, :, levels], users, items))
    return np.mean(out, axis=0)

"""Reading an MMSBM fit: memberships, rating patterns, label matching, the package's EM.

Group labels are exchangeable: two restarts (or chains) that found the same
solution number their groups differently.  :func:`align_groups` permutes each
chain's labels onto a reference chain (Hungarian matching of memberships) so that
chains can be compared or averaged, and :func:`match_groups` does the same
against known memberships (simulation tests).  Convergence and agreement claims
should still rest on predictions and log-likelihood, not on these tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy.optimize import linear_sum_assignment

from bayesrec.errors import InputError
from bayesrec.inference.record import posterior_of

__all__ = [
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
    post = posterior_of(fit)
    missing = [v for v in ("theta", "eta", "p") if v not in post]
    if missing:
        raise InputError(f"not an MMSBM posterior: it has no {missing}")
    return post


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

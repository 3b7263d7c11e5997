"""``fold_in``: new users' ratings folded into a PMF / BPMF fit, against known truth.

* The distribution of a new user's folded-in variables against the Gaussian
  conditional implied by the model's own log-density (``compile_logp`` of the model on
  training + new ratings, every other variable at one posterior draw): the
  log-density is quadratic in the user's coordinates, so finite differences give its
  precision and mean exactly (as in ``tests/test_gibbs.py``).
* Held-out ratings of simulated new users: folded in, clearly better than the
  population prediction and close to a refit that includes them.
* Errors, determinism, and the fit contract (known variables untouched, the data
  and id universe extended, save and load).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from bayesrec import InputError, Ratings, UnknownIdError
from bayesrec.data.simulate import simulate_ratings
from bayesrec.inference import (
    fit,
    fold_in,
    load_fit,
    predict,
    ratings_from_fit,
    recommend,
    save_fit,
)
from bayesrec.inference.record import content_hash
from bayesrec.metrics import rmse
from bayesrec.models import build_model


def _split_users(ratings: Ratings, new_users) -> tuple[Ratings, Ratings]:
    """(ratings of the other users, with every item kept; ratings of ``new_users``)."""
    df = ratings.to_dataframe()
    is_new = df["user"].isin(new_users).to_numpy()
    old, new = df[~is_new], df[is_new]
    train = Ratings.from_arrays(old["user"], old["item"], old["rating"], scale=ratings.scale,
                                item_ids=ratings.items)
    return train, Ratings.from_arrays(new["user"], new["item"], new["rating"],
                                      scale=ratings.scale)


def _combined(train: Ratings, new: Ratings) -> Ratings:
    """Training ratings followed by the new ones, the new users appended to the universe."""
    users = train.users.append(new.users)
    return Ratings(user=np.concatenate([train.user, users.get_indexer(new.user_ids)]),
                   item=np.concatenate([train.item, train.items.get_indexer(new.item_ids)]),
                   rating=np.concatenate([train.rating, new.rating]), users=users,
                   items=train.items, scale=train.scale)


# -------------------------------------------------------------------------------------------
# the conditional against the model's log-density
# -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    ratings, _ = simulate_ratings(n_users=20, n_items=12, n_ratings=150, n_factors=2,
                                  noise_sd=0.5, scale=None, seed=3)
    newcomer = int(ratings.users[np.argmax(ratings.user_counts())])  # the most ratings
    return _split_users(ratings, [newcomer])


def _quadratic_fit(logp, point, keys, indices, h=0.5):
    """Precision and maximiser of ``logp`` along the coordinates ``(key, index)``.

    ``logp`` is exactly quadratic there, so central differences are exact (the
    helper of ``tests/test_gibbs.py``).
    """
    def at(delta):
        p = {k: np.array(v, dtype=float) for k, v in point.items()}
        for key, idx, d in zip(keys, indices, delta, strict=True):
            p[key][idx] += d
        return logp(p)

    eye = np.eye(len(keys)) * h
    grad = np.array([(at(e) - at(-e)) / (2 * h) for e in eye])
    hess = np.array([[(at(a + b) - at(a - b) - at(b - a) + at(-a - b)) / (4 * h * h)
                      for b in eye] for a in eye])
    x0 = np.array([point[k][idx] for k, idx in zip(keys, indices, strict=True)])
    return -hess, x0 + np.linalg.solve(-hess, grad)


def _value_point(model, values: dict) -> dict:
    """A PyMC point from constrained values, by the model's own transforms."""
    rvs = model.free_RVs
    outs = [rv if model.rvs_to_transforms.get(rv) is None
            else model.rvs_to_transforms[rv].forward(rv, *rv.owner.inputs) for rv in rvs]
    fn = model.compile_fn(outs, inputs=rvs, on_unused_input="ignore", point_fn=False,
                          mode="FAST_COMPILE")
    out = fn(*[values[rv.name] for rv in rvs])
    return {model.rvs_to_values[rv].name: np.asarray(v) for rv, v in zip(rvs, out, strict=True)}


def _pinned(base: xr.DataTree, draw: int, n: int, method: str) -> xr.DataTree:
    """``base`` with its posterior replaced by ``n`` copies of one draw (one chain).

    The new users' fold-in draws are then independent draws from one conditional.
    """
    out = base.copy()
    post = base["posterior"].to_dataset().isel(chain=[0], draw=[draw] * n)
    out["posterior"] = xr.DataTree(post.assign_coords(draw=np.arange(n)))
    out.attrs["method"] = method
    return out


@pytest.mark.parametrize("name, options", [
    ("pmf", {}),
    ("bpmf", {"parameterisation": "centered"}),
    ("bpmf", {}),  # non-centred: the standardised factors are stored
])
def test_fold_in_draws_from_the_models_conditional(tiny, name, options):
    train, new = tiny
    user = new.users[0]
    base = fit(build_model(name, train, n_factors=2, **options), "gibbs", random_seed=2,
               draws=4, tune=30, chains=1)
    n = 4000
    folded = fold_in(_pinned(base, 3, n, "gibbs"), new, random_seed=5)
    post = folded["posterior"].to_dataset()
    centred = "user_factors_std" not in post
    factors = "user_factors" if centred else "user_factors_std"

    # brute force: the model on train + new ratings, everything else at draw 3
    model = build_model(name, _combined(train, new), n_factors=2, **options)
    draw = post.isel(chain=0, draw=0)
    values = {rv.name: draw[rv.name].values for rv in model.free_RVs}
    point = _value_point(model, values)
    row = train.n_users  # the new user comes after the training users
    keys, indices = [factors, factors, "user_bias"], [(row, 0), (row, 1), row]
    prec, mean = _quadratic_fit(model.compile_logp(mode="FAST_COMPILE"), point, keys, indices)

    # the n fold-in draws, whitened by the brute-force conditional, are standard normal
    theta = np.column_stack([post[factors].sel(user=user).values[0],
                             post["user_bias"].sel(user=user).values[0]])
    white = (theta - mean) @ np.linalg.cholesky(prec)
    assert np.abs(white.mean(axis=0)).max() < 4.5 / np.sqrt(n)
    np.testing.assert_allclose(np.cov(white.T), np.eye(3), atol=0.08)
    if not centred:  # the stored factors are the standardised ones mapped through mean + L z
        chol = np.zeros((2, 2))
        chol[np.tril_indices(2)] = draw["user_factor_chol"].values
        expected = draw["user_factor_mean"].values + theta[:, :2] @ chol.T
        np.testing.assert_allclose(post["user_factors"].sel(user=user).values[0], expected,
                                   rtol=1e-10, atol=1e-12)

    # a point fit (MAP: method "map") gets the conditional mean itself
    point_fit = fold_in(_pinned(base, 3, 1, "map"), new, random_seed=5)["posterior"]
    got = np.append(point_fit[factors].sel(user=user).values[0, 0],
                    point_fit["user_bias"].sel(user=user).values[0, 0])
    np.testing.assert_allclose(got, mean, rtol=1e-7, atol=1e-9)


# -------------------------------------------------------------------------------------------
# against the population prediction and a refit
# -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def newcomers():
    """Simulated PMF data; 6 active users held out, half of their ratings to fold in."""
    ratings, _ = simulate_ratings(n_users=70, n_items=40, n_ratings=1600, n_factors=2,
                                  user_bias_sd=0.6, factor_sd=0.9, noise_sd=0.4, scale=None,
                                  seed=21)
    counts = pd.Series(ratings.user_counts(), index=ratings.users)
    held_out = counts[counts >= 20].index[:6].tolist()
    train, theirs = _split_users(ratings, held_out)
    rng = np.random.default_rng(0)
    to_fold = np.zeros(theirs.n_ratings, dtype=bool)
    for code in range(theirs.n_users):  # half of each user's ratings
        rows = np.flatnonzero(theirs.user == code)
        to_fold[rng.choice(rows, len(rows) // 2, replace=False)] = True
    return train, theirs.subset(to_fold), theirs.subset(~to_fold)


@pytest.fixture(scope="module")
def base_fit(newcomers):
    train, _, _ = newcomers
    return fit(build_model("pmf", train, n_factors=2), "gibbs", random_seed=1, draws=150,
               tune=100, chains=1)


def test_fold_in_predicts_like_a_refit(newcomers, base_fit):
    train, known_ratings, held_out = newcomers
    folded = fold_in(base_fit, known_ratings, random_seed=0)
    refit = fit(build_model("pmf", _combined(train, known_ratings), n_factors=2), "gibbs",
                random_seed=1, draws=150, tune=100, chains=1)
    kw = {"pairs": held_out, "random_seed": 0}
    by_fold_in = predict(folded, unknown="error", **kw)["mean"].values
    by_refit = predict(refit, unknown="error", **kw)["mean"].values
    by_population = predict(base_fit, unknown="population", **kw)["mean"].values
    truth = held_out.rating
    err_fold, err_refit, err_pop = (rmse(truth, p) for p in (by_fold_in, by_refit,
                                                             by_population))
    assert err_fold < 0.6 * err_pop, (err_fold, err_pop)
    assert err_fold == pytest.approx(err_refit, rel=0.05), (err_fold, err_refit)
    assert rmse(by_refit, by_fold_in) < 0.1 * rmse(by_refit, by_population)
    # recommendations for a new user skip the items they rated when folded in
    user = known_ratings.users[0]
    rated = set(known_ratings.items[known_ratings.item[known_ratings.user == 0]])
    top = recommend(folded, user, n=5)
    assert not rated & set(top["item"].values.tolist())


# -------------------------------------------------------------------------------------------
# errors
# -------------------------------------------------------------------------------------------
def test_bad_input_raises(newcomers, base_fit):
    train, known_ratings, _ = newcomers
    df = known_ratings.to_dataframe()
    stranger = Ratings.from_arrays(df["user"], df["item"].where(df.index != 0, 999),
                                   df["rating"], scale=train.scale)
    with pytest.raises(UnknownIdError, match=r"unknown item id\(s\) \[999\]: fold-in needs"):
        fold_in(base_fit, stranger)
    veteran = int(train.users[0])
    mixed = Ratings.from_arrays(np.r_[df["user"], veteran], np.r_[df["item"], 1],
                                np.r_[df["rating"], 3.0], scale=train.scale)
    with pytest.raises(InputError, match=rf"user id\(s\) \[{veteran}\] are already in the fit"):
        fold_in(base_fit, mixed)
    off_scale = Ratings.from_arrays(df["user"], df["item"], df["rating"] + 100.0)
    with pytest.raises(InputError, match="off the fit's scale"):
        fold_in(base_fit, off_scale)
    with pytest.raises(InputError, match="needs the new users' ratings as a bayesrec.Ratings"):
        fold_in(base_fit, df)
    with pytest.raises(InputError, match="random_seed must be a non-negative integer"):
        fold_in(base_fit, known_ratings, random_seed=-1)
    stars, _ = simulate_ratings(n_users=20, n_items=12, n_ratings=150, seed=3)
    mmsbm = fit(build_model("mmsbm", stars), "map", random_seed=0, maxiter=20)
    with pytest.raises(InputError, match=r"fold-in needs a model whose spec declares a factor "
                                         r"structure.*not 'mmsbm'.*unknown='population'"):
        fold_in(mmsbm, known_ratings)
    logistic = base_fit.copy()  # the recorded config (the record's, not the root attrs')
    logistic["bayesrec"].attrs["config"] = json.dumps(
        {**json.loads(base_fit["bayesrec"].attrs["config"]), "link": "logistic"})
    with pytest.raises(InputError, match="fold-in needs link='identity'"):
        fold_in(logistic, known_ratings)


# -------------------------------------------------------------------------------------------
# determinism and the fit contract
# -------------------------------------------------------------------------------------------
def test_same_seed_same_draws_and_known_variables_untouched(newcomers, base_fit, tmp_path):
    train, known_ratings, _ = newcomers
    a = fold_in(base_fit, known_ratings, random_seed=4)
    b = fold_in(base_fit, known_ratings, random_seed=4)
    c = fold_in(base_fit, known_ratings, random_seed=5)
    xr.testing.assert_identical(a["posterior"].to_dataset(), b["posterior"].to_dataset())
    new_users = known_ratings.users.tolist()
    assert not np.allclose(a["posterior"]["user_factors"].sel(user=new_users),
                           c["posterior"]["user_factors"].sel(user=new_users))

    before, after = base_fit["posterior"].to_dataset(), a["posterior"].to_dataset()
    assert after["user"].values.tolist() == train.users.tolist() + new_users
    xr.testing.assert_identical(after.sel(user=train.users.to_numpy()), before)
    assert set(a.children) == set(base_fit.children)
    for group in ("sample_stats",):
        xr.testing.assert_identical(a[group].to_dataset(), base_fit[group].to_dataset())

    data = ratings_from_fit(a)  # the training data now ends with the new ratings
    n = train.n_ratings
    np.testing.assert_array_equal(data.rating, np.r_[train.rating, known_ratings.rating])
    np.testing.assert_array_equal(data.user_ids[n:], known_ratings.user_ids)
    np.testing.assert_array_equal(data.item_ids[n:], known_ratings.item_ids)
    ident = a["bayesrec"].to_dataset()
    assert ident.attrs["hash"] == content_hash(a) == a.attrs["bayesrec_hash"]
    assert ident.attrs["hash"] != base_fit.attrs["bayesrec_hash"]
    record = json.loads(a.attrs["fold_in"])
    assert record == [{"n_users": len(new_users), "n_ratings": known_ratings.n_ratings,
                       "random_seed": 4, "users_set_to": "conditional draws",
                       "base_hash": base_fit.attrs["bayesrec_hash"]}]

    loaded = load_fit(save_fit(a, tmp_path / "folded.nc"))  # checks the new hash
    pairs = {"users": new_users[:2], "items": [1, 2], "random_seed": 0, "unknown": "error"}
    np.testing.assert_array_equal(predict(a, **pairs)["mean"].values,
                                  predict(loaded, **pairs)["mean"].values)

"""Side information and implicit feedback in PMF and BPMF (issue 21, phase 1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bayesrec.data.features import FeatureEncoder, encode_features
from bayesrec.data.ratings import Ratings
from bayesrec.data.simulate import simulate_side_information
from bayesrec.errors import InputError
from bayesrec.inference import fit, fold_in, load_fit, predict, save_fit
from bayesrec.models import build_model

# PMF's default scales follow the rating scale's width (8.5 here): the planted biases and
# factors are about 0.3, so these tests give PMF scales of that size
PRIORS = {"bias_sd": 0.3, "user_factor_sd": 0.3, "item_factor_sd": 0.3}
N_COLD = 60


@pytest.fixture(scope="module")
def simulated():
    return simulate_side_information(300, 200, 4000, seed=0)


def _without_users(ratings: Ratings, drop) -> tuple[Ratings, pd.DataFrame]:
    """Training ratings whose universe lacks the users ``drop``, and their ratings."""
    df = ratings.to_dataframe()
    keep = ~df["user"].isin(drop)
    users = ratings.users.difference(pd.Index(drop))
    train = Ratings.from_arrays(df.user[keep], df.item[keep], df.rating[keep], scale=ratings.scale,
                                user_ids=users, item_ids=ratings.items,
                                user_info=ratings.user_info.loc[users],
                                item_info=ratings.item_info)
    return train, df[~keep]


@pytest.fixture(scope="module")
def cold_split(simulated):
    ratings, _ = simulated
    return _without_users(ratings, ratings.users[:N_COLD].tolist())


@pytest.fixture(scope="module")
def feature_map(cold_split):
    train, _ = cold_split
    model = build_model("pmf", train, n_factors=1, user_features="auto", item_features="auto",
                        priors=PRIORS)
    return model, fit(model, "map", random_seed=1, progressbar=False)


def _interaction_corr(post, truth):
    """Correlation of the estimated and true feature interaction (X_U B_U)(X_I B_I)' (not
    affected by the factors' rotation or scale), and the regression slope."""
    bu = post["user_feature_coef"].mean(("chain", "draw")).values
    bi = post["item_feature_coef"].mean(("chain", "draw")).values
    est = ((truth["user_features"] @ bu) @ (truth["item_features"] @ bi).T).ravel()
    true = ((truth["user_features"] @ truth["user_feature_coef"].to_numpy())
            @ (truth["item_features"] @ truth["item_feature_coef"].to_numpy()).T).ravel()
    return np.corrcoef(est, true)[0, 1], est @ true / (true @ true)


def _bias_contrasts(post) -> tuple[np.ndarray, np.ndarray]:
    """Identified bias effects: users' age, M - F, student; items' action, drama, date."""
    u = post["user_bias_feature_coef"].mean(("chain", "draw")).sel(
        user_feature=["age", "gender=F", "gender=M", "student"]).values
    i = post["item_bias_feature_coef"].mean(("chain", "draw")).sel(
        item_feature=["action", "drama", "release_date"]).values
    return np.array([u[0], u[2] - u[1], u[3]]), i


TRUE_USER_CONTRASTS = np.array([0.4, 0.6, 0.5])
TRUE_ITEM_EFFECTS = np.array([0.5, -0.4, 0.3])


# -- encoding ---------------------------------------------------------------------------------
def test_encoding_rules():
    info = pd.DataFrame({
        "flag": [True, False, True, False],
        "age": [20.0, 30.0, 40.0, np.nan],
        "job": ["a", "b", "a", "a"],
        "title": ["w", "x", "y", "z"],  # near-unique text: dropped
        "when": pd.to_datetime(["1990-01-01", "1995-01-01", "2000-01-01", "2005-01-01"]),
        "constant": [1.5, 1.5, 1.5, 1.5],
    }, index=[10, 11, 12, 13])
    x, names = encode_features(info, [13, 10, 11, 12])
    assert names == ["flag", "age", "job=a", "job=b", "when"]
    assert x[:, 0].tolist() == [0, 1, 0, 1]
    assert x[0, 1] == 0  # a missing number is the mean
    np.testing.assert_allclose(x[1:, 1].mean(), 0, atol=1e-12)
    np.testing.assert_allclose(x[:, 4].std(), 1, atol=1e-12)
    assert x[:, 2].tolist() == [1, 1, 0, 1]
    # rules kept for new rows: same standardisation, an unseen category gives zeros
    enc = FeatureEncoder.from_dict(FeatureEncoder.fit(info, info.index).to_dict())
    new = pd.DataFrame({"flag": [True], "age": [30.0], "job": ["zzz"], "title": ["q"],
                        "when": pd.to_datetime(["1995-01-01"]), "constant": [1.5]}, index=["n"])
    row = enc.transform(new, ["n"])[0]
    assert row[0] == 1 and row[1] == pytest.approx(0.0) and row[2:4].tolist() == [0, 0]


def test_encoding_missing_ids_and_wrong_type():
    info = pd.DataFrame({"age": [20.0, 30.0]}, index=[1, 2])
    with pytest.raises(InputError, match=r"no row for 2 of the 3 users, for example \[3, 4\]"):
        encode_features(info, [1, 3, 4])
    with pytest.raises(InputError, match="must be a pandas DataFrame indexed by user id"):
        encode_features({"age": [1]}, [1])


# -- options at the boundary ------------------------------------------------------------------
def test_auto_dataframe_and_bad_options(simulated):
    ratings, truth = simulated
    model = build_model("bpmf", ratings, n_factors=2, user_features="auto",
                        item_features=ratings.item_info, implicit="both")
    assert list(model.coords["user_feature"]) == ["age", "gender=F", "gender=M", "student"]
    assert list(model.coords["item_feature"]) == ["action", "drama", "release_date"]
    np.testing.assert_allclose(model["user_features"].get_value(), truth["user_features"])
    assert model.named_vars_to_dims["user_feature_coef"] == ("user_feature", "factor")
    assert model.named_vars_to_dims["user_bias_feature_coef"] == ("user_feature",)
    assert model.named_vars_to_dims["item_implicit"] == ("item", "factor")
    assert model.named_vars_to_dims["user_implicit_sum"] == ("user", "factor")
    assert model.named_vars_to_dims["item_implicit_sum"] == ("item", "factor")
    bare = Ratings.from_arrays(ratings.user_ids, ratings.item_ids, ratings.rating,
                               scale=ratings.scale)
    with pytest.raises(InputError, match="reads the ratings' user_info, but these ratings "
                                         "have none"):
        build_model("pmf", bare, user_features="auto")
    with pytest.raises(InputError, match="must be None, 'auto'"):
        build_model("pmf", ratings, user_features="yes")
    with pytest.raises(InputError, match="or a pandas DataFrame indexed by item id, got ndarray"):
        build_model("pmf", ratings, item_features=np.ones((200, 2)))
    with pytest.raises(InputError, match=r"no row for 10 of the 300 users"):
        build_model("pmf", ratings, user_features=ratings.user_info.iloc[10:])
    with pytest.raises(InputError, match=r"implicit must be one of \(None, 'user', 'item', "
                                         r"'both'\), got 'users'"):
        build_model("pmf", ratings, implicit="users")


def test_defaults_unchanged(simulated):
    ratings, _ = simulated
    pmf = build_model("pmf", ratings, n_factors=2)
    assert sorted(pmf.named_vars) == sorted([
        "user_idx", "item_idx", "user_factors", "item_factors", "user_bias", "item_bias",
        "offset", "mu", "sigma", "rating"])
    bpmf = build_model("bpmf", ratings, n_factors=2)
    assert sorted(v.name for v in bpmf.free_RVs) == sorted([
        "user_factor_mean", "user_factor_chol", "user_factors_std", "item_factor_mean",
        "item_factor_chol", "item_factors_std", "bias_sd", "user_bias", "item_bias",
        "offset", "sigma"])
    assert set(pmf.coords) == {"user", "item", "obs", "factor"}


# -- recovery ---------------------------------------------------------------------------------
def test_map_recovers_planted_effects(feature_map, simulated):
    _, truth = simulated
    _, f = feature_map
    users, items = _bias_contrasts(f.posterior)
    np.testing.assert_allclose(users, TRUE_USER_CONTRASTS, atol=0.15)
    np.testing.assert_allclose(items, TRUE_ITEM_EFFECTS, atol=0.15)
    corr, slope = _interaction_corr(f.posterior, truth)
    assert corr > 0.95 and 0.7 < slope < 1.3


@pytest.mark.agreement  # methods against each other: .ci/run's own step
def test_nuts_recovers_bias_effects():
    ratings, _ = simulate_side_information(120, 80, 2000, seed=3)
    model = build_model("pmf", ratings, n_factors=1, user_features="auto",
                        item_features="auto", priors=PRIORS)
    f = fit(model, "nuts", draws=100, tune=150, chains=1, cores=1, random_seed=2,
            progressbar=False)
    users, items = _bias_contrasts(f.posterior)
    np.testing.assert_allclose(users, TRUE_USER_CONTRASTS, atol=0.25)
    np.testing.assert_allclose(items, TRUE_ITEM_EFFECTS, atol=0.25)
    assert "user_feature_coef" in f.posterior and "user_bias_feature_sd" in f.posterior


@pytest.mark.agreement  # methods against each other: .ci/run's own step
def test_advi_runs_on_feature_model():
    ratings, _ = simulate_side_information(120, 80, 2000, seed=4)
    model = build_model("pmf", ratings, n_factors=2, user_features="auto",
                        item_features="auto", implicit="user")
    f = fit(model, "advi", n=1000, draws=20, random_seed=0, progressbar=False)
    assert f.posterior["user_feature_coef"].dims == ("chain", "draw", "user_feature", "factor")
    assert np.isfinite(f.posterior["item_bias_feature_coef"].values).all()


# -- new users --------------------------------------------------------------------------------
def test_cold_start_uses_features(feature_map, cold_split, simulated):
    ratings, _ = simulated
    _, f = feature_map
    _, test = cold_split

    def rmse(p):
        return float(np.sqrt(np.mean((p["mean"].values - test["rating"].values) ** 2)))

    with pytest.warns(UserWarning, match="never seen"):
        with_features = predict(f, pairs=test, user_features=ratings.user_info)
    with pytest.warns(UserWarning, match="have no features, but the model uses user features"):
        without = predict(f, pairs=test)
    assert rmse(with_features) < rmse(without) - 0.15
    assert (with_features["sd"].values > 0).all()  # intervals from the posterior


def test_features_save_and_load_round_trip(feature_map, cold_split, simulated, tmp_path):
    ratings, _ = simulated
    model, f = feature_map
    path = tmp_path / "fit.nc"
    save_fit(f, path)
    loaded = load_fit(path)
    assert loaded.attrs["bayesrec_config"] == f.attrs["bayesrec_config"]
    train_pairs = model.bayesrec_info.ratings.to_dataframe().iloc[:50]
    a = predict(f, pairs=train_pairs, random_seed=0)
    b = predict(loaded, pairs=train_pairs, random_seed=0)
    np.testing.assert_allclose(a["mean"].values, b["mean"].values)
    cold = cold_split[1].iloc[:40]  # new users, from their features, after loading too
    with pytest.warns(UserWarning, match="the features given set their prior means"):
        a = predict(f, pairs=cold, user_features=ratings.user_info, random_seed=0)
        b = predict(loaded, pairs=cold, user_features=ratings.user_info, random_seed=0)
    np.testing.assert_allclose(a["mean"].values, b["mean"].values)


# -- implicit feedback ------------------------------------------------------------------------
def test_implicit_sets_come_from_training_pairs(simulated):
    ratings, _ = simulated
    half = ratings.subset(np.arange(ratings.n_ratings) % 2 == 0)
    model = build_model("pmf", half, n_factors=1, implicit="user")
    point = model.initial_point()
    y = np.arange(ratings.n_items, dtype=float)[:, None]
    point["item_implicit"] = y
    out = model.replace_rvs_by_values([model["user_implicit_sum"]])[0]
    fn = model.compile_fn(out, inputs=model.value_vars,
                          on_unused_input="ignore")
    got = fn(point)[:, 0]
    expected = np.zeros(ratings.n_users)
    counts = np.bincount(half.user, minlength=ratings.n_users)
    np.add.at(expected, half.user, y[half.item, 0])
    expected /= np.sqrt(np.maximum(counts, 1))
    np.testing.assert_allclose(got, expected)


def test_implicit_fits_by_map_and_helps_when_the_rated_set_has_signal():
    # who rated what carries signal: users keep mostly the ratings of items they like
    ratings, truth = simulate_side_information(300, 200, 9000, seed=5)
    taste = (truth["user_factors"][ratings.user] * truth["item_factors"][ratings.item]).sum(-1)
    rng = np.random.default_rng(0)
    kept = ratings.subset(rng.random(ratings.n_ratings) < np.where(taste > 0, 0.8, 0.15))
    test_mask = rng.random(kept.n_ratings) < 0.2
    train, test = kept.subset(~test_mask), kept.to_dataframe()[test_mask]
    rmse = {}
    for implicit in (None, "user"):
        model = build_model("pmf", train, n_factors=1, implicit=implicit, priors=PRIORS)
        f = fit(model, "map", random_seed=1, progressbar=False)
        p = predict(f, pairs=test)
        rmse[implicit] = float(np.sqrt(np.mean((p["mean"].values - test["rating"].values) ** 2)))
    assert rmse["user"] < rmse[None] + 0.01, rmse


# -- methods that do not support the options yet -----------------------------------------------
def test_fold_in_refuses_implicit(simulated):
    """A new user's implicit sum would need their own rated set: fold-in says so."""
    ratings, _ = simulated
    train, held = _without_users(ratings, ratings.users[:5].tolist())
    model = build_model("pmf", train, n_factors=1, implicit="user", priors=PRIORS)
    f = fit(model, "map", random_seed=1, progressbar=False)
    new = Ratings.from_arrays(held.user, held.item, held.rating, scale=train.scale)
    with pytest.raises(InputError, match="fold-in does not support implicit='user'"):
        fold_in(f, new)


def test_fold_in_refuses(feature_map, cold_split):
    _, f = feature_map
    train, test = cold_split
    new = Ratings.from_arrays(test.user, test.item, test.rating, scale=train.scale)
    with pytest.raises(InputError, match="fold-in does not support user_features/item_features "
                                         "yet"):
        fold_in(f, new)

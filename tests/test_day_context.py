"""The day of a rating as a factorisation-machine context (``context="day"``, issue 21)."""

from __future__ import annotations

import datetime
import warnings

import numpy as np
import pandas as pd
import pytest

from bayesrec.data.context import UNSEEN_DAY, day_codes, day_labels, day_universe
from bayesrec.data.ratings import Ratings
from bayesrec.data.simulate import simulate_ratings
from bayesrec.data.splits import holdout
from bayesrec.errors import InputError
from bayesrec.inference import fit, fold_in, load_fit, predict, recommend, save_fit
from bayesrec.inference.record import _MODEL_CACHE
from bayesrec.models import build_model
from bayesrec.recommenders import make_recommender

T0 = 874_724_710  # 1997-09-20 03:05:10 UTC
N_DAYS = 20


def test_day_labels_are_utc_dates():
    stamps = np.array([T0, T0 + 86_400, T0 - 3 * 3600 - 311, T0 + 21 * 3600])
    assert day_labels(stamps).tolist() == ["1997-09-20", "1997-09-21", "1997-09-19",
                                           "1997-09-21"]
    assert day_labels(stamps.astype("datetime64[s]")).tolist() == day_labels(stamps).tolist()
    days = day_universe(stamps)
    assert days == ["1997-09-19", "1997-09-20", "1997-09-21", UNSEEN_DAY]
    assert day_codes(["1997-09-21", "2001-01-01", UNSEEN_DAY], days).tolist() == [2, 3, 3]
    with pytest.raises(InputError, match="Unix seconds"):
        day_labels(np.array(["yesterday"]))


def test_day_labels_read_every_way_a_time_is_written():
    """Numbers, datetime64, datetime objects (timezone-aware ones in UTC), ISO strings and
    pandas' timezone-aware Series give the same UTC days; a missing time is None."""
    want = ["1997-09-20", "1997-09-21"]
    stamps = np.array([T0, T0 + 86_400])
    east = datetime.timezone(datetime.timedelta(hours=5))
    aware = [datetime.datetime.fromtimestamp(float(t), tz=east) for t in stamps]
    assert day_labels(aware).tolist() == want  # 08:05 at +05:00 is 03:05 UTC
    assert day_labels([a.replace(tzinfo=None) - datetime.timedelta(hours=5)
                       for a in aware]).tolist() == want  # naive datetimes are UTC
    assert day_labels(["1997-09-20T03:05:10Z", "1997-09-21"]).tolist() == want
    series = pd.Series(pd.to_datetime(stamps, unit="s", utc=True)).dt.tz_convert("US/Eastern")
    assert day_labels(series).tolist() == want
    assert day_labels([T0, None]).tolist() == [want[0], None]
    assert day_labels(np.array([np.nan, T0])).tolist() == [None, want[0]]
    assert day_labels(np.array(["NaT", "1997-09-20"], dtype="datetime64[s]")).tolist() == [
        None, want[0]]
    assert day_labels([np.datetime64("NaT")]).tolist() == [None]  # NaT without a unit
    with pytest.raises(InputError, match="milliseconds"):
        day_labels(stamps * 1000)
    with pytest.raises(InputError, match="mix numbers"):  # pandas would read T0 as nanoseconds
        day_labels([T0, aware[0]])
    with pytest.raises(InputError, match="could not read '874724710'"):
        day_labels([str(T0)])
    with pytest.raises(InputError, match="no time"):
        day_universe(np.array([T0, np.nan]))


@pytest.fixture(scope="module")
def planted():
    """Continuous ratings of a biased MF plus planted day effects ``e_d + (U_u + V_i) . D_d``
    on 20 days, split 80/20 at random."""
    base, truth = simulate_ratings(200, 150, 6000, scale=None, seed=1)
    rng = np.random.default_rng(0)
    day = rng.integers(0, N_DAYS, base.n_ratings)
    bias = rng.normal(0.0, 0.6, N_DAYS)
    factors = rng.normal(0.0, 0.4, (N_DAYS, truth["user_factors"].shape[-1]))
    u, v = truth["user_factors"].values, truth["item_factors"].values
    value = base.rating + bias[day] + ((u[base.user] + v[base.item]) * factors[day]).sum(-1)
    stamps = T0 + day * 86_400 + rng.integers(0, 3600, base.n_ratings)
    ratings = Ratings.from_arrays(base.users.to_numpy()[base.user],
                                  base.items.to_numpy()[base.item], value,
                                  timestamps=stamps, scale=None)
    split = holdout(ratings, 0.2, seed=0)
    return split.train, split.test, bias


@pytest.fixture(scope="module")
def day_map(planted):
    train, _, _ = planted
    model = build_model("pmf", train, n_factors=5, context="day")
    return model, fit(model, "map", random_seed=1, progressbar=False)


def _rmse(pred, test) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(np.sqrt(np.mean((pred["expected"].values - test.rating) ** 2)))


def test_the_model_reads_as_a_factorisation_machine(day_map, planted):
    model, _ = day_map
    train = planted[0]
    days = list(model.coords["day"])
    assert days[-1] == UNSEEN_DAY and len(days) == N_DAYS + 1
    assert model.named_vars_to_dims["day_factors"] == ("day", "factor")
    assert model.named_vars_to_dims["day_bias"] == ("day",)
    assert model.named_vars_to_dims["day_idx"] == ("obs",)
    # no training rating sits on the unseen slot
    assert (model["day_idx"].get_value() < N_DAYS).all()
    assert np.array_equal(model["day_idx"].get_value(),
                          day_codes(day_labels(train.timestamp), days))


def test_planted_day_biases_are_recovered_and_the_days_predict(day_map, planted):
    _, f = day_map
    train, test, bias = planted
    est = f["posterior"]["day_bias"].isel(chain=0, draw=0).values
    assert np.corrcoef(est[:N_DAYS], bias)[0, 1] > 0.95
    assert abs(est[-1]) < 0.05  # the unseen day keeps its prior mode
    without = fit(build_model("pmf", train, n_factors=5), "map", random_seed=1,
                  progressbar=False)
    with_days, plain = _rmse(predict(f, pairs=test), test), _rmse(predict(without, pairs=test), test)
    assert with_days < plain - 0.2, (with_days, plain)


def test_a_pair_is_predicted_on_its_own_day(day_map, planted):
    _, f = day_map
    _, test, bias = planted
    user, item = test.user_ids[:1].repeat(2), test.item_ids[:1].repeat(2)
    lo, hi = int(np.argmin(bias)), int(np.argmax(bias))
    got = predict(f, users=user, items=item, timestamps=[T0 + lo * 86_400, T0 + hi * 86_400])
    post = f["posterior"].isel(chain=0, draw=0)
    days = post["day_bias"].values
    assert got["expected"].values[1] - got["expected"].values[0] == pytest.approx(
        days[hi] - days[lo] + float(
            (post["user_factors"].sel(user=user[0]) + post["item_factors"].sel(item=item[0]))
            @ (post["day_factors"].isel(day=hi) - post["day_factors"].isel(day=lo))), abs=1e-6)


def test_unseen_days_and_missing_times_fall_back_to_the_population(day_map, planted):
    _, f = day_map
    _, test, _ = planted
    users, items = test.user_ids[:3], test.item_ids[:3]
    with pytest.warns(UserWarning, match="no timestamps"):
        none = predict(f, users=users, items=items)
    with pytest.warns(UserWarning, match="3 pair\\(s\\) on 1 day\\(s\\) the fit has not seen"):
        later = predict(f, users=users, items=items, timestamps=[T0 + 400 * 86_400] * 3)
    np.testing.assert_allclose(none["expected"].values, later["expected"].values)
    frame = pd.DataFrame({"user": users, "item": items,
                          "timestamp": test.timestamp[:3]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the days are known: no warning
        known = predict(f, pairs=frame)
    assert not np.allclose(known["expected"].values, none["expected"].values)
    # a missing time (NaN) among known ones: that pair alone falls back, with a warning
    times = test.timestamp[:3].astype(float)
    times[1] = np.nan
    with pytest.warns(UserWarning, match="1 pair\\(s\\) without a time"):
        mixed = predict(f, users=users, items=items, timestamps=times)
    np.testing.assert_allclose(mixed["expected"].values[[0, 2]], known["expected"].values[[0, 2]])
    np.testing.assert_allclose(mixed["expected"].values[1], none["expected"].values[1])


def test_evaluation_scores_each_pair_on_its_own_day(day_map, planted):
    """The recommender behind evaluate() and the CLI predicts a test split on its days: the
    same numbers as predict(fit, pairs=test), without a warning (the days are known)."""
    _, f = day_map
    train, test, _ = planted
    rec = make_recommender("pmf", "map", options={"n_factors": 5, "context": "day"},
                           random_seed=1, progressbar=False).fit(train)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scored = rec.predict_ratings(test)
        direct = predict(f, pairs=test)
    np.testing.assert_allclose(scored["expected"].values, direct["expected"].values,
                               rtol=1e-6, atol=1e-6)


def test_models_without_a_day_ignore_times(planted):
    train, test, _ = planted
    f = fit(build_model("pmf", train, n_factors=3), "map", random_seed=1, progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        odd = predict(f, users=test.user_ids[:3], items=test.item_ids[:3], timestamps=["x"])
        plain = predict(f, users=test.user_ids[:3], items=test.item_ids[:3])
    np.testing.assert_array_equal(odd["expected"].values, plain["expected"].values)


def test_population_day_widens_a_posterior_prediction(planted):
    train, test, _ = planted
    f = fit(build_model("pmf", train, n_factors=5, context="day"), "advi", n=3000, draws=100,
            random_seed=2, progressbar=False)
    users, items = test.user_ids[:20], test.item_ids[:20]
    known = predict(f, users=users, items=items, timestamps=test.timestamp[:20])
    with pytest.warns(UserWarning, match="not seen"):
        unseen = predict(f, users=users, items=items, timestamps=[T0 - 86_400] * 20)
    # the unseen slot's bias and factors keep their prior: more spread in every prediction
    assert (unseen["sd"].values > known["sd"].values).mean() > 0.9


def test_saved_fit_rebuilds_the_same_days(day_map, planted, tmp_path):
    _, f = day_map
    _, test, _ = planted
    before = predict(f, pairs=test)
    save_fit(f, tmp_path / "fit.nc")
    _MODEL_CACHE.clear()
    after = predict(load_fit(tmp_path / "fit.nc"), pairs=test)
    np.testing.assert_array_equal(before["expected"].values, after["expected"].values)
    assert recommend(load_fit(tmp_path / "fit.nc"), pd.unique(test.user_ids)[:2], n=3).sizes["rank"] == 3


def test_refusals_in_plain_words(planted, day_map):
    train, _, _ = planted
    plain = Ratings(user=train.user, item=train.item, rating=train.rating, users=train.users,
                    items=train.items, scale=train.scale)
    with pytest.raises(InputError, match="needs the time of each rating, but these ratings have none"):
        build_model("pmf", plain, context="day")
    with pytest.raises(InputError, match="context must be one of"):
        build_model("bpmf", train, context="week")
    _, f = day_map
    with pytest.raises(InputError, match="context='day'"):
        fold_in(f, train)


def test_bpmf_and_minibatch_advi_take_the_day(planted):
    train, test, _ = planted
    fits = {ctx: fit(build_model("bpmf", train, n_factors=3, context=ctx), "advi", n=3000,
                     draws=100, random_seed=3, progressbar=False) for ctx in (None, "day")}
    assert fits["day"]["posterior"]["day_factors"].dims == ("chain", "draw", "day", "factor")
    # measured: 1.095 with the days, 1.371 without
    assert _rmse(predict(fits["day"], pairs=test), test) < _rmse(
        predict(fits[None], pairs=test), test) - 0.15
    # day_idx is a data container along obs: minibatch ADVI slices it with the pairs
    f = fit(build_model("pmf", train, n_factors=3, context="day"), "minibatch_advi", n=1000,
            draws=50, random_seed=3, progressbar=False)
    assert np.isfinite(_rmse(predict(f, pairs=test), test))

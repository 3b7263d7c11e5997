"""Rankings a Bayesian analyst can trust: an item everyone loves comes first, items predicted
above the top of the scale keep their order, and rankings can use the posterior (``by=``).

The data are simulated on a 1..5 scale with an item planted that 40 of 60 users rate 5, a
few good items, and ten *keen* users who rate everything 5: for them several items are
expected above 5, which clipping to the scale would tie at 5.0 (and the tie would then be
broken by item id: the planted item, last in the id universe, would not come first).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from bayesrec import InputError, Ratings
from bayesrec.data.simulate import simulate_ratings
from bayesrec.inference import fit, predict, recommend
from bayesrec.models import build_model
from bayesrec.ranking import RankBy, rank_by, scores_from_levels
from bayesrec.recommenders import make_recommender

BY = [("mean", {}), ("prob_at_least", {"threshold": 4}), ("quantile", {"q": 0.1})]
BY_IDS = [b for b, _ in BY]


@pytest.fixture(scope="module")
def planted():
    ratings, _ = simulate_ratings(n_users=60, n_items=40, n_ratings=1500, seed=5)
    df = ratings.to_dataframe()[["user", "item", "rating"]]
    users, items = ratings.users.to_numpy(), ratings.items.to_numpy()
    keen = users[50:]
    good = np.isin(df["item"], items[:8])
    df.loc[good, "rating"] = np.maximum(df.loc[good, "rating"], 4.0)
    df.loc[df["user"].isin(keen), "rating"] = 5.0
    fans = pd.DataFrame({"user": users[:40], "item": "planted", "rating": 5.0})
    df = pd.concat([df, fans], ignore_index=True)
    train = Ratings.from_arrays(df["user"].to_numpy(), df["item"].to_numpy(),
                                df["rating"].to_numpy(), scale="1-5")
    assert train.items[-1] == "planted"  # last in the universe: ties by id would rank it last
    return train, keen


@pytest.fixture(scope="module")
def biases(planted):
    return make_recommender("biases").fit(planted[0])


@pytest.fixture(scope="module")
def pmf_map(planted):
    model = build_model("pmf", planted[0], n_factors=2)
    return fit(model, "map", random_seed=1, progressbar=False)


def _non_fans(planted):
    train, keen = planted
    return np.concatenate([train.users.to_numpy()[40:50], keen])


@pytest.mark.parametrize(("by", "extra"), BY, ids=BY_IDS)
def test_planted_item_ranks_first_for_baselines(planted, biases, by, extra):
    top = biases.recommend(_non_fans(planted), n=5, by=by, **extra)
    assert (top["item"].values[:, 0] == "planted").all()
    assert top.attrs["by"] == by
    assert (np.diff(top["score"].values, axis=1) <= 0).all()


@pytest.mark.parametrize(("by", "extra"), BY, ids=BY_IDS)
def test_planted_item_ranks_first_for_bayesian_fits(planted, pmf_map, by, extra):
    top = recommend(pmf_map, _non_fans(planted), n=5, by=by, **extra)
    assert (top["item"].values[:, 0] == "planted").all()
    assert (np.diff(top["score"].values, axis=1) <= 0).all()
    assert top["score"].attrs["long_name"] == rank_by(by, **extra).label


def test_ties_above_the_scale_follow_the_expected_rating_not_the_id(planted, biases, pmf_map):
    train, keen = planted
    for top in (biases.recommend(keen, n=5), recommend(pmf_map, keen, n=5)):
        means, scores = top["mean"].values, top["score"].values
        above = scores > 5.0  # ranked on the unclipped expectation ...
        assert (above.sum(1) >= 2).sum() >= 5  # (ties at 5.0 to break for most keen users)
        assert (means[above] == 5.0).all()  # ... and reported clipped to the scale
        assert (np.diff(scores, axis=1) < 0).all()
        np.testing.assert_allclose(means, np.minimum(scores, 5.0))
    # the keen user's unclipped baseline predictions, ranked by hand
    user = keen[0]
    unrated = [i for i in train.items if not train.rated_mask()[
        train.user_codes_of([user])[0], train.item_codes_of([i])[0]]]
    expected = biases.predict([user] * len(unrated), unrated)["expected"].values
    order = np.argsort(-expected, kind="stable")[:5]
    assert list(biases.recommend(user, n=5)["item"].values[0]) == [unrated[k] for k in order]


def test_baseline_scores_are_those_of_its_normal_predictive(planted, biases):
    _, keen = planted
    user = keen[:1]
    loc = biases.predict(list(user) * 2, ["planted", "planted"])["expected"].values[0]
    sd = biases.residual_sd_
    prob = biases.recommend(user, n=1, by="prob_at_least", threshold=4)
    # "rating >= 4" on the 1..5 scale: levels 4 and 5, the mass above 3.5 (as predict's prob)
    assert prob["score"].item() == pytest.approx(stats.norm.sf((3.5 - loc) / sd))
    low = biases.recommend(user, n=1, by="quantile", q=0.1)
    assert low["score"].item() == pytest.approx(loc + sd * stats.norm.ppf(0.1))
    assert low["mean"].item() == 5.0


def test_posterior_scores_agree_with_the_predictive_draws(planted, pmf_map):
    """``prob_at_least`` and ``quantile`` are those of predict's draws of the same pairs."""
    train, keen = planted
    user = keen[0]
    top = recommend(pmf_map, user, n=3, by="prob_at_least", threshold=4, random_seed=2)
    draws = predict(pmf_map, [user] * 3, list(top["item"].values), keep_draws=True,
                    random_seed=2)["rating"].values.reshape(-1, 3)
    # the same predictive (200 draws of the plug-in), different random numbers: agree to MC
    np.testing.assert_allclose(top["score"].values, (draws >= 4).mean(0), atol=0.12)
    assert ((top["score"].values >= 0) & (top["score"].values <= 1)).all()


def test_score_ties_are_broken_by_the_expected_rating(planted, pmf_map):
    """Every item has P(rating >= 1) = 1: they come by expected rating."""
    _, keen = planted
    top = recommend(pmf_map, keen[:3], n=12, by="prob_at_least", threshold=1, point_draws=20,
                    exclude_rated=False)
    for row in range(3):
        scores, means = top["score"].values[row], top["mean"].values[row]
        expected = predict(pmf_map, [keen[row]] * 12, list(top["item"].values[row]))["expected"]
        tied = scores == scores[0]
        assert tied.sum() >= 3
        assert (np.diff(expected.values[tied]) <= 0).all()
        assert (means <= 5).all()


def test_categorical_scores_read_the_level_probabilities():
    prob = np.array([[0.1, 0.1, 0.2, 0.3, 0.3], [0.0, 0.0, 0.0, 0.5, 0.5],
                     [0.5, 0.2, 0.1, 0.1, 0.1]])
    levels = [1, 2, 3, 4, 5]
    np.testing.assert_allclose(scores_from_levels(prob, levels, rank_by("prob_at_least",
                                                                        threshold=4)),
                               [0.6, 1.0, 0.2])
    np.testing.assert_allclose(scores_from_levels(prob, levels, rank_by("quantile", q=0.25)),
                               [3, 4, 1])
    np.testing.assert_allclose(scores_from_levels(prob, levels, RankBy()), prob @ levels)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"by": "median"}, r"by must be one of \['mean', 'prob_at_least', 'quantile'\]"),
    ({"by": "prob_at_least"}, "needs threshold="),
    ({"by": "quantile"}, "needs q="),
    ({"by": "quantile", "q": 1.5}, "q must lie strictly between 0 and 1"),
    ({"by": "prob_at_least", "threshold": "4"}, "threshold must be a number"),
    ({"by": "mean", "q": 0.1}, "only apply to"),
])
def test_bad_ranking_choices_are_refused(planted, biases, pmf_map, kwargs, message):
    user = planted[1][:1]
    with pytest.raises(InputError, match=message):
        biases.recommend(user, n=3, **kwargs)
    with pytest.raises(InputError, match=message):
        recommend(pmf_map, user, n=3, **kwargs)

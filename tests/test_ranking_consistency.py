"""Rankings agree with predictions, and a user's ranking is the user's own.

Found by a new user: ``recommend(..., by="prob_at_least", threshold=4)`` ranked a user
differently depending on the other users in the call (one random stream shared by the
block), and its probabilities counted draws above 4 while ``predict``'s level
probabilities give level 4 the mass above 3.5.
"""

from __future__ import annotations

import numpy as np
import pytest

from bayesrec import InputError
from bayesrec.data.simulate import simulate_ratings
from bayesrec.inference import fit, predict, recommend
from bayesrec.models import build_model


@pytest.fixture(scope="module")
def advi_fit():
    ratings, _ = simulate_ratings(60, 40, 1500, seed=1)
    return fit(build_model("pmf", ratings, n_factors=2), "advi", n=500, draws=100,
               random_seed=1)


@pytest.mark.parametrize("by, extra", [("prob_at_least", {"threshold": 4}),
                                       ("quantile", {"q": 0.1})])
def test_a_users_ranking_does_not_depend_on_the_other_users(advi_fit, by, extra):
    alone = recommend(advi_fit, users=[1], n=5, by=by, **extra).sel(user=1)
    among = recommend(advi_fit, users=[3, 1, 2], n=5, by=by, **extra).sel(user=1)
    np.testing.assert_array_equal(alone["item"].values, among["item"].values)
    np.testing.assert_array_equal(alone["score"].values, among["score"].values)


def test_prob_at_least_is_the_mass_of_the_levels_predict_reports(advi_fit):
    top = recommend(advi_fit, users=[1], n=5, by="prob_at_least", threshold=4).sel(user=1)
    items = top["item"].values
    pred = predict(advi_fit, users=[1] * len(items), items=items)
    mass = pred["prob"].sel(rating_level=[4.0, 5.0]).sum("rating_level").values
    np.testing.assert_allclose(top["score"].values, mass, rtol=0, atol=1e-11)


def test_loo_is_refused_for_a_point_fit():
    ratings, _ = simulate_ratings(20, 15, 200, seed=1)
    with pytest.raises(InputError, match="gives a point, not a posterior"):
        fit(build_model("pmf", ratings, n_factors=2), "map", log_likelihood=True)

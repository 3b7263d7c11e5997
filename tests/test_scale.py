"""RatingScale: constructors, inference, coercion, queries and their errors."""

from __future__ import annotations

import numpy as np
import pytest

from bayesrec import Ratings, RatingScale
from bayesrec.errors import InputError


def test_integers_and_stars_levels():
    assert RatingScale.integers(1, 5).levels == (1.0, 2.0, 3.0, 4.0, 5.0)
    half = RatingScale.stars(0.5, 5.0, 0.5)
    assert half.levels == tuple(np.arange(1, 11) / 2)
    assert (half.low, half.high, half.n_levels) == (0.5, 5.0, 10)
    assert half.is_discrete and half.width == 4.5


def test_from_levels_sorts():
    assert RatingScale.from_levels([3, 1, 2]).levels == (1.0, 2.0, 3.0)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: RatingScale.integers(5, 1), "integers\\(\\) needs integer low < high"),
        (lambda: RatingScale.integers(1.5, 5), "integers\\(\\) needs integer low < high"),
        (lambda: RatingScale.stars(1, 5, 0), "step > 0"),
        (lambda: RatingScale.stars(1, 5, 0.75), "not a multiple of the step"),
        (lambda: RatingScale.from_levels([3]), "at least two levels"),
        (lambda: RatingScale.from_levels([]), "at least two levels"),
        (lambda: RatingScale.from_levels([1, 1, 2]), "strictly increasing"),
        (lambda: RatingScale.from_levels([1, np.inf]), "must be finite"),
        (lambda: RatingScale.interval(5, 1), "finite low < high"),
        (lambda: RatingScale.interval(0, np.inf), "finite low < high"),
    ],
)
def test_constructor_errors(build, message):
    with pytest.raises(InputError, match=message):
        build()


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2, 5, 3], RatingScale.integers(1, 5)),
        ([0.5, 1.0, 4.5, 5.0], RatingScale.stars(0.5, 5.0, 0.5)),
        ([1.5, 2.5, 3.0], RatingScale.stars(1.5, 3.0, 0.5)),
        ([0.1, 0.2, 0.7], RatingScale.from_levels([0.1, 0.2, 0.7])),
        (np.linspace(-1, 1, 25), RatingScale.interval(-1, 1)),
    ],
)
def test_infer(values, expected):
    assert RatingScale.infer(np.asarray(values)) == expected


def test_infer_constant_ratings_is_an_error():
    with pytest.raises(InputError, match="every rating equals 4.0; pass scale= explicitly"):
        RatingScale.infer(np.array([4, 4, 4]))


def test_coerce():
    scale = RatingScale.integers(1, 5)
    assert RatingScale.coerce(scale) is scale
    assert RatingScale.coerce("1-5") == scale
    assert RatingScale.coerce("0-10") == RatingScale.integers(0, 10)
    assert RatingScale.coerce([1, 2, 3, 4, 5]) == scale
    assert RatingScale.coerce(None, np.array([1.0, 3.0])) == RatingScale.integers(1, 3)


@pytest.mark.parametrize(
    ("scale", "message"),
    [
        ("one to five", "scale string must look like '1-5'"),
        ("0.5-5", "must name integer ends low < high"),  # was silently read as 0..5
        ("5-1", "must name integer ends low < high"),
        (5, "scale must be a RatingScale, a list of levels"),
    ],
)
def test_coerce_errors(scale, message):
    with pytest.raises(InputError, match=message):
        RatingScale.coerce(scale)


def test_coerce_none_without_values():
    with pytest.raises(InputError, match="cannot infer a rating scale from no ratings"):
        RatingScale.coerce(None)


def test_contains_codes_snap_clip():
    scale = RatingScale.stars(0.5, 5.0, 0.5)
    values = np.array([0.5, 1.0, 1.25, 5.0, 5.5, 3.0 + 1e-12])
    np.testing.assert_array_equal(scale.contains(values), [1, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(scale.codes([0.5, 3.0, 5.0]), [0, 5, 9])
    np.testing.assert_array_equal(scale.nearest_codes([0.0, 1.3, 9.0]), [0, 2, 9])
    np.testing.assert_array_equal(scale.snap([0.1, 2.2, 7.0]), [0.5, 2.0, 5.0])
    np.testing.assert_array_equal(scale.values_of([0, 9]), [0.5, 5.0])
    np.testing.assert_array_equal(scale.clip([-1.0, 2.2, 7.0]), [0.5, 2.2, 5.0])
    with pytest.raises(InputError, match="1 rating\\(s\\) are off the scale"):
        scale.codes([1.0, 1.25])


def test_continuous_scale():
    scale = RatingScale.interval(-2, 2)
    assert not scale.is_discrete
    np.testing.assert_array_equal(scale.contains([-2, 0.3, 2.5]), [True, True, False])
    np.testing.assert_array_equal(scale.snap([-3.0, 0.3]), [-2.0, 0.3])
    with pytest.raises(InputError, match="n_levels needs a discrete rating scale"):
        _ = scale.n_levels
    with pytest.raises(InputError, match="codes needs a discrete rating scale"):
        scale.codes([0.0])


@pytest.mark.parametrize(
    "scale",
    [RatingScale.integers(1, 5), RatingScale.stars(), RatingScale.interval(-1.5, 2.0)],
)
def test_dict_round_trip(scale):
    assert RatingScale.from_dict(scale.to_dict()) == scale


def test_str():
    assert str(RatingScale.integers(1, 5)) == "{1, 2, 3, 4, 5}"
    assert str(RatingScale.stars()) == "{0.5, 1, ..., 5}"
    assert str(RatingScale.interval(0, 1)) == "[0, 1]"


def test_half_star_ratings():
    r = Ratings.from_arrays([1, 1, 2], [1, 2, 1], [0.5, 4.5, 3.0], scale=RatingScale.stars())
    assert r.scale.n_levels == 10
    np.testing.assert_array_equal(r.level_codes, [0, 8, 5])
    inferred = Ratings.from_arrays([1, 1, 2], [1, 2, 1], [0.5, 4.5, 3.0])
    assert inferred.scale == RatingScale.stars(0.5, 4.5, 0.5)
    with pytest.raises(InputError, match="off the rating scale"):
        Ratings.from_arrays([1, 2], [1, 1], [0.5, 4.25], scale=RatingScale.stars())


def test_ratings_snap_float_fuzz_to_exact_levels():
    r = Ratings.from_arrays([1, 2], [1, 1], [3.0 + 1e-12, 1.0], scale="1-5")
    assert r.rating[0] == 3.0

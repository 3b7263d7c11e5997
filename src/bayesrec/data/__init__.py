"""Ratings data: the container, scales, splits, MovieLens and the embedded dataset."""

from bayesrec.data.ratings import Ratings
from bayesrec.data.scale import RatingScale

__all__ = ["Ratings", "RatingScale"]

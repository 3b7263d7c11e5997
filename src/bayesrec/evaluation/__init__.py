"""Evaluation: data sets by name, folds, grids of candidates, and their records.

* :mod:`~bayesrec.evaluation.datasets`: ``load_dataset`` ("synthetic", "ml-100k" or
  a file) and ``read_ratings_file``;
* :mod:`~bayesrec.evaluation.folds`: ``evaluate`` a registered model over folds;
* :mod:`~bayesrec.evaluation.grid`: ``grid`` of candidates, ``param_grid``;
* :mod:`~bayesrec.evaluation.records`: JSON records with provenance;
* :mod:`~bayesrec.evaluation.parallel`: the folds on a dask cluster.
"""

from bayesrec.evaluation.datasets import (
    MOVIELENS_FOLDS,
    MOVIELENS_NAMES,
    example_split,
    load_dataset,
    read_ratings_file,
)
from bayesrec.evaluation.folds import FOLD_COLUMNS, EvaluationResult, evaluate
from bayesrec.evaluation.grid import Candidate, GridResult, grid, param_grid
from bayesrec.evaluation.records import jsonable, provenance, versions, write_json

__all__ = [
    "FOLD_COLUMNS",
    "MOVIELENS_FOLDS",
    "MOVIELENS_NAMES",
    "Candidate",
    "EvaluationResult",
    "GridResult",
    "evaluate",
    "example_split",
    "grid",
    "jsonable",
    "load_dataset",
    "param_grid",
    "provenance",
    "read_ratings_file",
    "versions",
    "write_json",
]

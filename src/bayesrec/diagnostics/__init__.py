"""Diagnostics computed from fits, and their plots.

Pure functions from a fit (and data) to xarray objects with named dims:

* :func:`frobenius_norms`: the norm of every factor matrix per (chain, draw);
* :func:`rmse_trace`: per-draw and running RMSE on train and test ratings;
* :func:`convergence_summary`: R-hat, ESS and MCSE of identified quantities
  (norms, log-likelihood, predictions) and the method's own checks, with flags
  in plain words;
* :func:`interval_coverage`, :func:`calibration_table`: coverage of central
  predictive intervals on held-out ratings; :func:`level_reliability`: whether the
  level probabilities (``prob``) mean what they say (a reliability diagram's table);
* :func:`add_diagnostics`: store results in the fit's ``diagnostics`` group;
* :func:`neighbourhood_certainty`: the certainty of each neighbour's similarity
  (:func:`~bayesrec.inference.similar_items`);
* :func:`add_log_likelihood`, :func:`compare_fits`: the pointwise log-likelihood of
  the training ratings (ArviZ's group), and PSIS-LOO / WAIC comparison of sampled fits.

Plots (``plot_*``) return matplotlib figures (:func:`plot_item_neighbourhood`, an
item's ego graph, needs networkx: ``pip install 'bayesrec[graph]'``); :func:`write_report` writes them
as PNGs with a markdown report (``bayesrec report``).
"""

from bayesrec.diagnostics.calibration import (
    FINE_LEVELS,
    calibration_table,
    interval_coverage,
    level_reliability,
)
from bayesrec.diagnostics.convergence import (
    THRESHOLDS,
    ConvergenceReport,
    convergence_quantities,
    convergence_summary,
    rmse_monte_carlo_error,
    sampler_checks,
)
from bayesrec.diagnostics.group import add_diagnostics, compute_diagnostics, get_diagnostics
from bayesrec.diagnostics.neighbours import neighbourhood_certainty, plot_item_neighbourhood
from bayesrec.diagnostics.norms import factor_matrices, frobenius_norms
from bayesrec.diagnostics.plots import (
    comparison_table,
    plot_advi_loss,
    plot_calibration,
    plot_level_reliability,
    plot_method_comparison,
    plot_norm_traces,
    plot_rating_patterns,
    plot_rmse_trace,
    plot_user_predictive,
)
from bayesrec.diagnostics.predictive import PARETO_K_THRESHOLD, compare_fits
from bayesrec.diagnostics.report import baseline_comparison, fit_rmse_row, pick_users, write_report
from bayesrec.diagnostics.traces import RunningRMSE, rmse_trace, rmse_trace_from_draws
from bayesrec.inference.loglik import add_log_likelihood

__all__ = [
    "FINE_LEVELS",
    "PARETO_K_THRESHOLD",
    "THRESHOLDS",
    "ConvergenceReport",
    "RunningRMSE",
    "add_diagnostics",
    "add_log_likelihood",
    "baseline_comparison",
    "calibration_table",
    "level_reliability",
    "compare_fits",
    "comparison_table",
    "compute_diagnostics",
    "convergence_quantities",
    "convergence_summary",
    "rmse_monte_carlo_error",
    "factor_matrices",
    "fit_rmse_row",
    "frobenius_norms",
    "get_diagnostics",
    "interval_coverage",
    "neighbourhood_certainty",
    "pick_users",
    "plot_advi_loss",
    "plot_calibration",
    "plot_level_reliability",
    "plot_item_neighbourhood",
    "plot_method_comparison",
    "plot_norm_traces",
    "plot_rating_patterns",
    "plot_rmse_trace",
    "plot_user_predictive",
    "rmse_trace",
    "rmse_trace_from_draws",
    "sampler_checks",
    "write_report",
]

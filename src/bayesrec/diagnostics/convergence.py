"""A convergence summary that is honest about non-identifiability.

Factor matrices can be rotated (and mixture groups permuted) without changing
the likelihood, so R-hat or ESS of their entries says nothing about whether a
sampler converged.  This summary judges convergence on quantities that are
identified:

* the Frobenius norm of every factor matrix (:func:`frobenius_norms`),
* the training log-likelihood per draw (summed over observations),
* the expected rating ``mu`` of a seeded random sample of pairs (test pairs when
  given, else training pairs),

with ArviZ's rank-normalised split R-hat, bulk and tail ESS and the MCSE of the
mean; plus the method's own checks: divergences, tree-depth saturation, step
size and E-BFMI for NUTS; the flattening of the loss and the iteration cap for
ADVI; optimiser success, the iteration cap and agreement between restarts for
MAP.  Problems are listed in plain words (:attr:`ConvergenceReport.flags`).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field

import arviz as az
import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from bayesrec.data.ratings import Ratings
from bayesrec.errors import InputError
from bayesrec.inference.checks import degenerate_message, indistinguishable_components
from bayesrec.inference.draws import evaluate_draws, log_likelihood_draws
from bayesrec.inference.map import COLLAPSE_GAIN
from bayesrec.inference.record import FitRecord

from .norms import factor_matrices, frobenius_norms

__all__ = ["THRESHOLDS", "ConvergenceReport", "convergence_quantities", "convergence_summary",
           "rmse_monte_carlo_error",
           "sampler_checks"]

#: Thresholds of the plain-words flags (override any with ``thresholds=``).
THRESHOLDS = {
    "rhat_max": 1.01,  # Vehtari et al. (2021)
    "ess_min_per_chain": 100,  # bulk and tail ESS below 100 x chains is flagged
    "treedepth_max_fraction": 0.01,  # share of draws at the maximum tree depth
    "step_size_min": 1e-3,  # a smaller adapted step size is called tiny
    "bfmi_min": 0.3,  # E-BFMI below this: poor exploration of the energy
    "advi_rel_change_max": 0.005,  # relative loss change over the last 10 % of iterations
    "map_loglik_rel_range_max": 1e-3,  # spread of restarts' log-likelihood / |mean|
    "map_pred_sd_max": 0.05,  # mean sd of sampled predictions across restarts (rating units)
}

_STATS = ("mean", "sd", "r_hat", "ess_bulk", "ess_tail", "mcse_mean")
NOTE = ("Factor matrices and group labels are not identifiable (rotations, permutations): "
        "convergence is judged on their Frobenius norms, the training log-likelihood and "
        "predictions of sampled pairs, never on their entries.")


# ---------------------------------------------------------------------------------------------
# quantities and their statistics
# ---------------------------------------------------------------------------------------------
def _has_model(fit, model) -> bool:
    return model is not None or (
        "bayesrec" in fit.children and fit.attrs.get("bayesrec_model", "custom") != "custom")


def _stored_log_likelihood(fit) -> xr.DataArray | None:
    """Sum over observations of a ``log_likelihood`` group (ArviZ layout), if there is one."""
    if "log_likelihood" not in fit.children:
        return None
    ds = fit["log_likelihood"].to_dataset()
    total = sum(ds[v].sum([d for d in ds[v].dims if d not in ("chain", "draw")])
                for v in ds.data_vars)
    return total.rename("log_likelihood")


def convergence_quantities(fit: xr.DataTree, *, pairs: Ratings | None = None, n_pairs: int = 50,
                           seed: int = 0, model: pm.Model | None = None,
                           norms: xr.Dataset | None = None,
                           log_likelihood: xr.DataArray | None = None) -> xr.Dataset:
    """The identified quantities per draw: ``<matrix>_norm``, ``log_likelihood``, ``mu``.

    ``mu (chain, draw, pair)`` is the expected rating of ``n_pairs`` pairs drawn
    (with ``seed``) from ``pairs`` (e.g. the test set), else from the training
    pairs; ``user`` and ``item`` coords name them.  Precomputed ``norms`` and
    ``log_likelihood`` are reused when given.  For a DataTree that is not a
    bayesrec fit (no model to rebuild), only the norms and a stored
    ``log_likelihood`` group are used.
    """
    if not isinstance(fit, xr.DataTree) or "posterior" not in fit.children:
        raise InputError("convergence needs a fit: a DataTree with a posterior group")
    out = {}
    if factor_matrices(fit):
        norms = frobenius_norms(fit) if norms is None else norms
        out.update({f"{name}_norm": norms[name] for name in norms.data_vars})
    with_model = _has_model(fit, model)
    if log_likelihood is None:
        log_likelihood = _stored_log_likelihood(fit)
    if log_likelihood is None and with_model:
        model = FitRecord(fit).model(model)
        log_likelihood = log_likelihood_draws(fit, model=model)
    if log_likelihood is not None:
        out["log_likelihood"] = log_likelihood
    if with_model:
        out["mu"] = _sampled_predictions(fit, pairs, n_pairs, seed, model)
    if not out:
        raise InputError("nothing identified to check: the fit has no factor matrix, no "
                         "log-likelihood and no model to predict with")
    ds = xr.Dataset(out)
    ds.attrs["pairs_from"] = "test" if pairs is not None else "train"
    return ds


def _sampled_predictions(fit, pairs, n_pairs, seed, model) -> xr.DataArray:
    record = FitRecord(fit)
    model = record.model(model)
    pairs = pairs if pairs is not None else record.ratings
    users, items = pairs.user_ids, pairs.item_ids
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(len(users), size=min(n_pairs, len(users)), replace=False))
    times = None if pairs.timestamp is None else np.asarray(pairs.timestamp)[take]
    return evaluate_draws(fit, np.asarray(users)[take], np.asarray(items)[take],
                          model=model, timestamps=times)["mu"]


def _diagnostic_stats(quantities: xr.Dataset) -> xr.Dataset:
    """mean, sd, r_hat, ess_bulk, ess_tail, mcse_mean of every quantity, over ``statistic``."""
    n_chain, n_draw = quantities.sizes["chain"], quantities.sizes["draw"]
    parts = [quantities.mean(("chain", "draw")), quantities.std(("chain", "draw"))]
    nan = xr.full_like(parts[0], np.nan)
    if n_draw >= 4:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            rhat = az.rhat(quantities) if n_chain >= 2 else nan
            parts += [rhat, az.ess(quantities, method="bulk"), az.ess(quantities, method="tail"),
                      az.mcse(quantities, method="mean")]
    else:  # one draw per chain (MAP): no Monte Carlo statistics
        parts += [nan] * 4
    parts = [p.drop_vars([c for c in p.coords if c in ("chain", "draw")]) for p in parts]
    return xr.concat(parts, dim=pd.Index(list(_STATS), name="statistic"))


# ---------------------------------------------------------------------------------------------
# method checks
# ---------------------------------------------------------------------------------------------
def _method_options(fit) -> dict:
    try:
        return json.loads(fit.attrs.get("method_options", "{}"))
    except (TypeError, ValueError):
        return {}


def _nuts_checks(fit, t: dict) -> tuple[dict, list[str]]:
    stats = fit["sample_stats"].to_dataset()
    n_chain, n_draw = stats.sizes["chain"], stats.sizes["draw"]
    info, flags = {}, []
    if "diverging" in stats:
        div = stats["diverging"].astype(bool)
        n_div = int(div.sum())
        info["divergences"] = n_div
        info["divergences_per_chain"] = div.sum("draw").values.astype(int).tolist()
        if n_div:
            flags.append(
                f"{n_div} divergent transitions ({n_div / (n_chain * n_draw):.1%} of draws): the "
                "sampler met curvature it could not follow, so the posterior may be explored "
                "incompletely; raise target_accept or reparameterise.")
    max_depth = _method_options(fit).get("max_treedepth")
    if "reached_max_treedepth" in stats:
        hit = float(stats["reached_max_treedepth"].astype(bool).mean())
    elif "tree_depth" in stats and max_depth:
        hit = float((stats["tree_depth"] >= max_depth).mean())
    else:
        hit = None
    if hit is not None:
        info["max_treedepth_fraction"] = hit
        info["max_treedepth"] = max_depth
        if hit > t["treedepth_max_fraction"]:
            flags.append(
                f"{hit:.1%} of draws hit the maximum tree depth ({max_depth}): sampling is "
                "inefficient (trajectories were cut short), which usually means strong "
                "correlations or a badly scaled posterior; draws stay valid but ESS suffers.")
    if "tree_depth" in stats:
        info["mean_tree_depth"] = float(stats["tree_depth"].mean())
    if "step_size" in stats:
        step = stats["step_size"].mean("draw").values
        info["step_size_per_chain"] = step.tolist()
        if np.min(step) < t["step_size_min"]:
            flags.append(
                f"the adapted step size is tiny ({np.min(step):.2g} < {t['step_size_min']:g}): "
                "the posterior has regions of high curvature (a funnel?); consider a "
                "non-centred parameterisation or stronger priors.")
    if "acceptance_rate" in stats:
        info["mean_acceptance"] = float(stats["acceptance_rate"].mean())
    if "energy" in stats and n_draw >= 4:
        bfmi = np.asarray(az.bfmi(stats[["energy"]], sample_dims=["chain", "draw"],
                                  var_names="energy")["energy"].values)
        info["bfmi_per_chain"] = np.atleast_1d(bfmi).tolist()
        low = [c for c, b in enumerate(np.atleast_1d(bfmi)) if b < t["bfmi_min"]]
        if low:
            flags.append(
                f"E-BFMI is below {t['bfmi_min']} in chain(s) {low}: the sampler explores the "
                "energy distribution poorly (heavy tails?); reparameterise.")
    return info, flags


def _advi_checks(fit, t: dict) -> tuple[dict, list[str]]:
    advi = fit["advi"].to_dataset()
    loss = advi["loss"].values.astype(float)
    n = len(loss)
    cap = advi.attrs.get("max_iterations", _method_options(fit).get("n"))
    info = {"iterations": n, "max_iterations": cap, "final_loss": float(np.mean(loss[-max(
        1, n // 100):]))}
    flags = []
    window = loss[-max(2, n // 10):]
    half = len(window) // 2
    if half >= 1:
        first, second = np.mean(window[:half]), np.mean(window[half:])
        rel = float((first - second) / max(abs(np.mean(window)), 1e-12))
        info["loss_rel_change_last10pct"] = rel
        if abs(rel) > t["advi_rel_change_max"]:
            direction = "still falling" if rel > 0 else "rising"
            flags.append(
                f"the ADVI loss has not flattened: it is {direction} by {abs(rel):.2%} between "
                "the two halves of the last 10% of iterations; run more iterations or lower the "
                "learning rate.")
    if cap is not None and n >= int(cap):
        flags.append(
            f"ADVI ran to its iteration cap ({int(cap)}) without meeting its parameter "
            "tolerance: the approximation may not have converged.")
    if not np.isfinite(loss).all():
        flags.append("the ADVI loss history has non-finite values: the optimisation diverged.")
    return info, flags


def _map_checks(fit, quantities: xr.Dataset | None, t: dict) -> tuple[dict, list[str]]:
    res = fit["optimizer_result"].to_dataset()
    maxiter = _method_options(fit).get("maxiter")
    info = {"restarts": int(res.sizes.get("restart", 1)),
            "success": res["success"].values.astype(bool).tolist(),
            "iterations": res["nit"].values.astype(int).tolist(),
            "maxiter": maxiter,
            "log_likelihood": res["log_likelihood"].values.astype(float).tolist()}
    flags = []
    for r, ok in enumerate(info["success"]):
        if not ok and not (maxiter and info["iterations"][r] >= maxiter):  # capped: see below
            flags.append(f"MAP restart {r}: the optimiser did not report success "
                         f"({str(res['message'].values[r]).strip()}).")
    if maxiter:
        capped = [r for r, nit in enumerate(info["iterations"]) if nit >= maxiter]
        if capped:
            flags.append(f"MAP restart(s) {capped} stopped at the iteration cap ({maxiter}): the "
                         "optimum may not have been reached; raise maxiter.")
    ll = np.asarray(info["log_likelihood"])
    if len(ll) > 1:
        rel = float(np.ptp(ll) / max(abs(np.mean(ll)), 1e-12))
        info["loglik_rel_range"] = rel
        if rel > t["map_loglik_rel_range_max"]:
            flags.append(
                f"MAP restarts disagree: their training log-likelihoods span {np.ptp(ll):.4g} "
                f"({rel:.2%} of its size), so the optimiser finds different local optima.")
    if "factor_rmse_gain" in res:
        gain = res["factor_rmse_gain"].values.astype(float)
        info["factor_rmse_gain"] = gain.tolist()
        collapsed = [r for r, g in enumerate(gain) if g < COLLAPSE_GAIN]
        if collapsed:
            flags.append(
                f"MAP restart(s) {collapsed} collapsed: their factor matrices (RMS entry "
                f"{res['factor_rms'].values[collapsed].max():.2g}) lower the training RMSE by "
                f"less than {COLLAPSE_GAIN:g} against the model without them, so they predict "
                "like a biases model (or worse).")
    if quantities is not None and quantities.sizes["chain"] > 1 and "mu" in quantities:
        sd = float(quantities["mu"].std("chain").mean())
        info["restart_prediction_sd"] = sd
        if sd > t["map_pred_sd_max"]:
            flags.append(f"MAP restarts predict differently: the sampled predictions differ by "
                         f"{sd:.3f} (mean sd across restarts, rating units).")
    return info, flags


def _staged_checks(fit) -> tuple[dict, list[str]]:
    """A staged fit (one point): its stages' numbers, and whether the EM of the weights
    converged."""
    res = fit["staged"].to_dataset()
    info = {name: res[name].values.tolist() for name in
            ("weights", "sigma", "out_of_fold_rmse", "em_iterations", "em_converged")
            if name in res}
    flags = []
    if "em_converged" in res and not bool(res["em_converged"].values):
        flags.append(f"the EM of the staged fit's weights stopped at its iteration cap "
                     f"({int(res['em_iterations'].values)}) before converging; raise "
                     "em_maxiter.")
    said = indistinguishable_components(res)
    if said is not None:
        flags.append(said)
    return info, flags


def sampler_checks(fit: xr.DataTree, *, quantities: xr.Dataset | None = None,
                   thresholds: dict | None = None) -> tuple[dict, list[str]]:
    """The method's own checks: ``(numbers, flags)`` for NUTS, ADVI, MAP or staged fits."""
    t = {**THRESHOLDS, **(thresholds or {})}
    if "sample_stats" in fit.children:
        return _nuts_checks(fit, t)
    if "advi" in fit.children:
        return _advi_checks(fit, t)
    if "optimizer_result" in fit.children:
        return _map_checks(fit, quantities, t)
    if "staged" in fit.children:
        return _staged_checks(fit)
    return {}, []


# ---------------------------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------------------------
def _mc_flags(stats: xr.Dataset, n_chain: int, method: str, t: dict) -> list[str]:
    flags = []
    if method != "nuts":  # MAP: no draws; ADVI: independent draws from the approximation
        return flags
    ess_min = t["ess_min_per_chain"] * n_chain
    for name in stats.data_vars:
        var = stats[name]
        label = "the sampled predictions" if name == "mu" else name.replace("_", " ")
        rhat = var.sel(statistic="r_hat")
        bad = rhat > t["rhat_max"]
        if n_chain >= 2 and bool(bad.any()):
            worst = float(rhat.max())
            where = ""
            if "pair" in rhat.dims:
                k = int(np.argmax(rhat.values))
                where = (f" ({int(bad.sum())} of {rhat.sizes['pair']} pairs; worst: user "
                         f"{rhat['user'].values[k]}, item {rhat['item'].values[k]})")
            flags.append(f"R-hat of {label} is {worst:.3f} (> {t['rhat_max']}){where}: the "
                         "chains disagree; run longer or look for multiple modes.")
        for kind in ("bulk", "tail"):
            ess = var.sel(statistic=f"ess_{kind}")
            if bool((ess < ess_min).any()):
                flags.append(f"{kind} ESS of {label} is {float(ess.min()):.0f} (< {ess_min:.0f} ="
                             f" {t['ess_min_per_chain']} per chain): too few effective draws "
                             f"for reliable {'means' if kind == 'bulk' else 'intervals'}; "
                             "draw more.")
    return flags


@dataclass
class ConvergenceReport:
    """What :func:`convergence_summary` found.

    Attributes
    ----------
    method, model : str
    n_chains, n_draws : int
    quantities : Dataset
        The identified quantities per draw (see :func:`convergence_quantities`).
    stats : Dataset
        Their ``mean, sd, r_hat, ess_bulk, ess_tail, mcse_mean`` (dim ``statistic``).
    sampler : dict
        The method's own numbers (divergences, tree depth, step size, ADVI loss,
        MAP optimiser results).
    flags : list of str
        Problems, in plain words; empty when none was found.
    """

    method: str
    model: str
    n_chains: int
    n_draws: int
    quantities: xr.Dataset
    stats: xr.Dataset
    sampler: dict = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was flagged."""
        return not self.flags

    @property
    def table(self) -> pd.DataFrame:
        """One row per norm and the log-likelihood; predictions as their worst case."""
        rows = {}
        for name in self.stats.data_vars:
            var = self.stats[name]
            if "pair" not in var.dims:
                rows[name] = {s: float(var.sel(statistic=s)) for s in _STATS}
                continue
            n = var.sizes["pair"]
            worst = {"r_hat": float(var.sel(statistic="r_hat").max()),
                     "ess_bulk": float(var.sel(statistic="ess_bulk").min()),
                     "ess_tail": float(var.sel(statistic="ess_tail").min()),
                     "mcse_mean": float(var.sel(statistic="mcse_mean").max()),
                     "mean": float(var.sel(statistic="mean").mean()),
                     "sd": float(var.sel(statistic="sd").mean())}
            rows[f"mu ({n} pairs, worst)"] = worst
        table = pd.DataFrame.from_dict(rows, orient="index")[list(_STATS)]
        table.index.name = "quantity"
        return table

    def _sampler_lines(self) -> list[str]:
        lines = []
        for key, value in self.sampler.items():
            if isinstance(value, float):
                value = f"{value:.4g}"
            elif isinstance(value, list):
                value = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value)
            lines.append(f"{key.replace('_', ' ')}: {value}")
        return lines

    def to_text(self) -> str:
        """A plain-text rendering: table, method checks, flags."""
        head = (f"Convergence of {self.model} / {self.method} "
                f"({self.n_chains} chain(s) x {self.n_draws} draw(s))")
        lines = [head, "=" * len(head), NOTE, "",
                 self.table.to_string(float_format=lambda v: f"{v:.4g}"), ""]
        lines += self._sampler_lines()
        lines.append("")
        lines += (["Problems:"] + [f"  - {f}" for f in self.flags]) if self.flags else [
            "No problems found."]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """A markdown rendering (table, method checks, flags)."""
        table = self.table
        header = "| quantity | " + " | ".join(table.columns) + " |"
        rule = "|---" * (len(table.columns) + 1) + "|"
        body = ["| " + str(idx) + " | " + " | ".join(_fmt(v) for v in row) + " |"
                for idx, row in table.iterrows()]
        lines = [NOTE, "", header, rule, *body, ""]
        lines += [f"- {line}" for line in self._sampler_lines()]
        lines.append("")
        if self.flags:
            lines += ["**Problems:**", ""] + [f"- {f}" for f in self.flags]
        else:
            lines.append("**No problems found.**")
        return "\n".join(lines)

    def to_dataset(self) -> xr.Dataset:
        """The statistics, with the method checks and flags as attrs (for the diagnostics group)."""
        ds = self.stats.copy()
        ds.attrs = {"method": self.method, "model": self.model,
                    "sampler": json.dumps(self.sampler, default=float),
                    "flags": json.dumps(self.flags), "ok": int(self.ok)}
        return ds

    def __str__(self) -> str:
        return self.to_text()


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "n/a"
    return f"{v:.4g}"


def convergence_summary(fit: xr.DataTree, *, pairs: Ratings | None = None, n_pairs: int = 50,
                        seed: int = 0, model: pm.Model | None = None,
                        norms: xr.Dataset | None = None,
                        log_likelihood: xr.DataArray | None = None,
                        thresholds: dict | None = None) -> ConvergenceReport:
    """Convergence of a fit, judged on identified quantities, with plain-words flags.

    Parameters
    ----------
    fit : DataTree
        A fit from :func:`bayesrec.inference.fit` (NUTS, ADVI or MAP).
    pairs : Ratings, optional
        Where to sample the pairs whose predictions are checked (e.g. the test
        set); the training pairs when omitted.
    n_pairs : int
        How many pairs to sample (with ``seed``).
    model : pm.Model, optional
        Rebuilt from the fit when omitted.
    norms, log_likelihood : optional
        Precomputed :func:`frobenius_norms` and per-draw log-likelihood.
    thresholds : dict, optional
        Overrides of :data:`THRESHOLDS`; an unknown key raises.

    Returns
    -------
    ConvergenceReport
        ``.table``, ``.flags``, ``.sampler``, ``.to_text()``, ``.to_markdown()``,
        ``.to_dataset()``.  For ADVI (one chain) R-hat is undefined and ESS only
        measures the Monte Carlo error of draws from the approximation, not its
        quality: the loss checks speak to convergence.  MAP has no Monte Carlo
        statistics; its restarts are compared instead.
    """
    unknown = sorted(set(thresholds or {}) - set(THRESHOLDS))
    if unknown:
        raise InputError(f"unknown threshold(s) {unknown}; valid ones are {sorted(THRESHOLDS)}")
    t = {**THRESHOLDS, **(thresholds or {})}
    quantities = convergence_quantities(fit, pairs=pairs, n_pairs=n_pairs, seed=seed,
                                        model=model, norms=norms, log_likelihood=log_likelihood)
    stats = _diagnostic_stats(quantities)
    method = str(fit.attrs.get("method", "unknown"))
    method_kind = ("map" if "optimizer_result" in fit.children or "staged" in fit.children
                   else "advi" if "advi" in fit.children else "nuts")
    info, method_flags = sampler_checks(fit, quantities=quantities, thresholds=t)
    if "advi" in fit.children:
        info["note"] = ("ADVI draws are independent draws from the approximation: R-hat is "
                        "undefined (one chain) and ESS/MCSE only measure their Monte Carlo "
                        "error, not whether the approximation is good; the loss checks do.")
    n_chain, n_draw = quantities.sizes["chain"], quantities.sizes["draw"]
    flags = _mc_flags(stats, n_chain, method_kind, t) + method_flags
    degenerate = degenerate_message(dict(fit.attrs))
    if degenerate:
        flags.append(degenerate[0].upper() + degenerate[1:] + ".")
    if "log_likelihood" in quantities and not np.isfinite(
            quantities["log_likelihood"].values).all():
        flags.append("the training log-likelihood is not finite for some draws.")
    return ConvergenceReport(method=method, model=str(fit.attrs.get("bayesrec_model", "")),
                             n_chains=n_chain, n_draws=n_draw, quantities=quantities,
                             stats=stats, sampler=info, flags=flags)


def rmse_monte_carlo_error(fit: xr.DataTree, test: Ratings, *,
                           model: pm.Model | None = None) -> tuple[float, float]:
    """The held-out RMSE of a sampled fit's posterior-mean prediction (``mu`` averaged over
    the draws, clipped to the scale), and that RMSE's Monte Carlo standard error.

    The error comes from the delta method: ``d RMSE = sum_i e_i d_i / (n RMSE)`` for the
    prediction errors ``e_i`` and the Monte Carlo errors ``d_i`` of the posterior means
    (ArviZ's MCSE of each pair's ``mu``, taken as independent across pairs).  Two
    independent chains of the same length give RMSEs that differ by about ``sqrt(2)``
    of it: a tolerance for comparing a chain's figure across machines or seeds.
    """
    mu = evaluate_draws(fit, test.user_ids, test.item_ids, model=model,
                        timestamps=test.timestamp)["mu"]
    if mu.sizes["chain"] * mu.sizes["draw"] < 4:
        raise InputError("rmse_monte_carlo_error needs a sampled fit (several draws)")
    mean = test.scale.clip(mu.mean(("chain", "draw")).values)
    errors = mean - test.rating
    rmse = float(np.sqrt(np.mean(errors ** 2)))
    mcse = az.mcse(mu.rename(pair="obs").to_dataset(name="mu"))["mu"].values
    return rmse, float(np.sqrt(np.sum(errors ** 2 * mcse ** 2)) / (len(errors) * rmse))

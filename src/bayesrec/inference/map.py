"""MAP: the posterior mode, from one or several starts (restarts become chains).

L-BFGS-B (any :func:`scipy.optimize.minimize` method) through :func:`pymc.find_MAP`,
or expectation-maximisation for models that declare an EM step
(:mod:`bayesrec.inference.em`).  The fit is a posterior with one draw per restart.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pymc as pm
import xarray as xr

from bayesrec.errors import FitWarning, InputError
from bayesrec.inference.draws import draw_evaluator, iter_draw_blocks
from bayesrec.inference.em import em_restarts, em_step_of
from bayesrec.inference.options import MethodOptions, PositiveFloat, PositiveInt
from bayesrec.inference.record import ratings_of_model
from bayesrec.inference.start import child_seeds, initial_values

__all__ = ["COLLAPSE_GAIN", "Options", "factor_gain", "run", "training_loglik"]


class Options(MethodOptions):
    """``maxiter`` (3000), ``tol`` (1e-7, relative change of the objective), ``restarts``
    (1; each from its own prior draw, each a chain), ``combine`` ("all" keeps every
    restart, "best" the one with the highest training log-likelihood), ``init``
    ("prior": a prior draw, which breaks the symmetric saddle at all-zero factors;
    "initial_point": the model's initial point, small fixed factors), ``optimizer`` ("auto": EM for models that
    declare an EM step, else "L-BFGS-B"; "em"; or any scipy.optimize.minimize method).
    """

    maxiter: PositiveInt = 3000
    tol: PositiveFloat = 1e-7
    restarts: PositiveInt = 1
    combine: Literal["all", "best"] = "all"
    init: Literal["prior", "initial_point"] = "prior"
    optimizer: str = "auto"


def _optimizer(model: pm.Model, optimizer: str) -> str:
    """``optimizer`` with "auto" resolved: "em" if the model declares an EM step."""
    if optimizer == "auto":
        return "em" if em_step_of(model) is not None else "L-BFGS-B"
    if optimizer == "em" and em_step_of(model) is None:
        raise InputError("optimizer 'em' needs a model that declares an EM step (a registered "
                         "Dirichlet mixture such as mmsbm, or bayesrec.inference.em.set_em_step); "
                         "use 'L-BFGS-B'")
    return optimizer


def training_loglik(model: pm.Model, posterior: xr.Dataset) -> np.ndarray:
    """Training log-likelihood (summed over observations) of each chain's first draw."""
    ll = pm.compute_log_likelihood(xr.DataTree.from_dict({"posterior": posterior}), model=model,
                                   extend_inferencedata=False, progressbar=False)
    ds = ll["log_likelihood"].to_dataset() if isinstance(ll, xr.DataTree) else ll
    total = sum(ds[v].sum([d for d in ds[v].dims if d not in ("chain", "draw")])
                for v in ds.data_vars)
    return np.asarray(total.isel(draw=0).values, dtype=float)


def run(model: pm.Model, opts: dict, random_seed: int, progressbar: bool) -> dict:
    """The ``posterior`` (chain = restart) and the ``optimizer_result`` report."""
    seeds = child_seeds(random_seed, opts["restarts"])
    optimizer = _optimizer(model, opts["optimizer"])
    if optimizer == "em":
        all_chains, reports = em_restarts(model, opts, seeds)
        return _combine_restarts(all_chains, reports, opts, optimizer, model)
    runs, reports = [], []
    for restart, seed in enumerate(seeds):
        initvals = initial_values(model, opts["init"], seed)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The optimizer did not converge")
            dt = pm.find_MAP(
                method=optimizer, model=model, initvals=initvals, jitter=False,
                random_seed=seed, return_inferencedata=True, progressbar=progressbar,
                maxiter=opts["maxiter"], tol=opts["tol"],
            )
        res = dt["optimizer_result"].to_dataset()
        reports.append({
            "restart": restart,
            "seed": seed,
            "fun": float(np.asarray(res["fun"]).ravel()[0]),
            "nit": int(np.asarray(res["nit"]).ravel()[0]),
            "nfev": int(np.asarray(res["nfev"]).ravel()[0]),
            "success": bool(np.asarray(res["success"]).ravel()[0]),
            "message": str(np.asarray(res["message"]).ravel()[0]),
        })
        runs.append(dt)
    all_chains = xr.concat(
        [dt["posterior"].to_dataset().isel(chain=[0]).assign_coords(chain=[j])
         for j, dt in enumerate(runs)], dim="chain",
    )
    for report, ll in zip(reports, training_loglik(model, all_chains), strict=True):
        report["log_likelihood"] = float(ll)
    return _combine_restarts(all_chains, reports, opts, optimizer, model)


#: A MAP point's factors that lower the training RMSE by less than this (rating units)
#: against the same point without them have collapsed onto the rest of the model.
COLLAPSE_GAIN = 1e-3


def _factor_variables(model: pm.Model) -> list[str]:
    """Free variables that are factor matrices: a ``factor`` dim and a ``user`` or ``item`` one."""
    dims = model.named_vars_to_dims
    return [rv.name for rv in model.free_RVs
            if "factor" in (dims.get(rv.name) or ())
            and {"user", "item"} & set(dims.get(rv.name) or ())]


def factor_gain(model: pm.Model, posterior: xr.Dataset) -> tuple[np.ndarray, np.ndarray] | None:
    """Per chain (restart): how much the factor matrices lower the training RMSE, against the
    same point with them set to zero, and the RMS of their entries; None without factors.

    A gain near zero means the point estimate has collapsed onto the model's other parts
    (its biases): the factors add nothing to its predictions.
    """
    names = _factor_variables(model)
    if not names:
        return None
    rating = np.asarray(ratings_of_model(model).rating, dtype=float)
    evaluator = draw_evaluator(model, ("mu",))
    zeroed = posterior.assign({n: xr.zeros_like(posterior[n]) for n in names})
    rmse = []
    for point in (posterior, zeroed):
        mu = np.concatenate([out["mu"] for _, out in iter_draw_blocks(
            point, evaluator, n_pairs=len(rating))], axis=1)[:, 0]  # (chain, obs)
        rmse.append(np.sqrt(np.mean((mu - rating) ** 2, axis=1)))
    squares = sum((posterior[n] ** 2).sum([d for d in posterior[n].dims
                                            if d not in ("chain", "draw")]) for n in names)
    sizes = sum(int(np.prod([posterior.sizes[d] for d in posterior[n].dims
                             if d not in ("chain", "draw")])) for n in names)
    rms = np.sqrt(np.asarray(squares.isel(draw=0).values, dtype=float) / sizes)
    return rmse[1] - rmse[0], rms


def _collapse_warning(report: xr.Dataset) -> None:
    """Warn, in plain words, when every kept restart's factors add nothing."""
    if "factor_rmse_gain" not in report:
        return
    kept = report["kept"].values
    gain, rms = report["factor_rmse_gain"].values[kept], report["factor_rms"].values[kept]
    if (gain < COLLAPSE_GAIN).all():
        best = gain.max()
        effect = (f"lower the training RMSE by only {best:.2g}" if best >= 0 else
                  f"raise the training RMSE by {-best:.2g}")
        warnings.warn(
            f"MAP collapsed: at the optimum the factor matrices (RMS entry {rms.max():.2g}) "
            f"{effect} against the model without them, so this point estimate predicts like "
            "a biases model (or worse). A prior that shrinks the factors harder than the data can pull them does this (few "
            "ratings, or the point_estimate preset): try a weaker factor prior (a larger "
            "factor sd in priors=, or without the preset), more restarts, or a posterior "
            "method (advi, nuts, gibbs).", FitWarning, stacklevel=4)


def _combine_restarts(all_chains: xr.Dataset, reports: list[dict], opts: dict,
                      optimizer: str, model: pm.Model) -> dict:
    """Keep every restart as a chain, or the best by training log-likelihood."""
    keep = list(range(len(reports)))
    if opts["combine"] == "best":
        keep = [int(np.argmax([r["log_likelihood"] for r in reports]))]
    posterior = all_chains.isel(chain=keep).assign_coords(chain=np.arange(len(keep)))
    report = xr.Dataset(
        {key: ("restart", [r[key] for r in reports])
         for key in ("seed", "fun", "nit", "nfev", "success", "message", "log_likelihood")},
        coords={"restart": np.arange(len(reports))},
    )
    report["kept"] = ("restart", np.isin(np.arange(len(reports)), list(keep)))
    gains = factor_gain(model, all_chains)
    if gains is not None:
        report["factor_rmse_gain"] = ("restart", gains[0])
        report["factor_rms"] = ("restart", gains[1])
    report.attrs["optimizer"] = optimizer
    _collapse_warning(report)
    return {"posterior": posterior, "optimizer_result": report}

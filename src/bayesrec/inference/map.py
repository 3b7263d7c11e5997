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

from bayesrec.errors import InputError
from bayesrec.inference.em import em_restarts, em_step_of
from bayesrec.inference.options import MethodOptions, PositiveFloat, PositiveInt
from bayesrec.inference.start import child_seeds, initial_values

__all__ = ["Options", "run", "training_loglik"]


class Options(MethodOptions):
    """``maxiter`` (3000), ``tol`` (1e-7, relative change of the objective), ``restarts``
    (1; each from its own prior draw, each a chain), ``combine`` ("all" keeps every
    restart, "best" the one with the highest training log-likelihood), ``init``
    ("prior": a prior draw, which breaks the symmetric saddle at all-zero factors;
    "zero": the model's initial point), ``optimizer`` ("auto": EM for models that
    declare an EM step, else "L-BFGS-B"; "em"; or any scipy.optimize.minimize method).
    """

    maxiter: PositiveInt = 3000
    tol: PositiveFloat = 1e-7
    restarts: PositiveInt = 1
    combine: Literal["all", "best"] = "all"
    init: Literal["prior", "zero"] = "prior"
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
        return _combine_restarts(all_chains, reports, opts, optimizer)
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
    return _combine_restarts(all_chains, reports, opts, optimizer)


def _combine_restarts(all_chains: xr.Dataset, reports: list[dict], opts: dict,
                      optimizer: str) -> dict:
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
    report.attrs["optimizer"] = optimizer
    return {"posterior": posterior, "optimizer_result": report}

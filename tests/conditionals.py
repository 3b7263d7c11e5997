"""Checks of Gibbs conditionals against a model's log-density, shared by the test files of
the feature and implicit-feedback blocks (imported as ``conditionals``: pytest puts
``tests/`` on the path, as for ``conftest``)."""

from __future__ import annotations

import numpy as np


def random_point(model, rng) -> dict:
    """A point of ``model`` away from its initial values (the offset near 3 stars)."""
    point = model.initial_point()
    return {k: rng.normal(0.0, 0.5, np.shape(v)) + (3.0 if k == "offset" else 0.0)
            for k, v in point.items()}


def quadratic_fit(logp, point, coords, h=0.5):
    """Precision and maximiser of ``logp`` (exactly quadratic) along ``coords``, pairs of
    (point key, index), from central differences."""
    def at(delta):
        p = {k: np.array(v, dtype=float) for k, v in point.items()}
        for (key, idx), d in zip(coords, delta, strict=True):
            p[key][idx] += d
        return logp(p)

    dim = len(coords)
    eye = np.eye(dim) * h
    grad = np.array([(at(eye[a]) - at(-eye[a])) / (2 * h) for a in range(dim)])
    hess = np.array([[(at(eye[a] + eye[b]) - at(eye[a] - eye[b]) - at(-eye[a] + eye[b])
                       + at(-eye[a] - eye[b])) / (4 * h * h) for b in range(dim)]
                     for a in range(dim)])
    x0 = np.array([point[key][idx] for key, idx in coords])
    return -hess, x0 - np.linalg.solve(hess, grad)


def assert_recorded_log_likelihood(model, fit, draws=(0, 4)) -> None:
    """The ``training_log_likelihood`` a Gibbs fit recorded is the model's at those draws."""
    post = fit["posterior"]
    ll = model.compile_fn(model.observedlogp, inputs=model.value_vars, on_unused_input="ignore")
    for d in draws:
        point = {v.name: np.asarray(post[model.values_to_rvs[v].name].isel(chain=0, draw=d))
                 for v in model.value_vars}
        point = {k: (np.log(v) if k.endswith("_log__") else v) for k, v in point.items()}
        np.testing.assert_allclose(
            fit["sample_stats"]["training_log_likelihood"].isel(chain=0, draw=d), ll(point),
            rtol=1e-9)


def assert_log_scale_density(logp, point, key, values, prior) -> None:
    """The density of a learned ``log sd`` (point key ``key``) given its centred ``values``
    that the Gibbs slice update targets is the model's along ``key``, up to a constant."""
    from bayesrec.inference.gibbs.features import centred_scale_density

    density = centred_scale_density(np.asarray(values), prior)
    ts = float(point[key]) + np.array([-0.5, 0.0, 0.7])
    model = [logp({**point, key: np.asarray(t)}) for t in ts]
    np.testing.assert_allclose(np.diff(model), np.diff([density(t) for t in ts]), rtol=1e-8,
                               atol=1e-8)

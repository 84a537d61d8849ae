"""GridSearchCV under joblib's Dask backend, against a LocalCluster of processes."""
import numpy as np
import pytest

distributed = pytest.importorskip("distributed", reason="needs the [dask] extra")

import joblib  # noqa: E402
from sklearn.model_selection import GridSearchCV, StratifiedKFold  # noqa: E402

from skood import EnergySampler, make_ood_scorer  # noqa: E402


def score_and_refit(estimator, X, y, X_aux):
    """Runs in a worker process."""
    scores = estimator.ood_decision_function(X)
    return scores, estimator.fit(X, y, X_aux=X_aux)


def search(make_clf):
    return GridSearchCV(make_clf(max_epochs=2), {"lambda_grad": [0.0, 1.0]},
                        scoring={"fpr95": make_ood_scorer("fpr95"),
                                 "auroc": make_ood_scorer("auroc")},
                        refit="auroc", cv=StratifiedKFold(2))


def test_grid_search_on_a_dask_cluster_equals_the_serial_search(make_clf, blobs):
    X, y, X_aux = blobs
    data = np.r_[X, X_aux]
    labels = np.r_[y, -np.ones(len(X_aux), dtype=int)]
    serial = search(make_clf).fit(data, labels)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with joblib.parallel_backend("dask"):
            on_dask = search(make_clf).fit(data, labels)
        # the work really ran in the worker processes
        assert len(client.scheduler_info()["workers"]) == 2
        # a fitted GReg+ estimator (with its sampler) travels to a worker, is scored and
        # refitted there, and comes back
        fitted = make_clf(max_epochs=1, sampler=EnergySampler(n_clusters=4)).fit(
            X, y, X_aux=X_aux)
        remote_scores, refitted = client.submit(score_and_refit, fitted, X, y, X_aux).result()
    for key in ("mean_test_fpr95", "mean_test_auroc", "split0_test_auroc", "split1_test_auroc"):
        np.testing.assert_allclose(on_dask.cv_results_[key], serial.cv_results_[key],
                                   rtol=1e-6, err_msg=key)
    assert on_dask.best_params_ == serial.best_params_
    np.testing.assert_allclose(on_dask.best_estimator_.decision_function(X),
                               serial.best_estimator_.decision_function(X), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(remote_scores, fitted.ood_decision_function(X), rtol=1e-6)
    np.testing.assert_allclose(refitted.decision_function(X), fitted.decision_function(X),
                               rtol=1e-5, atol=1e-5)
    assert "_fit_state" not in vars(refitted)
    assert set(vars(refitted.sampler)) == set(refitted.sampler.get_params())

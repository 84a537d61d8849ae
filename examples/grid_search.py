"""
Tune lambda_grad with GridSearchCV
==================================

Tune the weight of the gradient penalty with scikit-learn's ``GridSearchCV`` and
skood's OOD scorers.

The auxiliary outliers travel inside X as rows labelled -1, so the splitter
divides them between training and test folds like any other rows: each test
fold scores held-out digits against held-out outliers.

Run: ``python examples/grid_search.py``
"""
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from skood import GradRegOODClassifier, make_ood_scorer
from skood.datasets import make_natural_image_outliers
from skood.models import MLP

# %%
# Digits and outliers in one X
# ----------------------------
X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
X_aux = make_natural_image_outliers(1500, (8, 8), random_state=0)
X_all = np.concatenate([X, X_aux])
y_all = np.concatenate([y, np.full(len(X_aux), -1)])    # -1 = auxiliary outlier

# %%
# The search
# ----------
# Three candidates, three stratified folds (each fold keeps its share of
# outlier rows), two fits at a time.
clf = GradRegOODClassifier(MLP, module__n_features=64, module__n_classes=10,
                           m_in=-12.0, m_out=-4.0, max_epochs=6, lr=0.05,
                           optimizer__momentum=0.9, batch_size=64, random_state=0,
                           verbose=0)
scoring = {
    "fpr95": make_ood_scorer("fpr95"),      # returned negated: greater is better
    "auroc": make_ood_scorer("auroc"),
    "acc": make_ood_scorer("id_accuracy"),  # accuracy on the rows not labelled -1
}
search = GridSearchCV(clf, {"lambda_grad": [0.0, 0.5, 1.0]}, scoring=scoring,
                      refit="fpr95", cv=StratifiedKFold(3, shuffle=True, random_state=0),
                      n_jobs=2)
search.fit(X_all, y_all)

# %%
# Results
# -------
# FPR95 and AUROC here measure how well held-out *auxiliary* outliers are
# rejected; confirm the choice on a real OOD set.
for params, fpr, auc, acc in zip(search.cv_results_["params"],
                                 search.cv_results_["mean_test_fpr95"],
                                 search.cv_results_["mean_test_auroc"],
                                 search.cv_results_["mean_test_acc"]):
    # the fpr95 scorer returns minus FPR95
    print(f"lambda_grad={params['lambda_grad']:<4} FPR95={abs(fpr):.4f} AUROC={auc:.4f} "
          f"accuracy={acc:.4f}")
print("best:", search.best_params_)

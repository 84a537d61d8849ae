"""GReg must actually separate in-distribution data from real OOD data.

In-distribution: scikit-learn's handwritten digits (8x8). Auxiliary outliers:
crops of bundled photographs. OOD test sets, none of them seen in training:
scikit-image's textures (brick, grass, gravel) and Gaussian / uniform noise.
"""
import numpy as np
import pytest
from sklearn.model_selection import train_test_split

from skood import GradRegOODClassifier
from skood.datasets import make_natural_image_outliers, make_noise_images, make_texture_images
from skood.metrics import ood_report_frame
from skood.models import MLP

pytest.importorskip("skimage")


@pytest.fixture(scope="module")
def digits_ood(digits):
    X, y = digits
    X = X.reshape(-1, 1, 8, 8)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0,
                                                        stratify=y)
    X_aux = make_natural_image_outliers(3000, (8, 8), random_state=0)
    ood = {"textures": make_texture_images(500, (8, 8), random_state=1),
           "gaussian": make_noise_images(500, (8, 8), random_state=2),
           "uniform": make_noise_images(500, (8, 8), kind="uniform", random_state=3)}
    return X_train, y_train, X_test, y_test, X_aux, ood


def fit_and_report(digits_ood, device, seed, **params):
    X_train, y_train, X_test, y_test, X_aux, ood = digits_ood
    clf = GradRegOODClassifier(MLP, module__n_features=64, module__n_classes=10,
                               max_epochs=12, lr=0.05, optimizer__momentum=0.9, batch_size=64,
                               m_in=-12.0, m_out=-4.0, random_state=seed, verbose=0,
                               device=device, **params)
    clf.fit(X_train, y_train, X_aux=X_aux)
    report = ood_report_frame(clf.score_samples(X_test),
                              {name: clf.score_samples(data) for name, data in ood.items()})
    return report.loc["mean"], clf.score(X_test, y_test)


def test_greg_separates_digits_from_real_ood_far_better_than_cross_entropy(digits_ood, device):
    # two seeds each, averaged, so that one lucky or unlucky run does not decide
    ce = [fit_and_report(digits_ood, device, seed, lambda_energy=0.0, lambda_grad=0.0)
          for seed in (0, 1)]
    greg = [fit_and_report(digits_ood, device, seed, lambda_energy=0.1, lambda_grad=1.0)
            for seed in (0, 1)]
    ce_auroc, greg_auroc = (np.mean([r["auroc"] for r, _ in runs]) for runs in (ce, greg))
    ce_fpr, greg_fpr = (np.mean([r["fpr95"] for r, _ in runs]) for runs in (ce, greg))
    assert min(accuracy for _, accuracy in ce + greg) > 0.9
    assert greg_auroc > 0.995
    assert greg_auroc - ce_auroc > 0.02
    assert greg_fpr < 0.02
    assert ce_fpr > greg_fpr + 0.05

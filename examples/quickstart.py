"""Quickstart: train a GReg OOD detector on handwritten digits, report, save, reload, score.

In-distribution: scikit-learn's 8x8 digits. Auxiliary outliers: crops of the
photographs bundled with scikit-learn and scikit-image. OOD test data the model
never saw: scikit-image's textures and uniform noise.

Run: python examples/quickstart.py [--out DIR]
"""
import argparse
import os
import tempfile

import joblib
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skood import GradRegOODClassifier
from skood.datasets import make_natural_image_outliers, make_noise_images, make_texture_images
from skood.metrics import ood_report_frame
from skood.models import MLP


def train_and_save(path):
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)   # images in [0, 1]
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0,
                                                        stratify=y)
    X_aux = make_natural_image_outliers(3000, (8, 8), random_state=0)

    clf = GradRegOODClassifier(
        MLP, module__n_features=64, module__n_classes=10,
        lambda_energy=0.1, lambda_grad=1.0,
        m_in=-12.0, m_out=-4.0,          # margins that suit a small MLP's energy range
        max_epochs=12, lr=0.05, optimizer__momentum=0.9, batch_size=64,
        random_state=0, verbose=0,
    )
    clf.fit(X_train, y_train, X_aux=X_aux)

    print(f"test accuracy: {clf.score(X_test, y_test):.3f}")
    print(f"offset_ (accepts 95% of held-out digits): {clf.offset_:.2f}")
    ood = {"textures": make_texture_images(500, (8, 8), random_state=1),
           "uniform noise": make_noise_images(500, (8, 8), kind="uniform", random_state=2)}
    report = ood_report_frame(clf.score_samples(X_test),
                              {name: clf.score_samples(data) for name, data in ood.items()})
    print("OOD detection (ID = positive class; FPR95 lower is better):")
    print(report.round(4).to_string())

    joblib.dump(clf, path)
    return X_test, ood["textures"]


def load_and_score(path, X_new):
    # joblib (like pickle) runs code from the file it loads: only load files you trust.
    clf = joblib.load(path)
    labels = clf.predict(X_new)
    accepted = clf.predict_ood(X_new) == 1
    return labels, accepted


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=tempfile.mkdtemp(), help="folder for the saved model")
    args = parser.parse_args()
    path = os.path.join(args.out, "digits_greg.joblib")
    X_test, textures = train_and_save(path)
    _, accepted_digits = load_and_score(path, X_test)
    _, accepted_textures = load_and_score(path, textures)
    print(f"reloaded from {path}: accepts {accepted_digits.mean():.1%} of test digits "
          f"and {accepted_textures.mean():.1%} of textures")


if __name__ == "__main__":
    main()

"""
A tabular detector in a Pipeline
================================

A pandas DataFrame through ``StandardScaler`` and ``GradRegOODDetector``.

In-distribution: scikit-learn's wine data (13 numeric columns, 3 classes).
Auxiliary outliers: rows of X labelled -1, drawn broadly around the data, so
that the scaler in the Pipeline transforms them like every other row.
OOD test data: test rows with five measurements shifted by four standard
deviations, as a faulty sensor would produce. ``GradRegOODDetector`` is
``GradRegOODClassifier``'s training with an outlier detector's methods, so the
Pipeline's ``predict`` and ``decision_function`` give the OOD decision (+1
in-distribution, -1 OOD).

Run: ``python examples/tabular_pipeline.py``
"""
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.datasets import load_wine
from sklearn.metrics import RocCurveDisplay
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skood import GradRegOODDetector
from skood.metrics import ood_report
from skood.models import MLP

# %%
# Data and auxiliary outliers
# ---------------------------
wine = load_wine(as_frame=True)
X, y = wine.data.astype("float32"), wine.target.map(dict(enumerate(wine.target_names)))
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

rng = np.random.RandomState(0)
spread = X_train.std().to_numpy()
centre = X_train.mean().to_numpy()
# auxiliary outliers: broad uniform noise over +-6 standard deviations
outliers = pd.DataFrame(centre + spread * rng.uniform(-6, 6, size=(2000, X.shape[1])),
                        columns=X.columns).astype("float32")
X_all = pd.concat([X_train, outliers], ignore_index=True)
y_all = np.concatenate([y_train.to_numpy(dtype=object), np.full(len(outliers), -1, dtype=object)])

# %%
# Scaler and detector in one Pipeline
# -----------------------------------
pipe = make_pipeline(
    StandardScaler(),
    GradRegOODDetector(MLP, module__n_features=X.shape[1], module__n_classes=3,
                       module__hidden=(64, 64), m_in=-10.0, m_out=-3.0, max_epochs=40,
                       lr=0.02, optimizer__momentum=0.9, batch_size=32, random_state=0,
                       verbose=0))
pipe.fit(X_all, y_all)
print("classes:", list(pipe[-1].classes_))
print(f"test accuracy: {pipe.score(X_test, y_test.to_numpy(dtype=object)):.3f}")

# %%
# Shifted rows
# ------------
# OOD test data: wine-like rows with some measurements far outside their range.
shifted = X_test.copy()
shifted.iloc[:, :5] = shifted.iloc[:, :5] + 4 * spread[:5]
labels = np.r_[np.ones(len(X_test)), np.zeros(len(shifted))]     # ID positive
scores = np.r_[pipe.score_samples(X_test), pipe.score_samples(shifted)]
report = ood_report(labels, scores)
print("shifted rows vs test rows:", {k: round(v, 4) for k, v in report.items()})
# the Pipeline's predict is the detector's: +1 accepted as in-distribution, -1 OOD
accepted_test = np.mean(pipe.predict(X_test) == 1)
accepted_shifted = np.mean(pipe.predict(shifted) == 1)
print(f"accepted: {accepted_test:.1%} of test rows, {accepted_shifted:.1%} of shifted rows")

# %%
# Scores and ROC curve
# --------------------
# Left: the scores of both sets and the detector's threshold ``offset_``
# (calibrated on held-out training rows); rows right of it are accepted. Right:
# the ROC curve over every threshold on ``score_samples``, with the test rows as
# the positive class; the point is the Pipeline's own ``predict``. A shift of
# four standard deviations in five columns is easy to detect: the two sets do
# not overlap.
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
bins = np.linspace(scores.min(), scores.max(), 40)
left.hist(scores[labels == 1], bins=bins, alpha=0.6, label="test rows (ID)")
left.hist(scores[labels == 0], bins=bins, alpha=0.6, label="shifted rows (OOD)")
left.axvline(pipe[-1].offset_, color="k", ls="--", label="offset_")
left.set_xlabel("score_samples: higher = more in-distribution")
left.set_ylabel("rows")
left.legend(fontsize=8)
RocCurveDisplay.from_predictions(labels, scores, name="GradRegOODDetector", ax=right)
right.plot(accepted_shifted, accepted_test, "ko", label="predict (threshold offset_)")
right.set_xlabel("shifted rows accepted (false positive rate)")
right.set_ylabel("test rows accepted (true positive rate)")
right.legend(fontsize=8, loc="lower right")
fig.tight_layout()

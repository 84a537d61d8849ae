"""
Save, load in a fresh process, score
====================================

Save a fitted detector with joblib, load it in a fresh Python process and score
a batch there: the scores are the same as before saving. The files go to a
temporary folder, removed at the end.

Run: ``python examples/save_load_score.py``
"""
import os
import subprocess
import sys
import tempfile
import textwrap

import joblib
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skood import GradRegOODClassifier
from skood.datasets import make_natural_image_outliers
from skood.models import MLP

# %%
# Fit and save
# ------------
X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
clf = GradRegOODClassifier(MLP, module__n_features=64, module__n_classes=10,
                           m_in=-12.0, m_out=-4.0, max_epochs=8, lr=0.05,
                           optimizer__momentum=0.9, batch_size=64, random_state=0, verbose=0)
clf.fit(X, y, X_aux=make_natural_image_outliers(2000, (8, 8), random_state=0))
folder = tempfile.TemporaryDirectory()     # removed at the end (or at exit, after an error)
model_path = os.path.join(folder.name, "digits.joblib")
batch_path = os.path.join(folder.name, "x.npy")
scores_path = os.path.join(folder.name, "scores.npy")
joblib.dump(clf, model_path)
batch = X[::6]                      # 300 digits of all classes
np.save(batch_path, batch)
expected = clf.ood_decision_function(batch)

# %%
# Load and score in a fresh interpreter
# -------------------------------------
# Nothing from this process is shared but the files: the fresh process writes
# its scores to a file of its own.
# joblib.load runs code from the file: load only files you trust.
scorer = textwrap.dedent(f"""
    import joblib, numpy as np
    clf = joblib.load({model_path!r})
    x = np.load({batch_path!r})
    np.save({scores_path!r}, clf.ood_decision_function(x))
    print(" ".join(str(v) for v in clf.predict(x[:10])))
""")
labels = subprocess.run([sys.executable, "-c", scorer], check=True, capture_output=True,
                        text=True).stdout.strip()
loaded = np.load(scores_path)
folder.cleanup()
print("ood_decision_function in the fresh process:", np.round(loaded[:5], 4))
print("predicted labels of the first ten digits in the fresh process:", labels)
print(f"largest difference to the scores before saving: {np.abs(loaded - expected).max():.2g}")
print("same as before saving:", bool(np.allclose(loaded, expected, atol=1e-5)))

# %%
# Each digit's score before saving against its score in the fresh process: all
# on the diagonal. Below 0 (the model's threshold) a digit is rejected as OOD.
fig, ax = plt.subplots(figsize=(4.6, 4.2))
ax.scatter(expected, loaded, s=10, alpha=0.6)
ax.axline((0, 0), slope=1, color="k", lw=0.8, ls="--", label="same score")
ax.axhline(0, color="grey", lw=0.6)
ax.axvline(0, color="grey", lw=0.6)
ax.set_xlabel("ood_decision_function before saving")
ax.set_ylabel("... in the fresh process")
ax.set_title(f"{len(batch)} digits, saved, loaded and scored anew", fontsize=10)
ax.legend(fontsize=8)
fig.tight_layout()

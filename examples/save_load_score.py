"""
Save, load in a fresh process, score
====================================

Save a fitted detector with joblib, load it in a fresh Python process and score
a batch there: the scores are the same as before saving.

Run: ``python examples/save_load_score.py``
"""
import os
import subprocess
import sys
import tempfile
import textwrap

import joblib
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
folder = tempfile.mkdtemp()
model_path, batch_path = os.path.join(folder, "digits.joblib"), os.path.join(folder, "x.npy")
joblib.dump(clf, model_path)
np.save(batch_path, X[:5])
expected = clf.ood_decision_function(X[:5])

# %%
# Load and score in a fresh interpreter
# -------------------------------------
# Nothing from this process is shared but the files.
# joblib.load runs code from the file: load only files you trust.
scorer = textwrap.dedent(f"""
    import joblib, numpy as np
    clf = joblib.load({model_path!r})
    x = np.load({batch_path!r})
    print(" ".join(f"{{v:.6f}}" for v in clf.ood_decision_function(x)))
    print(" ".join(str(v) for v in clf.predict(x)))
""")
lines = subprocess.run([sys.executable, "-c", scorer], check=True, capture_output=True,
                       text=True).stdout.split("\n")
loaded = np.array([float(v) for v in lines[0].split()])
print("ood_decision_function in the fresh process:", np.round(loaded, 4))
print("predicted labels in the fresh process:", lines[1])
print("same as before saving:", bool(np.allclose(loaded, expected, atol=1e-5)))

"""Write the small intersphinx inventories that docs/conf.py links with, offline.

The docs are built (with -W) on machines without a network, where intersphinx
cannot download the projects' ``objects.inv``. These files hold only the
objects that skood's pages and docstrings refer to, with the addresses of
their pages in each project's published documentation. Add a row to
``OBJECTS`` when the docs start referring to something new, then run::

    python docs/_intersphinx/make_inventories.py

(``SKOOD_DOCS_ONLINE=1`` at build time uses the full online inventories instead.)
Format: Sphinx inventory version 2 (a four-line header, then zlib-compressed
lines ``name domain:role priority uri display-name``; ``-`` as display name stands
for the name itself). In ``OBJECTS``, ``$`` in a uri stands for the name.
"""
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent

# project -> (name, domain:role, uri relative to the project's documentation root, display)
OBJECTS = {
    "python": [
        ("int", "py:class", "library/functions.html#$", "-"),
        ("float", "py:class", "library/functions.html#$", "-"),
        ("bool", "py:class", "library/functions.html#$", "-"),
        ("str", "py:class", "library/stdtypes.html#$", "-"),
        ("dict", "py:class", "library/stdtypes.html#$", "-"),
        ("list", "py:class", "library/stdtypes.html#$", "-"),
        ("tuple", "py:class", "library/stdtypes.html#$", "-"),
        ("callable", "py:function", "library/functions.html#$", "-"),
        ("None", "py:data", "library/constants.html#$", "-"),
        ("bltin-boolean-values", "std:label", "library/stdtypes.html#$", "Boolean Values"),
        ("iterable", "std:term", "glossary.html#term-iterable", "-"),
        ("sequence", "std:term", "glossary.html#term-sequence", "-"),
        ("FloatingPointError", "py:exception", "library/exceptions.html#$", "-"),
        ("FileNotFoundError", "py:exception", "library/exceptions.html#$", "-"),
        ("ValueError", "py:exception", "library/exceptions.html#$", "-"),
        ("UserWarning", "py:exception", "library/exceptions.html#$", "-"),
        ("typing.NamedTuple", "py:class", "library/typing.html#$", "-"),
        ("os.PathLike", "py:class", "library/os.html#$", "-"),
        ("argparse", "py:module", "library/argparse.html#module-$", "-"),
        ("pickle", "py:module", "library/pickle.html#module-$", "-"),
    ],
    "numpy": [
        ("numpy.ndarray", "py:class", "reference/generated/$.html#$", "-"),
        ("numpy.random.RandomState", "py:class", "reference/random/legacy.html#$", "-"),
        ("numpy.random.Generator", "py:class", "reference/random/generator.html#$", "-"),
        ("array_like", "std:term", "glossary.html#term-array_like", "-"),
        ("arrays.scalars", "std:label", "reference/arrays.scalars.html#arrays-scalars",
         "Scalars"),
    ],
    "sklearn": [
        ("sklearn.base.BaseEstimator", "py:class", "modules/generated/$.html#$", "-"),
        ("sklearn.base.ClassifierMixin", "py:class", "modules/generated/$.html#$", "-"),
        ("sklearn.utils.Bunch", "py:class", "modules/generated/$.html#$", "-"),
        ("sklearn.model_selection.GridSearchCV", "py:class", "modules/generated/$.html#$", "-"),
        ("sklearn.model_selection.StratifiedKFold", "py:class", "modules/generated/$.html#$",
         "-"),
        ("sklearn.pipeline.Pipeline", "py:class", "modules/generated/$.html#$", "-"),
        ("sklearn.ensemble.IsolationForest", "py:class", "modules/generated/$.html#$", "-"),
        ("sklearn.metrics.make_scorer", "py:function", "modules/generated/$.html#$", "-"),
        ("sklearn.metrics.roc_auc_score", "py:function", "modules/generated/$.html#$", "-"),
        ("sklearn.metrics.average_precision_score", "py:function",
         "modules/generated/$.html#$", "-"),
        ("random_state", "std:term", "glossary.html#term-random_state", "-"),
    ],
    "torch": [
        ("torch.Tensor", "py:class", "tensors.html#$", "-"),
        ("torch.Generator", "py:class", "generated/$.html#$", "-"),
        ("torch.device", "py:class", "tensor_attributes.html#$", "-"),
        ("torch.dtype", "py:class", "tensor_attributes.html#$", "-"),
        ("torch.nn.Module", "py:class", "generated/$.html#$", "-"),
        # the name autodoc writes for the base class of skood.models' networks
        ("torch.nn.modules.module.Module", "py:class",
         "generated/torch.nn.Module.html#torch.nn.Module", "torch.nn.Module"),
        ("torch.nn.CrossEntropyLoss", "py:class", "generated/$.html#$", "-"),
        ("torch.optim.SGD", "py:class", "generated/$.html#$", "-"),
        ("torch.utils.data.Dataset", "py:class", "data.html#$", "-"),
    ],
    "skorch": [
        ("skorch.classifier.NeuralNetClassifier", "py:class", "classifier.html#$", "-"),
        ("skorch.NeuralNetClassifier", "py:class",
         "classifier.html#skorch.classifier.NeuralNetClassifier", "-"),
        ("skorch.net.NeuralNet", "py:class", "net.html#$", "-"),
        ("skorch.NeuralNet", "py:class", "net.html#skorch.net.NeuralNet", "-"),
        ("skorch.hf.AccelerateMixin", "py:class", "hf.html#$", "-"),
        ("skorch.history.History", "py:class", "history.html#$", "-"),
        ("skorch.dataset.ValidSplit", "py:class", "dataset.html#$", "-"),
        ("skorch.callbacks.GradientNormClipping", "py:class", "callbacks.html#$", "-"),
    ],
}


def inventory_bytes(project, objects):
    header = (f"# Sphinx inventory version 2\n# Project: {project}\n# Version: \n"
              "# The remainder of this file is compressed using zlib.\n").encode()
    body = "".join(f"{name} {role} 1 {uri.replace('$', name)} {display}\n"
                   for name, role, uri, display in sorted(objects))
    return header + zlib.compress(body.encode(), 9)


def main():
    for project, objects in OBJECTS.items():
        path = HERE / f"{project}.inv"
        path.write_bytes(inventory_bytes(project, objects))
        print(f"wrote {path} ({len(objects)} objects)")


if __name__ == "__main__":
    main()

"""Made-up files in the real formats of CIFAR-10/100 and SVHN, for tests that never
download anything."""
import os
import pickle
import struct

import numpy as np


CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck"]


# -- files as the CIFAR authors wrote them ---------------------------------------------------

def py2_pickle(obj):
    """Protocol-2 pickle as Python 2 with numpy 1.x wrote the CIFAR files: str as byte strings
    (SHORT_BINSTRING / BINSTRING) and arrays rebuilt by numpy.core.multiarray._reconstruct."""
    def save(o):
        if o is None:
            return b"N"
        if isinstance(o, bool):
            return b"\x88" if o else b"\x89"
        if isinstance(o, int):
            return b"K" + bytes([o]) if 0 <= o < 256 else b"J" + struct.pack("<i", o)
        if isinstance(o, str):
            o = o.encode("latin1")
        if isinstance(o, bytes):
            return (b"U" + bytes([len(o)]) + o if len(o) < 256
                    else b"T" + struct.pack("<i", len(o)) + o)
        if isinstance(o, tuple):
            return b"(" + b"".join(save(x) for x in o) + b"t"
        if isinstance(o, list):
            return b"](" + b"".join(save(x) for x in o) + b"e"
        if isinstance(o, dict):
            return b"}(" + b"".join(save(k) + save(v) for k, v in o.items()) + b"u"
        if isinstance(o, np.ndarray):
            assert o.dtype == np.uint8
            dtype = (b"cnumpy\ndtype\n" + save(("u1", 0, 1)) + b"R"
                     + save((3, "|", None, None, None, -1, -1, 0)) + b"b")
            return (b"cnumpy.core.multiarray\n_reconstruct\n"
                    + b"(cnumpy\nndarray\n" + save((0,)) + save("b") + b"tR"
                    + b"(" + save(1) + save(o.shape) + dtype + save(False)
                    + save(o.tobytes()) + b"tb")
        raise TypeError(type(o))
    return b"\x80\x02" + save(obj) + b"."


def py3_pickle(obj):
    """Protocol 2 from Python 3, bytes keys: how the files are rewritten by Python 3 tools."""
    return pickle.dumps(obj, protocol=2)


def make_cifar10(home, n=4, seed=0, dump=py2_pickle):
    """cifar-10-batches-py with 5 training batches and a test batch of n images each."""
    rng = np.random.default_rng(seed)
    folder = os.path.join(home, "cifar-10-batches-py")
    os.makedirs(folder)
    rows, labels = {}, {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rows[name] = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels[name] = [int(v) for v in rng.integers(0, 10, size=n)]
        batch = {b"batch_label": f"{name} of made-up CIFAR-10".encode(), b"labels": labels[name],
                 b"data": rows[name], b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
        with open(os.path.join(folder, name), "wb") as f:
            f.write(dump(batch))
    with open(os.path.join(folder, "batches.meta"), "wb") as f:
        f.write(dump({b"num_cases_per_batch": n, b"label_names": [c.encode() for c in
                                                                  CIFAR10_NAMES],
                      b"num_vis": 3072}))
    return rows, labels


def make_cifar100(home, n=5, seed=0):
    rng = np.random.default_rng(seed)
    folder = os.path.join(home, "cifar-100-python")
    os.makedirs(folder)
    made = {}
    for name in ("train", "test"):
        fine = [int(v) for v in rng.integers(0, 100, size=n)]
        coarse = [v // 5 for v in fine]
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        made[name] = (data, fine, coarse)
        batch = {b"filenames": [b"x.png"] * n, b"batch_label": name.encode(),
                 b"fine_labels": fine, b"coarse_labels": coarse, b"data": data}
        with open(os.path.join(folder, name), "wb") as f:
            f.write(py3_pickle(batch))
    with open(os.path.join(folder, "meta"), "wb") as f:
        f.write(py3_pickle({b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
                            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)]}))
    return made


def make_svhn(folder, n=6, split="test"):
    from scipy.io import savemat
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
    y = np.array([[10], [1], [2], [9], [10], [5]][:n], dtype=np.uint8)
    savemat(os.path.join(folder, f"{split}_32x32.mat"), {"X": X, "y": y})
    return X, y

"""CIFAR-10/100, SVHN and image folders read from made-up files in the real formats."""
import os
import pickle
import struct
import sys
import tarfile

import numpy as np
import pytest

from cifar_files import (CIFAR10_NAMES, make_cifar10, make_cifar100, make_svhn, py2_pickle,
                         py3_pickle)
from skood.datasets import (CIFAR_URL, load_cifar10, load_cifar100, load_image_folder,
                            load_svhn)

def archive(home, folder_name, archive_name, out):
    """A .tar.gz of home/folder_name, as the authors ship it (the folder at the top)."""
    path = os.path.join(out, archive_name)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(os.path.join(home, folder_name), arcname=folder_name)
    return path


@pytest.fixture
def no_env(monkeypatch):
    monkeypatch.delenv("SKOOD_DATA", raising=False)


# -- CIFAR-10 -------------------------------------------------------------------------------

def test_the_py2_writer_writes_what_pickle_reads():
    """The test's own writer is a valid pickle: the standard unpickler reads it back."""
    array = np.arange(6, dtype=np.uint8).reshape(2, 3)
    back = pickle.loads(py2_pickle({b"data": array, b"labels": [1, 300]}), encoding="bytes")
    np.testing.assert_array_equal(back[b"data"], array)
    assert back[b"labels"] == [1, 300]


def test_cifar10_folder_pixels_channel_order_and_labels(tmp_path, no_env):
    rows, labels = make_cifar10(tmp_path)
    # image 1 of data_batch_2: green (channel 1) at row 5, column 7 is byte 1024 + 5 * 32 + 7
    rows["data_batch_2"][1, 1024 + 5 * 32 + 7] = 201
    # image 0 of the test batch: pure red
    rows["test_batch"][0] = 0
    rows["test_batch"][0, :1024] = 255
    for name in ("data_batch_2", "test_batch"):
        batch = {b"batch_label": b"x", b"labels": labels[name], b"data": rows[name],
                 b"filenames": [b"f"] * 4}
        (tmp_path / "cifar-10-batches-py" / name).write_bytes(py2_pickle(batch))

    data = load_cifar10(data_home=str(tmp_path))
    assert data.X_train.shape == (20, 3, 32, 32) and data.X_train.dtype == np.uint8
    assert data.X_test.shape == (4, 3, 32, 32)
    assert data.X_train[4 + 1, 1, 5, 7] == 201
    assert data.X_test[0, 0].min() == 255 and data.X_test[0, 1:].max() == 0
    # every pixel of one image, from the layout: R plane, G plane, B plane, each row-major
    row = rows["data_batch_3"][2]
    image = data.X_train[8 + 2]
    for c in range(3):
        for r in range(32):
            for col in range(32):
                assert image[c, r, col] == row[1024 * c + 32 * r + col]
    expected_train = sum((labels[f"data_batch_{i}"] for i in range(1, 6)), [])
    assert data.y_train.tolist() == expected_train and data.y_train.dtype == np.int64
    assert data.y_test.tolist() == labels["test_batch"]
    assert list(data.class_names) == CIFAR10_NAMES
    assert data.path == str(tmp_path)
    assert data.source == os.path.join(str(tmp_path), "cifar-10-batches-py")


def test_cifar10_archive_is_read_without_extracting(tmp_path, no_env):
    made = tmp_path / "made"
    made.mkdir()
    make_cifar10(made)
    home = tmp_path / "home"
    home.mkdir()
    path = archive(made, "cifar-10-batches-py", "cifar-10-python.tar.gz", home)
    from_archive = load_cifar10(data_home=str(home))
    from_folder = load_cifar10(data_home=str(made))
    for key in ("X_train", "y_train", "X_test", "y_test"):
        np.testing.assert_array_equal(from_archive[key], from_folder[key])
    assert from_archive.class_names == from_folder.class_names
    assert from_archive.source == path
    assert os.listdir(home) == ["cifar-10-python.tar.gz"]     # nothing extracted


def test_a_python3_protocol2_file_reads_the_same(tmp_path, no_env):
    a, b = tmp_path / "a", tmp_path / "b"
    make_cifar10(a, dump=py2_pickle)
    make_cifar10(b, dump=py3_pickle)
    first, second = load_cifar10(str(a)), load_cifar10(str(b))
    np.testing.assert_array_equal(first.X_train, second.X_train)
    np.testing.assert_array_equal(first.y_test, second.y_test)


def test_data_home_comes_before_skood_data_and_falls_back_to_it(tmp_path, monkeypatch):
    here, there, empty = tmp_path / "here", tmp_path / "there", tmp_path / "empty"
    empty.mkdir()
    make_cifar10(here, seed=1)
    make_cifar10(there, seed=2)
    monkeypatch.setenv("SKOOD_DATA", str(there))
    assert load_cifar10(data_home=str(here)).path == str(here)
    assert load_cifar10().path == str(there)
    assert load_cifar10(data_home=str(empty)).path == str(there)
    np.testing.assert_array_equal(load_cifar10().X_test, load_cifar10(str(there)).X_test)
    assert not np.array_equal(load_cifar10().X_test, load_cifar10(str(here)).X_test)


def test_a_home_folder_shorthand_is_expanded(tmp_path, monkeypatch):
    make_cifar10(tmp_path / "data")
    make_svhn(tmp_path / "data")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SKOOD_DATA", "~/data")
    assert load_cifar10(data_home="~/data").path == str(tmp_path / "data")
    assert load_cifar10().path == str(tmp_path / "data")
    assert load_svhn(data_home="~/data").X.shape[0] == 6


def test_the_folder_comes_before_the_archive_in_one_place(tmp_path, no_env):
    other = tmp_path / "other"
    make_cifar10(other, seed=5)
    make_cifar10(tmp_path, seed=6)
    archive(other, "cifar-10-batches-py", "cifar-10-python.tar.gz", tmp_path)
    data = load_cifar10(str(tmp_path))
    assert data.source.endswith("cifar-10-batches-py")


def test_missing_cifar_lists_the_places_and_where_to_get_it(tmp_path, monkeypatch):
    env = tmp_path / "env"
    env.mkdir()
    monkeypatch.setenv("SKOOD_DATA", str(env))
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10(data_home=str(tmp_path))
    message = str(info.value)
    for place in (tmp_path / "cifar-10-batches-py", tmp_path / "cifar-10-python.tar.gz",
                  env / "cifar-10-batches-py", env / "cifar-10-python.tar.gz"):
        assert str(place) in message
    assert CIFAR_URL in message and "CIFAR-10 python version" in message
    assert "University of Toronto" in message and "data_home=" in message
    assert "SKOOD_DATA" in message


def test_without_any_folder_the_error_says_so(no_env):
    with pytest.raises(FileNotFoundError, match="no folder was given.*SKOOD_DATA is not set"):
        load_cifar10()
    with pytest.raises(FileNotFoundError, match="CIFAR-100 python version"):
        load_cifar100()


def test_an_incomplete_folder_or_archive_names_what_is_missing(tmp_path, no_env):
    make_cifar10(tmp_path)
    os.remove(tmp_path / "cifar-10-batches-py" / "data_batch_3")
    with pytest.raises(FileNotFoundError, match=r"lacks \['data_batch_3'\]"):
        load_cifar10(str(tmp_path))
    home = tmp_path / "home"
    home.mkdir()
    archive(tmp_path, "cifar-10-batches-py", "cifar-10-python.tar.gz", home)
    with pytest.raises(FileNotFoundError, match=r"tar\.gz lacks .*\['data_batch_3'\]"):
        load_cifar10(str(home))


def test_batches_pickled_with_protocol_5_are_read(tmp_path, no_env):
    """Protocol 5 (Python 3.14's default) rebuilds arrays with numpy's _frombuffer."""
    rows, labels = make_cifar10(tmp_path, dump=lambda obj: pickle.dumps(obj, protocol=5))
    data = load_cifar10(str(tmp_path))
    expected = np.concatenate([rows[f"data_batch_{i}"] for i in range(1, 6)])
    np.testing.assert_array_equal(data.X_train.reshape(len(expected), -1), expected)
    np.testing.assert_array_equal(data.X_test.reshape(4, -1), rows["test_batch"])
    assert data.y_test.tolist() == labels["test_batch"]
    assert list(data.class_names) == CIFAR10_NAMES


def test_files_that_are_not_cifar_batches_are_refused(tmp_path, no_env):
    make_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="data_batch_1 is not a CIFAR batch file"):
        load_cifar10(str(tmp_path))
    batch.write_bytes(py2_pickle({b"data": np.zeros((4, 100), np.uint8), b"labels": [0] * 4}))
    with pytest.raises(ValueError, match=r"rows of 3072 bytes.*\(4, 100\)"):
        load_cifar10(str(tmp_path))
    batch.write_bytes(py2_pickle({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0] * 3}))
    with pytest.raises(ValueError, match="expected 4 labels"):
        load_cifar10(str(tmp_path))
    batch.write_bytes(py2_pickle({b"data": np.zeros((4, 3072), np.uint8)}))
    with pytest.raises(ValueError, match="no 'labels' entry"):
        load_cifar10(str(tmp_path))


def test_a_pickle_that_would_run_code_is_refused_unrun(tmp_path, no_env):
    make_cifar10(tmp_path)
    victim = tmp_path / "written-by-the-pickle"
    # builtins.open(victim, "w") when unpickled by the standard unpickler
    evil = (b"\x80\x02cbuiltins\nopen\n(" + b"X" + struct.pack("<I", len(str(victim)))
            + str(victim).encode() + b"X\x01\x00\x00\x00wtR.")
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(evil)
    with pytest.raises(ValueError, match="refers to builtins.open"):
        load_cifar10(str(tmp_path))
    assert not victim.exists()


def test_a_file_that_is_not_an_archive_is_refused(tmp_path, no_env):
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match=r"cifar-10-python\.tar\.gz is not a readable"):
        load_cifar10(str(tmp_path))
    made = tmp_path / "made"
    make_cifar10(made)
    path = archive(made, "cifar-10-batches-py", "cifar-10-python.tar.gz", made)
    content = bytearray(open(path, "rb").read())
    content[len(content) // 2:len(content) // 2 + 64] = bytes(64)     # damaged in the middle
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(bytes(content))
    with pytest.raises(ValueError, match=r"tar\.gz is not a readable .*CRC check failed"):
        load_cifar10(str(tmp_path))


# -- CIFAR-100 ------------------------------------------------------------------------------

def test_cifar100_fine_and_coarse_from_folder_and_archive(tmp_path, no_env):
    made = make_cifar100(tmp_path)
    home = tmp_path / "home"
    home.mkdir()
    archive(tmp_path, "cifar-100-python", "cifar-100-python.tar.gz", home)
    for where in (tmp_path, home):
        fine = load_cifar100(str(where))
        coarse = load_cifar100(str(where), label="coarse")
        data, fine_labels, coarse_labels = made["train"]
        assert fine.X_train.shape == (5, 3, 32, 32)
        assert fine.X_train[3, 2, 31, 0] == data[3, 2048 + 31 * 32]
        assert fine.y_train.tolist() == fine_labels and coarse.y_train.tolist() == coarse_labels
        assert fine.y_test.tolist() == made["test"][1]
        assert coarse.y_test.tolist() == made["test"][2]
        assert fine.class_names[7] == "fine7" and len(fine.class_names) == 100
        assert coarse.class_names[19] == "coarse19" and len(coarse.class_names) == 20
        np.testing.assert_array_equal(fine.X_test, coarse.X_test)


def test_cifar100_label_must_be_fine_or_coarse(tmp_path):
    with pytest.raises(ValueError, match="label must be 'fine'.*or 'coarse'.*'super'"):
        load_cifar100(str(tmp_path), label="super")


def test_cifar100_labels_beyond_the_class_names_are_refused(tmp_path, no_env):
    make_cifar100(tmp_path)
    (tmp_path / "cifar-100-python" / "meta").write_bytes(py3_pickle(
        {b"fine_label_names": [b"a"] * 10, b"coarse_label_names": [b"b"] * 20}))
    with pytest.raises(ValueError, match=r"labels in 0\.\.9"):
        load_cifar100(str(tmp_path))


# -- far-OOD sets for the CIFAR benchmark: SVHN and image folders ------------------------------

def test_svhn_is_channels_first_and_label_10_is_digit_0(tmp_path, no_env):
    X, _ = make_svhn(tmp_path)
    svhn = load_svhn(str(tmp_path))
    assert svhn.X.shape == (6, 3, 32, 32) and svhn.X.dtype == np.uint8
    assert svhn.X[4, 2, 3, 17] == X[3, 17, 2, 4]           # (row, col, channel, image)
    np.testing.assert_array_equal(svhn.X[1], X[..., 1].transpose(2, 0, 1))
    assert svhn.y.tolist() == [0, 1, 2, 9, 0, 5]
    assert svhn.path == os.path.join(str(tmp_path), "test_32x32.mat")


def test_svhn_from_skood_data_and_its_errors(tmp_path, monkeypatch):
    make_svhn(tmp_path, split="train")
    monkeypatch.setenv("SKOOD_DATA", str(tmp_path))
    assert load_svhn(split="train").X.shape[0] == 6
    with pytest.raises(FileNotFoundError, match=r"test_32x32\.mat was not found.*"
                                                r"ufldl\.stanford\.edu/housenumbers"):
        load_svhn()
    with pytest.raises(ValueError, match="split must be"):
        load_svhn(split="valid")
    from scipy.io import savemat
    savemat(os.path.join(tmp_path, "test_32x32.mat"),
            {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[0], [3]])})
    with pytest.raises(ValueError, match=r"labels must be in 1\.\.10"):
        load_svhn()


def save_image(path, array, mode=None):
    from PIL import Image
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8), mode).save(path)


def test_image_folder_reads_recursively_in_path_order(tmp_path):
    pytest.importorskip("PIL")
    save_image(tmp_path / "b" / "blue.png", np.broadcast_to([0, 0, 255], (40, 40, 3)))
    save_image(tmp_path / "a" / "x" / "red.JPG", np.broadcast_to([255, 0, 0], (64, 64, 3)))
    save_image(tmp_path / "grey.bmp", np.full((20, 30), 77))              # grey, enlarged
    save_image(tmp_path / "alpha.png", np.broadcast_to([10, 20, 30, 0], (8, 8, 4)))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "._hidden.png").write_bytes(b"resource fork, not an image")
    images = load_image_folder(str(tmp_path), image_shape=(16, 16))
    assert images.filenames == [os.path.join("a", "x", "red.JPG"), "alpha.png",
                                os.path.join("b", "blue.png"), "grey.bmp"]
    assert images.X.shape == (4, 3, 16, 16) and images.X.dtype == np.uint8
    red = images.X[0].astype(int)      # JPEG: colours within a few levels
    assert red[0].min() > 240 and red[1:].max() < 15
    assert (images.X[1].reshape(3, -1).T == [10, 20, 30]).all()     # alpha dropped
    assert (images.X[2].reshape(3, -1).T == [0, 0, 255]).all()
    assert (images.X[3] == 77).all()                                # grey on all channels


def test_image_folder_centre_crops_instead_of_squashing(tmp_path):
    pytest.importorskip("PIL")
    wide = np.zeros((32, 64, 3), dtype=np.uint8)        # 64 wide: red | green (32) | blue
    wide[:, :16] = [255, 0, 0]
    wide[:, 16:48] = [0, 255, 0]
    wide[:, 48:] = [0, 0, 255]
    save_image(tmp_path / "wide.png", wide)
    X = load_image_folder(str(tmp_path), image_shape=(32, 32)).X
    assert (X[0].reshape(3, -1).T == [0, 255, 0]).all()
    # a non-square target: the 64x32 image covers (16, 32) after halving, cropped to the middle
    X = load_image_folder(str(tmp_path), image_shape=(8, 32)).X
    assert X.shape == (1, 3, 8, 32)
    np.testing.assert_array_equal(X[0, :, 4, 12:20].T, [[0, 255, 0]] * 8)


def test_image_folder_draws_max_images_reproducibly(tmp_path):
    pytest.importorskip("PIL")
    for i in range(10):
        save_image(tmp_path / f"{i}.png", np.full((4, 4, 3), i * 20))
    a = load_image_folder(str(tmp_path), (4, 4), max_images=4, random_state=0)
    b = load_image_folder(str(tmp_path), (4, 4), max_images=4, random_state=0)
    assert a.filenames == b.filenames and len(a.filenames) == 4
    assert a.filenames == sorted(a.filenames)
    np.testing.assert_array_equal(a.X[:, 0, 0, 0], [int(f[:-4]) * 20 for f in a.filenames])
    assert len(load_image_folder(str(tmp_path), (4, 4), max_images=50).filenames) == 10


def test_image_folder_errors(tmp_path, monkeypatch):
    pytest.importorskip("PIL")
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        load_image_folder(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="holds no image file"):
        load_image_folder(str(tmp_path))
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match=r"broken\.jpg could not be read as an image"):
        load_image_folder(str(tmp_path))
    for bad in ((32,), (0, 32), (32.0, 32), "32x32"):
        with pytest.raises(ValueError, match="image_shape must be a pair"):
            load_image_folder(str(tmp_path), image_shape=bad)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="max_images must be None or an int"):
            load_image_folder(str(tmp_path), max_images=bad)
    monkeypatch.setitem(sys.modules, "PIL", None)        # as if Pillow were not installed
    with pytest.raises(ImportError, match="pip install Pillow"):
        load_image_folder(str(tmp_path))

"""The test set's encodings (cvae.core.encodings): written to .npz and read back as the model
encodes them, with their types; the CSV a person downloads, for any latent size, with or
without labels and with the test digits' own indices; mismatched inputs refused by name."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
import torch

from cvae.core.encodings import encodings_csv, read_encodings, write_encodings
from cvae.core.latent import encode_dataset
from devkit import random_model


def test_written_encodings_read_back_as_the_model_encodes(tmp_path):
    model = random_model(seed=3)
    images = torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    labels = np.arange(20) % 10
    path = write_encodings(model, images, labels, tmp_path / "sub" / "enc.npz")
    assert path == tmp_path / "sub" / "enc.npz" and path.is_file()
    got = read_encodings(path)
    z_mean, z_log_var = encode_dataset(model, images)
    np.testing.assert_array_equal(got["z_mean"], z_mean.astype(np.float32))
    np.testing.assert_array_equal(got["z_log_var"], z_log_var.astype(np.float32))
    assert got["label"].tolist() == labels.tolist()
    assert (got["z_mean"].dtype, got["z_log_var"].dtype, got["label"].dtype) == (np.float32, np.float32, np.int64)
    with np.load(path) as f:  # stored small: float32 and one byte a label
        assert (f["z_mean"].dtype, f["z_log_var"].dtype, f["label"].dtype) == (np.float32, np.float32, np.uint8)


def rows(data: bytes) -> list[list[str]]:
    assert data.endswith(b"\n") and b"\r" not in data
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


def test_the_csv_for_any_latent_size_with_its_indices():
    zm = np.array([[0.1234567, -2.0, 3.5], [1e-7, 12345678.0, 0.0]])
    lv = np.array([[0.0, np.log(4.0), -2.0], [1.0, 0.0, 0.0]])
    r = rows(encodings_csv(zm, lv, [7, 2], indices=[40, 41]))
    assert r[0] == ["index", "label", "z1", "z2", "z3", "z1_log_var", "z2_log_var", "z3_log_var",
                    "z1_std", "z2_std", "z3_std"]
    assert r[1][:5] == ["40", "7", "0.123457", "-2", "3.5"]  # six significant digits
    assert r[1][8:] == ["1", "2", f"{np.exp(-1.0):.6g}"]
    assert r[2][:5] == ["41", "2", "1e-07", "1.23457e+07", "0"]
    assert len(r) == 3


def test_the_csv_without_labels_leaves_their_column_empty():
    r = rows(encodings_csv([[0.0, 1.0]], [[0.0, 0.0]]))
    assert r[1] == ["0", "", "0", "1", "0", "0", "1", "1"]


def test_mismatched_inputs_are_refused_by_name():
    zm, lv = np.zeros((3, 2)), np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"z_mean and z_log_var must be \(N, d\) of one shape; got \(3, 2\) and \(2, 2\)"):
        encodings_csv(zm, lv[:2])
    with pytest.raises(ValueError, match="must be"):
        encodings_csv(zm[:, 0], lv[:, 0])  # not (N, d)
    with pytest.raises(ValueError, match="^2 labels for 3 encodings$"):
        encodings_csv(zm, lv, [1, 2])
    with pytest.raises(ValueError, match="^4 indices for 3 encodings$"):
        encodings_csv(zm, lv, None, indices=[0, 1, 2, 3])


def test_the_csv_std_is_right_to_its_six_digits_for_stored_float32_encodings():
    """The app's encodings are float32 (read_encodings); the std column is exp(log_var / 2) of the
    stored value to six significant digits, which float32 arithmetic misses in the last one."""
    lv = np.array([[-0.1494029, -1.1460068]], np.float32)
    r = rows(encodings_csv(np.zeros((1, 2), np.float32), lv))
    assert r[1][6:] == ["0.928021", "0.563829"]
    assert r[1][6:] == [f"{np.exp(0.5 * float(v)):.6g}" for v in lv[0]]


def test_encodings_holding_pickled_objects_are_refused_not_unpickled(tmp_path):
    """A .npz is data: one whose arrays are pickled Python objects (which loading would run) is refused."""
    path = tmp_path / "enc.npz"
    np.savez(path, z_mean=np.array([{"not": "numbers"}], dtype=object), z_log_var=np.zeros((1, 2), np.float32),
             label=np.zeros(1, np.uint8))
    with pytest.raises(ValueError, match="allow_pickle"):
        read_encodings(path)

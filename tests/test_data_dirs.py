"""Where MNIST is looked for and what a person is told when it is not there (cvae.core.data):
--data-dir, then $CVAE_DATA, then the per-user cache; all four raw files needed; the paragraph
names the folder, the files and why the download did not happen; a download that fails or
succeeds, with torchvision's MNIST replaced here (no network); the limit and the split checked;
the fingerprint of a set of images."""

from __future__ import annotations

import pytest
import torch

from cvae.core import data
from cvae.core.data import (RAW_FILES, DataMissingError, default_data_dir, fingerprint, has_mnist, load_mnist,
                            missing_message, resolve_data_dir)


def test_the_data_folder_is_the_option_then_cvae_data_then_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("CVAE_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "given") == tmp_path / "given"
    assert resolve_data_dir() == tmp_path / "env"
    monkeypatch.setenv("CVAE_DATA", "")
    assert resolve_data_dir() == resolve_data_dir("") == tmp_path / "cache" / "cvae-latent-explorer" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / ".cache" / "cvae-latent-explorer" / "mnist"
    monkeypatch.setenv("CVAE_DATA", "~/mnist-here")
    assert resolve_data_dir() == tmp_path / "home" / "mnist-here"
    assert resolve_data_dir("~/given") == tmp_path / "home" / "given"


def test_mnist_is_there_only_with_all_four_raw_files(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in RAW_FILES[:3]:
        (raw / name).write_bytes(b"x")
    assert not has_mnist(tmp_path)
    (raw / RAW_FILES[3]).mkdir()  # a folder by that name is not the file
    assert not has_mnist(tmp_path)
    (raw / RAW_FILES[3]).rmdir()
    (raw / RAW_FILES[3]).write_bytes(b"x")
    assert has_mnist(tmp_path)
    assert RAW_FILES == ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                         "t10k-labels-idx1-ubyte")


def test_the_missing_paragraph_names_the_folder_the_files_and_the_reason(tmp_path):
    msg = missing_message(tmp_path, "no network")
    assert msg.startswith(f"MNIST was not found in {tmp_path / 'MNIST' / 'raw'} and could not be downloaded "
                          "(no network). It needs these four files there: " + ", ".join(RAW_FILES) + " ")
    assert "--data-dir" in msg and "CVAE_DATA" in msg and "11 MB" in msg
    assert "downloaded. It needs" in missing_message(tmp_path)  # no reason, no brackets


class FakeMNIST:
    """torchvision's MNIST as this machine has it: nothing on disk; a download that fails, or that
    brings two images."""

    fail_with: Exception | None = OSError("no network")
    calls: list = []

    def __init__(self, root, train, download):
        FakeMNIST.calls.append((root, train, download))
        if not download:
            raise RuntimeError("Dataset not found. You can use download=True to download it")
        if FakeMNIST.fail_with is not None:
            raise FakeMNIST.fail_with
        self.data = torch.tensor([[[0, 255] * 14] * 28, [[51] * 28] * 28], dtype=torch.uint8)
        self.targets = torch.tensor([3, 8], dtype=torch.uint8)


@pytest.fixture
def fake_mnist(monkeypatch):
    import torchvision.datasets

    monkeypatch.setattr(torchvision.datasets, "MNIST", FakeMNIST)
    FakeMNIST.calls, FakeMNIST.fail_with = [], OSError("no network")
    data._load_split.cache_clear()
    yield FakeMNIST
    data._load_split.cache_clear()


def test_without_download_a_missing_mnist_is_the_paragraph(tmp_path, fake_mnist):
    with pytest.raises(DataMissingError) as e:
        load_mnist("test", tmp_path / "none", download=False)
    assert str(e.value) == missing_message(tmp_path / "none", "downloading is turned off")
    assert fake_mnist.calls == [(str((tmp_path / "none").resolve()), False, False)]  # the test split, no download
    assert not (tmp_path / "none").exists()


def test_a_failed_download_says_why(tmp_path, fake_mnist):
    with pytest.raises(DataMissingError) as e:
        load_mnist("train", tmp_path / "dl")
    assert str(e.value) == missing_message(tmp_path / "dl", "OSError: no network")
    assert [c[1:] for c in fake_mnist.calls] == [(True, False), (True, True)]
    assert (tmp_path / "dl").is_dir()  # made for the download


def test_a_download_gives_pixels_over_255_and_the_labels(tmp_path, fake_mnist):
    fake_mnist.fail_with = None
    images, labels = load_mnist("train", tmp_path / "dl")
    assert images.shape == (2, 1, 28, 28) and images.dtype == torch.float32
    assert images[0, 0, 0, :2].tolist() == [0.0, 1.0] and images[1].unique().tolist() == [pytest.approx(0.2)]
    assert labels.tolist() == [3, 8] and labels.dtype == torch.int64
    first, _ = load_mnist("train", tmp_path / "dl", limit=1)
    assert len(first) == 1 and torch.equal(first[0], images[0])
    assert len(fake_mnist.calls) == 2  # loaded once per process: the second call is the cache's


def test_a_bad_split_or_limit_is_refused(tmp_path):
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'val'"):
        load_mnist("val", tmp_path)
    for limit in (0, -5):
        with pytest.raises(ValueError, match=f"limit must be a positive number of images, got {limit}"):
            load_mnist("test", tmp_path, limit=limit)


def test_a_fingerprint_tells_sets_of_images_apart():
    a = torch.rand(10, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    f = fingerprint(a)
    assert len(f) == 16 and int(f, 16) >= 0
    assert fingerprint(a.clone()) == f and fingerprint(a.to(torch.float64)) == f  # the float32 values count
    b = a.clone()
    b[3, 0, 5, 5] += 0.5
    assert fingerprint(b) != f and fingerprint(a[:9]) != f


def test_by_default_the_training_set_downloaded_when_missing(tmp_path, fake_mnist):
    fake_mnist.fail_with = None
    images, labels = load_mnist(data_dir=tmp_path / "dl")
    assert len(images) == len(labels) == 2
    assert [c[1:] for c in fake_mnist.calls] == [(True, False), (True, True)]  # train; then a download


def test_the_missing_paragraph_whole():
    """The one paragraph a person reads when MNIST is not there (the CLI and the app show it): where
    it was looked for, why it was not downloaded, the four files and their form, the three ways on."""
    from pathlib import PurePosixPath

    assert missing_message(PurePosixPath("/data/here"), "no network") == (
        "MNIST was not found in /data/here/MNIST/raw and could not be downloaded (no network). It needs these "
        "four files there: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte (uncompressed, as torchvision.datasets.MNIST stores them). Either connect to the "
        "internet and run again (it downloads them once, about 11 MB), copy the four files into that folder, or "
        "point --data-dir (or the CVAE_DATA environment variable) at a folder that holds MNIST/raw/.")

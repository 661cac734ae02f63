"""Bring your own model: what a person gets back for each file (cvae.core.importer), beyond
tests/test_importer.py: the sentence for each kind of file that cannot be opened, whole, and
where an imported checkpoint came from. Written against the mutation run's survivors
(docs/mutation.md). The Keras files are the real ones of tests/golden/keras_tutorial/, edited
with h5py; no MNIST.
"""

from __future__ import annotations

import zipfile

import h5py
import numpy as np
import pytest
import torch

from cvae import CVAE, load_mnist, save_checkpoint
from cvae.core import importer
from cvae.core.checkpoint import CheckpointError
from devkit import DATA_DIR, needs_data
from test_importer import GOLDEN, TOL, _copy, _keras_zip, _layer_group, _replace


def _says(path_or_bytes, name=None) -> str:
    with pytest.raises(CheckpointError) as info:
        if name is None:
            importer.read_model_file(path_or_bytes)
        else:
            importer.read_model_bytes(path_or_bytes, name)
    msg = str(info.value)
    assert len(msg.splitlines()) == 1, msg
    return msg


# PyTorch files


def test_a_state_dict_of_other_names_says_the_first_name_it_lacks(tmp_path):
    state = CVAE().state_dict()
    for k in ("encoder.conv1.weight", "encoder.z_mean.weight"):
        del state[k]
    torch.save(state, tmp_path / "other.pt")
    assert _says(tmp_path / "other.pt") == (
        "other.pt: a state_dict without encoder.conv1.weight: not this model's (its names are "
        "encoder.conv1, ..., decoder.deconv3)")


def test_a_state_dict_whose_shapes_describe_no_model_says_so(tmp_path):
    state = CVAE().state_dict()
    state["encoder.z_mean.weight"] = torch.tensor(1.0)  # no size to read a latent space from
    torch.save(state, tmp_path / "odd.pt")
    msg = _says(tmp_path / "odd.pt")
    assert msg.startswith("odd.pt: the state_dict does not describe this model: "), msg


@pytest.mark.parametrize("payload", [[1, 2], {}, {"a": torch.zeros(1), "b": 1}, {"state_dict": {}}])
def test_a_pytorch_file_without_a_model_says_so(tmp_path, payload):
    torch.save(payload, tmp_path / "p.pt")
    assert _says(tmp_path / "p.pt") == (
        "p.pt: a PyTorch file that holds neither a checkpoint of this app nor a state_dict")


def test_a_state_dict_tells_which_of_its_layers_the_model_took(tmp_path):
    torch.save(CVAE().state_dict(), tmp_path / "sd.pt")
    imp = importer.read_model_file(tmp_path / "sd.pt")
    assert imp.description == "a PyTorch state_dict" and imp.source == "sd.pt"
    assert imp.layers == {k: k for k in ("encoder.conv1", "encoder.conv2", "encoder.dense", "encoder.z_mean",
                                         "encoder.z_log_var", "decoder.dense", "decoder.deconv1",
                                         "decoder.deconv2", "decoder.deconv3")}
    assert not imp.model.training  # opened to explore, not to train


# Paths


def test_a_folder_or_a_missing_file_is_one_sentence(tmp_path):
    (tmp_path / "model.pt").mkdir()
    assert _says(tmp_path / "model.pt") == "model.pt: is a folder, not a model file"
    assert _says(tmp_path / "gone.pt") == f"{tmp_path / 'gone.pt'}: no such file"


def test_bytes_without_a_name_are_the_file(tmp_path):
    assert _says(b"", "") == "the file: the file is empty"


# HDF5 files


def test_a_truncated_hdf5_file_says_to_fetch_it_again(tmp_path):
    data = (GOLDEN / "vae.weights.h5").read_bytes()
    msg = _says(data[:5000], "cut.weights.h5")
    assert msg == (f"cut.weights.h5: the HDF5 file is truncated: it has 5,000 of its {len(data):,} bytes "
                   "(copy or download it again)")


def test_a_damaged_hdf5_file_gives_h5pys_first_line(monkeypatch):
    msg = _says(importer.HDF5_MAGIC + bytes(200), "bad.h5")
    assert msg.startswith("bad.h5: the HDF5 file is truncated or damaged (h5py says: Unable to "), msg
    assert msg.endswith(")") and "\n" not in msg

    def fails(text):
        def open_(*args, **kwargs):
            raise OSError(text)
        return open_

    for text, said in (("", "OSError"), ("first line\nsecond line", "first line"), ("x" * 300, "x" * 120)):
        monkeypatch.setattr(h5py, "File", fails(text))
        assert _says(importer.HDF5_MAGIC, "bad.h5") == f"bad.h5: the HDF5 file is truncated or damaged (h5py says: {said})"


def test_an_hdf5_file_of_too_many_objects_is_refused(tmp_path):
    path = _copy(tmp_path, to="many.weights.h5")
    with h5py.File(path, "r+") as f:
        g = f.create_group("clutter")
        for i in range(importer.MAX_HDF5_OBJECTS):
            g.create_group(str(i))
    assert _says(path) == "many.weights.h5: the HDF5 file holds more than 10,000 objects, far more than a model's weights"


def test_an_hdf5_file_without_layers_says_so(tmp_path):
    path = tmp_path / "empty.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.zeros(3, "float32"))
    assert _says(path) == ("empty.h5: no Keras layer weights in this HDF5 file (no group holds a kernel and a bias)")


def test_weights_that_are_not_floating_point_are_named(tmp_path):
    path = _copy(tmp_path, to="int.weights.h5")
    with h5py.File(path, "r+") as f:
        group = _layer_group(f, "encoder.dense") + "/vars"
        kernel = np.asarray(f[group]["0"][()])
        del f[group]["0"]
        f[group].create_dataset("0", data=kernel.astype("int32"))
    assert _says(path) == "int.weights.h5: layer dense's kernel is int32, not floating point"


def test_a_wrong_latent_size_in_the_decoder_alone_is_named(tmp_path):
    path = _copy(tmp_path, to="dec3.weights.h5")
    with h5py.File(path, "r+") as f:
        _replace(f, _layer_group(f, "decoder.dense") + "/vars", (3, 3136), (3136,))
    msg = _says(path)
    assert msg == ("dec3.weights.h5: layer dense has kernel (3, 3136) and bias (3136,), where the decoder's dense_1 "
                   "(Dense 2 -> 3136) has kernel (2, 3136) and bias (3136,): a 3-D latent space; the explorer "
                   "needs a 2-D one")


def test_a_wrong_latent_size_in_the_variance_head_alone_is_named(tmp_path):
    path = _copy(tmp_path, "vae_legacy.h5", to="var3.h5")
    with h5py.File(path, "r+") as f:
        for what, shape in (("kernel:0", (16, 3)), ("bias:0", (3,))):
            del f[f"encoder/z_log_var/{what}"]
            f["encoder/z_log_var"].create_dataset(what, data=np.zeros(shape, "float32"))
    assert _says(path) == ("var3.h5: layer z_log_var has kernel (16, 3) and bias (3,), where the encoder's z_log_var "
                           "(Dense 16 -> 2) has kernel (16, 2) and bias (2,): a 3-D latent space; the explorer needs "
                           "a 2-D one")


def _first_conv_renamed(tmp_path, to: str, kernel: tuple):
    """The legacy file with the encoder's first convolution renamed "blob", its kernel of shape ``kernel``."""
    path = _copy(tmp_path, "vae_legacy.h5", to=to)
    with h5py.File(path, "r+") as f:
        f.move("encoder/conv2d", "encoder/blob")
        del f["encoder/blob/kernel:0"]
        f["encoder/blob"].create_dataset("kernel:0", data=np.zeros(kernel, "float32"))
    return path


def test_a_layer_one_size_off_is_named_though_renamed(tmp_path):
    path = _first_conv_renamed(tmp_path, "wide.h5", (3, 3, 2, 32))
    assert _says(path) == ("wide.h5: layer blob has kernel (3, 3, 2, 32) and bias (32,), where the encoder's conv2d "
                           "(Conv2D 1 -> 32) has kernel (3, 3, 1, 32) and bias (32,)")


def test_a_layer_far_from_any_lists_the_files_layers(tmp_path):
    path = _first_conv_renamed(tmp_path, "far.h5", (5, 5, 3, 32))
    assert _says(path) == (
        "far.h5: no layer fits the encoder's conv2d (Conv2D 1 -> 32), kernel (3, 3, 1, 32): the file's layers are "
        "conv2d_transpose (3, 3, 64, 64), conv2d_transpose_1 (3, 3, 32, 64), conv2d_transpose_2 (3, 3, 1, 32), "
        "dense_1 (2, 3136), blob (5, 5, 3, 32), conv2d_1 (3, 3, 32, 64), dense (3136, 16), z_log_var (16, 2), "
        "z_mean (16, 2)")


def test_heads_of_names_that_say_nothing_follow_the_files_order_with_a_note(tmp_path):
    path = _copy(tmp_path, "vae_legacy.h5", to="heads.h5")
    with h5py.File(path, "r+") as f:
        f.move("encoder/z_log_var", "encoder/head_b")
        f.move("encoder/z_mean", "encoder/head_a")
        mean = np.asarray(f["encoder/head_a/kernel:0"][()])
    imp = importer.read_model_file(path)
    assert imp.layers["encoder.z_mean"] == "encoder/head_a" and imp.layers["encoder.z_log_var"] == "encoder/head_b"
    assert imp.notes == ["z_mean is the file's head_a, the first of its shape in the file's order"]
    assert torch.equal(imp.model.encoder.z_mean.weight, torch.from_numpy(mean.T))
    named = importer.read_model_file(_copy(tmp_path, "vae_legacy.h5"))
    assert named.notes == []


@pytest.mark.parametrize("mean, var, noted", [("b_x", "a_sigma", True), ("b_x", "a_std", True), ("b_x", "a_logvar", True),
                                              ("b_x", "a_var", True), ("b_x", "a_logs", True), ("mu", "a_x", False), ("b_mean", "a_x", False)])
def test_heads_are_told_apart_by_the_words_of_their_names(tmp_path, mean, var, noted):
    path = _copy(tmp_path, "vae_legacy.h5", to="heads.h5")
    with h5py.File(path, "r+") as f:
        f.move("encoder/z_log_var", f"encoder/{var}")
        f.move("encoder/z_mean", f"encoder/{mean}")
    imp = importer.read_model_file(path)
    assert imp.layers["encoder.z_mean"] == f"encoder/{mean}" and imp.layers["encoder.z_log_var"] == f"encoder/{var}"
    # a name that says "mean" or "mu" is sure; one that says nothing is the first that is not a variance
    assert imp.notes == ([f"z_mean is the file's {mean}, the first of its shape in the file's order"] if noted else [])


def test_an_optimizers_weights_are_not_layers(tmp_path):
    path = _copy(tmp_path, "vae_legacy.h5", to="adam.h5")
    with h5py.File(path, "r+") as f:
        g = f.create_group("Optimizer_Weights/dense")
        g.create_dataset("kernel:0", data=np.zeros((3136, 16), "float32"))
        g.create_dataset("bias:0", data=np.zeros(16, "float32"))
    assert importer.read_model_file(path).kind == "keras2_weights"


# .keras archives


def test_an_archive_of_too_many_members_is_refused(tmp_path):
    members = {importer.KERAS_WEIGHTS_MEMBER: (GOLDEN / "vae.weights.h5").read_bytes()}
    members.update({f"assets/{i}": b"" for i in range(importer.MAX_ZIP_MEMBERS)})
    path = _keras_zip(tmp_path / "many.keras", members)
    assert _says(path) == "many.keras: the archive has 1,001 members, more than a .keras archive holds"


def test_a_member_packed_over_fifty_times_is_refused_by_name_from_one_mib(tmp_path):
    weights = (GOLDEN / "vae.weights.h5").read_bytes()
    ok = _keras_zip(tmp_path / "ok.keras", {importer.KERAS_WEIGHTS_MEMBER: weights, "assets/pad": bytes(2**20)})
    assert importer.read_model_file(ok).kind == "keras_archive"
    bomb = _keras_zip(tmp_path / "bomb.keras", {importer.KERAS_WEIGHTS_MEMBER: weights,
                                                "assets/pad": bytes(2**20 + 1)})
    msg = _says(bomb)
    with zipfile.ZipFile(bomb) as zf:
        info = zf.getinfo("assets/pad")
    ratio = f"{info.file_size / info.compress_size:,.0f}"
    assert msg == (f"bomb.keras: the archive's assets/pad unpacks {ratio} times larger than it is packed (a zip bomb?); "
                   "refused unread")


def test_an_archive_over_the_unpacked_limit_gives_its_figures(tmp_path):
    members = {importer.KERAS_WEIGHTS_MEMBER: b"x"}
    members.update({f"assets/{i}": bytes(2**20) for i in range(80)})
    path = _keras_zip(tmp_path / "big.keras", members)
    assert _says(path) == ("big.keras: the archive declares 80 MB unpacked, over the 80 MB a model archive may hold "
                           "(a zip bomb?)")


def test_a_zip_of_neither_kind_says_what_it_lacks(tmp_path):
    path = _keras_zip(tmp_path / "x.zip", {"a.txt": b"hello"})
    assert _says(path) == ("x.zip: a ZIP file that is neither a .keras archive (it has no model.weights.h5) "
                           "nor a PyTorch file")


def test_an_archive_whose_weights_are_not_the_size_declared_is_refused(tmp_path):
    weights = (GOLDEN / "vae.weights.h5").read_bytes()
    path = _keras_zip(tmp_path / "lie.keras", {importer.KERAS_WEIGHTS_MEMBER: weights}, level=0)
    data = bytearray(path.read_bytes())
    entry = data.index(b"PK\x01\x02")  # the central directory's record of the member: its size at +24
    assert int.from_bytes(data[entry + 24:entry + 28], "little") == len(weights)
    data[entry + 24:entry + 28] = (len(weights) + 10).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    assert _says(path) == "lie.keras: the archive's model.weights.h5 is not the size it declares"


# Writing, and where an imported checkpoint came from


def test_an_imported_checkpoint_says_where_it_came_from(tmp_path):
    out, imp = importer.import_model(_copy(tmp_path, "vae_legacy.h5", to="mine.h5"), tmp_path / "m.pt")
    assert importer.imported_from(out) == {
        "file": "mine.h5", "kind": "keras2_weights", "description": "Keras 2 weights (.h5)",
        "layers": imp.layers, "notes": []}
    plain = save_checkpoint(CVAE(), tmp_path / "plain.pt")
    assert importer.imported_from(plain) is None
    other = save_checkpoint(CVAE(), tmp_path / "other.pt", extra={"imported_from": "somewhere"})
    assert importer.imported_from(other) is None
    (tmp_path / "text.pt").write_text("not a checkpoint")
    assert importer.imported_from(tmp_path / "text.pt") is None
    torch.save({"extra": {"imported_from": {"file": "x"}}}, tmp_path / "foreign.pt")
    assert importer.imported_from(tmp_path / "foreign.pt") is None


def test_a_checkpoint_given_as_bytes_is_written_whole(tmp_path):
    src = save_checkpoint(CVAE(), tmp_path / "a.pt")
    out, imp = importer.import_model((src.read_bytes(), "a.pt"), tmp_path / "sub" / "b.pt")
    assert imp.kind == "checkpoint" and out.read_bytes() == src.read_bytes()


def test_a_checkpoint_that_cannot_be_written_says_where(tmp_path):
    src = save_checkpoint(CVAE(), tmp_path / "a.pt")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError) as info:
        importer.import_model(src, tmp_path / "file" / "b.pt")
    msg = str(info.value)
    assert msg.startswith(f"{tmp_path / 'file' / 'b.pt'}: cannot write here: ") and len(msg.splitlines()) == 1, msg


def test_only_this_apps_checkpoints_are_checkpoints(tmp_path):
    assert importer.is_checkpoint(save_checkpoint(CVAE(), tmp_path / "ck.pt"))
    (tmp_path / "dir").mkdir()
    assert not importer.is_checkpoint(tmp_path / "dir")
    assert not importer.is_checkpoint(_keras_zip(tmp_path / "x.keras", {"data.txt": b"1"}))
    torch.save({"format": "other"}, tmp_path / "other.pt")
    assert not importer.is_checkpoint(tmp_path / "other.pt")
    (tmp_path / "cut.pt").write_bytes(b"PK\x03\x04" + bytes(10))
    assert not importer.is_checkpoint(tmp_path / "cut.pt")
    assert not importer.is_checkpoint(tmp_path / "missing.pt")


# What the model read from each file computes, read in the test itself (the module's fixture in
# tests/test_importer.py reads the files once, so a mutation tool sees only its first user).


@pytest.mark.parametrize("name", ["vae.weights.h5", "vae.keras", "vae_legacy.h5"])
def test_each_keras_file_decodes_like_keras(name):
    with np.load(GOLDEN / "outputs.npz", allow_pickle=False) as g:
        z, want = g["z_points"], g["decoded"]
    model = importer.read_model_file(GOLDEN / name).model
    with torch.no_grad():
        got = model.decode(torch.from_numpy(z))[:, 0].numpy()
    assert float(np.abs(got - want).max()) <= TOL


@needs_data
def test_the_keras_file_encodes_like_keras():
    with np.load(GOLDEN / "outputs.npz", allow_pickle=False) as g:
        idx, z_mean, z_log_var = g["test_indices"], g["z_mean"], g["z_log_var"]
    x, _ = load_mnist("test", DATA_DIR, download=False)
    model = importer.read_model_file(GOLDEN / "vae_legacy.h5").model
    with torch.no_grad():
        m, v = model.encode(x[torch.from_numpy(idx)])
    assert float(np.abs(m.numpy() - z_mean).max()) <= TOL and float(np.abs(v.numpy() - z_log_var).max()) <= TOL


def test_a_transposed_convolution_of_another_shape_is_named(tmp_path):
    path = _copy(tmp_path, "vae_legacy.h5", to="deconv.h5")
    with h5py.File(path, "r+") as f:
        del f["decoder/conv2d_transpose_2/kernel:0"]
        f["decoder/conv2d_transpose_2"].create_dataset("kernel:0", data=np.zeros((3, 3, 1, 16), "float32"))
    assert _says(path) == ("deconv.h5: layer conv2d_transpose_2 has kernel (3, 3, 1, 16) and bias (1,), where the "
                           "decoder's conv2d_transpose_2 (Conv2DTranspose 32 -> 1) has kernel (3, 3, 1, 32) and bias (1,)")


@pytest.mark.parametrize("mb, said", [(20.01, f"{int(20.01 * 2**20):,} bytes"), (20.4, "20.4 MB"), (20.06, "20.1 MB")])
def test_a_file_just_over_the_limit_gives_its_size_in_the_unit_that_shows_it(mb, said):
    size = int(mb * 2**20)
    msg = _says(bytes(size), "big.pt")
    assert msg == f"big.pt: the file is {said}, over the 20 MB limit for a model file (the tutorial's model is under 2 MB)"


def test_a_checkpoint_or_state_dict_that_does_not_fit_names_the_file(tmp_path):
    ck = torch.load(save_checkpoint(CVAE(), tmp_path / "ck.pt"), weights_only=True)
    ck["state_dict"]["decoder.deconv3.bias"] = torch.zeros(2)
    torch.save(ck, tmp_path / "ck.pt")
    assert _says(tmp_path / "ck.pt").startswith("ck.pt: weight decoder.deconv3.bias has shape (2,)")
    state = CVAE().state_dict()
    state["decoder.deconv3.bias"] = torch.zeros(2)
    torch.save(state, tmp_path / "sd.pt")
    assert _says(tmp_path / "sd.pt").startswith("sd.pt: weight decoder.deconv3.bias has shape (2,)")
    ok = save_checkpoint(CVAE(), tmp_path / "fine.pt")
    imp = importer.read_model_file(ok)
    assert imp.source == "fine.pt" and imp.description == "a checkpoint of this app"


def test_a_file_of_many_layers_lists_the_first_twelve(tmp_path):
    path = _copy(tmp_path, "vae_legacy.h5", to="crowd.h5")
    with h5py.File(path, "r+") as f:
        f.move("encoder/conv2d", "encoder/blob")
        del f["encoder/blob/kernel:0"]
        f["encoder/blob"].create_dataset("kernel:0", data=np.zeros((5, 5, 3, 32), "float32"))
        for i in range(4):
            g = f.create_group(f"zz/junk_{i}")
            g.create_dataset("kernel:0", data=np.zeros((7, 7), "float32"))
            g.create_dataset("bias:0", data=np.zeros(7, "float32"))
    msg = _says(path)
    assert msg.startswith("crowd.h5: no layer fits the encoder's conv2d") and msg.endswith(
        "z_mean (16, 2), junk_0 (7, 7), junk_1 (7, 7), junk_2 (7, 7)"), msg


@pytest.mark.parametrize("group, kernel, bias, layer", [
    ("encoder/dense", (3136, 15), (15,), "the encoder's dense (Dense 3136 -> 16) has kernel (3136, 16) and bias (16,)"),
    ("decoder/dense_1", (2, 3000), (3000,), "the decoder's dense_1 (Dense 2 -> 3136) has kernel (2, 3136) and bias (3136,)"),
])
def test_a_wrong_width_is_not_called_a_latent_size(tmp_path, group, kernel, bias, layer):
    path = _copy(tmp_path, "vae_legacy.h5", to="width.h5")
    with h5py.File(path, "r+") as f:
        for what, shape in (("kernel:0", kernel), ("bias:0", bias)):
            del f[f"{group}/{what}"]
            f[group].create_dataset(what, data=np.zeros(shape, "float32"))
    name = group.rsplit("/", 1)[1]
    assert _says(path) == f"width.h5: layer {name} has kernel {kernel} and bias {bias}, where {layer}"


def test_a_checkpoint_in_torchs_older_format_is_a_checkpoint(tmp_path):
    payload = torch.load(save_checkpoint(CVAE(), tmp_path / "ck.pt"), weights_only=True)
    torch.save(payload, tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    assert (tmp_path / "old.pt").read_bytes()[:1] == b"\x80"
    assert importer.is_checkpoint(tmp_path / "old.pt")


def test_a_renamed_layer_one_size_off_is_named_in_its_own_part_of_the_model(tmp_path):
    # encoder/conv2d_1, renamed, kernel (3, 3, 32, 48): the decoder's conv2d_transpose, kernel (3, 3, 64, 64)
    # and bias (64,), is one size off too and comes first in the file's order, but is not the layer that is off
    path = _copy(tmp_path, "vae_legacy.h5", to="narrow.h5")
    with h5py.File(path, "r+") as f:
        f.move("encoder/conv2d_1", "encoder/blob")
        del f["encoder/blob/kernel:0"]
        f["encoder/blob"].create_dataset("kernel:0", data=np.zeros((3, 3, 32, 48), "float32"))
    assert _says(path) == ("narrow.h5: layer blob has kernel (3, 3, 32, 48) and bias (64,), where the encoder's "
                           "conv2d_1 (Conv2D 32 -> 64) has kernel (3, 3, 32, 64) and bias (64,)")


def test_a_layer_of_a_shared_name_is_named_in_its_own_part_of_the_model(tmp_path):
    # Keras 3 names both parts' first Dense "dense": the decoder's, first in the file's order, is not the one off
    path = _copy(tmp_path, to="width3.weights.h5")
    with h5py.File(path, "r+") as f:
        _replace(f, _layer_group(f, "encoder.dense") + "/vars", (3136, 15), (15,))
    assert _says(path) == ("width3.weights.h5: layer dense has kernel (3136, 15) and bias (15,), where the encoder's "
                           "dense (Dense 3136 -> 16) has kernel (3136, 16) and bias (16,)")


# Limits at their edges, and the rest of what each refusal says


def test_a_file_of_exactly_the_size_limit_is_read_not_refused_for_its_size(tmp_path):
    path = tmp_path / "limit.bin"
    path.write_bytes(bytes(importer.MAX_IMPORT_BYTES))
    said = ("the file: not a model file this app reads (a checkpoint or state_dict from PyTorch, Keras weights in "
            ".weights.h5 or .h5, or a .keras archive)")
    assert _says(path) == said.replace("the file", "limit.bin")
    assert _says(bytes(importer.MAX_IMPORT_BYTES), "") == said


def test_a_path_that_cannot_be_read_says_why(tmp_path):
    (tmp_path / "file").write_text("x")
    assert _says(tmp_path / "file" / "m.pt") == f"{tmp_path / 'file' / 'm.pt'}: cannot read: Not a directory"


def test_an_imported_checkpoint_that_cannot_be_written_says_why(tmp_path):
    src = save_checkpoint(CVAE(), tmp_path / "a.pt")
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError) as info:
        importer.import_model(src, tmp_path / "file" / "b.pt")
    assert str(info.value) == f"{tmp_path / 'file' / 'b.pt'}: cannot write here: File exists"


def test_bytes_imported_keep_their_files_name(tmp_path):
    out, imp = importer.import_model(((GOLDEN / "vae_legacy.h5").read_bytes(), "uploads/mine.h5"), tmp_path / "m.pt")
    assert imp.source == "mine.h5" and importer.imported_from(out)["file"] == "mine.h5"


def test_keras_weights_that_are_not_finite_name_the_file(tmp_path):
    path = _copy(tmp_path, "vae_legacy.h5", to="nan.h5")
    with h5py.File(path, "r+") as f:
        bias = f["encoder/dense/bias:0"]
        bias[0] = np.nan
    assert _says(path) == "nan.h5: weight encoder.dense.bias contains NaN or infinite values"


def test_layers_numbered_past_nine_keep_keras_order(tmp_path):
    # Keras numbers a session's layers dense, dense_1, ..., dense_9, dense_10: the first head in the
    # file's order is dense_9, which a plain sort of the names would put after dense_10
    path = _copy(tmp_path, "vae_legacy.h5", to="tenth.h5")
    with h5py.File(path, "r+") as f:
        f.move("encoder/z_mean", "encoder/dense_9")
        f.move("encoder/z_log_var", "encoder/dense_10")
    imp = importer.read_model_file(path)
    assert imp.layers["encoder.z_mean"] == "encoder/dense_9" and imp.layers["encoder.z_log_var"] == "encoder/dense_10"
    assert imp.notes == ["z_mean is the file's dense_9, the first of its shape in the file's order"]


def test_a_head_named_z_mean_is_z_mean_before_one_whose_name_says_mean(tmp_path):
    path = _copy(tmp_path, "vae_legacy.h5", to="both.h5")
    with h5py.File(path, "r+") as f:
        f.move("encoder/z_log_var", "encoder/a_mu")  # first in the file's order
    imp = importer.read_model_file(path)
    assert imp.layers["encoder.z_mean"] == "encoder/z_mean" and imp.layers["encoder.z_log_var"] == "encoder/a_mu"


def test_a_layer_of_no_part_of_the_model_is_refused_by_name(tmp_path):
    path = _copy(tmp_path, "vae_legacy.h5", to="extra.h5")
    with h5py.File(path, "r+") as f:
        g = f.create_group("encoder/z_third")
        g.create_dataset("kernel:0", data=np.zeros((16, 2), "float32"))
        g.create_dataset("bias:0", data=np.zeros(2, "float32"))
    assert _says(path) == ("extra.h5: layer z_third (kernel (16, 2) and bias (2,)) is not part of the tutorial's VAE; "
                           "this app explores that architecture only")


def test_a_group_of_two_arrays_that_are_not_a_kernel_and_a_bias_is_not_a_layer(tmp_path):
    path = _copy(tmp_path, "vae_legacy.h5", to="stats.h5")
    with h5py.File(path, "r+") as f:
        g = f.create_group("encoder/stats")
        g.create_dataset("a", data=np.zeros((3, 3, 3), "float32"))  # 3-D: no layer's kernel
        g.create_dataset("b", data=np.zeros(3, "float32"))
        g = f.create_group("encoder/table")
        g.create_dataset("a", data=np.zeros((4, 4), "float32"))
        g.create_dataset("b", data=np.zeros((4, 4), "float32"))  # no 1-D bias
    assert importer.read_model_file(path).kind == "keras2_weights"


def _objects(path) -> int:
    with h5py.File(path, "r") as f:
        names = []
        f.visit(names.append)
    return len(names)


def test_an_hdf5_file_of_exactly_the_most_objects_is_read(tmp_path):
    path = _copy(tmp_path, "vae_legacy.h5", to="full.h5")
    pad = importer.MAX_HDF5_OBJECTS - _objects(path) - 1  # the group that holds them is one more
    with h5py.File(path, "r+") as f:
        g = f.create_group("clutter")
        for i in range(pad):
            g.create_group(str(i))
    assert _objects(path) == importer.MAX_HDF5_OBJECTS
    assert importer.read_model_file(path).kind == "keras2_weights"


def test_a_dataset_of_exactly_the_most_elements_is_read(tmp_path):
    path = _copy(tmp_path, "vae_legacy.h5", to="edge.h5")
    with h5py.File(path, "r+") as f:  # declared, never written: the file stays small
        f.create_dataset("notes/x", shape=(importer.MAX_DATASET_ELEMENTS,), dtype="float32")
    assert importer.read_model_file(path).kind == "keras2_weights"


def test_a_huge_dataset_is_refused_with_its_size_in_gb(tmp_path):
    path = _copy(tmp_path, "vae_legacy.h5", to="gb.h5")
    with h5py.File(path, "r+") as f:  # 1,050,000,000 bytes: 1.05 GB, shown to one decimal
        f.create_dataset("notes/x", shape=(262_500_000,), dtype="float32", chunks=(2**20,))
    assert _says(path) == ("gb.h5: dataset notes/x declares shape (262500000,) (1.1 GB), far more than any layer of "
                           "this model; refused before reading it")


def _lie(path, member: str, **fields):
    """Edit ``member``'s record in the central directory: compress_size, file_size or flags."""
    offsets = {"flags": (8, 2), "compress_size": (20, 4), "file_size": (24, 4)}
    data = bytearray(path.read_bytes())
    at = data.index(b"PK\x01\x02")
    while data[at + 46:at + 46 + int.from_bytes(data[at + 28:at + 30], "little")].decode() != member:
        at = data.index(b"PK\x01\x02", at + 4)
    for what, value in fields.items():
        off, size = offsets[what]
        data[at + off:at + off + size] = value.to_bytes(size, "little")
    path.write_bytes(bytes(data))
    return path


def test_an_archive_of_exactly_the_most_members_is_read(tmp_path):
    members = {importer.KERAS_WEIGHTS_MEMBER: (GOLDEN / "vae.weights.h5").read_bytes()}
    members.update({f"assets/{i}": b"" for i in range(importer.MAX_ZIP_MEMBERS - 1)})
    assert importer.read_model_file(_keras_zip(tmp_path / "full.keras", members)).kind == "keras_archive"


def test_an_archive_of_exactly_the_unpacked_limit_is_read(tmp_path):
    weights = (GOLDEN / "vae.weights.h5").read_bytes()
    path = _keras_zip(tmp_path / "edge.keras", {importer.KERAS_WEIGHTS_MEMBER: weights, "assets/pad": b""})
    # the pad declares what is left of the limit, packed no more than 50 times
    left = importer.MAX_UNPACKED_BYTES - len(weights)
    _lie(path, "assets/pad", file_size=left, compress_size=left // importer.MAX_RATIO + 1)
    assert importer.read_model_file(path).kind == "keras_archive"
    _lie(path, "assets/pad", file_size=left + 1)
    assert _says(path).startswith("edge.keras: the archive declares 80 MB unpacked")


def test_a_member_packed_exactly_fifty_times_is_read(tmp_path):
    weights = (GOLDEN / "vae.weights.h5").read_bytes()
    path = _keras_zip(tmp_path / "fifty.keras", {importer.KERAS_WEIGHTS_MEMBER: weights, "assets/pad": b""})
    _lie(path, "assets/pad", file_size=2_000_000, compress_size=40_000)
    assert importer.read_model_file(path).kind == "keras_archive"
    _lie(path, "assets/pad", compress_size=1)
    assert _says(path) == ("fifty.keras: the archive's assets/pad unpacks 2,000,000 times larger than it is packed "
                           "(a zip bomb?); refused unread")


def test_a_damaged_zip_file_says_so(tmp_path):
    assert _says(importer.ZIP_MAGIC + bytes(10), "cut.keras") == "cut.keras: the ZIP file is truncated or damaged"
    # the weights' data end before the size the archive declares for them
    weights = (GOLDEN / "vae.weights.h5").read_bytes()
    path = tmp_path / "short.keras"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(importer.KERAS_WEIGHTS_MEMBER, weights)
    _lie(path, importer.KERAS_WEIGHTS_MEMBER, file_size=len(weights) + 100_000, compress_size=len(weights) + 100_000)
    assert _says(path) == "short.keras: the ZIP file is truncated or damaged"


def test_an_archive_that_cannot_be_read_gives_the_first_line_of_why(tmp_path, monkeypatch):
    weights = (GOLDEN / "vae.weights.h5").read_bytes()
    path = _keras_zip(tmp_path / "odd.keras", {importer.KERAS_WEIGHTS_MEMBER: weights})
    data = bytearray(path.read_bytes())
    at = data.index(b"PK\x01\x02")
    data[at + 10:at + 12] = (99).to_bytes(2, "little")  # a compression method zipfile does not know
    path.write_bytes(bytes(data))
    assert _says(path) == "odd.keras: the ZIP file cannot be read: That compression method is not supported"

    def fails(text):
        def open_(*args, **kwargs):
            raise OSError(text)
        return open_

    for text, said in (("", "OSError"), ("first line\nsecond line", "first line"), ("x" * 300, "x" * 120)):
        monkeypatch.setattr(zipfile, "ZipFile", fails(text))
        assert _says(importer.ZIP_MAGIC, "bad.keras") == f"bad.keras: the ZIP file cannot be read: {said}"


def test_an_encrypted_archive_says_so(tmp_path):
    weights = (GOLDEN / "vae.weights.h5").read_bytes()
    path = _lie(_keras_zip(tmp_path / "lock.keras", {importer.KERAS_WEIGHTS_MEMBER: weights}),
                importer.KERAS_WEIGHTS_MEMBER, flags=1)  # encrypted: a password is needed
    assert _says(path) == ("lock.keras: the archive's model.weights.h5 is encrypted; this app reads archives "
                           "saved without a password")


def test_a_layer_of_its_name_is_named_however_far_its_shape(tmp_path):
    path = _copy(tmp_path, "vae_legacy.h5", to="k5.h5")
    with h5py.File(path, "r+") as f:  # a 5 x 5 kernel: two sizes off the tutorial's 3 x 3
        del f["encoder/conv2d/kernel:0"]
        f["encoder/conv2d"].create_dataset("kernel:0", data=np.zeros((5, 5, 1, 32), "float32"))
    assert _says(path) == ("k5.h5: layer conv2d has kernel (5, 5, 1, 32) and bias (32,), where the encoder's conv2d "
                           "(Conv2D 1 -> 32) has kernel (3, 3, 1, 32) and bias (32,)")

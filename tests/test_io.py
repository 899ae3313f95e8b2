"""Model files: round trips across backends, safetensors interoperability, damaged and
foreign files, atomic saves, and no code execution on load."""

from __future__ import annotations

import ast
import builtins
import hashlib
import json
import os
import pickle
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
import safetensors
import safetensors.numpy as safetensors_numpy
from safetensors import safe_open

import nnx
import nnx.architecture
import nnx.io as nio
import nnx.safetensors_format

BACKENDS = nnx.available_backends()
X = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)


def architectures():
    """A spread of models: every activation with its arguments, nesting, float64, no bias."""
    return {
        "mlp_relu": lambda: nnx.MLP([3, 8, 4], seed=0),
        "mlp_leaky_sigmoid": lambda: nnx.MLP([3, 5, 5, 1], activation="leaky_relu",
                                             output_activation="sigmoid", seed=1),
        "mlp_gelu_tanh_f64": lambda: nnx.MLP([3, 6, 2], activation="gelu_tanh",
                                             output_activation="softmax", dtype="float64", seed=2),
        "sequential_mixed": lambda: nnx.Sequential(
            nnx.Dense(3, 4, bias=False, seed=3), nnx.LeakyReLU(alpha=0.3),
            nnx.Dense(4, 4, seed=4), nnx.GELU(approximate="none"), nnx.Dense(4, 4, seed=5),
            nnx.Tanh(), nnx.Sequential(nnx.Dense(4, 2, seed=6), nnx.Identity()), nnx.Step()),
    }


def raw_file(path, header, payload=b"", *, length=None):
    """Write safetensors bytes by hand (for crafting damaged files)."""
    head = json.dumps(header).encode()
    Path(path).write_bytes(struct.pack("<Q", len(head) if length is None else length)
                           + head + payload)


def split(path):
    blob = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    return n, json.loads(blob[8:8 + n]), blob[8 + n:]


def documented_checksum(metadata, tensors):
    """SHA-256 as io.py's docstring specifies it, written independently of io.py."""
    h = hashlib.sha256()
    meta = {k: v for k, v in metadata.items() if k != "nnx.sha256"}
    h.update(json.dumps(meta, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(tensors):
        code, shape, data = tensors[name]
        h.update(json.dumps([name, code, list(shape), len(data)]).encode())
        h.update(data)
    return h.hexdigest()


@pytest.fixture
def saved(tmp_path):
    model = nnx.MLP([3, 4, 2], activation="tanh", seed=0)
    path = tmp_path / "model.safetensors"
    nnx.save(model, path)
    return model, path


# -- round trips ---------------------------------------------------------------------------
@pytest.mark.parametrize("src", BACKENDS)
@pytest.mark.parametrize("dst", BACKENDS)
def test_round_trip_between_backends(tmp_path, src, dst):
    with nnx.use_backend(src):
        model = nnx.MLP([3, 8, 8, 4], activation="gelu", seed=11)
        expected = nnx.to_numpy(model.forward(nnx.asarray(X)))
        nnx.save(model, tmp_path / "m.safetensors")
    loaded = nnx.load(str(tmp_path / "m.safetensors"), backend=dst)
    assert loaded.backend.name == dst and type(loaded) is nnx.MLP
    for (k, a), (k2, b) in zip(model.parameters().items(), loaded.parameters().items()):
        assert k == k2
        np.testing.assert_array_equal(nnx.to_numpy(a), nnx.to_numpy(b))   # bit for bit
    got = nnx.to_numpy(loaded.forward(nnx.asarray(X, backend=dst)))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)  # BLAS may round differently
    np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))


@pytest.mark.parametrize("name,make", architectures().items())
def test_every_layer_kind_round_trips(tmp_path, backend, name, make):
    model = make()
    nnx.save(model, tmp_path / "m.safetensors")
    loaded = nnx.load(tmp_path / "m.safetensors")
    assert repr(loaded) == repr(model)
    x = nnx.asarray(X)
    np.testing.assert_array_equal(nnx.to_numpy(loaded.forward(x)), nnx.to_numpy(model.forward(x)))


def test_leaky_alpha_and_gelu_mode_survive(tmp_path):
    model = nnx.Sequential(nnx.Dense(3, 3, seed=0), nnx.LeakyReLU(alpha=0.25),
                           nnx.Dense(3, 3, seed=1), nnx.GELU(approximate="tanh"))
    nnx.save(model, tmp_path / "m.safetensors")
    loaded = nnx.load(tmp_path / "m.safetensors")
    assert loaded[1].alpha == 0.25 and loaded[3].approximate == "tanh"


def test_perceptron_round_trip(tmp_path, backend, to_np):
    p = nnx.Perceptron(2, lr=0.5)
    p.fit([[0, 0], [0, 1], [1, 0], [1, 1]], [0, 1, 1, 1])
    nnx.save(p, tmp_path / "p.safetensors")
    for dst in BACKENDS:
        q = nnx.load(tmp_path / "p.safetensors", backend=dst)
        assert isinstance(q, nnx.Perceptron) and q.lr == 0.5
        np.testing.assert_array_equal(to_np(q.w), to_np(p.w))
        assert to_np(q.predict(nnx.asarray([[0, 0], [1, 0]], backend=dst))).tolist() == [0, 1]


def test_saving_again_replaces_the_file(tmp_path):
    path = tmp_path / "m.safetensors"
    nnx.save(nnx.MLP([3, 2], seed=0), path)
    nnx.save(nnx.MLP([3, 5, 2], seed=1), path)
    assert nnx.load(path).sizes == [3, 5, 2]
    assert os.listdir(tmp_path) == ["m.safetensors"]


# -- the safetensors library is the reference for the format ---------------------------------
def test_safetensors_library_reads_nnx_files(saved):
    model, path = saved
    tensors = safetensors_numpy.load_file(path)
    params = {k: nnx.to_numpy(v) for k, v in model.parameters().items()}
    assert tensors.keys() == params.keys()
    for k in params:
        assert tensors[k].dtype == np.float32
        np.testing.assert_array_equal(tensors[k], params[k])
    with safe_open(path, "np") as f:
        meta = f.metadata()
    assert meta["nnx.format"] == "nnx.model"
    arch = json.loads(meta["nnx.architecture"])
    assert arch["type"] == "MLP" and arch["sizes"] == [3, 4, 2]
    as_bytes = {k: ("F32", v.shape, v.tobytes()) for k, v in tensors.items()}
    assert meta["nnx.sha256"] == documented_checksum(meta, as_bytes)


def test_nnx_reads_files_written_by_the_library(saved, tmp_path):
    model, path = saved
    tensors = safetensors_numpy.load_file(path)
    with safe_open(path, "np") as f:
        meta = f.metadata()
    other = tmp_path / "by_library.safetensors"
    # Add a tensor-free reordering: the library lays tensors out in its own order.
    safetensors_numpy.save_file(dict(reversed(list(tensors.items()))), other, metadata=meta)
    loaded = nnx.load(other)
    x = nnx.asarray(X)
    np.testing.assert_array_equal(nnx.to_numpy(loaded.forward(x)), nnx.to_numpy(model.forward(x)))
    # ...and a library-written file whose weights were changed fails the checksum.
    tensors["0.W"] = tensors["0.W"] + 1
    safetensors_numpy.save_file(tensors, other, metadata=meta)
    with pytest.raises(nnx.CheckpointError, match="checksum"):
        nnx.load(other)


def test_library_file_without_nnx_metadata_is_foreign(tmp_path):
    path = tmp_path / "plain.safetensors"
    safetensors_numpy.save_file({"weight": np.ones((2, 2), np.float32)}, path,
                                metadata={"format": "pt"})
    with pytest.raises(nnx.CheckpointError, match="not an nnx model"):
        nnx.load(path)


# -- damaged and foreign files ----------------------------------------------------------------
def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        nnx.load(tmp_path / "nope.safetensors")
    with pytest.raises(FileNotFoundError, match="folder does not exist"):
        nnx.save(nnx.MLP([2, 1]), tmp_path / "no" / "such" / "m.safetensors")


def test_truncated_files_are_refused(saved, tmp_path):
    _, path = saved
    blob = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    n = struct.unpack("<Q", blob[:8])[0]
    for size in sorted({0, 1, 7, 8, 12, 8 + n // 2, 8 + n, 8 + n + 5, len(blob) - 1}):
        cut.write_bytes(blob[:size])
        with pytest.raises(nnx.CheckpointError) as info:
            nnx.load(cut)
        assert str(cut) in str(info.value), size
        assert isinstance(info.value, ValueError)
    cut.write_bytes(blob + b"\0")
    with pytest.raises(nnx.CheckpointError, match="truncated or padded"):
        nnx.load(cut)


def test_every_bit_flip_in_the_header_is_detected(saved, tmp_path):
    _, path = saved
    blob = bytearray(path.read_bytes())
    n = struct.unpack("<Q", blob[:8])[0]
    bad = tmp_path / "flipped.safetensors"
    for i in range(8 + n):
        for bit in range(8):
            blob[i] ^= 1 << bit
            bad.write_bytes(blob)
            blob[i] ^= 1 << bit
            with pytest.raises(nnx.CheckpointError):
                nnx.load(bad)


def test_every_bit_flip_in_the_data_is_detected(saved, tmp_path):
    _, path = saved
    blob = bytearray(path.read_bytes())
    n = struct.unpack("<Q", blob[:8])[0]
    bad = tmp_path / "flipped.safetensors"
    for i in range(8 + n, len(blob)):
        for bit in range(8):
            blob[i] ^= 1 << bit
            bad.write_bytes(blob)
            blob[i] ^= 1 << bit
            with pytest.raises(nnx.CheckpointError, match="checksum mismatch"):
                nnx.load(bad)


@pytest.mark.parametrize("content", [
    b"", b"hello, world\n", b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
    pickle.dumps({"W": [1.0, 2.0]}), struct.pack("<Q", 2) + b"[]",
    struct.pack("<Q", 4) + b"null", struct.pack("<Q", 2**63) + b"{}",
])
def test_foreign_files_are_refused(tmp_path, content):
    path = tmp_path / "foreign.bin"
    path.write_bytes(content)
    with pytest.raises(nnx.CheckpointError, match="foreign.bin"):
        nnx.load(path)


def test_a_torch_checkpoint_is_refused_without_unpickling(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(3)}, path)
    _forbid_code_execution(monkeypatch)
    with pytest.raises(nnx.CheckpointError):
        nnx.load(path)


def _crafted(tmp_path, header_edit=None, meta_edit=None, payload_edit=None, name="c",
             model=None):
    """A copy of a valid file with the header and payload edited and the checksum recomputed."""
    model = nnx.MLP([2, 3, 1], seed=0) if model is None else model
    path = tmp_path / f"{name}.safetensors"
    nnx.save(model, path)
    _, header, payload = split(path)
    meta = header.pop("__metadata__")
    if meta_edit:
        meta_edit(meta)
    if header_edit:
        header_edit(header)
    if payload_edit:
        payload = payload_edit(payload)
    tensors = {k: (v["dtype"], v["shape"], payload[v["data_offsets"][0]:v["data_offsets"][1]])
               for k, v in header.items()}
    meta["nnx.sha256"] = documented_checksum(meta, tensors)
    raw_file(path, {"__metadata__": meta, **header}, payload)
    return path


def _with_arch(text):
    """A meta_edit that puts the JSON text ``text`` in as the architecture."""
    return lambda m: m.update({"nnx.architecture": text})


def _set_arch(meta, **changes):
    arch = json.loads(meta["nnx.architecture"])
    arch.update(changes)
    meta["nnx.architecture"] = json.dumps(arch)


@pytest.mark.parametrize("case,edits,match", [
    ("unknown_dtype", dict(header_edit=lambda h: h["0.W"].update(dtype="Q8")),
     "unknown variant `Q8`"),
    ("wrong_dtype", dict(header_edit=lambda h: h["0.b"].update(
        dtype="I32")), r"'0\.b': I32\[3\] instead of F32\[3\]"),
    ("gap", dict(header_edit=lambda h: h["0.b"].update(data_offsets=[
        h["0.b"]["data_offsets"][0] + 4, h["0.b"]["data_offsets"][1] + 4])),
     "invalid offset for tensor `0.b`"),
    ("overlap", dict(header_edit=lambda h: h["0.b"].update(data_offsets=[0, 12])),
     "invalid offset for tensor"),
    ("size", dict(header_edit=lambda h: h["0.b"].update(shape=[4])), "invalid shape"),
    ("negative", dict(header_edit=lambda h: h["0.b"].update(shape=[-3])), "integer `-3`"),
    ("shape_vs_arch", dict(header_edit=lambda h: h["0.W"].update(shape=[2, 3])),
     r"'0\.W': F32\[2, 3\] instead of F32\[3, 2\]"),
    ("missing_tensor", dict(header_edit=lambda h: h.pop("2.b"),
                            payload_edit=lambda p: p[:-4]), r"missing tensors \['2\.b'\]"),
    ("unknown_layer", dict(meta_edit=lambda m: m.update({"nnx.architecture": json.dumps(
        {"type": "Sequential", "layers": [{"type": "Conv2d"}]})})), "unknown layer type"),
    ("bad_json", dict(meta_edit=lambda m: m.update({"nnx.architecture": "{"})), "not valid JSON"),
    ("mlp_lies", dict(meta_edit=lambda m: _set_arch(m, activation="tanh")),
     "do not produce its listed layers"),
    # Checked against the tensors before any weight is allocated: no 4 TB of zeros.
    ("huge_layer", dict(meta_edit=lambda m: m.update({"nnx.architecture": json.dumps(
        {"type": "Sequential", "layers": [{"type": "Dense", "in_features": 10**6,
                                           "out_features": 10**6, "bias": True,
                                           "dtype": "float32"}]})})),
     r"'0\.W': F32\[3, 2\] instead of F32\[1000000, 1000000\]"),
    ("extra_field", dict(meta_edit=lambda m: _set_arch(m, seed=3)), "bad MLP fields"),
    ("version", dict(meta_edit=lambda m: m.update({"nnx.format_version": "99"})), "version"),
])
def test_crafted_inconsistent_files(tmp_path, case, edits, match):
    path = _crafted(tmp_path, name=case, **edits)
    with pytest.raises(nnx.CheckpointError, match=match) as info:
        nnx.load(path)
    assert str(path) in str(info.value)


def test_missing_checksum_and_duplicate_keys(saved, tmp_path):
    _, path = saved
    n, header, payload = split(path)
    del header["__metadata__"]["nnx.sha256"]
    raw_file(tmp_path / "a.safetensors", header, payload)
    with pytest.raises(nnx.CheckpointError, match="no 'nnx.sha256'"):
        nnx.load(tmp_path / "a.safetensors")
    head = path.read_bytes()[8:8 + n].rstrip()
    dup = head[:-1] + b',"0.W":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}'
    (tmp_path / "b.safetensors").write_bytes(struct.pack("<Q", len(dup)) + dup + payload)
    with pytest.raises(nnx.CheckpointError, match="the key '0.W' twice"):
        nnx.load(tmp_path / "b.safetensors")


# -- hostile files -------------------------------------------------------------------------------
HUGE = "1" + "0" * 400     # an integer of 401 digits, as JSON text


@pytest.mark.parametrize("case,edits,match", [
    ("dtype_list", dict(header_edit=lambda h: h["0.W"].update(dtype=["F32"])),
     "invalid type: sequence"),
    ("shape_digits", dict(header_edit=lambda h: h["0.b"].update(shape=[10**400])),
     "invalid"),
    ("lr_huge", dict(model=nnx.Perceptron(2), meta_edit=_with_arch(
        '{"type":"Perceptron","n_features":2,"lr":' + HUGE + ',"dtype":"float32"}')),
     "lr must be a positive finite number"),
    ("lr_true", dict(model=nnx.Perceptron(2), meta_edit=_with_arch(
        '{"type":"Perceptron","n_features":2,"lr":true,"dtype":"float32"}')),
     "lr must be a positive finite number"),
    ("lr_nan", dict(model=nnx.Perceptron(2), meta_edit=_with_arch(
        '{"type":"Perceptron","n_features":2,"lr":NaN,"dtype":"float32"}')),
     "lr must be a positive finite number"),
    ("n_features_true", dict(model=nnx.Perceptron(1), meta_edit=_with_arch(
        '{"type":"Perceptron","n_features":true,"lr":1.0,"dtype":"float32"}')),
     "n_features must be an int"),
    ("alpha_huge", dict(model=nnx.Sequential(nnx.Dense(2, 2), nnx.LeakyReLU()),
                        meta_edit=_with_arch('{"type":"Sequential","layers":[{"type":"Dense",'
                                             '"in_features":2,"out_features":2,"bias":true,'
                                             '"dtype":"float32"},{"type":"LeakyReLU",'
                                             '"alpha":' + HUGE + "}]}")),
     "alpha must be a finite number"),
    ("dtype_unhashable", dict(meta_edit=_with_arch(
        '{"type":"Sequential","layers":[{"type":"Dense","in_features":2,"out_features":3,'
        '"bias":true,"dtype":["float32"]}]}')), "dtype must be float32 or float64"),
    ("bias_int", dict(meta_edit=_with_arch(
        '{"type":"Sequential","layers":[{"type":"Dense","in_features":2,"out_features":3,'
        '"bias":1,"dtype":"float32"}]}')), "bias must be true or false"),
    ("width_true", dict(meta_edit=lambda m: _set_arch(m, sizes=[True, 3, 1])),
     "sizes must list one width more"),
    ("activation_list", dict(meta_edit=lambda m: _set_arch(m, activation=["relu"])),
     "activation and output_activation must be null or one of"),
    ("activation_long", dict(meta_edit=lambda m: _set_arch(m, activation="x" * 10**6)),
     "activation and output_activation must be null or one of"),
    ("digits", dict(meta_edit=_with_arch('{"type":"Sequential","layers":[],"n":'
                                         + "9" * 5000 + "}")), "integer too long to read"),
    ("deep", dict(meta_edit=_with_arch("[" * 100_000 + "]" * 100_000)), "nested too deeply"),
    ("format_long", dict(meta_edit=lambda m: m.update({"nnx.format": "x" * 10**6})),
     "nnx.format is 'xxx"),
])
def test_hostile_metadata(tmp_path, monkeypatch, case, edits, match):
    """Wrong types, huge numbers, booleans as numbers: a short CheckpointError, nothing built."""
    path = _crafted(tmp_path, name=case, **edits)
    monkeypatch.setattr(nnx.architecture, "build", _forbidden_build)
    with pytest.raises(nnx.CheckpointError, match=match) as info:
        nnx.load(path)
    assert len(info.value.problem) < 1100 and "0" * 100 not in str(info.value)
    assert "x" * 200 not in str(info.value) and "Exceeds the limit" not in str(info.value)


def _forbidden_build(*args, **kwargs):
    raise AssertionError("a layer was built before the sizes were checked")


@pytest.mark.parametrize("case,arch,match", [
    # an MLP whose sizes would allocate 8 GB, over the tensors of a 2-3-1 network
    ("mlp_gigabytes", {"type": "MLP", "sizes": [46341, 46341, 1], "activation": "relu",
                       "output_activation": None, "layers": [
                           {"type": "Dense", "in_features": 2, "out_features": 3, "bias": True,
                            "dtype": "float32"}, {"type": "ReLU"},
                           {"type": "Dense", "in_features": 3, "out_features": 1, "bias": True,
                            "dtype": "float32"}]}, "do not have the widths in sizes"),
    ("sizes_million", {"type": "MLP", "sizes": [1] * 10**6, "activation": "relu",
                       "output_activation": None, "layers": []},
     "sizes must list one width more"),
    ("layers_many", {"type": "Sequential", "layers": [{"type": "ReLU"}] * 20_000},
     "at most 10000 layers"),
    ("layers_nested", {"type": "Sequential", "layers": [
        {"type": "Sequential", "layers": [{"type": "ReLU"}] * 6000}] * 2},
     "at most 10000 layers in all"),
])
def test_sizes_and_layer_count_are_checked_before_building(tmp_path, monkeypatch, case, arch,
                                                           match):
    path = _crafted(tmp_path, name=case, meta_edit=_with_arch(json.dumps(arch)))
    monkeypatch.setattr(nnx.architecture, "build", _forbidden_build)
    with pytest.raises(nnx.CheckpointError, match=match):
        nnx.load(path)


def test_huge_shapes_are_refused_with_a_short_message(tmp_path):
    """40,000 dimensions (one of them 0, so the span is 0 bytes) of 2**63 each."""
    def edit(h):
        h["extra"] = {"dtype": "F32", "shape": [0] + [2**63] * 40_000, "data_offsets": [0, 0]}
    path = _crafted(tmp_path, header_edit=edit)
    with pytest.raises(nnx.CheckpointError, match="unexpected tensors") as info:
        nnx.load(path)
    assert len(info.value.problem) < 300 and "9223372036854775808" not in info.value.problem


def test_layer_cap_round_trips_and_one_more_is_refused(tmp_path):
    cap = nnx.architecture.MAX_LAYERS
    model = nnx.Sequential(nnx.Dense(2, 2, seed=0), *[nnx.Identity() for _ in range(cap - 1)])
    nnx.save(model, tmp_path / "cap.safetensors")
    assert len(nnx.load(tmp_path / "cap.safetensors").layers) == cap
    with pytest.raises(ValueError, match=f"at most {cap} layers"):
        nnx.save(nnx.Sequential(*model.layers, nnx.Identity()), tmp_path / "over.safetensors")
    assert not (tmp_path / "over.safetensors").exists()


def _leaky_nan():
    model = nnx.Sequential(nnx.Dense(2, 2), nnx.LeakyReLU())
    model.layers[1].alpha = float("nan")     # the constructor refuses it; an attribute can't
    return model


def _perceptron_inf():
    model = nnx.Perceptron(2)
    model.lr = float("inf")
    return model


@pytest.mark.parametrize("model,match", [
    (_leaky_nan, "alpha"),
    (_perceptron_inf, "lr must be a positive finite number"),
])
def test_save_refuses_what_load_would_refuse(tmp_path, model, match):
    built = model()
    with pytest.raises(ValueError, match=match):
        nnx.save(built, tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


def test_header_length_is_capped(tmp_path):
    cap = nnx.safetensors_format.MAX_HEADER
    path = tmp_path / "big.safetensors"
    path.write_bytes(struct.pack("<Q", cap + 1) + b"{}")
    with pytest.raises(nnx.CheckpointError, match=f"headers of at most {cap} bytes"):
        nnx.load(path)


def test_appended_bytes_are_refused_unread(saved, monkeypatch):
    """A model followed by 1 TiB of zeros (a sparse file): refused from the sizes alone."""
    _, path = saved
    n, _, payload = split(path)
    with open(path, "r+b") as f:
        f.truncate(8 + n + len(payload) + 2**40)
    monkeypatch.setattr(safetensors, "deserialize", lambda blob: pytest.fail("read the file"))
    with pytest.raises(nnx.CheckpointError, match=f"declares {len(payload)} bytes of tensor "
                       f"data but the file holds {len(payload) + 2**40} after the header"):
        nnx.load(path)


def _load_with_hang_guard(path):
    """nnx.load(path) in a thread; AssertionError if it has not returned after a minute."""
    outcome = []

    def target():
        try:
            nnx.load(path)
        except (nnx.CheckpointError, FileNotFoundError) as exc:
            outcome.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), f"nnx.load blocked on {path}"
    return outcome[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX special files")
def test_special_files_are_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "folder").mkdir()
    os.symlink("/dev/zero", tmp_path / "zero")
    os.symlink(tmp_path / "nothing", tmp_path / "dangling")
    for name, kind in [("fifo", "a FIFO"), ("folder", "a directory"),
                       ("zero", "a character device")]:
        exc = _load_with_hang_guard(tmp_path / name)
        assert isinstance(exc, nnx.CheckpointError) and f"{kind}, not a regular file" in str(exc)
    assert isinstance(_load_with_hang_guard(tmp_path / "dangling"), FileNotFoundError)


def test_load_wants_a_path():
    with pytest.raises(TypeError):
        nnx.load(3)


# -- atomic saves ----------------------------------------------------------------------------
@pytest.mark.parametrize("crash", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_crash_mid_save_keeps_the_previous_file(saved, monkeypatch, crash):
    model, path = saved
    before = path.read_bytes()
    calls = []

    def flaky_write(f, chunk):
        calls.append(len(chunk))
        if len(calls) == 3:          # header length and header written, then the crash
            raise crash
        f.write(chunk)

    monkeypatch.setattr(nnx.safetensors_format, "_write_chunk", flaky_write)
    with pytest.raises(type(crash)):
        nnx.save(nnx.MLP([3, 9, 2], seed=5), path)
    assert len(calls) == 3
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]       # no temporary file left behind
    assert nnx.load(path).sizes == [3, 4, 2]


def test_crash_at_fsync_keeps_the_previous_file(saved, monkeypatch):
    _, path = saved
    before = path.read_bytes()

    def no_fsync(fd):
        raise OSError("I/O error")

    monkeypatch.setattr(os, "fsync", no_fsync)
    with pytest.raises(OSError, match="I/O error"):
        nnx.save(nnx.MLP([3, 2], seed=5), path)
    assert path.read_bytes() == before and os.listdir(path.parent) == [path.name]


def test_new_file_mode_follows_umask(tmp_path):
    mask = os.umask(0o027)
    try:
        nnx.save(nnx.MLP([2, 1]), tmp_path / "m.safetensors")
    finally:
        os.umask(mask)
    assert (tmp_path / "m.safetensors").stat().st_mode & 0o777 == 0o640


def test_unsaveable_models(tmp_path):
    class Custom(nnx.Layer):
        def forward(self, x):
            return x

    with pytest.raises(TypeError, match="Custom"):
        nnx.save(nnx.Sequential(nnx.Dense(2, 2), Custom()), tmp_path / "m.safetensors")
    assert list(tmp_path.iterdir()) == []


# -- no code execution -----------------------------------------------------------------------
def _forbid_code_execution(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("nnx.load tried to execute code")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "__import__", _guarded_import(builtins.__import__))


def _guarded_import(real):
    def guarded(name, *args, **kwargs):
        if name.split(".")[0] in ("pickle", "_pickle", "marshal", "dill", "cloudpickle"):
            raise AssertionError(f"nnx.load imported {name}")
        return real(name, *args, **kwargs)
    return guarded


def test_load_never_executes_code(saved, monkeypatch):
    model, path = saved
    _forbid_code_execution(monkeypatch)
    for dst in BACKENDS:
        loaded = nnx.load(path, backend=dst)
        assert loaded.sizes == [3, 4, 2]


@pytest.mark.parametrize("module", [nio, nnx.safetensors_format, nnx.architecture])
def test_io_source_has_no_pickle_or_eval(module):
    tree = ast.parse(Path(module.__file__).read_text())
    unsafe = {"pickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle", "joblib"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert not {a.name.split(".")[0] for a in node.names} & unsafe
        if isinstance(node, ast.ImportFrom) and node.module:
            assert node.module.split(".")[0] not in unsafe
        if isinstance(node, ast.Name):
            assert node.id not in ("eval", "exec", "compile", "__import__")
        if isinstance(node, ast.keyword):
            assert node.arg != "allow_pickle"

"""Model files under attack: a seeded mutation fuzzer over saved files.

Every case must end in ``nnx.CheckpointError`` or ``FileNotFoundError`` with a short
message, or load exactly the model the file holds: the architecture its metadata states
and every tensor bit for bit as the ``safetensors`` library reads it (an oracle that
shares no code with nnx's reader). Mutations: bit flips, truncations, appended bytes,
header and metadata edits that keep a valid checksum (so they reach the architecture
checks), hostile values in every field, foreign and special files. The default run is a
few thousand cases; ``pytest -m fuzz_long tests/test_fuzz_files.py`` runs 25 times more.
"""

from __future__ import annotations

import collections
import copy
import hashlib
import json
import os
import pickle
import random
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

import nnx
import nnx.architecture

SEED = 20261205
LONG = 25            # the opt-in run is this many times larger
MAX_PROBLEM = 1100   # characters of a CheckpointError's problem (1000 and the cut's note)

MODELS = {
    "mlp": lambda: nnx.MLP([3, 5, 2], seed=0),
    "mlp_f64": lambda: nnx.MLP([2, 4, 4, 3], activation="leaky_relu",
                               output_activation="softmax", dtype="float64", seed=1),
    "sequential": lambda: nnx.Sequential(
        nnx.Dense(3, 4, bias=False, seed=2), nnx.LeakyReLU(alpha=0.3),
        nnx.Sequential(nnx.Dense(4, 2, seed=3), nnx.GELU(approximate="tanh")), nnx.Tanh()),
    "perceptron": lambda: nnx.Perceptron(3, lr=0.5, seed=4),
    # the precision policy's field (nnx.precision): recorded per Dense, float32 master weights
    "mlp_f16": lambda: nnx.MLP([3, 4, 2], seed=5, compute_dtype="float16"),
    "mixed": lambda: nnx.Sequential(nnx.Dense(2, 3, seed=6, compute_dtype="float16"),
                                    nnx.ReLU(), nnx.Dense(3, 1, seed=7)),
}


class Raw(str):
    """JSON text put into a file as written (json.dumps cannot write it)."""


def checksum(metadata, header, payload):
    """SHA-256 as nnx.io documents it, written independently of nnx."""
    h = hashlib.sha256()
    meta = {k: v for k, v in metadata.items() if k != "nnx.sha256"}
    h.update(json.dumps(meta, sort_keys=True, separators=(",", ":")).encode())
    for name in sorted(k for k in header if k != "__metadata__"):
        info = header[name]
        begin, end = info["data_offsets"]
        h.update(json.dumps([name, info["dtype"], list(info["shape"]), end - begin]).encode())
        h.update(payload[begin:end])
    return h.hexdigest()


def dumps(value):
    """JSON of ``value`` with every :class:`Raw` spliced in as written."""
    raws = {}

    def hole(v):
        if isinstance(v, Raw):
            raws[f"\x00{len(raws)}\x00"] = str(v)
            return f"\x00{len(raws) - 1}\x00"
        if isinstance(v, dict):
            return {k: hole(x) for k, x in v.items()}
        if isinstance(v, list):
            return [hole(x) for x in v]
        return v

    text = json.dumps(hole(value), separators=(",", ":"))
    for key, raw in raws.items():
        text = text.replace(json.dumps(key), raw)
    return text


def assemble(header, payload, *, fix_checksum=True):
    """The bytes of a safetensors file: the header (a dict, or JSON text) then ``payload``."""
    if fix_checksum and isinstance(header, dict):
        meta = header.get("__metadata__")
        try:
            meta["nnx.sha256"] = checksum(meta, header, payload)
        except (TypeError, ValueError, KeyError, AttributeError):
            pass   # a header too broken to sum: the reader refuses it before the checksum
    text = (header if isinstance(header, str) else dumps(header)).encode("utf-8", "surrogatepass")
    return struct.pack("<Q", len(text)) + text + payload


def split(blob):
    (n,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8:8 + n]), blob[8 + n:]


# -- the oracle --------------------------------------------------------------------------------
class Fuzz:
    """Writes each case to a file, loads it, and checks the outcome; counts outcomes."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.counts = collections.Counter()

    def path(self, name="case.safetensors"):
        return self.folder / name

    def bytes(self, kind, blob):
        path = self.path()
        path.touch()
        with open(path, "r+b") as f:   # not "wb": ext4 flushes a file truncated to 0 on close
            f.write(blob)
            f.truncate(len(blob))
        return self.load(kind, path)

    def load(self, kind, path):
        try:
            model = nnx.load(path, backend="numpy")
        except FileNotFoundError:
            self.counts[kind, "missing"] += 1
            return "missing"
        except nnx.CheckpointError as exc:
            problem = exc.problem
            assert len(problem) <= MAX_PROBLEM, (kind, len(problem), problem[:300])
            assert "Traceback" not in problem and "object at 0x" not in problem, problem
            assert "Exceeds the limit" not in problem, problem
            self.counts[kind, "refused"] += 1
            return "checksum" if "checksum mismatch" in problem else "refused"
        self.assert_exact(model, Path(path).read_bytes())
        self.counts[kind, "loaded"] += 1
        return "loaded"

    @staticmethod
    def assert_exact(model, blob):
        header, _ = split(blob)
        arch = json.loads(header["__metadata__"]["nnx.architecture"])
        assert nnx.architecture.describe(model) == arch
        tensors = safetensors.numpy.load(blob)
        params = ({"w": model.w, "b": model.b} if isinstance(model, nnx.Perceptron)
                  else model.parameters())
        assert params.keys() == tensors.keys()
        for name, expected in tensors.items():
            got = nnx.to_numpy(params[name])
            assert got.dtype == expected.dtype and got.shape == expected.shape, name
            assert got.tobytes() == expected.tobytes(), name


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    out = {}
    for name, make in MODELS.items():
        nnx.save(make(), folder / f"{name}.safetensors")
        out[name] = (folder / f"{name}.safetensors").read_bytes()
    return out


# -- hostile values ----------------------------------------------------------------------------
def deep(depth, rng):
    return Raw("[" * depth + "]" * depth if rng.random() < 0.5
               else '{"a":' * depth + "1" + "}" * depth)


def hostile(rng, long):
    """A value of the wrong type, size or range, or a plausible one."""
    big = 10**5 if long else 10**4
    makers = [
        lambda: [], lambda: {}, lambda: True, lambda: False, lambda: None,
        lambda: 0, lambda: -1, lambda: 1, lambda: 3, lambda: 2**31, lambda: 2**53 + 1,
        lambda: 2**64, lambda: -(2**63), lambda: Raw("1" + "0" * 400), lambda: Raw("9" * 5000),
        lambda: 0.5, lambda: -0.0, lambda: 1e308, lambda: Raw("1e999"), lambda: Raw("NaN"),
        lambda: Raw("Infinity"), lambda: Raw("-Infinity"), lambda: 3.0,
        lambda: "", lambda: "x" * rng.choice([10, big]), lambda: Raw('"\\ud800"'),
        lambda: rng.choice(["relu", "tanh", "float64", "float32", "F64", "F16", "BF16", "I32",
                            "Dense", "MLP", "Sequential", "Perceptron", "ReLU", "none",
                            "gelu_tanh", "nnx.model", "1", "0.W", "Identity", "float16",
                            "bfloat16", "compute_dtype", "int8"]),
        lambda: deep(rng.choice([3, 40, 5000]), rng),
        lambda: [1] * rng.choice([2, 3, big]),
        lambda: [rng.randrange(2**64) for _ in range(rng.choice([2, 40, 40_000 if long else 400]))],
        lambda: {"type": rng.choice(["Dense", "Sequential", "MLP", "ReLU", "Perceptron"])},
        lambda: {"type": "Dense", "in_features": 46341, "out_features": 46341, "bias": True,
                 "dtype": "float32"},
        lambda: {"type": "Sequential",
                 "layers": [{"type": "ReLU"} for _ in range(rng.choice([2, 10_001]))]},
    ]
    return rng.choice(makers)()


def nodes(value):
    """Every dict and list inside ``value`` (itself included)."""
    out = [value] if isinstance(value, dict | list) else []
    children = value.values() if isinstance(value, dict) else value if isinstance(
        value, list) else []
    for child in children:
        out += nodes(child)
    return out


def nudge(v, rng):
    """A small change that may well keep the file valid."""
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        return v + rng.choice([-1, 1, v])
    if isinstance(v, float):
        return v * rng.choice([0.5, 2.0, -1.0])
    if isinstance(v, str):
        return rng.choice(["ReLU", "Tanh", "Sigmoid", "Identity", "tanh", "relu", "none",
                           "float64", "float16", "bfloat16", v + "x", v.upper()])
    return v


def mutate(tree, rng, long):
    """Edit one randomly chosen dict or list inside ``tree`` in place."""
    node = rng.choice(nodes(tree))
    op = rng.random()
    if isinstance(node, dict):
        keys = list(node) or ["type"]
        key = rng.choice(keys)
        if op < 0.35:
            node[key] = hostile(rng, long)
        elif op < 0.65:
            node[key] = nudge(node.get(key), rng)
        elif op < 0.8:
            node.pop(key, None)
        elif op < 0.9:
            node[rng.choice(["seed", "extra", "__proto__", "Type", "compute_dtype"])] = \
                hostile(rng, long)
        else:
            node[key + rng.choice(["", "_", "s"])] = node.pop(key, None)
    elif node:
        i = rng.randrange(len(node))
        if op < 0.3:
            node[i] = hostile(rng, long)
        elif op < 0.5:
            node[i] = nudge(node[i], rng)
        elif op < 0.65:
            del node[i]
        elif op < 0.8:
            node.insert(i, copy.deepcopy(node[rng.randrange(len(node))]))
        elif op < 0.9:
            node[i], node[-1] = node[-1], node[i]
        else:   # repeated, up to ~4 MB of JSON (a header of at most 8 MiB is read)
            width = len(json.dumps(node[i], default=str))
            times = min(rng.choice([1, 100, 10_001]), 4_000_000 // width + 1)
            node.extend(copy.deepcopy(node[i]) for _ in range(times))   # no shared node
    else:
        node.append(hostile(rng, long))


# -- the mutation classes ----------------------------------------------------------------------
def flips(fuzz, saved, rng, n):
    for _ in range(n):
        blob = bytearray(saved[rng.choice(list(saved))])
        for _ in range(rng.choice([1, 1, 2, 8])):
            blob[rng.randrange(len(blob))] ^= 1 << rng.randrange(8)
        fuzz.bytes("flip", bytes(blob))


def truncations(fuzz, saved, rng, n):
    for _ in range(n):
        blob = saved[rng.choice(list(saved))]
        fuzz.bytes("truncate", blob[:rng.randrange(len(blob))])


def appended(fuzz, saved, rng, n):
    for _ in range(n):
        blob = saved[rng.choice(list(saved))]
        extra = rng.choice([b"\0", b" ", b"\0" * 8, rng.randbytes(rng.randrange(1, 200)), blob])
        fuzz.bytes("append", blob + extra)
    path = fuzz.path()   # a model followed by 1 TiB of zeros, sparse: refused unread
    path.write_bytes(saved["mlp"])
    with open(path, "r+b") as f:
        f.truncate(len(saved["mlp"]) + 2**40)
    assert fuzz.load("append", path) == "refused"


def length_field(fuzz, saved, rng, n):
    for _ in range(n):
        blob = saved[rng.choice(list(saved))]
        value = rng.choice([0, 1, 7, 2**24 + 1, 2**63, 2**64 - 1, rng.randrange(2**64),
                            len(blob), len(blob) - 8, struct.unpack("<Q", blob[:8])[0] - 1])
        fuzz.bytes("length", struct.pack("<Q", value) + blob[8:])


def architecture_edits(fuzz, saved, rng, n, long):
    """Edits of the architecture JSON with the checksum recomputed: they reach its checks."""
    for _ in range(n):
        header, payload = split(saved[rng.choice(list(saved))])
        arch = json.loads(header["__metadata__"]["nnx.architecture"])
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            mutate(arch, rng, long)
        header["__metadata__"]["nnx.architecture"] = dumps(arch)
        assert fuzz.bytes("architecture", assemble(header, payload)) != "checksum"


def header_edits(fuzz, saved, rng, n, long):
    """Edits of the tensor entries and metadata, checksum recomputed where computable."""
    for _ in range(n):
        header, payload = split(saved[rng.choice(list(saved))])
        target = rng.random()
        if target < 0.6:
            mutate(header, rng, long)        # tensor entries, their fields, or the metadata
        elif target < 0.8:
            meta = header["__metadata__"]
            key = rng.choice([*meta, "nnx.extra"])
            meta[key] = rng.choice([hostile(rng, long), nudge(meta.get(key, ""), rng)])
        else:
            names = [k for k in header if k != "__metadata__"]
            old = rng.choice(names)
            new = rng.choice([old + ".W", "0.b", "99.W", "../0.W", "x" * 5000, "1.W", "w", "b"])
            header[new] = header.pop(old)
        fuzz.bytes("header", assemble(header, payload, fix_checksum=rng.random() < 0.9))


def raw_header_edits(fuzz, saved, rng, n):
    """Byte-level edits of the header text (JSON syntax), then the payload unchanged."""
    for _ in range(n):
        header, payload = split(saved[rng.choice(list(saved))])
        text = dumps(header)
        i = rng.randrange(len(text))
        text = text[:i] + rng.choice(["", "{", "}", "[", "]", ",", '"', "\\", ":", "1",
                                      "\\u0000", " "]) + text[i + rng.choice([0, 1, 2]):]
        fuzz.bytes("raw_header", assemble(text, payload))
    header, payload = split(saved["mlp"])   # the same key twice: refused, not last-one-wins
    text = dumps(header)
    dup = text[:-1] + ',"0.W":' + json.dumps(header["0.W"]) + "}"
    assert fuzz.bytes("raw_header", assemble(dup, payload)) == "refused"


def foreign(fuzz, saved, rng, n):
    png = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">IIBBBBB", 1, 1,
           8, 0, 0, 0, 0) + struct.pack(">I", zlib.crc32(b"IHDR")) + b"\0" * 16)
    library = safetensors.numpy.save({"weight": np.ones((2, 2), np.float32)},
                                     metadata={"format": "pt"})
    library_bare = safetensors.numpy.save({"0.W": np.zeros((5, 3), np.float32)})
    fixed = [b"", b"\0", b"hello, world\n", png, pickle.dumps({"W": [1.0, 2.0]}),
             pickle.dumps(np.ones(3)), library, library_bare, struct.pack("<Q", 2) + b"{}",
             struct.pack("<Q", 2) + b"[]", struct.pack("<Q", 4) + b"null", b"PK\x03\x04" * 8]
    for blob in fixed:
        assert fuzz.bytes("foreign", blob) == "refused"
    for _ in range(n):
        fuzz.bytes("foreign", rng.randbytes(rng.randrange(0, 300)))


def _load_in_thread(fuzz, kind, path):
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(fuzz.load(kind, path)), daemon=True)
    worker.start()
    worker.join(60)   # a hang guard, not a timing: loading a FIFO must not wait for a writer
    assert not worker.is_alive(), f"nnx.load blocked on {path}"
    return outcome[0]


def special_files(fuzz, saved, folder):
    folder = Path(folder)
    os.mkfifo(folder / "fifo")
    (folder / "dir.safetensors").mkdir()
    os.symlink("/dev/zero", folder / "zero.safetensors")
    os.symlink(folder / "nowhere", folder / "dangling.safetensors")
    os.symlink(folder / "loop_b", folder / "loop_a")
    os.symlink(folder / "loop_a", folder / "loop_b")
    (folder / "model.safetensors").write_bytes(saved["sequential"])
    os.symlink(folder / "model.safetensors", folder / "link.safetensors")
    expect = {"fifo": "refused", "dir.safetensors": "refused", "zero.safetensors": "refused",
              "dangling.safetensors": "missing", "loop_a": "refused",
              "link.safetensors": "loaded"}
    got = {name: _load_in_thread(fuzz, "special", folder / name) for name in expect}
    assert got == expect


def run(folder, saved, scale, long):
    fuzz = Fuzz(folder)
    rng = random.Random(SEED + scale)
    flips(fuzz, saved, rng, 400 * scale)
    truncations(fuzz, saved, rng, 150 * scale)
    appended(fuzz, saved, rng, 100 * scale)
    length_field(fuzz, saved, rng, 60 * scale)
    architecture_edits(fuzz, saved, rng, 500 * scale, long)
    header_edits(fuzz, saved, rng, 300 * scale, long)
    raw_header_edits(fuzz, saved, rng, 150 * scale)
    foreign(fuzz, saved, rng, 50 * scale)
    special = Path(folder) / "special"
    special.mkdir()
    special_files(fuzz, saved, special)
    return fuzz.counts


def report(counts):
    kinds = sorted({k for k, _ in counts})
    return "; ".join(f"{k}: " + ", ".join(f"{counts[k, o]} {o}" for o in
                                          ("refused", "loaded", "missing") if counts[k, o])
                     for k in kinds)


def test_fuzz_model_files(tmp_path, saved):
    counts = run(tmp_path, saved, 1, long=False)
    print(f"\n{sum(counts.values())} cases: {report(counts)}")
    # the architecture edits keep the checksum valid, so some load (a changed alpha, a
    # swapped activation) and most are refused by the architecture checks
    assert counts["architecture", "loaded"] > 0 and counts["architecture", "refused"] > 0
    assert counts["flip", "refused"] > 0 and counts["truncate", "loaded"] == 0


@pytest.mark.fuzz_long
def test_fuzz_model_files_long(tmp_path, saved):
    counts = run(tmp_path, saved, LONG, long=True)
    print(f"\n{sum(counts.values())} cases: {report(counts)}")
    assert counts["truncate", "loaded"] == 0

"""What every adversary script outside pmi shares (distill.py, attack.py, compare.py): reading an
owner key and an exported owner, the input normalisation the key states, the dataset's IDX
files, the thief's share of the test file, and saving a suspect as TorchScript.

  fail(msg)                      prints "<script>: error: msg" and exits 2 (bad input)
  read_key(path)                 the key's fields the thief side needs (a dict; see below)
  normalise(raw, key)            raw pixels (n, c, h, w) 0..255 -> what the owner's model took
  load_owner(path)               (module, metadata) of a `pmi export` safetensors file
  idx(path)                      one IDX file as a numpy array (.gz or not)
  test_file(data_dir, key)       the dataset's t10k images (normalised) and labels
  thief_split(n, holdout, frac)  (train indices, accuracy indices) of the test file
  accuracy(model, x, y)          the fraction of x whose argmax is y
  write_file(path, data)         bytes to path through a temporary file and a rename
  save_torchscript(model, shape, path)  torch.jit.trace in eval mode (a ScriptModule as is), saved with write_file

The architectures are pmi's in PyTorch (tests/torch_models.py)."""
import gzip
import io
import math
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests"))
import torch_models  # noqa: E402


def fail(msg):
    print("%s: error: %s" % (os.path.basename(sys.argv[0]), msg), file=sys.stderr)
    sys.exit(2)


def _text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def read_key(path):
    """The key's kind-checked fields: normalize, mean, std (float arrays of c), input_shape
    (c, h, w), classes, dataset, N, m, and the pool as samples (N*m, c, h, w, raw pixels) and
    labels (N*m). Exits 2 naming the file when it is not a pmi owner key."""
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        fail("cannot open key %s: %s" % (path, e))
    with f:
        if _text(f.attrs.get("kind", "")) != "pmi-owner-key":
            fail("%s is not a pmi owner key (root attribute kind is not 'pmi-owner-key'; make one with `pmi key export`)" % path)
        key = {}
        for a in ("normalize", "mean", "std", "input_shape", "classes", "dataset", "N", "m"):
            if a not in f.attrs:
                fail("%s: key attribute %s is missing" % (path, a))
        for d in ("samples", "labels"):
            if d not in f:
                fail("%s: key dataset %s is missing" % (path, d))
        key["normalize"] = _text(f.attrs["normalize"])
        if key["normalize"] not in ("none", "unit", "standard"):
            fail("%s: key normalize '%s' is not none, unit or standard" % (path, key["normalize"]))
        key["mean"] = np.asarray(f.attrs["mean"], dtype=np.float64).reshape(-1)
        key["std"] = np.asarray(f.attrs["std"], dtype=np.float64).reshape(-1)
        key["input_shape"] = tuple(int(v) for v in np.asarray(f.attrs["input_shape"]).reshape(-1))
        key["classes"] = int(f.attrs["classes"])
        key["dataset"] = _text(f.attrs["dataset"])
        key["N"], key["m"] = int(f.attrs["N"]), int(f.attrs["m"])
        s = f["samples"][:]
        key["samples"] = torch.from_numpy(s.reshape(-1, *s.shape[2:]).astype(np.float32))
        key["labels"] = torch.from_numpy(f["labels"][:].astype(np.int64).reshape(-1))
    return key


def normalise(raw, key):
    """Raw pixels (n, c, h, w) 0..255, float32, to the owner's input: as is (none), /255 (unit)
    or (x/255 - mean) / std per channel (standard), computed in float64 as pmi verify does."""
    if key["normalize"] == "none":
        return raw.float()
    x = raw.double() / 255.0
    if key["normalize"] == "standard":
        for ch in range(x.shape[1]):
            sd = key["std"][ch]
            x[:, ch] = (x[:, ch] - key["mean"][ch]) / (sd if sd > 0 else 1.0)
    return x.float()


def load_owner(path):
    """The owner's module and metadata from a `pmi export` safetensors file (strict load)."""
    try:
        tensors, meta = torch_models.read_safetensors(path)
    except Exception as e:  # struct, JSON, dtype and shape errors of a broken file alike
        fail("cannot read %s as safetensors: %s" % (path, e))
    if meta.get("arch") not in torch_models.ARCHS:
        fail("%s: metadata arch '%s' is not one of %s" % (path, meta.get("arch"), " ".join(torch_models.ARCHS)))
    model = torch_models.build(meta)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        fail("%s does not load into pmi's %s: %s" % (path, meta["arch"], e))
    return model.eval(), meta


def idx(path):
    """An IDX file (MNIST's format) as a uint8 array of its shape; path may end in .gz, and a
    missing .gz falls back to the uncompressed file."""
    opener = gzip.open if path.endswith(".gz") else open
    if not os.path.exists(path) and path.endswith(".gz"):
        path, opener = path[:-3], open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except OSError as e:
        fail("cannot read %s: %s" % (path, e))
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        fail("%s is not an IDX file of unsigned bytes" % path)
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    if len(data) != 4 + 4 * dims + int(np.prod(shape)):
        fail("%s: %d bytes, its header says %s" % (path, len(data), shape))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


_test_files = {}   # (folder, normalisation, input shape) -> (x, y): compare.py runs attack.py for every setting


def test_file(data_dir, key):
    """The dataset's test file (t10k-*, never in the owner's training set, held-out set or pool),
    normalised as the key says: (x (n, c, h, w) float32, y (n) int64). Read and normalised once
    per process for a folder and a normalisation; every call gets its own copy."""
    memo = (os.path.abspath(data_dir), key["normalize"], tuple(key["mean"]), tuple(key["std"]), key["input_shape"])
    if memo not in _test_files:
        raw = idx(os.path.join(data_dir, "t10k-images-idx3-ubyte.gz"))
        lab = idx(os.path.join(data_dir, "t10k-labels-idx1-ubyte.gz"))
        if raw.ndim == 3:
            raw = raw[:, None]
        if tuple(raw.shape[1:]) != key["input_shape"] or len(lab) != len(raw):
            fail("%s: test images %s with %d labels do not match the key's input shape %s (dataset %s)"
                 % (data_dir, list(raw.shape), len(lab), list(key["input_shape"]), key["dataset"]))
        _test_files[memo] = normalise(torch.from_numpy(raw.astype(np.float32)), key), torch.from_numpy(lab.astype(np.int64))
    x, y = _test_files[memo]
    return x.clone(), y.clone()


def thief_split(n, holdout, fraction):
    """Splits the test file's n samples: the last `holdout` measure accuracy; the thief trains on
    the first ceil(fraction * (n - holdout)) of the rest (at least 1). Returns two index ranges."""
    if not 0 < holdout < n:
        fail("--holdout %d: must be in [1, %d)" % (holdout, n))
    if not 0 < fraction <= 1:
        fail("--fraction %g: must be in (0, 1]" % fraction)
    k = max(1, int(math.ceil(fraction * (n - holdout))))
    return torch.arange(0, k), torch.arange(n - holdout, n)


def accuracy(model, x, y):
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    return (pred == y).double().mean().item()


def write_file(path, data):
    """Writes bytes to path through a new temporary file beside it (created exclusively, never
    through a symbolic link), fsynced, then renamed over path. Exits 2 naming path on failure."""
    tmp = "%s.tmp-%d" % (path, os.getpid())
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        fail("cannot write %s: %s" % (path, e))


def save_torchscript(model, shape, path):
    """Traces the model in eval mode on one input of shape (c, h, w) (a ScriptModule is saved as
    it is) and saves it for `pmi verify --model` (through write_file)."""
    model = model.cpu().eval()
    with torch.no_grad():
        traced = model if isinstance(model, torch.jit.ScriptModule) else torch.jit.trace(model, torch.zeros(1, *shape))
    buf = io.BytesIO()
    torch.jit.save(traced, buf)
    write_file(path, buf.getvalue())

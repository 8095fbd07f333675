"""PyTorch equivalents of pmi's architectures (framework/nn_torch.cpp), and a safetensors
reader and writer in plain Python (struct + json + torch.frombuffer; Debian has no safetensors
package). Used by tests/test_verify.sh through /usr/bin/python3 (Debian's python3-torch):

  DEFAULT_WIDTH[arch]          the width pmi builds an arch with when none is given
  build(meta)                  the torch.nn module for a file's __metadata__ (arch, width,
                               input_shape, classes); its state_dict() names are pmi's
  read_safetensors(path)       (tensors by name, metadata)
  write_safetensors(path, tensors, metadata)

Every module mirrors the C++ factory line by line: the same layer order, names, paddings,
pooling rule (a 2x2 max-pool only while both sides are at least 2) and width scaling. A change
there must change this file, or test_verify.sh fails on load_state_dict(strict=True)."""
import json
import struct
from collections import OrderedDict

import torch
from torch import nn

DTYPES = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32,
          "F16": torch.float16, "U8": torch.uint8}
NAMES = {v: k for k, v in DTYPES.items()}


def scaled(base, width, ref):
    return max(1, base * width // ref)


def maybe_pool(layers, name, hw):
    if hw[0] < 2 or hw[1] < 2:
        return
    layers.append((name, nn.MaxPool2d(2)))
    hw[0] //= 2
    hw[1] //= 2


def flat_size(layers, c, h, w):
    body = nn.Sequential(OrderedDict(layers)).eval()
    with torch.no_grad():
        return body(torch.zeros(1, c, h, w)).numel()


def mlp(c, h, w, classes, width):
    return [("flatten", nn.Flatten()), ("fc1", nn.Linear(c * h * w, width)), ("relu1", nn.ReLU()),
            ("fc2", nn.Linear(width, width)), ("relu2", nn.ReLU()), ("fc", nn.Linear(width, classes))]


def lenet(c, h, w, classes, width):
    c1, c2, hw = width, scaled(16, width, 6), [h, w]
    L = [("conv1", nn.Conv2d(c, c1, 5, 1, 2)), ("relu1", nn.ReLU())]
    maybe_pool(L, "pool1", hw)
    pad2 = 0 if min(hw) >= 10 else 2
    L += [("conv2", nn.Conv2d(c1, c2, 5, 1, pad2)), ("relu2", nn.ReLU())]
    hw = [hw[0] - (4 - 2 * pad2), hw[1] - (4 - 2 * pad2)]
    maybe_pool(L, "pool2", hw)
    L.append(("flatten", nn.Flatten()))
    nf = flat_size(L, c, h, w)
    return L + [("fc1", nn.Linear(nf, 120)), ("relu3", nn.ReLU()), ("fc2", nn.Linear(120, 84)),
                ("relu4", nn.ReLU()), ("fc", nn.Linear(84, classes))]


def cnn(c, h, w, classes, width):
    hw = [h, w]
    L = [("conv1", nn.Conv2d(c, width, 3, 1, 1)), ("relu1", nn.ReLU())]
    maybe_pool(L, "pool1", hw)
    L += [("conv2", nn.Conv2d(width, 2 * width, 3, 1, 1)), ("relu2", nn.ReLU())]
    maybe_pool(L, "pool2", hw)
    L.append(("flatten", nn.Flatten()))
    nf = flat_size(L, c, h, w)
    return L + [("fc1", nn.Linear(nf, 128)), ("relu3", nn.ReLU()), ("fc", nn.Linear(128, classes))]


def vgg11(c, h, w, classes, width):
    L, cin, hw, nconv, npool = [], c, [h, w], 0, 0
    for v in [64, 0, 128, 0, 256, 256, 0, 512, 512, 0, 512, 512, 0]:
        if v == 0:
            npool += 1
            maybe_pool(L, "pool%d" % npool, hw)
            continue
        out = scaled(v, width, 64)
        nconv += 1
        L += [("conv%d" % nconv, nn.Conv2d(cin, out, 3, 1, 1, bias=False)),
              ("bn%d" % nconv, nn.BatchNorm2d(out)), ("relu%d" % nconv, nn.ReLU())]
        cin = out
    return L + [("avgpool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(cin, classes))]


class BasicBlock(nn.Module):
    def __init__(self, cin, out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out)
        self.conv2 = nn.Conv2d(out, out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.shortcut = None
        if stride != 1 or cin != out:
            self.shortcut = nn.Sequential(OrderedDict([("conv", nn.Conv2d(cin, out, 1, stride, 0, bias=False)),
                                                       ("bn", nn.BatchNorm2d(out))]))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (self.shortcut(x) if self.shortcut is not None else x))


def resnet18(c, h, w, classes, width):
    cin = scaled(64, width, 64)
    L = [("conv1", nn.Conv2d(c, cin, 3, 1, 1, bias=False)), ("bn1", nn.BatchNorm2d(cin)), ("relu", nn.ReLU())]
    for stage, base in enumerate([64, 128, 256, 512]):
        out = scaled(base, width, 64)
        for b in range(2):
            L.append(("layer%d_%d" % (stage + 1, b), BasicBlock(cin, out, 2 if stage > 0 and b == 0 else 1)))
            cin = out
    return L + [("avgpool", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(cin, classes))]


ARCHS = {"mlp": mlp, "lenet": lenet, "cnn": cnn, "vgg11": vgg11, "resnet18": resnet18}
DEFAULT_WIDTH = {"mlp": 256, "lenet": 6, "cnn": 32, "vgg11": 64, "resnet18": 64}   # kArchs' default_width


def build(meta):
    c, h, w = (int(v) for v in meta["input_shape"].split(","))
    return nn.Sequential(OrderedDict(ARCHS[meta["arch"]](c, h, w, int(meta["classes"]), int(meta["width"])))).eval()


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n:]
    tensors = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        dt = DTYPES[t["dtype"]]
        buf = bytearray(data[b:e])
        x = torch.frombuffer(buf, dtype=dt) if e > b else torch.zeros(0, dtype=dt)
        tensors[name] = x.reshape(t["shape"]).clone()
    return tensors, meta


def write_safetensors(path, tensors, meta):
    header, blobs, at = {}, [], 0
    if meta:
        header["__metadata__"] = meta
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        b = t.numpy().tobytes()
        header[name] = {"dtype": NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))

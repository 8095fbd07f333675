#!/usr/bin/env python3
"""A thief outside pmi: distils an exported owner model into a fresh student in PyTorch (or
trains one from scratch on the same data, the innocent control) and saves it as TorchScript for
`pmi verify --model`.

Usage: distill.py --owner owner.safetensors --key owner.key.h5 --data FASHION_MNIST_DIR --out student.pt
                  [--mode distill|scratch] [--epochs 30] [--temperature 4] [--alpha 0.9] [--device cuda|cpu]

The thief's data is the dataset's test file (t10k-*: 10000 images, never in the owner's training
set S, its held-out set H or its pool): distillation minimises alpha T^2 KL(owner_T || student_T)
+ (1 - alpha) CE(labels), as pmi's `distill` attack does; `scratch` minimises CE alone. SGD, lr
0.01 (distill) or 0.05 (scratch), momentum 0.9, batch 128. The inputs are normalised as the key
says (its normalize, mean, std), so the student takes what the owner took. The architecture is
the owner's (tests/torch_models.py, pmi's modules in PyTorch). Prints the student's accuracy on
the thief's data and the owner's on the same data."""
import argparse
import gzip
import os
import sys

import h5py
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests"))
import torch_models  # noqa: E402


def idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    if not os.path.exists(path) and path.endswith(".gz"):
        path, opener = path[:-3], open
    with opener(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--owner", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--mode", choices=["distill", "scratch"], default="distill")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--temperature", type=float, default=4.0)
    ap.add_argument("--alpha", type=float, default=0.9)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    x = torch.tensor(idx(os.path.join(a.data, "t10k-images-idx3-ubyte.gz")), dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(idx(os.path.join(a.data, "t10k-labels-idx1-ubyte.gz")).astype(np.int64))
    with h5py.File(a.key, "r") as k:
        norm = k.attrs["normalize"]
        norm = norm.decode() if isinstance(norm, bytes) else norm
        mean, std = np.asarray(k.attrs["mean"]), np.asarray(k.attrs["std"])
    if norm == "unit":
        x = x / 255
    elif norm == "standard":
        x = (x / 255 - torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)) / torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    x, y = x.to(dev), y.to(dev)
    tensors, meta = torch_models.read_safetensors(a.owner)
    owner = torch_models.build(meta)
    owner.load_state_dict(tensors, strict=True)
    owner = owner.to(dev).eval()
    student = torch_models.build(meta).to(dev)
    with torch.no_grad():
        teacher = torch.cat([owner(x[i:i + 1000]) for i in range(0, len(x), 1000)])
    opt = torch.optim.SGD(student.parameters(), lr=0.01 if a.mode == "distill" else 0.05, momentum=0.9)
    T = a.temperature
    for _ in range(a.epochs):
        student.train()
        perm = torch.randperm(len(x), device=dev)
        for i in range(0, len(x), 128):
            b = perm[i:i + 128]
            out = student(x[b])
            loss = F.cross_entropy(out, y[b])
            if a.mode == "distill":
                kl = F.kl_div(F.log_softmax(out / T, 1), F.softmax(teacher[b] / T, 1), reduction="batchmean")
                loss = a.alpha * T * T * kl + (1 - a.alpha) * loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    student.eval()
    with torch.no_grad():
        acc = (torch.cat([student(x[i:i + 1000]) for i in range(0, len(x), 1000)]).argmax(1) == y).float().mean().item()
    print("%s student: accuracy %.4f on the thief's 10000 samples (owner %.4f)" % (a.mode, acc, (teacher.argmax(1) == y).float().mean().item()))
    torch.jit.trace(student.cpu(), torch.zeros(1, *x.shape[1:])).save(a.out)


if __name__ == "__main__":
    main()

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
the thief's data and the owner's on the same data. scripts/adversary/attack.py is the general
tool (every attack family of pmi, accuracy on a held-out part of the test file)."""
import argparse

import torch
import torch.nn.functional as F

import common


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
    key = common.read_key(a.key)
    x, y = common.test_file(a.data, key)
    x, y = x.to(dev), y.to(dev)
    owner, meta = common.load_owner(a.owner)
    owner = owner.to(dev)
    student = common.torch_models.build(meta).to(dev)
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
    acc = common.accuracy(student, x, y)
    print("%s student: accuracy %.4f on the thief's 10000 samples (owner %.4f)" % (a.mode, acc, (teacher.argmax(1) == y).float().mean().item()))
    common.save_torchscript(student, x.shape[1:], a.out)


if __name__ == "__main__":
    main()

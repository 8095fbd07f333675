#!/usr/bin/env python3
"""The PyTorch-from-Python reference for scripts/bench/bench-gpu.sh: trains the same architecture as
`pmi bench` (framework/nn_torch.cpp's registry: cnn = conv3x3 32 - pool - conv3x3 64 - pool -
fc128 - fc; vgg11 with batch norm; resnet18, CIFAR variant) on the Fashion-MNIST train file,
normalised and resident on the device, with SGD (momentum 0.9), a randperm shuffle on the
device per epoch, warm-up epochs first, then timed epochs ending in a synchronisation.

  bench_ref.py --arch cnn --batch 128 --epochs 3 [--models K]   (K models one after another)
Prints "ref-bench arch=... batch=... images_per_s=..." like `pmi bench`. --trace FILE records one
more epoch after the timing with torch.profiler (CPU ops; CUDA kernels on a GPU) as a Chrome
trace, as `pmi bench --trace` does; scripts/bench/trace-compare.py puts the two side by side."""
import argparse, gzip, os, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def load(folder):
    def rd(name, off):
        path = os.path.join(folder, name)
        data = gzip.open(path).read() if os.path.exists(path) else open(path[:-3], "rb").read()
        return np.frombuffer(data, np.uint8, offset=off)
    x = rd("train-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28).astype(np.float32) / 255
    y = rd("train-labels-idx1-ubyte.gz", 8).astype(np.int64)
    return torch.from_numpy((x - x.mean()) / x.std()), torch.from_numpy(y)


def cnn(c, classes, w=32):
    return nn.Sequential(nn.Conv2d(c, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(2 * w * 7 * 7, 128), nn.ReLU(), nn.Linear(128, classes))


def vgg11(c, classes, w=64, side=28):
    layers, cin = [], c
    for v in [w, 0, 2 * w, 0, 4 * w, 4 * w, 0, 8 * w, 8 * w, 0, 8 * w, 8 * w, 0]:
        if v == 0:
            if side >= 2:
                layers.append(nn.MaxPool2d(2)); side //= 2
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU()]; cin = v
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False); self.b2 = nn.BatchNorm2d(cout)
        self.sc = nn.Sequential()
        if stride != 1 or cin != cout:
            self.sc = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.b1(self.c1(x)))
        return F.relu(self.b2(self.c2(out)) + self.sc(x))


def resnet18(c, classes, w=64):
    layers, cin = [nn.Conv2d(c, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()], w
    for i, mult in enumerate([1, 2, 4, 8]):
        for j in range(2):
            layers.append(Block(cin, w * mult, 2 if (j == 0 and i > 0) else 1)); cin = w * mult
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="cnn"); ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3); ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--n", type=int, default=60000); ap.add_argument("--models", type=int, default=1)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--profile", action="store_true",
                    help="after the timing, the GPU time of one epoch's kernels (torch.profiler): the bound "
                         "on images/s that no host-side saving (CUDA graphs, C) can pass")
    ap.add_argument("--trace", metavar="FILE",
                    help="after the timing, one more epoch under torch.profiler, exported as a Chrome trace")
    ap.add_argument("--channels-last", action="store_true",
                    help="model and images in channels_last memory format (NHWC convolutions)")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                    help="bf16: the forward pass under torch.autocast(bfloat16), as pmi bench --precision bf16")
    ap.add_argument("--data", default=os.environ.get("FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
    a = ap.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    x, y = load(a.data)
    x, y = x[:a.n].to(dev), y[:a.n].to(dev)
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    x = x.contiguous(memory_format=fmt)
    n = x.shape[0]
    make = {"cnn": cnn, "vgg11": vgg11, "resnet18": resnet18}[a.arch]

    def train(model, opt, epochs):
        total = torch.zeros((), device=dev)
        for _ in range(epochs):
            perm = torch.randperm(n, device=dev)
            for i in range(0, n, a.batch):
                idx = perm[i:i + a.batch]
                with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16"):
                    out = model(x[idx])
                loss = F.cross_entropy(out.float(), y[idx])
                opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
                total += loss.detach()
        return total.item()  # one synchronisation at the end

    t_all = time.perf_counter()
    for k in range(a.models):
        torch.manual_seed(k)
        model = make(1, 10).to(dev, memory_format=fmt)
        opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9)
        if a.warmup:
            train(model, opt, a.warmup)
        t0 = time.perf_counter()
        train(model, opt, a.epochs)
        dt = time.perf_counter() - t0
        if a.models == 1:
            print(f"ref-bench arch={a.arch} batch={a.batch} epochs={a.epochs} n={n} device=\"{dev}\" "
                  f"seconds={dt:.3f} images_per_s={n * a.epochs / dt:.0f} torch={torch.__version__} precision={a.precision}"
                  f"{' channels_last' if a.channels_last else ''}", flush=True)
        if a.profile and a.models == 1 and dev.type == "cuda":
            from torch.profiler import profile, ProfilerActivity
            with profile(activities=[ProfilerActivity.CUDA]) as pr:
                train(model, opt, 1)
            gpu = sum(e.self_device_time_total for e in pr.key_averages()) / 1e6   # seconds of kernels
            print(f"ref-profile arch={a.arch} batch={a.batch} precision={a.precision} gpu_seconds_per_epoch={gpu:.3f} "
                  f"gpu_bound_images_per_s={n / gpu:.0f}", flush=True)
            print(pr.key_averages().table(sort_by="self_device_time_total", row_limit=8), flush=True)
        if a.trace and a.models == 1:
            from torch.profiler import profile, ProfilerActivity
            acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
            with profile(activities=acts) as pr:
                train(model, opt, 1)
            pr.export_chrome_trace(a.trace)
            print(f"ref-trace arch={a.arch} batch={a.batch} epochs=1 file={a.trace}", flush=True)
    if a.models > 1:
        dt = time.perf_counter() - t_all
        print(f"ref-bench-sweep arch={a.arch} models={a.models} seconds={dt:.3f} models_per_min={60 * a.models / dt:.2f}", flush=True)


if __name__ == "__main__":
    main()

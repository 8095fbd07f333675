#!/usr/bin/env python3
"""Where the time of a fused LeNet ensemble goes, and what other arithmetic would cost: the
training step of framework/nn_torch.cpp's fused ensembles (K LeNet-5 models as one network:
grouped convolutions over (B, K*c, h, w), batched matrix products for the linear layers, each
model on its own batch, the sum of the K mean losses, SGD with momentum) written in PyTorch,
captured in a CUDA graph like pmi's, and timed in variants:

  tf32        pmi's training default (TF32 allowed in cuDNN convolutions)
  fp32        TF32 off
  nhwc        channels_last activations and weights for the convolutions
  bf16        autocast to bfloat16 (convolutions and matrix products; loss in fp32)
  bf16-nhwc   both
  c1mm        conv1 (one input channel per model) as unfold + batched matmul, not a depthwise conv
  c1pad       conv1 with a zero second input channel, so cuDNN's grouped conv runs, not ATen's depthwise
  bf16-c1mm, bf16-c1pad   the same under bf16 autocast

  bench-fused.py [--K 16,32,64] [--variants tf32,fp32,...] [--profile]
Prints "fused-bench variant=... K=... images_per_s=..." per case; --profile adds the top CUDA
kernels of eager steps of the first variant (torch.profiler), which is where the time goes."""
import argparse, time
import torch
import torch.nn.functional as F


def lenet_params(K, dev):
    shapes = [(6, 1, 5, 5), (6,), (16, 6, 5, 5), (16,), (120, 400), (120,), (84, 120), (84,), (10, 84), (10,)]
    ps = []
    for i, s in enumerate(shapes):
        t = torch.randn((K,) + s, device=dev) * (0.1 if len(s) > 1 else 0.01)
        ps.append(t.reshape((K * s[0],) + s[1:]) if i < 4 else t)  # conv weights side by side
    return [p.requires_grad_() for p in ps]


def conv1(ps, x, K, B, how):
    if how == "c1mm":
        col = F.unfold(x.reshape(K * B, 1, 28, 28), 5, padding=2).view(K, B, 25, 784)
        out = torch.matmul(ps[0].view(K, 1, 6, 25), col) + ps[1].view(K, 1, 6, 1)
        return out.permute(1, 0, 2, 3).reshape(B, K * 6, 28, 28)
    h = x.transpose(0, 1).reshape(B, K, 28, 28)
    if how == "c1pad":
        h = torch.stack([h, torch.zeros_like(h)], 2).view(B, 2 * K, 28, 28)
        w = torch.cat([ps[0], torch.zeros_like(ps[0])], 1)
        return F.conv2d(h, w, ps[1], 1, 2, 1, K)
    return F.conv2d(h, ps[0], ps[1], 1, 2, 1, K)


def forward(ps, x, K, nhwc, how=""):
    B = x.shape[1]
    if nhwc:
        h = x.transpose(0, 1).reshape(B, K, 28, 28).contiguous(memory_format=torch.channels_last)
        h = F.conv2d(h, ps[0], ps[1], 1, 2, 1, K)
    else:
        h = conv1(ps, x, K, B, how)
    h = F.max_pool2d(F.relu(h), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, ps[2], ps[3], 1, 0, 1, K)), 2)
    h = h.reshape(B, K, -1).transpose(0, 1)
    h = F.relu(torch.baddbmm(ps[5].unsqueeze(1), h, ps[4].transpose(1, 2)))
    h = F.relu(torch.baddbmm(ps[7].unsqueeze(1), h, ps[6].transpose(1, 2)))
    return torch.baddbmm(ps[9].unsqueeze(1), h, ps[8].transpose(1, 2))


def run(variant, K, B, n, epochs, X, Y, dev, profile=False):
    torch.backends.cudnn.allow_tf32 = variant != "fp32"
    torch.backends.cuda.matmul.allow_tf32 = False
    nhwc = "nhwc" in variant
    bf16 = variant.startswith("bf16")
    torch.manual_seed(0)
    ps = lenet_params(K, dev)
    if nhwc:
        for i in (0, 2):
            ps[i] = ps[i].detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    opt = torch.optim.SGD(ps, lr=0.05, momentum=0.9)
    data = X[:n].repeat(K, 1, 1, 1)
    lab = Y[:n].repeat(K)
    idx = torch.zeros(K, B, dtype=torch.long, device=dev)

    def step():
        flat = idx.reshape(-1)
        x = data.index_select(0, flat).view(K, B, 1, 28, 28)
        y = lab.index_select(0, flat)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16, cache_enabled=False):
            logits = forward(ps, x, K, nhwc, variant.split("-")[-1])
        per = F.cross_entropy(logits.float().reshape(K * B, -1), y, reduction="none").view(K, B).mean(1)
        per.sum().backward()
        opt.step()
        return per.detach()

    def perm():
        return torch.stack([torch.randperm(n, device=dev) + k * n for k in range(K)])

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        p = perm()
        for i in range(3):
            opt.zero_grad(set_to_none=False)
            idx.copy_(p[:, i * B:(i + 1) * B])
            step()
    torch.cuda.current_stream().wait_stream(s)
    if profile:
        from torch.profiler import profile as prof, ProfilerActivity
        with prof(activities=[ProfilerActivity.CUDA]) as pr:
            for i in range(20):
                opt.zero_grad(set_to_none=False)
                idx.copy_(p[:, i * B:(i + 1) * B])
                step()
            torch.cuda.synchronize()
        print(pr.key_averages().table(sort_by="cuda_time_total", row_limit=18), flush=True)
    opt.zero_grad(set_to_none=False)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        step()
    steps = n // B
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(epochs):
        p = perm()
        for i in range(steps):
            idx.copy_(p[:, i * B:(i + 1) * B])
            g.replay()
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    rate = K * B * steps * epochs / dt
    print(f"fused-bench variant={variant} K={K} batch={B} n={n} epochs={epochs} seconds={dt:.3f} "
          f"images_per_s={rate:.0f} step_ms={1000 * dt / (steps * epochs):.3f} torch={torch.__version__}", flush=True)
    return rate


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--K", default="16,32,64")
    ap.add_argument("--variants", default="tf32,fp32,nhwc,bf16,bf16-nhwc")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    dev = torch.device("cuda")
    torch.manual_seed(1)
    X = torch.randn(a.n, 1, 28, 28, device=dev)
    Y = torch.randint(0, 10, (a.n,), device=dev)
    first = True
    for K in [int(k) for k in a.K.split(",")]:
        for v in a.variants.split(","):
            run(v, K, a.batch, a.n, a.epochs, X, Y, dev, profile=a.profile and first)
            first = False


if __name__ == "__main__":
    main()

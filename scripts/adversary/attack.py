#!/usr/bin/env python3
"""pmi's attacks outside pmi: a practitioner's PyTorch version of one attack family, applied to an
owner model exported by `pmi export`, saved as TorchScript for `pmi verify --model`.

Usage: attack.py --owner owner.safetensors --key owner.key.h5 --family F --out attacked.pt
                 [--data DIR] [--fraction 1] [--holdout 2000] [--seed 1] [--record r.json]
                 [the family's parameters, named and defaulted as in `pmi attacks`]
       attack.py --list          the families and parameters (this file's two tables)

The thief's data is the dataset's test file (t10k-*, never in the owner's training set, held-out
set or pool), normalised as the key says: the last --holdout samples measure accuracy and are
never trained on; the thief trains on the first ceil(fraction * (10000 - holdout)) of the rest.
Prints the attacked model's accuracy there (and the owner's), and its accuracy on the key's pool
samples, the number `pmi verify` reports. --record writes both, with every parameter, as JSON.
docs/attacks-outside.md says how each family differs from pmi's in-process one."""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F
import torch.nn.utils.prune as prune
from torch import nn

import common
import interface

# name: (type, default, min, max, help): pmi's attack parameters (framework/attack.c), plus
# weight_decay, which pmi's attacks fix at 5e-4 (nn_train_default_params) and a user may vary here.
PARAMS = {
    "epochs": (int, 5, 0, 10000, "training epochs"),
    "lr": (float, 0.01, 1e-8, 10, "learning rate"),
    "optimizer": (str, "sgd", None, None, "sgd|adam"),
    "momentum": (float, 0.9, 0, 0.999, "SGD momentum"),
    "weight_decay": (float, 5e-4, 0, 1, "L2 weight decay (SGD's or Adam's weight_decay)"),
    "batch_size": (int, 64, 1, 1 << 20, "mini-batch size"),
    "fraction": (float, 1, 1e-6, 1, "fraction of the thief's training part of the test file used"),
    "sparsity": (float, 0.5, 0, 0.999, "fraction of conv/linear weights set to zero"),
    "global": (int, 1, 0, 1, "1: prune.global_unstructured over all layers; 0: prune.l1_unstructured per layer"),
    "temperature": (float, 4, 0.01, 1000, "softmax temperature T of the soft labels (distill) or of the answers"),
    "alpha": (float, 0.9, 0, 1, "weight of the soft-label loss (1-alpha on the true labels)"),
    "arch": (str, "", None, None, "student architecture (default: the owner's)"),
    "width": (int, 0, 0, 4096, "student width (0: the arch's default; needs --arch)"),
    "bits": (int, 8, 1, 16, "bits per parameter tensor (quantize) or per query image (inquant): 2^bits levels"),
    "sigma": (float, 0.1, 0, 100, "noise std: of each tensor's std (noise, wshift), of clip / batch (noisyft), of the "
                                  "normalised pixels (innoise), of a probability (outnoise)"),
    "smoothing": (float, 0.1, 0, 0.999, "label smoothing of the targets (F.cross_entropy's label_smoothing)"),
    "level": (float, 0.3, 0, 100, "flooding level b: a sample's loss l counts as |l - b| + b"),
    "clip": (float, 1, 1e-6, 1e6, "norm each batch's gradient is clipped to (clip_grad_norm_)"),
    "eps": (float, 0.3, 0, 100, "L-inf radius of the PGD examples, in normalised pixels"),
    "steps": (int, 3, 1, 100, "PGD steps per batch (2.5 eps / steps each, random start)"),
    "classes": (int, 5, 2, 1000, "the new task's classes: the first this many labels"),
    "freeze": (int, 1, 0, 1, "1: only the new head trains; 0: all layers"),
    "k": (int, 3, 1, 1000, "probabilities the answer keeps (at most the classes)"),
    "decimals": (int, 2, 0, 8, "decimals the answer's probabilities keep"),
    "beta": (float, 1, 0, 10, "reverse sigmoid's strength"),
    "gamma": (float, 0.1, 1e-6, 100, "reverse sigmoid's slope"),
    "pixels": (int, 1, 0, 64, "blur radius ((2r+1)^2 window) or shift, in pixels (below the image's side)"),
    "lambda": (float, 1.5, 0, 100, "multiple of the mean filter taken from each convolution's filters (wshift)"),
    "samples": (int, 50, 1, 1000000, "the thief's own mini-dataset: the first this many of its samples (overwrite)"),
    "repeat": (int, 4, 1, 100, "times the thief's mini-dataset is in its training set (overwrite)"),
}
FT = ["epochs", "lr", "optimizer", "momentum", "weight_decay", "batch_size", "fraction"]
FAMILIES = {
    "none": ([], "the owner itself, re-saved as TorchScript (identity: a check of the path)"),
    "ftll": (FT, "fine-tune the last linear layer only (the rest frozen, in eval mode)"),
    "ftal": (FT, "fine-tune all layers"),
    "rtll": (FT, "re-initialise the last linear layer (reset_parameters), train it only"),
    "rtal": (FT, "re-initialise the last linear layer, train all layers"),
    "prune": (["sparsity", "global"], "L1 unstructured pruning of conv and linear weights (torch.nn.utils.prune)"),
    "prune-ft": (["sparsity", "global"] + FT, "prune, fine-tune all layers with the masks kept, prune.remove"),
    "fineprune": (["sparsity"] + FT, "Fine-Pruning (Liu et al. 2018): the last conv's channels least active after "
                                     "its ReLU on the thief's data masked (prune.custom_from_mask), fine-tune, prune.remove"),
    "distill": (["temperature", "alpha", "arch", "width"] + FT, "a fresh student on the owner's soft labels"),
    "extract": (["arch", "width"] + FT, "a fresh student on the owner's hard labels (label-only)"),
    "quantize": (["bits"], "per-tensor affine quantisation of every parameter (torch.fake_quantize_per_tensor_affine)"),
    "noise": (["sigma"], "Gaussian noise on every parameter, sigma times the tensor's std"),
    "overwrite": (["samples", "repeat"] + FT, "overwriting (WRT), for PMI: the thief's first `samples` samples "
                                              "`repeat` times in its training set, all layers fine-tuned"),
    "wshift": (["lambda", "sigma"] + FT, "weight shifting (WRT): each conv weight minus lambda times its mean filter "
                                         "plus noise of sigma times its std, then fine-tune all layers"),
    "smooth": (["smoothing"] + FT, "fine-tune all layers against label-smoothed targets"),
    "flood": (["level"] + FT, "fine-tune all layers with per-sample flooding (the adaptive thief)"),
    "noisyft": (["sigma", "clip"] + FT, "fine-tune all layers, each batch's gradient clipped to norm clip plus "
                                         "N(0, (sigma clip / batch)^2)"),
    "advtrain": (["eps", "steps"] + FT, "fine-tune all layers on PGD adversarial examples (Madry et al.)"),
    "transfer": (["classes", "freeze"] + FT, "a new task of the first `classes` labels: fc reset, then fc alone "
                                              "(freeze 1) or all layers trained"),
    "shuffle": ([], "neuron shuffling: the hidden units of consecutive layers permuted, seeded (the function is unchanged)"),
}
# The interface (interface.py): the owner unchanged behind a TorchScript wrapper that transforms
# each query (input) or each answer (output); the type's parameters, first the transform's.
FAMILIES.update({name: (takes, "interface (%s): %s" % (side, help_)) for name, (side, takes, help_) in interface.TRANSFORMS.items()})
RECIPE = ("smoothing", "level", "clip", "eps")   # the training recipes' parameters (0 or absent: off)


def parse_args(argv):
    ap = argparse.ArgumentParser(description="pmi's attack families in PyTorch, outside pmi")
    ap.add_argument("--list", action="store_true", help="print the families and parameters and exit")
    ap.add_argument("--owner", help="the owner, `pmi export ... -o owner.safetensors`")
    ap.add_argument("--key", help="its key, `pmi key export` (the input normalisation, the pool)")
    ap.add_argument("--family", help="one of: " + " ".join(FAMILIES))
    ap.add_argument("--out", help="the attacked model, TorchScript")
    ap.add_argument("--data", default=os.environ.get("FASHION_MNIST", "/usr/share/datasets/fashion-mnist"),
                    help="the dataset's folder of IDX files (default $FASHION_MNIST or Debian's)")
    ap.add_argument("--holdout", type=int, default=2000, help="last samples of the test file that measure accuracy")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--record", help="write the parameters and accuracies as JSON here")
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    for name, (typ, _, lo, hi, help_) in PARAMS.items():
        ap.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None,
                        help="%s (default %s%s)" % (help_, PARAMS[name][1], "" if lo is None else ", in [%g, %g]" % (lo, hi)))
    a = ap.parse_args(argv)
    if a.list:
        return a
    for opt in ("owner", "key", "family", "out"):
        if getattr(a, opt) is None:
            common.fail("--%s is required (--help for usage)" % opt)
    if a.family not in FAMILIES:
        common.fail("--family '%s': expected one of %s" % (a.family, " ".join(FAMILIES)))
    takes = FAMILIES[a.family][0]
    a.params = {}
    for name, (typ, default, lo, hi, _) in PARAMS.items():
        v = getattr(a, name)
        if v is not None and name not in takes:
            common.fail("--%s: family %s does not take it (takes: %s)" % (name.replace("_", "-"), a.family, " ".join(takes) or "nothing"))
        if name not in takes:
            continue
        v = default if v is None else v
        if lo is not None and not lo <= v <= hi:
            common.fail("--%s %s: expected a number in [%g, %g]" % (name.replace("_", "-"), v, lo, hi))
        a.params[name] = v
    if a.params.get("optimizer", "sgd") not in ("sgd", "adam"):
        common.fail("--optimizer '%s': expected sgd or adam" % a.params["optimizer"])
    if "arch" in a.params:
        if a.params["arch"] and a.params["arch"] not in common.torch_models.ARCHS:
            common.fail("--arch '%s': expected one of %s" % (a.params["arch"], " ".join(common.torch_models.ARCHS)))
        if a.params["width"] and not a.params["arch"]:
            common.fail("--width needs --arch (the student is otherwise the owner's architecture and width)")
    if a.device not in ("cpu", "cuda") or (a.device == "cuda" and not torch.cuda.is_available()):
        common.fail("--device '%s': expected cpu, or cuda on a machine where torch sees a GPU" % a.device)
    if not os.path.isdir(os.path.dirname(os.path.abspath(a.out))):
        common.fail("--out %s: its folder does not exist" % a.out)
    for inp in (a.owner, a.key):
        if os.path.exists(a.out) and os.path.exists(inp) and os.path.samefile(a.out, inp):
            common.fail("--out %s is an input (%s); refusing to overwrite it" % (a.out, inp))
    return a


def last_linear(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1]


def prunable(model):
    return [(m, "weight") for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def make_optimizer(params, p):
    if p["optimizer"] == "adam":
        return torch.optim.Adam(params, lr=p["lr"], weight_decay=p["weight_decay"])
    return torch.optim.SGD(params, lr=p["lr"], momentum=p["momentum"], weight_decay=p["weight_decay"])


def train(model, x, y, p, seed, last_only=False, teacher=None, T=1.0, alpha=0.0, hard=False):
    """Mini-batch training on (x, y), shuffled each epoch. last_only: only the last linear layer
    learns, the rest frozen in eval mode (BatchNorm statistics fixed). teacher: its logits on x,
    for distillation (alpha T^2 KL + (1 - alpha) CE) or, hard, extraction (CE on its argmax)."""
    if last_only:
        for q in model.parameters():
            q.requires_grad_(False)
        for q in last_linear(model).parameters():
            q.requires_grad_(True)
    trained = [q for q in model.parameters() if q.requires_grad]
    opt = make_optimizer(trained, p)
    gen = torch.Generator().manual_seed(seed)
    smooth, flood, clip, eps = (p.get(k, 0) for k in RECIPE)
    draws = torch.Generator().manual_seed(seed + 7919)   # noise and PGD starts: the batch order stays ftal's
    for _ in range(p["epochs"]):
        model.train(not last_only)
        perm = torch.randperm(len(x), generator=gen).to(x.device)
        for i in range(0, len(x), p["batch_size"]):
            b = perm[i:i + p["batch_size"]]
            xb = pgd(model, x[b], y[b], eps, p["steps"], draws) if eps > 0 else x[b]
            out = model(xb)
            if teacher is None and flood > 0:
                per = F.cross_entropy(out, y[b], label_smoothing=smooth, reduction="none")
                loss = ((per - flood).abs() + flood).mean()
            elif teacher is None:
                loss = F.cross_entropy(out, y[b], label_smoothing=smooth)
            elif hard:
                loss = F.cross_entropy(out, teacher[b].argmax(1))
            else:
                kl = F.kl_div(F.log_softmax(out / T, 1), F.log_softmax(teacher[b] / T, 1), reduction="batchmean", log_target=True)
                loss = alpha * T * T * kl + (1 - alpha) * F.cross_entropy(out, y[b])
            opt.zero_grad()
            loss.backward()
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(trained, clip)
                with torch.no_grad():
                    for q in trained:
                        q.grad.add_(torch.randn(q.shape, generator=draws).to(q.device) * (p["sigma"] * clip / len(b)))
            opt.step()
    for q in model.parameters():
        q.requires_grad_(True)
    return model.eval()


def pgd(model, x, y, eps, steps, gen):
    """PGD examples in the L-inf ball eps around x: a uniform random start, then steps signed-
    gradient steps of 2.5 eps / steps, each projected back (Madry et al.)."""
    delta = ((torch.rand(x.shape, generator=gen) * 2 - 1) * eps).to(x.device)
    for _ in range(steps):
        delta.requires_grad_(True)
        g, = torch.autograd.grad(F.cross_entropy(model(x + delta), y), delta)
        delta = (delta.detach() + 2.5 * eps / steps * g.sign()).clamp(-eps, eps)
    return (x + delta).detach()


def apply_prune(model, p):
    targets = prunable(model)
    if p["global"]:
        prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=p["sparsity"])
    else:
        for mod, name in targets:
            prune.l1_unstructured(mod, name, amount=p["sparsity"])
    return targets


def fine_prune_masks(model, fraction, x):
    """Fine-Pruning's channel masks: the last Conv2d (the last hidden Linear without one) of the
    model's top-level sequence, its output channels ranked by mean activation after the ReLU that
    follows it on x (a forward hook), the round(fraction C) least active masked, with its bias and
    the BatchNorm after it (so the channel is gone). Returns the (module, name) pairs masked."""
    kids = list(model.children())
    if any(k.__class__.__name__ == "BasicBlock" for k in kids):
        common.fail("fineprune: the owner is not sequential (a ResNet); use prune-ft")
    units = [i for i, k in enumerate(kids) if isinstance(k, (torch.nn.Conv2d, torch.nn.Linear))][:-1]
    convs = [i for i in units if isinstance(kids[i], torch.nn.Conv2d)]
    if not units:
        common.fail("fineprune: the owner has no hidden layer")
    t = (convs or units)[-1]
    relu = next(k for k in kids[t + 1:] if isinstance(k, torch.nn.ReLU))
    bn = kids[t + 1] if isinstance(kids[t + 1], torch.nn.BatchNorm2d) else None
    acts = []
    hook = relu.register_forward_hook(lambda mod, inp, out: acts.append(out.mean((2, 3)) if out.dim() == 4 else out))
    with torch.no_grad():
        model.eval()
        for i in range(0, len(x), 1000):
            model(x[i:i + 1000])
    hook.remove()
    mean = torch.cat(acts).mean(0)
    k = int(round(fraction * len(mean)))
    keep = torch.ones_like(mean)
    keep[torch.sort(mean, stable=True).indices[:k]] = 0
    masked = []
    for mod in [kids[t]] + ([bn] if bn is not None else []):
        for name in ("weight", "bias"):
            w = getattr(mod, name, None)
            if w is not None:
                prune.custom_from_mask(mod, name, keep.view([-1] + [1] * (w.dim() - 1)).expand_as(w).clone())
                masked.append((mod, name))
    return masked


def quantize(model, bits):
    """Every floating parameter tensor onto 2^bits levels: scale (max - min) / (2^bits - 1) and an
    integer zero point round(-min / scale), as PyTorch's affine MinMax observer picks them."""
    qmax = (1 << bits) - 1
    with torch.no_grad():
        for q in model.parameters():
            lo, hi = q.min().item(), q.max().item()
            if not hi > lo:
                continue
            scale = (hi - lo) / qmax
            zp = int(min(max(round(-lo / scale), 0), qmax))
            q.copy_(torch.fake_quantize_per_tensor_affine(q, scale, zp, 0, qmax))


def add_noise(model, sigma, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for q in model.parameters():
            sd = q.std(unbiased=False).item()
            q.add_(torch.randn(q.shape, generator=gen).to(q.device) * (sigma * sd))


def shift_weights(model, lmbda, sigma, seed):
    """Weight shifting as the Watermark-Robustness-Toolbox does it: every 4-d (convolution) weight
    w becomes w - lambda mean_0(w) - sigma std(w) z, z ~ N(0, 1) from a torch.Generator."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for q in model.parameters():
            if q.dim() == 4:
                sd = q.std(unbiased=False).item()
                q.sub_(q.mean(0, keepdim=True) * lmbda + torch.randn(q.shape, generator=gen).to(q.device) * (sigma * sd))


def attack(owner, meta, family, p, x, y, seed):
    """The attacked model (the owner is modified in place, or a fresh student is returned)."""
    if family in ("ftll", "ftal", "rtll", "rtal"):
        if family[0] == "r":
            torch.manual_seed(seed)
            last_linear(owner).reset_parameters()
        return train(owner, x, y, p, seed + 1, last_only=family.endswith("ll"))
    if family in ("smooth", "flood", "noisyft", "advtrain"):
        return train(owner, x, y, p, seed + 1)
    if family == "transfer":
        keep = y < p["classes"]
        torch.manual_seed(seed)
        last_linear(owner).reset_parameters()
        return train(owner, x[keep], y[keep], p, seed + 1, last_only=bool(p["freeze"]))
    if family in ("prune", "prune-ft", "fineprune"):
        targets = fine_prune_masks(owner, p["sparsity"], x) if family == "fineprune" else apply_prune(owner, p)
        if family != "prune":
            train(owner, x, y, p, seed + 1)
        for mod, name in targets:
            prune.remove(mod, name)
        return owner
    if family in ("distill", "extract"):
        smeta = dict(meta)
        if p["arch"]:
            smeta["arch"] = p["arch"]
            smeta["width"] = str(p["width"] or common.torch_models.DEFAULT_WIDTH[p["arch"]])
        torch.manual_seed(seed)
        student = common.torch_models.build(smeta).to(x.device)
        with torch.no_grad():
            teacher = torch.cat([owner(x[i:i + 1000]) for i in range(0, len(x), 1000)])
        return train(student, x, y, p, seed + 1, teacher=teacher, T=p.get("temperature", 1.0),
                     alpha=p.get("alpha", 0.0), hard=family == "extract")
    if family in interface.TRANSFORMS:
        shape = tuple(int(v) for v in meta["input_shape"].split(","))
        interface.check(family, p, shape, int(meta["classes"]))
        return interface.Interface(owner, shape, int(meta["classes"]), family, p, seed)
    if family == "shuffle":
        return shuffle_units(owner, seed)
    if family == "overwrite":
        k = p["samples"]
        if k > len(x):
            raise SystemExit("attack.py: --samples %d: the thief's data has only %d" % (k, len(x)))
        rep = [x[:k]] * (p["repeat"] - 1)
        return train(owner, torch.cat([x] + rep), torch.cat([y] + [y[:k]] * (p["repeat"] - 1)), p, seed + 1)
    if family == "wshift":
        shift_weights(owner, p["lambda"], p["sigma"], seed)
        return train(owner, x, y, p, seed + 1)
    if family == "quantize":
        quantize(owner, p["bits"])
    elif family == "noise":
        add_noise(owner, p["sigma"], seed)
    return owner


def shuffle_units(model, seed):
    """Neuron shuffling, as pmi's nn_shuffle_units: the top-level layers that carry units (Linear,
    Conv2d, each with the BatchNorm2d after it) in order, a run broken by any module that is
    neither one nor channel-wise (a ResNet block); for every consecutive pair of a run, the
    first's output units (weight, bias, BatchNorm) and the second's inputs permuted by
    torch.randperm from a generator seeded with seed; then each ResNet block's inner channels
    (conv1 and bn1 outputs, conv2 inputs). The function is unchanged up to float rounding."""
    gen = torch.Generator().manual_seed(seed)
    units, blocks = [], []
    for k in model.children():
        if isinstance(k, (nn.Linear, nn.Conv2d)):
            units.append([k, None])
        elif isinstance(k, nn.BatchNorm2d):
            if units and units[-1] is not None:
                units[-1][1] = k
        elif isinstance(k, common.torch_models.BasicBlock):
            units.append(None)
            blocks.append(k)
        elif not isinstance(k, (nn.ReLU, nn.MaxPool2d, nn.Flatten, nn.AdaptiveAvgPool2d)):
            units.append(None)
    pairs = [(u[0], u[1], v[0]) for u, v in zip(units, units[1:]) if u is not None and v is not None]
    with torch.no_grad():
        for layer, bn, nxt in pairs + [(b.conv1, b.bn1, b.conv2) for b in blocks]:
            permute_units(layer, bn, nxt, torch.randperm(layer.weight.shape[0], generator=gen))
    return model


def permute_units(layer, bn, nxt, perm):
    """layer's output units (and bn's channels) and nxt's inputs reordered by perm; a Linear after
    a Flatten takes its inputs in blocks of its in_features / units."""
    own = [layer.weight, layer.bias] + ([bn.weight, bn.bias, bn.running_mean, bn.running_var] if bn is not None else [])
    for t in own:
        if t is not None:
            t.copy_(t[perm.to(t.device)])
    block = nxt.weight.shape[1] // len(perm)
    cols = (perm[:, None] * block + torch.arange(block)).flatten() if nxt.weight.dim() == 2 and block > 1 else perm
    nxt.weight.copy_(nxt.weight[:, cols.to(nxt.weight.device)])


def sparsity(model):
    ws = [mod.weight.detach() for mod, _ in prunable(model)]
    return sum(int((w == 0).sum()) for w in ws) / sum(w.numel() for w in ws)


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    if a.list:
        for f, (takes, help_) in FAMILIES.items():
            print("  %-11s %s\n              parameters: %s" % (f, help_, " ".join(takes) or "-"))
        return 0
    t0 = time.time()
    dev = torch.device(a.device)
    key = common.read_key(a.key)
    owner, meta = common.load_owner(a.owner)
    if tuple(int(v) for v in meta["input_shape"].split(",")) != key["input_shape"]:
        common.fail("%s takes inputs %s, the key %s holds %s" % (a.owner, meta["input_shape"], a.key, key["input_shape"]))
    x, y = common.test_file(a.data, key)
    tr, te = common.thief_split(len(x), a.holdout, a.params.get("fraction", 1.0))
    x, y, owner = x.to(dev), y.to(dev), owner.to(dev)
    owner_acc = common.accuracy(owner, x[te], y[te])
    model = attack(owner, meta, a.family, a.params, x[tr], y[tr], a.seed)
    acc = common.accuracy(model, x[te], y[te])
    pool_acc = common.accuracy(model, common.normalise(key["samples"], key).to(dev), key["labels"].to(dev))
    common.save_torchscript(torch.jit.script(model) if a.family in interface.TRANSFORMS else model, key["input_shape"], a.out)
    label = ",".join("%s=%s" % kv for kv in a.params.items())
    n, trained = len(x), len(tr) if "epochs" in FAMILIES[a.family][0] else 0
    print("%s%s: test accuracy %.4f on t10k[%d:%d] (owner %.4f), pool accuracy %.4f on the key's %d samples; %s; wrote %s"
          % (a.family, " (%s)" % label if label else "", acc, n - a.holdout, n, owner_acc, pool_acc, len(key["labels"]),
             "trained on t10k[0:%d]" % trained if trained else "no training", a.out))
    if a.record:
        rec = {"family": a.family, "params": a.params, "seed": a.seed, "owner": a.owner, "key": a.key, "out": a.out,
               "thief_train": [0, trained], "accuracy_samples": [n - a.holdout, n],
               "test_accuracy": acc, "owner_test_accuracy": owner_acc, "pool_accuracy": pool_acc,
               "sparsity": sparsity(owner if a.family in interface.TRANSFORMS else model), "wall_s": time.time() - t0, "torch": torch.__version__}
        common.write_file(a.record, (json.dumps(rec, indent=1) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())

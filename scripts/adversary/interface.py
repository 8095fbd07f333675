"""pmi's interface attacks outside pmi (attack.py's families label ... flip): the owner unchanged
behind a wrapper module that transforms each query before the owner sees it (an input transform)
or each answer before the querier sees it (an output transform), compiled with torch.jit.script
so that `pmi verify --model` queries the wrapped model. The definitions are nn.h's (the comment
above nn_interface) and the ops framework/nn_torch.cpp's query_input and query_output:

  inquant      each image to 2^bits levels between its own minimum and maximum
  innoise      N(0, sigma^2) added to every (normalised) pixel
  blur         the mean over the (2 pixels + 1)^2 window around each pixel, inside the image
  shift        the image moved `pixels` down and right, the gap filled with its minimum
  flip         the image mirrored left to right
  label        one-hot of argmax p
  topk         the k largest probabilities, renormalised; the others 0
  round        p rounded to `decimals` decimals (not renormalised)
  temperature  softmax(log p / T)
  rsigmoid     p - beta (sigmoid(gamma logit p) - 1/2), clipped to [0, 1], renormalised
  outnoise     p + N(0, sigma^2), clipped at 0, renormalised (uniform if all 0)

The wrapper returns log max(p', 1e-12), pmi's answer. pmi verify takes a TorchScript model's
output as logits and applies log_softmax, which leaves a distribution's log-probabilities as they
are (to float rounding) but renormalises round's answers, the one transform whose p' need not sum
to 1: outside, round is judged on p' / sum p'. Noise cannot be pmi's (pmi draws it on the CPU from
its own generator, per evaluation chunk): the wrapper holds a table of NOISE_ROWS draws from a
torch.Generator seeded with --seed, and a call on n queries adds rows 0..n-1 (cyclically past
NOISE_ROWS), so the same query batch always gets the same noise, as pmi's does.

  TRANSFORMS[name]                     (side, parameters, help) of each family
  Interface(owner, shape, classes, name, params, seed)   the wrapper (an nn.Module)
  check(name, params, shape, classes)  the range checks pmi's nn_set_interface makes (exits 2)"""
import torch
import torch.nn.functional as F
from torch import nn

import common

NN_OUT_FLOOR = 1e-12
NOISE_ROWS = 4096   # pmi verify's evaluation chunk: one call of pmi verify never tiles the table
TRANSFORMS = {
    "label": ("output", [], "the answer is one-hot of the top class (label only)"),
    "topk": ("output", ["k"], "the k largest probabilities, renormalised; the others 0"),
    "round": ("output", ["decimals"], "probabilities rounded to `decimals` decimals"),
    "temperature": ("output", ["temperature"], "softmax at temperature T"),
    "rsigmoid": ("output", ["beta", "gamma"], "reverse sigmoid (Lee et al. 2019): p - beta (sigmoid(gamma logit p) - 1/2), "
                                              "clipped, renormalised"),
    "outnoise": ("output", ["sigma"], "N(0, sigma^2) on every probability, clipped at 0, renormalised (seeded)"),
    "inquant": ("input", ["bits"], "each query image quantised to 2^bits levels between its minimum and maximum"),
    "innoise": ("input", ["sigma"], "N(0, sigma^2) on every normalised pixel of a query (seeded)"),
    "blur": ("input", ["pixels"], "each pixel the mean over the (2r+1)^2 window around it (r = pixels)"),
    "shift": ("input", ["pixels"], "each query image moved `pixels` down and right, the gap filled with its minimum"),
    "flip": ("input", [], "each query image mirrored left to right"),
}


def check(name, params, shape, classes):
    """nn_set_interface's ranges that depend on the model: topk's k at most the classes, blur's
    and shift's pixels below the image's side."""
    if name == "topk" and params["k"] > classes:
        common.fail("--k %d: the owner has %d classes" % (params["k"], classes))
    if name in ("blur", "shift") and params["pixels"] > min(shape[1:]) - 1:
        common.fail("--pixels %d: expected at most %d (the image is %dx%d)" % (params["pixels"], min(shape[1:]) - 1, shape[1], shape[2]))


def renormalise(p):
    """Rows of p scaled to sum 1; a row of zeros becomes uniform."""
    s = p.sum(1, keepdim=True)
    return torch.where(s > 0, p / s.clamp_min(1e-30), torch.full_like(p, 1.0 / p.size(1)))


class Interface(nn.Module):
    def __init__(self, owner, shape, classes, name, params, seed):
        super().__init__()
        side, takes, _ = TRANSFORMS[name]
        dev = next(owner.parameters()).device
        with torch.no_grad():
            self.owner = torch.jit.trace(owner.eval(), torch.zeros(1, *shape, device=dev))
        self.input = name if side == "input" else "none"
        self.output = name if side == "output" else "none"
        self.a = float(params[takes[0]]) if takes else 0.0
        self.gamma = float(params.get("gamma", 0.0))
        self.floor = NN_OUT_FLOOR
        rows = (NOISE_ROWS,) + (tuple(shape) if side == "input" else (classes,))
        noise = torch.randn(rows, generator=torch.Generator().manual_seed(seed)) if name in ("innoise", "outnoise") else torch.zeros(0)
        self.register_buffer("noise", noise.to(dev))

    def draws(self, n: int):
        return self.noise.index_select(0, torch.arange(n, device=self.noise.device) % self.noise.size(0))

    def query(self, x):
        if self.input == "inquant":
            flat = x.flatten(1)
            lo, hi = flat.min(1, keepdim=True)[0], flat.max(1, keepdim=True)[0]
            step = (hi - lo).clamp_min(1e-12) / (2.0 ** self.a - 1.0)
            return (((flat - lo) / step).round() * step + lo).view_as(x)
        if self.input == "innoise":
            return x + self.draws(x.size(0)) * self.a
        if self.input == "blur":
            r = int(self.a)
            return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False) if r > 0 else x
        if self.input == "shift":
            p, h, w = int(self.a), x.size(2), x.size(3)
            if p == 0:
                return x
            out = x.flatten(1).min(1)[0].view(-1, 1, 1, 1).expand_as(x).clone()
            out[:, :, p:, p:] = x[:, :, :h - p, :w - p]
            return out
        if self.input == "flip":
            return x.flip([3])
        return x

    def answer(self, lp):
        if self.output == "none":
            return lp
        if self.output == "temperature":
            return torch.log_softmax(lp / self.a, 1)
        p = lp.exp()
        if self.output == "label":
            out = torch.zeros_like(p).scatter_(1, lp.argmax(1, keepdim=True), 1.0)
        elif self.output == "topk":
            top = p.topk(int(self.a), 1)
            out = renormalise(torch.zeros_like(p).scatter_(1, top[1], top[0]))
        elif self.output == "round":
            f = 10.0 ** self.a
            out = (p.double() * f).round().div(f).float()
        elif self.output == "rsigmoid":
            pc = p.clamp(1e-6, 1.0 - 1e-6)
            out = renormalise((p - self.a * (torch.sigmoid(self.gamma * (pc.log() - (1.0 - pc).log())) - 0.5)).clamp(0.0, 1.0))
        else:   # outnoise
            out = renormalise((p + self.draws(p.size(0)) * self.a).clamp_min(0.0))
        return out.clamp_min(self.floor).log()

    def forward(self, x):
        return self.answer(torch.log_softmax(self.owner(self.query(x)), 1))

"""The teachers' side of the exercise checkers: fixed inputs, expected outputs and the outputs of known mistakes.

`python classroom/cases.py` writes `midol/exercise_cases.json`, the only thing the checkers of `midol.exercises` know
about the answers: for each exercise, its cases (the arguments given to the student's function, as numbers), the
expected result of each (as numbers) and the results of the typical mistakes (as numbers, named so that the checker
can give the advice that goes with them). The expected results come from midol's own implementations (`entropy`,
`cond_mutual_info`, `infonce`, `DINOLoss`, `MIDoL.update_teacher`, ...) or, where the library has none, from the
reference solutions below. This file and `solutions/` stay in the teachers' tree: `make student` leaves `classroom/`
out of the students' copy. `python classroom/cases.py --check` exits 1 when the committed file is out of date.
"""
import copy, json, math, sys
from pathlib import Path
from types import SimpleNamespace
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from midol.information import (entropy, cond_entropy, mutual_info, cond_mutual_info, interaction_info, regroup,
                               random_joint, infonce)
from midol.routing import sinkhorn_knopp
from midol.dino import DINOLoss
from midol.model import MIDoL
try: from midol.views import solarize, adjust_contrast
except ImportError: from midol.data import solarize, adjust_contrast

OUT = ROOT / 'midol' / 'exercise_cases.json'


def enc(v):
    "A value as JSON: tensors and arrays keep their dtype (float32 stays exactly float32), None stays null."
    if v is None or isinstance(v, (bool, int, float, str)): return v
    if isinstance(v, torch.Tensor): return {'torch': v.tolist(), 'dtype': str(v.dtype).removeprefix('torch.')}
    v = np.asarray(v)
    return {'numpy': v.tolist(), 'dtype': str(v.dtype)}


def case(text, args, want, **mistakes):
    return {'case': text, 'args': [enc(a) for a in args], 'want': enc(want), 'mistakes': {k: enc(v) for k, v in mistakes.items()}}


# ---- 00_information ------------------------------------------------------------------------------------------------

def _entropy_per_row(p):  # a common mistake: −Σ p log p along the last axis only
    return -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.)), 0.).sum(-1)


def entropy_cases():
    rng = np.random.default_rng(1)
    tables = {'counts [3, 3, 3, 3]': np.full(4, 3.),
              'counts [7, 0] (one outcome seen)': np.array([7., 0.]),
              'counts [10, 5, 0, 5]': np.array([10., 5., 0., 5.]),
              'a contingency table n[x, y] of shape (3, 4) with zeros': (rng.integers(0, 6, (3, 4)) * (rng.random((3, 4)) > 0.25)).astype(float),
              'a contingency table n[x, y, z] of shape (2, 3, 2)': rng.integers(1, 9, (2, 3, 2)).astype(float)}
    out = []
    for text, n in tables.items():
        p = n / n.sum()
        want = entropy(p)
        marginals = {f'marginal#{a}': entropy(p.sum(a)) for a in range(p.ndim) if p.ndim > 1}
        out.append(case(text, [n], want, sign=-want, bits=want / np.log(2), unnormalised=-(n[n > 0] * np.log(n[n > 0])).sum(),
                        per_row=_entropy_per_row(p), **marginals))
    return out


def _coins(z_of):  # p[x, y, z] for two fair coins x, y and z = z_of(x, y)
    p = np.zeros((2, 2, 2))
    for x in (0, 1):
        for y in (0, 1): p[x, y, z_of(x, y)] += 0.25
    return p


def conditional_mi_cases():
    tables = {'a random table of shape (3, 4, 2)': random_joint((3, 4, 2), seed=3),
              'a random table of shape (2, 3, 4) with zeros': random_joint((2, 3, 4), seed=4, sparsity=0.3),
              'X, Y fair coins and Z = X xor Y': _coins(lambda x, y: x ^ y),
              'X = Y = Z, one fair coin': np.array([[[.5, 0.], [0., 0.]], [[0., 0.], [0., .5]]]),
              'X, Y fair coins and Z = X and Y': _coins(lambda x, y: x & y)}
    return [case(text, [p], cond_mutual_info(p), ignored_z=mutual_info(regroup(p, 0, 1)), interaction=interaction_info(p),
                 sign=-cond_mutual_info(p), given_y=cond_mutual_info(p.transpose(0, 2, 1)),
                 given_x=cond_mutual_info(p.transpose(1, 2, 0)), h_x_given_z=cond_entropy(regroup(p, 0, 2)))
            for text, p in tables.items()]


def infonce_cases():
    rng = np.random.default_rng(5)
    critics = {'a random 5 x 5 critic matrix (not symmetric)': 2 * rng.normal(size=(5, 5)),
               'a constant 8 x 8 critic matrix': np.zeros((8, 8)),
               'a 6 x 6 critic with scores near 1000': 1000 + 3 * rng.normal(size=(6, 6)) + 5 * np.eye(6)}
    out = []
    for text, s in critics.items():
        rows, cols, log_k = infonce(s), infonce(s.T), np.log(len(s))
        want = (rows + cols) / 2
        out.append(case(text, [s], want, rows=rows, cols=cols, no_log_k=want - log_k, added=rows + cols, sign=-want,
                        summed=log_k + len(s) * (want - log_k)))
    return out


# ---- views (01_data) -----------------------------------------------------------------------------------------------

def solarize_cases():
    thresholds = torch.tensor([128 / 255, 0.25, 0.9, 0.])
    x = torch.rand(4, 3, 4, 4, generator=torch.Generator().manual_seed(0))              # [B, C, H, W]
    for b, t in enumerate(thresholds.tolist()): x[b, 0, 0] = torch.tensor([0., t, 0.5, 1.])  # pixels exactly at each threshold
    want = torch.cat([solarize(x[b:b + 1], t) for b, t in enumerate(thresholds.tolist())])  # [B, C, H, W]
    per_image = thresholds.view(-1, 1, 1, 1)
    return [case("a batch [4, 3, 4, 4] with thresholds [0.502, 0.25, 0.9, 0], one per image", [x, thresholds], want,
                 width=torch.where(x >= thresholds, 1 - x, x), dark=torch.where(x < per_image, 1 - x, x),
                 strict=torch.where(x > per_image, 1 - x, x), negative=torch.where(x >= per_image, -x, x), fixed=solarize(x))]


def contrast_cases():
    x = 0.3 + 0.4 * torch.rand(4, 3, 5, 4, generator=torch.Generator().manual_seed(1)) * torch.tensor([1., .6, .3]).view(1, 3, 1, 1)
    f = torch.tensor([0.5, 1.3, 0., 1.])                                                # [B]
    y = adjust_contrast(x, f)                                                           # [B, 3, H, W], no pixel clamped
    swapped = torch.where(f != 0, 1 / f, torch.tensor(float('nan')))                    # NaN: any value (x from a flat y is undefined)
    return [case('four colour images x [4, 3, 5, 4] in [0.3, 0.7] and y = adjust_contrast(x, f)', [x, y], f,
                 swapped=swapped, pixel_ratio=y.mean((1, 2, 3)) / x.mean((1, 2, 3)), not_flat=f.view(-1, 1, 1, 1))]


def coverage(w, x):  # the reference solution: the measure of the good centres inside the centres' range
    if w >= 1: return 1.
    return max(min(x + w, 1 - w) - max(x - w, w - 1), 0.) / (2 * (1 - w))


def crop_coverage_cases():
    out = []
    for w in (0.05 ** 0.5, 0.5, 0.4 ** 0.5, 0.9, 1.):
        for x in (0., 0.5, 0.8, -0.7, 1.):
            text = f"w = {w:.4g}, x = {x}" + (' (a crop as large as the image)' if w == 1 else '')
            out.append(case(text, [w, x], coverage(w, x), centre_anywhere=max(min(x + w, 1) - max(x - w, -1), 0.) / 2,
                            no_clip=w / (1 - w) if w < 1 else None))
    return out


# ---- 02b_routing ---------------------------------------------------------------------------------------------------

def _to_sums(q, dim, total): return q / q.sum(dim, keepdim=True) * total


def sinkhorn_step_cases():
    g = torch.Generator().manual_seed(3)
    plans = {'a plan [6, 3] (6 samples, 3 experts), shares r = [0.5, 0.3, 0.2]': (torch.randn(6, 3, generator=g) * 2, torch.tensor([.5, .3, .2])),
             'a plan [4, 5] in which every sample prefers expert 0, r = [0.1, 0.1, 0.2, 0.3, 0.3]':
                 (torch.randn(4, 5, generator=g) + torch.tensor([3., 0, 0, 0, 0]), torch.tensor([.1, .1, .2, .3, .3]))}
    out = []
    for text, (scores, r) in plans.items():
        q = scores.flatten().softmax(0).view(scores.shape)                               # [B, N], sums to 1
        b, n = q.shape
        want = _to_sums(_to_sums(q, 0, r), 1, 1 / b)
        out.append(case(text, [q, r], want, equal=_to_sums(_to_sums(q, 0, 1 / n), 1, 1 / b), order=_to_sums(_to_sums(q, 1, 1 / b), 0, r),
                        no_columns=_to_sums(q, 1, 1 / b), no_rows=_to_sums(q, 0, r), rows_to_one=want * b, transposed=want.T))
    return out


def l_route_cases():
    g = torch.Generator().manual_seed(4)
    routings = {'a random teacher routing [5, 4]': torch.randn(5, 4, generator=g).softmax(-1),
                'a teacher routing [2, 3] with exact zeros': torch.tensor([[.5, .3, .2], [0., .1, .9]])}
    best = lambda a_t, pick: F.one_hot(pick(a_t), a_t.shape[-1]).float()   # the reference solution: all mass on one expert
    return [case(text, [a_t], best(a_t, lambda a: a.argmax(-1)), teacher=a_t, smallest=best(a_t, lambda a: a.argmin(-1)))
            for text, a_t in routings.items()]


# ---- 02c_dino ------------------------------------------------------------------------------------------------------

def _row_entropies(q):  # q [n, K] rows summing to 1 -> [n] entropies in nats, from `entropy`
    return torch.tensor([entropy(row) for row in q.double().numpy()])


def teacher_probs_cases():
    g = torch.Generator().manual_seed(2)
    t, c = 2 * torch.randn(4, 6, generator=g), torch.randn(1, 6, generator=g)
    out = []
    for temp in (0.5, 0.04, 5.):
        want = _row_entropies(F.softmax((t - c) / temp, -1))                             # [n]
        out.append(case(f"teacher outputs [4, 6], a centre [1, 6] and τ_t = {temp}", [t, c, temp], want,
                        no_centre=_row_entropies(F.softmax(t / temp, -1)), added=_row_entropies(F.softmax((t + c) / temp, -1)),
                        multiplied=_row_entropies(F.softmax((t - c) * temp, -1)), over_batch=_row_entropies(F.softmax((t - c) / temp, 0).T),
                        bits=want / math.log(2), mean=want.mean()))
    return out


def center_update_cases():
    g = torch.Generator().manual_seed(6)
    c, t = torch.randn(1, 5, generator=g), torch.randn(6, 5, generator=g)
    out = []
    for m, n in ((0.9, 1), (0.9, 10), (0.99, 50)):
        loss = DINOLoss(5, center_momentum=m, gather=False)
        loss.center.copy_(c)
        for _ in range(n): loss.update_center(t)
        want, mean = loss.center.clone(), t.mean(0, keepdim=True)                        # [1, K]
        moved = (want - c) / (mean - c)                                                  # the share of the way covered
        out.append(case(f"a centre [1, 5], teacher outputs [6, 5], m = {m} and n = {n}", [c, t, m, n], want,
                        one_update=m * c + (1 - m) * mean if n > 1 else None, swapped=c + mean - want,
                        summed=c + moved * (t.sum(0, keepdim=True) - c), replaced=mean, flat=want.view(-1),
                        over_prototypes=c + moved * (t.mean(1, keepdim=True) - c)))
    return out


def _pair_ce(s_v, t_g, center, student_temp, teacher_temp):  # s_v, t_g [B, K] -> the batch-mean cross-entropy of one pair
    loss = DINOLoss(t_g.shape[-1], n_global=1, student_temp=student_temp, teacher_temp=teacher_temp, gather=False)
    loss.center.copy_(center)
    return loss(torch.cat([s_v, s_v]), t_g)   # student views [v, v]: the pair (0, 0) is skipped, (0, 1) is the one kept


def _pair_matrix(s, t, center, v_t, temps=(0.1, 0.04)):  # -> [V_t, V_s] per-pair cross-entropies, from `DINOLoss`
    b, k = len(t) // v_t, s.shape[-1]
    return torch.stack([torch.stack([_pair_ce(s_v, t_g, center, *temps) for s_v in s.view(-1, b, k)]) for t_g in t.view(v_t, b, k)])


def dino_loss_cases():
    g = torch.Generator().manual_seed(7)
    v_t, v_s, b, k = 2, 5, 3, 6
    s, t, c = torch.randn(v_s * b, k, generator=g), torch.randn(v_t * b, k, generator=g), torch.randn(1, k, generator=g)
    want = _pair_matrix(s, t, c, v_t)                                                   # [V_t, V_s]
    image_major = lambda x: x.view(b, -1, k).transpose(0, 1).reshape(-1, k)
    text = 'student outputs [5·3, 6] (2 global + 3 local views of 3 images), teacher outputs [2·3, 6], τ_s = 0.1, τ_t = 0.04'
    return [case(text, [s, t, c, v_t, 0.1, 0.04], want, transposed=want.T, no_centre=_pair_matrix(s, t, 0 * c, v_t),
                 swapped_temps=_pair_matrix(s, t, c, v_t, (0.04, 0.1)), image_major=_pair_matrix(image_major(s), image_major(t), c, v_t),
                 sign=-want, summed=b * want)]


# ---- 02d_model -----------------------------------------------------------------------------------------------------

def mlp():  # the architecture of the EMA cases (the checker builds the same one)
    return nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.Linear(4, 2))


def _flat(module): return torch.cat([p.detach().flatten() for p in module.parameters()])


def ema_update_cases():
    out = []
    for seed, (m, n) in enumerate(((0.9, 1), (0.9, 7), (0.996, 100))):
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            student = mlp()
            teacher = copy.deepcopy(student).requires_grad_(False)
            with torch.no_grad():
                for p in teacher.parameters(): p.add_(torch.randn_like(p))
        reference = SimpleNamespace(teacher=copy.deepcopy(teacher), student=copy.deepcopy(student))
        for _ in range(n): MIDoL.update_teacher(reference, m)
        t0, s0, want = _flat(teacher), _flat(student), _flat(reference.teacher)
        out.append(case(f"a pair of small MLPs with m = {m} and n = {n}", [t0, s0, m, n], want,
                        swapped=t0 + s0 - want, one_update=m * t0 + (1 - m) * s0 if n > 1 else None, copied=s0))
    return out


def half_life(m):  # the definition, counted: the smallest whole n with m**n <= 1/2
    n = 1
    while m ** n > 0.5: n += 1
    return n


def ema_half_life_cases():
    out = []
    for m in (0.9, 0.8, 0.99, 0.98, 0.996, 0.9995, 0.5):
        n = half_life(m)
        out.append(case(f"m = {m}", [m], n, approximation=math.ceil(math.log(2) / (1 - m)), one_more=n + 1,
                        nearest=round(math.log(0.5) / math.log(m)), one_minus_m=math.ceil(math.log(0.5) / math.log(1 - m))))
    return out


def teacher_dispatch_cases():
    hand = torch.tensor([[.6, .4, 0.], [.2, .3, .5], [.1, .1, .8],                      # view 0 of images 0, 1, 2
                         [.1, .5, .4], [.2, .7, .1], [.3, .3, .4]])                     # view 1 of images 0, 1, 2
    scores = 0.1 * torch.randn(3 * 4, 5, generator=torch.Generator().manual_seed(8)) / 0.04
    routings = {'a_T [2·3, 3] (2 views of 3 images) whose two views of image 0 disagree': (hand, 2),
                'a Sinkhorn routing a_T [3·4, 5] (3 views of 4 images)': (sinkhorn_knopp(scores, 0.05, 3, gather=False), 3)}
    out = []
    for text, (a_t, v_t) in routings.items():
        b, n = len(a_t) // v_t, a_t.shape[-1]
        views = a_t.view(v_t, b, n)                                                     # [V_t, B, N], view-major
        out.append(case(text, [a_t, v_t], views.mean(0).argmax(-1), first_view=a_t[:b].argmax(-1),
                        image_major=a_t.view(b, v_t, n).mean(1).argmax(-1), over_images=views.mean(1).argmax(-1),
                        probabilities=views.mean(0)))
    return out


EXERCISES = {'entropy': entropy_cases, 'conditional_mi': conditional_mi_cases, 'infonce': infonce_cases,
             'solarize': solarize_cases, 'contrast': contrast_cases, 'crop_coverage': crop_coverage_cases,
             'sinkhorn_step': sinkhorn_step_cases, 'l_route': l_route_cases, 'teacher_probs': teacher_probs_cases,
             'center_update': center_update_cases, 'dino_loss': dino_loss_cases, 'ema_update': ema_update_cases,
             'ema_half_life': ema_half_life_cases, 'teacher_dispatch': teacher_dispatch_cases}


def build()->dict:
    "Every exercise's cases, in the JSON layout the checkers read."
    with torch.no_grad(): return {name: make() for name, make in EXERCISES.items()}


def text(data:dict)->str:
    "The file's text: one line per case, so that a diff shows which case changed."
    line = lambda c: '  ' + json.dumps(c, ensure_ascii=False)
    return '{\n' + ',\n'.join(f' {json.dumps(k)}: [\n' + ',\n'.join(map(line, v)) + '\n ]' for k, v in data.items()) + '\n}\n'


if __name__ == '__main__':
    new = text(build())
    if '--check' in sys.argv:
        same = OUT.is_file() and OUT.read_text(encoding='utf-8') == new
        print(f"{OUT.relative_to(ROOT)} is " + ('up to date' if same else 'out of date: run python classroom/cases.py'))
        sys.exit(0 if same else 1)
    OUT.write_text(new, encoding='utf-8')
    print(f"wrote {OUT.relative_to(ROOT)}: {sum(map(len, json.loads(new).values()))} cases of {len(EXERCISES)} exercises")

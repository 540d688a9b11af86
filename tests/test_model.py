"""What the notebooks 02a–02d cannot check inline: the losses on two gloo processes against one process, property
tests (hypothesis) of Sinkhorn–Knopp and the expert usage, and the optional Tutel backend. Every unit check of
midol.dist, midol.routing, midol.dino and midol.model lives in those notebooks."""
import importlib.util, os, socket, tempfile
import pytest
import torch
import torch.multiprocessing as mp
from hypothesis import given, settings, strategies as st

from midol.routing import sinkhorn_knopp, sinkhorn_released, MoEProjector, expert_share, tutel_moe
from midol.model import model_config, MIDoL, VARIANTS, FIDELITIES

TINY = dict(out_dim=64, head_hidden=32, head_bottleneck=16, proj_dim=16)


def tiny_model(fidelity, variant, seed=0, **kw):
    torch.manual_seed(seed)
    return MIDoL(model_config(fidelity, variant, 'swin_tiny_test', 32, **{**TINY, **kw}))


def views(b=4, n_local=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ([torch.randn(b, 3, 32, 32, generator=g) for _ in range(2)]
            + [torch.randn(b, 3, 16, 16, generator=g) for _ in range(n_local)])


# ---------------------------------------------------------------- properties (hypothesis)
def score_matrices(max_scale=1e3):
    "Random [B, N] score matrices from a seed, a shape and a scale spanning six orders of magnitude."
    return st.builds(lambda seed, b, n, scale: torch.randn(b, n, generator=torch.Generator().manual_seed(seed)) * scale,
                     st.integers(0, 2**31 - 1), st.integers(1, 40), st.integers(1, 8),
                     st.sampled_from([1e-3, 1e-2, 0.1, 1., 10., max_scale]))


@settings(max_examples=60, deadline=None)
@given(score_matrices(), st.integers(0, 10))
def test_sinkhorn_rows_are_distributions(scores, n_iters):
    "Rows sum to 1 (the released form normalises rows only inside an iteration, so it needs at least one)."
    for a in [sinkhorn_knopp(scores, 0.05, n_iters)] + ([sinkhorn_released(scores, 0.05, n_iters)] if n_iters else []):
        assert torch.isfinite(a).all() and (a >= 0).all()
        torch.testing.assert_close(a.sum(1), torch.ones(len(scores)), atol=1e-4, rtol=0)


@settings(max_examples=60, deadline=None)
@given(score_matrices(max_scale=10.), st.integers(1, 10))
def test_sinkhorn_ignores_a_constant_added_to_one_expert(scores, n_iters):
    "The first column normalisation absorbs any per-expert constant (why a biased router cannot collapse rows 3-4)."
    shifted = scores + torch.linspace(-5, 5, scores.shape[1])
    torch.testing.assert_close(sinkhorn_knopp(shifted, 1., n_iters), sinkhorn_knopp(scores, 1., n_iters), atol=1e-4, rtol=1e-4)


@settings(max_examples=60, deadline=None)
@given(score_matrices(), st.integers(0, 5), st.integers(0, 2**31 - 1))
def test_sinkhorn_permuting_samples_permutes_rows(scores, n_iters, seed):
    perm = torch.randperm(len(scores), generator=torch.Generator().manual_seed(seed))
    for fn in (sinkhorn_knopp, sinkhorn_released):
        torch.testing.assert_close(fn(scores[perm], 0.05, n_iters), fn(scores, 0.05, n_iters)[perm], atol=1e-5, rtol=1e-4)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(1, 12), st.integers(0, 2**31 - 1), st.booleans())
def test_expert_share_is_a_distribution(n_experts, rows, seed, forced):
    torch.manual_seed(seed)
    for k in sorted({1, n_experts}):
        moe = MoEProjector(8, n_experts=n_experts, hidden=8, top_k=k)
        expert = torch.randint(0, n_experts, (rows,)) if forced and k == 1 else None
        with torch.no_grad(): share = expert_share(moe(torch.randn(rows, 8), expert), n_experts)
        assert share.shape == (n_experts,) and (share >= 0).all()
        torch.testing.assert_close(share.sum(), torch.tensor(1.), atol=1e-5, rtol=0)


# ---------------------------------------------------------------- optional Tutel backend
@pytest.mark.skipif(importlib.util.find_spec('tutel') is None,
                    reason='Tutel is not on PyPI (install it from its GitHub repository to run this comparison)')
def test_moe_tutel_backend_matches_native():
    torch.manual_seed(0)
    for k in (1, 2):
        moe = MoEProjector(8, n_experts=4, hidden=16, top_k=k)
        layer = tutel_moe(moe)
        h = torch.randn(6, 8)
        h1, h2 = h.clone().requires_grad_(), h.clone().requires_grad_()
        y_native, y_tutel = moe(h1).y, layer(h2)
        torch.testing.assert_close(y_tutel, y_native, atol=1e-5, rtol=1e-4)
        y_native.square().sum().backward(); y_tutel.square().sum().backward()
        torch.testing.assert_close(h2.grad, h1.grad, atol=1e-5, rtol=1e-4)
        grads = dict(layer.named_parameters())
        for n, p in moe.named_parameters():
            torch.testing.assert_close(grads[n].grad.reshape(p.shape), p.grad, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- distributed (2 gloo processes on CPU)
CASES = [(f, v, '') for f in FIDELITIES for v in VARIANTS] + [('paper', 'midol', 'self'), ('paper', 'moe_route', 'self')]


def case_model(fid, var, dispatch):
    "The model of a distributed case: no randomness (the official teacher trains), a global first Sinkhorn total."
    return tiny_model(fid, var, gate_noise=0.0, drop_path_rate=0.0, sinkhorn_local_total=False,
                      **({'dispatch': dispatch} if dispatch else {}))


def released_over_ranks(scores, ranks, eps=0.05, n_iters=3, floor=1e-12):
    "The released Sinkhorn on `ranks` equal chunks of `scores` [B, N], each chunk's first total its own (one process)."
    q = ((scores - scores.amax(1, keepdim=True)) / eps).exp().clamp_min(floor)
    b, n = q.shape
    chunks = q.view(ranks, -1, n)
    q = (chunks / (chunks.sum((1, 2), keepdim=True) + floor)).view(b, n)
    for _ in range(n_iters):
        q = q / (q.sum(0) + floor) / n
        q = q / (q.sum(1, keepdim=True) + floor) / b
        q = q.clamp_min(floor)
    return q * b


def skewed_scores():
    "64 rows: the first half undecided, the second sharp, so the two ranks' first totals differ."
    g = torch.Generator().manual_seed(0)
    return torch.cat([torch.randn(32, 4, generator=g) * 1e-4, torch.randn(32, 4, generator=g)]) / 0.04


B_GLOBAL = 4


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank, world, port, out_dir):
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=world)
    res = {}
    per = B_GLOBAL // world
    for fid, var, disp in CASES:
        model = case_model(fid, var, disp)
        vs = [v[rank * per:(rank + 1) * per] for v in views(b=B_GLOBAL)]
        o = model(vs)
        o['loss'].backward()
        g = model.student.backbone.patch_embed.proj.weight.grad.clone()
        dist.all_reduce(g); g /= world                          # what DDP does
        res[(fid, var, disp)] = ({k: v.detach() for k, v in o.items()}, g)
    res['local_total'] = sinkhorn_released(skewed_scores()[rank * 32:(rank + 1) * 32], local_total=True)
    torch.save(res, os.path.join(out_dir, f'rank{rank}.pt'))
    dist.destroy_process_group()


def test_distributed_two_ranks_equal_single_process():
    world = 2
    with tempfile.TemporaryDirectory() as d:
        mp.spawn(_worker, args=(world, _free_port(), d), nprocs=world, join=True)
        ranks = [torch.load(os.path.join(d, f'rank{r}.pt')) for r in range(world)]
    for fid, var, disp in CASES:
        model = case_model(fid, var, disp)
        o = model(views(b=B_GLOBAL))
        o['loss'].backward()
        g = model.student.backbone.patch_embed.proj.weight.grad
        for r in ranks: assert set(r[(fid, var, disp)][0]) == set(o), f'{fid}/{var}/{disp}'
        for k in o:
            if k.startswith('expert_usage'):   # global statistics: every rank holds the whole batch's value
                for r in ranks: torch.testing.assert_close(r[(fid, var, disp)][0][k], o[k], msg=f'{fid}/{var}/{disp}/{k}')
            else:
                mean = sum(r[(fid, var, disp)][0][k] for r in ranks) / world
                torch.testing.assert_close(mean, o[k].detach(), atol=1e-5, rtol=1e-4, msg=f'{fid}/{var}/{disp}/{k}')
        torch.testing.assert_close(ranks[0][(fid, var, disp)][1], g, atol=1e-6, rtol=1e-3, msg=f'{fid}/{var}/{disp} grad')
    local = torch.cat([r['local_total'] for r in ranks])               # the release's first total, per rank
    torch.testing.assert_close(local, released_over_ranks(skewed_scores(), world), atol=1e-6, rtol=1e-5)
    assert (local - sinkhorn_released(skewed_scores())).abs().max() > 1e-4   # ... which a global total does not give

"""Tests of midol.routing, midol.dino and midol.model (the notebooks 02a, 02b, 02 hold the same checks inline)."""
import json, math, os, socket, tempfile
import pytest
import torch
import torch.nn.functional as F
import torch.multiprocessing as mp
import timm

from midol.routing import sinkhorn_knopp, MoEProjector, l_route, l_cst, tutel_moe
from midol.dino import DINOLoss, DINOHead, teacher_temp
from midol.model import (ModelConfig, model_config, MIDoL, backbone_spec, create_backbone, cosine_momentum,
                         VARIANTS, FIDELITIES, multicrop_features)

TINY = dict(out_dim=64, head_hidden=32, head_bottleneck=16, proj_dim=16)


def tiny_model(fidelity, variant, seed=0, **kw):
    torch.manual_seed(seed)
    return MIDoL(model_config(fidelity, variant, 'swin_tiny_test', 32, **{**TINY, **kw}))


def views(b=4, n_local=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return ([torch.randn(b, 3, 32, 32, generator=g) for _ in range(2)]
            + [torch.randn(b, 3, 16, 16, generator=g) for _ in range(n_local)])


# ---------------------------------------------------------------- Sinkhorn
def sinkhorn_exp(scores, eps, n_iters):
    "Textbook exp-domain Sinkhorn (SwAV/DINOv2 order), float64."
    q = torch.exp(scores.double() / eps).t()
    n, b = q.shape
    q /= q.sum()
    for _ in range(n_iters):
        q /= q.sum(1, keepdim=True); q /= n
        q /= q.sum(0, keepdim=True); q /= b
    return (q * b).t()


def test_sinkhorn_no_overflow_large_logits():
    a = sinkhorn_knopp(torch.randn(128, 5) * 1e3, eps=0.05, n_iters=3)
    assert torch.isfinite(a).all()
    torch.testing.assert_close(a.sum(1), torch.ones(128))


def test_sinkhorn_balances_with_enough_iterations():
    torch.manual_seed(0)
    a = sinkhorn_knopp(torch.randn(256, 5), eps=0.05, n_iters=200)
    assert (a.mean(0) - 0.2).abs().max() < 1e-3


@pytest.mark.parametrize('it', [1, 3, 10])
def test_sinkhorn_matches_exp_reference(it):
    torch.manual_seed(it)
    s = torch.randn(32, 4) * 0.1
    torch.testing.assert_close(sinkhorn_knopp(s, 0.05, it), sinkhorn_exp(s, 0.05, it).float(), atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- MoE projector
def test_moe_tutel_names_and_shapes():
    moe = MoEProjector(8, n_experts=5, hidden=16)
    shapes = {k: tuple(v.shape) for k, v in moe.state_dict().items()}
    assert shapes == {'gates.0.wg.weight': (5, 8), 'experts.batched_fc1_w': (5, 16, 8), 'experts.batched_fc1_bias': (5, 16),
                      'experts.batched_fc2_w': (5, 16, 8), 'experts.batched_fc2_bias': (5, 8)}


def test_moe_top1_equals_selected_expert_times_gate():
    torch.manual_seed(0)
    moe = MoEProjector(8, n_experts=3, hidden=16, proj_dim=4)
    h = torch.randn(5, 8)
    o = moe(h)
    e_all = moe.experts(h)
    for b in range(5):
        i = int(o.logits[b].argmax())
        torch.testing.assert_close(o.y[b], moe.proj(o.probs[b, i] * e_all[i, b]))
    forced = moe(h, expert=torch.zeros(5, dtype=torch.long))
    assert (forced.experts == 0).all()


def test_moe_tutel_backend_matches_native():
    pytest.importorskip('tutel')
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


# ---------------------------------------------------------------- L_route
def test_l_route_hand_value_and_sign():
    a_s = torch.tensor([[[1., 0.]], [[1., 0.]]])
    a_t = torch.tensor([[[.5, .5]], [[.25, .75]]])
    assert math.isclose(float(l_route(a_s, a_t)), 0.5 * math.log(8), rel_tol=1e-6)
    assert float(l_route(a_s, a_t)) > 0


def test_l_route_gradcheck():
    a_s = torch.softmax(torch.randn(4, 3, 5, dtype=torch.double), -1).requires_grad_()
    a_t = torch.softmax(torch.randn(2, 3, 5, dtype=torch.double), -1).requires_grad_()
    for d in ('s_log_t', 'ce'):
        assert torch.autograd.gradcheck(lambda s, t: l_route(s, t, d), (a_s, a_t))


def test_l_route_minimal_when_routes_agree():
    torch.manual_seed(0)
    a_t = torch.softmax(torch.randn(1, 6, 5), -1).expand(2, 6, 5)
    best = l_route(F.one_hot(a_t[0].argmax(-1), 5).float().expand(4, 6, 5), a_t)
    for _ in range(20):
        assert l_route(torch.softmax(3 * torch.randn(4, 6, 5), -1), a_t) >= best


# ---------------------------------------------------------------- L_cst
def l_cst_loop(x, y, expert, n, tau=0.04):
    x, y = F.normalize(x.double(), dim=-1), F.normalize(y.double(), dim=-1)
    m, v_t = x.shape[0], y.shape[0]
    s = lambda u, v: torch.exp(u @ v / tau)
    tot_all = 0.
    for i in range(n):
        members = [b for b in range(x.shape[1]) if expert[b] == i]
        if not members: continue
        tot = 0.
        for b in members:
            for j in range(m):
                num = sum(s(x[j, b], y[k, b]) for k in range(v_t) if k != j)
                den = sum(s(x[j, b], y[k, c]) for c in members for k in range(v_t) if k != j)
                tot += torch.log(num / den)
        tot_all += -tot / (len(members) * m)
    return tot_all / n


def test_l_cst_matches_loop_and_is_permutation_invariant():
    torch.manual_seed(0)
    x, y = torch.randn(5, 7, 8), torch.randn(2, 7, 8)
    e = torch.tensor([0, 2, 0, 1, 2, 2, 0])
    ref = float(l_cst_loop(x, y, e, 4))
    assert math.isclose(float(l_cst(x, y, e, 4)), ref, rel_tol=1e-4)
    p = torch.randperm(7)
    assert math.isclose(float(l_cst(x[:, p], y[:, p], e[p], 4)), ref, rel_tol=1e-4)


def test_l_cst_gradcheck():
    x = torch.randn(3, 4, 5, dtype=torch.double, requires_grad=True)
    y = torch.randn(2, 4, 5, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: l_cst(a, b, torch.tensor([1, 0, 1, 1]), 3, tau=0.5), (x, y))


def test_l_cst_edge_cases():
    x, y = torch.randn(4, 3, 8), torch.randn(2, 3, 8)
    assert float(l_cst(x[:, :1], y[:, :1], torch.tensor([0]), 5)) == 0.           # one image
    one = l_cst(x, y, torch.zeros(3, dtype=torch.long), 1)
    torch.testing.assert_close(l_cst(x, y, torch.full((3,), 4), 5) * 5, one)      # all in one expert, 1/N
    with pytest.raises(ValueError, match='V_t'):
        l_cst(x, y[:1], torch.zeros(3, dtype=torch.long), 1)


# ---------------------------------------------------------------- DINO
def dino_reference(student_output, teacher_output, center, n_crops, temp_t, temp_s=0.1):
    student_out = (student_output / temp_s).chunk(n_crops)
    teacher_out = F.softmax((teacher_output - center) / temp_t, dim=-1).chunk(2)
    total, n = 0., 0
    for iq, q in enumerate(teacher_out):
        for v in range(n_crops):
            if v != iq:
                total += torch.sum(-q * F.log_softmax(student_out[v], dim=-1), dim=-1).mean(); n += 1
    return total / n, center * 0.9 + teacher_output.mean(0, keepdim=True) * 0.1


def test_dino_loss_equals_official_formula():
    torch.manual_seed(0)
    s, t = torch.randn(8 * 3, 40), torch.randn(2 * 3, 40)
    dl = DINOLoss(40, n_global=2, teacher_temp=0.07, warmup_teacher_temp=0.04, warmup_teacher_temp_epochs=5)
    dl.center.copy_(torch.randn(1, 40) * 0.1)
    ref, ref_c = dino_reference(s, t, dl.center.clone(), 8, teacher_temp(2, 0.07, 0.04, 5))
    torch.testing.assert_close(dl(s, t, epoch=2), ref)
    torch.testing.assert_close(dl.center, ref_c)


def test_dino_head_last_layer_frozen_norm():
    head = DINOHead(8, out_dim=10, hidden=16, bottleneck=4)
    g = head.last_layer.parametrizations.weight.original0
    assert not g.requires_grad and torch.equal(g, torch.ones_like(g))


# ---------------------------------------------------------------- model
def test_backbone_spec_round_trip_safetensors(tmp_path):
    from safetensors.torch import save_file, load_file
    spec = json.loads(json.dumps(backbone_spec('swin_tiny_test', 32)))
    bb = create_backbone(spec)
    save_file(bb.state_dict(), tmp_path / 'encoder.safetensors')
    again = timm.create_model(spec['name'], num_classes=0, **spec['kwargs'])
    again.load_state_dict(load_file(tmp_path / 'encoder.safetensors'))
    x = torch.randn(2, 3, 32, 32)
    bb.eval(); again.eval()
    torch.testing.assert_close(again(x), bb(x))
    assert bb.num_features == 32


@pytest.mark.parametrize('fidelity', FIDELITIES)
@pytest.mark.parametrize('variant', VARIANTS)
def test_every_variant_trains_one_step(fidelity, variant):
    model = tiny_model(fidelity, variant).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    before = [p.clone() for p in model.teacher.parameters()]
    o = model(views())
    assert set(o) >= set(model.cfg.losses) | {'loss'}
    assert ('expert_usage' in o) == (variant != 'dino')
    assert torch.isfinite(o['loss'])
    opt.zero_grad(); o['loss'].backward(); opt.step()
    assert all(p.grad is None for p in model.teacher.parameters())
    model.update_teacher(cosine_momentum(0, 10))
    assert any(not torch.equal(a, b) for a, b in zip(before, model.teacher.parameters()))
    json.dumps(__import__('dataclasses').asdict(model.cfg))


def test_edge_cases_batch_one_single_expert_bf16():
    for fid in FIDELITIES:
        assert torch.isfinite(tiny_model(fid, 'midol')(views(b=1))['loss'])
        o = tiny_model(fid, 'midol', num_experts=1)(views())
        assert torch.isfinite(o['loss']) and float(o['l_route'].detach()) < 1e-6
        with torch.autocast('cpu', dtype=torch.bfloat16):
            o = tiny_model(fid, 'midol')(views())
        assert o['loss'].dtype == torch.float32 and torch.isfinite(o['loss'])
        o['loss'].backward()


def test_every_image_to_one_expert():
    model = tiny_model('paper', 'midol')
    same = [v[:1].expand(4, -1, -1, -1).contiguous() for v in views()]
    o = model(same)
    torch.testing.assert_close(o['expert_usage'], torch.tensor([1., 0, 0, 0, 0]))
    assert torch.isfinite(o['loss'])


def test_cosine_momentum_schedule():
    assert cosine_momentum(0, 10) == pytest.approx(0.996)
    assert cosine_momentum(10, 10) == pytest.approx(1.0)


# ---------------------------------------------------------------- distributed (2 gloo processes on CPU)
CASES = [(f, v) for f in FIDELITIES for v in VARIANTS]
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
    for fid, var in CASES:
        model = tiny_model(fid, var, gate_noise=0.0, drop_path_rate=0.0)   # no randomness
        vs = [v[rank * per:(rank + 1) * per] for v in views(b=B_GLOBAL)]
        o = model(vs)
        o['loss'].backward()
        g = model.student.backbone.patch_embed.proj.weight.grad.clone()
        dist.all_reduce(g); g /= world                          # what DDP does
        res[(fid, var)] = ({k: v.detach() for k, v in o.items()}, g)
    torch.save(res, os.path.join(out_dir, f'rank{rank}.pt'))
    dist.destroy_process_group()


def test_distributed_two_ranks_equal_single_process():
    world = 2
    with tempfile.TemporaryDirectory() as d:
        mp.spawn(_worker, args=(world, _free_port(), d), nprocs=world, join=True)
        ranks = [torch.load(os.path.join(d, f'rank{r}.pt')) for r in range(world)]
    for fid, var in CASES:
        model = tiny_model(fid, var, gate_noise=0.0, drop_path_rate=0.0)   # no randomness
        o = model(views(b=B_GLOBAL))
        o['loss'].backward()
        g = model.student.backbone.patch_embed.proj.weight.grad
        for k in o:
            if k == 'expert_usage':
                for r in ranks: torch.testing.assert_close(r[(fid, var)][0][k], o[k])
            else:
                mean = sum(r[(fid, var)][0][k] for r in ranks) / world
                torch.testing.assert_close(mean, o[k].detach(), atol=1e-5, rtol=1e-4, msg=f'{fid}/{var}/{k}')
        torch.testing.assert_close(ranks[0][(fid, var)][1], g, atol=1e-6, rtol=1e-3, msg=f'{fid}/{var} grad')

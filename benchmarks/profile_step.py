"""Where a training step's time goes beyond the backbone floor (CPU, 1 thread): forward/backward/optimiser split,
then the heads and losses timed alone on features of the right shapes, then torch.profiler's top operators.
    python benchmarks/profile_step.py [preset] [variant] [fidelity]      # default: cpu midol paper"""
import statistics, sys, time
import torch
from torch.profiler import profile, ProfilerActivity
from midol.bench import bench_config, bench_dataset, TrainStep, floor_step
from midol.pretrain import multicrop
from midol.model import multicrop_features, teacher_routing
from midol.pretrain import clip_gradients
from midol.routing import sinkhorn_knopp, l_cst

torch.set_num_threads(1)
preset, variant, fid = (sys.argv[1:] + ['cpu', 'midol', 'paper'][len(sys.argv) - 1:])[:3]
cfg = bench_config(preset, variant, fid)
x = bench_dataset(cfg).images[:cfg['batch_size']]
views = multicrop(cfg)(x, generator=torch.Generator().manual_seed(0))
ts, fl = TrainStep(cfg), floor_step(cfg)
m, c = ts.model, ts.model.cfg

def med(f, n=7):
    "Median ms of n calls after one untimed call."
    f(); out = []
    for _ in range(n):
        t = time.perf_counter(); f(); out.append(time.perf_counter() - t)
    return statistics.median(out) * 1e3

def fwd_bwd():
    o = m(views); ts.opt.zero_grad(set_to_none=True); o['loss'].backward()
print(f"floor (backbones fwd+bwd, teacher fwd) {med(lambda: fl(views)):8.1f} ms")
print(f"step forward + backward               {med(fwd_bwd):8.1f} ms")
print(f"  student backbone forward            {med(lambda: multicrop_features(m.student.backbone, views)):8.1f} ms")
with torch.no_grad(): print(f"  teacher backbone forward            {med(lambda: multicrop_features(m.teacher.backbone, views[:2])):8.1f} ms")
print(f"clip_gradients                        {med(lambda: clip_gradients(m.student, cfg['clip_grad'], cfg['clip_mode'])):8.1f} ms")
print(f"AdamW step                            {med(ts.opt.step):8.1f} ms")
print(f"EMA update                            {med(lambda: m.update_teacher(0.996)):8.1f} ms")
if variant != 'dino':
    B, M, Vt = cfg['batch_size'], cfg['n_global'] + cfg['n_local'], cfg['n_global']
    D = m.student.backbone.num_features
    h_s, h_t = torch.randn(M * B, D, requires_grad=True), torch.randn(Vt * B, D)
    def heads():
        h_s.grad = None; o = m._moe_losses(h_s, h_t, M, 0.); sum(o[k] for k in c.losses).backward()
    print(f"heads + losses fwd+bwd (on features)  {med(heads):8.1f} ms")
    lg = torch.randn(Vt * B, c.num_experts)
    how = f"to tol {c.sinkhorn_tol}" if c.sinkhorn_form == 'paper' and c.sinkhorn_tol > 0 else f"{c.sinkhorn_iters} it."
    print(f"  teacher Sinkhorn ({how}, N(0,1) logits) {med(lambda: teacher_routing(lg, c)):8.1f} ms")
    moe = m.student.head.moe
    def moe_fb():
        h_s.grad = None; moe(h_s, torch.randint(0, c.num_experts, (M * B,))).y.sum().backward()
    def exp_fb():
        h_s.grad = None; moe.experts(h_s).sum().backward()
    print(f"  student MoE projector fwd+bwd       {med(moe_fb):8.1f} ms")
    print(f"    of which the N dense experts      {med(exp_fb):8.1f} ms")
    if 'l_cst' in c.losses:
        xs = torch.randn(M, B, c.proj_dim, requires_grad=True); ys = torch.randn(Vt, B, c.proj_dim); e = torch.randint(0, c.num_experts, (B,))
        def cst():
            xs.grad = None; l_cst(xs, ys, e, c.num_experts).backward()
        print(f"  L_cst fwd+bwd                       {med(cst):8.1f} ms")
with profile(activities=[ProfilerActivity.CPU]) as prof:
    for _ in range(2): ts(views)
print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=12))

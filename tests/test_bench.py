"""The benchmark's command line end to end on the tiny preset: the JSON that BENCHMARKS.md relies on and the scaling
plot. No timing assertions: only structure, positivity and the structural no-loop-over-images check. The unit checks
live in nbs/07_bench.ipynb."""
import json, subprocess, sys
from pathlib import Path
from midol.bench import TARGETS
from midol.model import VARIANTS, FIDELITIES

ROOT = Path(__file__).resolve().parent.parent
STEPS = [f'{v}/{f}' for f in FIDELITIES for v in VARIANTS]


def _positive(x): return isinstance(x, (int, float)) and x > 0


def test_cli_tiny_writes_json_and_plot(tmp_path):
    out = tmp_path / 'tiny.json'
    r = subprocess.run([sys.executable, '-m', 'midol.bench', '--preset', 'tiny', '--out', str(out), '--repeats', '2',
                        '--scaling-sizes', '64,128'], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'midol_over_dino' in r.stdout and 'floor' in r.stdout
    res = json.loads(out.read_text())
    assert (tmp_path / 'tiny_scaling.png').stat().st_size > 0
    assert {'preset', 'machine', 'config', 'configs', 'loop', 'flops', 'ratios', 'targets', 'scaling',
            'memory_after_build', 'memory_after_timing', 'command', 'wall_s', 'settings'} <= set(res)
    assert res['preset'] == 'tiny' and res['command'].startswith('python -m midol.bench')
    assert {'nproc', 'cpu_model', 'torch', 'date', 'loadavg', 'loadavg_after', 'torch_threads'} <= set(res['machine'])
    assert res['settings']['repeats'] == 2 and res['settings']['scaling_sizes'] == [64, 128]
    assert set(res['configs']) == {'floor', 'floor+adamw+ema', 'views', 'loop', *STEPS}
    for k, v in res['configs'].items():
        assert _positive(v['median_s']) and _positive(v['images_per_s']) and len(v['times_s']) == 2, k
    assert set(res['ratios']) >= set(TARGETS) and all(_positive(v) for v in res['ratios'].values())
    assert set(res['targets']) == set(TARGETS)
    assert all(isinstance(t['met'], bool) and isinstance(t['applies'], bool) for t in res['targets'].values())
    assert _positive(res['flops']['per_image_floor']) and res['flops']['per_image_step'] > res['flops']['per_image_floor']
    assert _positive(res['loop']['checkpoint_s']) and _positive(res['loop']['images_per_s_with_checkpoints'])
    assert _positive(res['memory_after_timing']['peak_rss_bytes'])
    for k in ('l_cst', 'sinkhorn'):
        s = res['scaling'][k]
        assert len(s['median_s']) == 2 and all(_positive(t) for t in s['median_s'])
        assert s['ops'][0] == s['ops'][1], k       # the same program for 64 and 128 images: no loop over images
    paper = res['scaling']['sinkhorn_paper']                 # the converged Sinkhorn: its iteration count may vary with B
    assert len(paper['median_s']) == 2 and all(_positive(t) for t in paper['median_s'])

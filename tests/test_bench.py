"""The benchmark runs end to end on the tiny preset and writes the JSON that BENCHMARKS.md relies on.
No timing assertions: only structure, positivity and the structural no-loop-over-images check."""
import json, subprocess, sys
from pathlib import Path
import pytest, torch
from midol.bench import (run_bench, format_table, TARGETS, bench_config, bench_dataset, interleave, count_ops,
                         l_cst_call, sinkhorn_call, fit_slope, host_syncs)
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


def test_subset_and_prototype_sweep_in_process():
    res = run_bench('tiny', 'cpu', repeats=1, warmup=0, variants=('dino', 'midol'), fidelities=('paper',),
                    scaling_sizes=(), out_dims=(64,), progress=False)
    assert set(res['configs']) == {'floor', 'floor+adamw+ema', 'views', 'loop', 'dino/paper', 'midol/paper', 'dino/paper/K=64',
                                   'midol/official/K=64'}
    assert 'scaling' not in res and 'mfu' not in res
    assert 'midol_over_dino' in format_table(res)


def test_no_python_loop_over_images():
    for mk in (l_cst_call, sinkhorn_call):
        assert count_ops(mk(8)) == count_ops(mk(64)), mk.__name__


def test_helpers_and_errors():
    assert abs(fit_slope([2, 4, 8], [1, 4, 16]) - 2) < 1e-9
    assert bench_config('tiny', 'midol', 'official')['num_experts'] == 4       # the released code's experts
    assert bench_config('official', 'midol')['num_experts'] == 4
    with pytest.raises(ValueError, match='repeats'): interleave({'a': lambda: None}, repeats=0)
    with pytest.raises(ValueError, match='variant'): bench_config('tiny', 'byol')
    with pytest.raises(ValueError, match="'synthmed' or 'random'"): bench_dataset(bench_config('tiny'), 'imagenet')
    if not torch.cuda.is_available(): assert host_syncs(lambda: None) is None

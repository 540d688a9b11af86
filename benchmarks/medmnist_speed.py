"""How long the MedMNIST-5 recipe (nbs/06b_medmnist.ipynb) takes on this machine: writes MedMNIST-layout files of the
real shapes (random pixels and labels), times pretraining steps of the four variants, the end-of-run summary and the
evaluation's parts on them, and extrapolates the wall time of the full recipe.

    python benchmarks/medmnist_speed.py --out benchmarks/medmnist_speed.json     # about 3 minutes on 2 busy cores

The files go to a temporary folder (about 0.6 GB at 28 px) and are deleted at the end."""
import argparse, gc, json, tempfile, time
from pathlib import Path
import numpy as np, torch
from midol.batches import epoch_batches
from midol.pretrain import resolve_config, start_run, train_step, teacher_outputs, write_encoder, PRESETS
from midol.metrics import knn_scores
from midol.encoders import load_encoder, extract_features
from midol.finetune import LINEAR_PROBE_RECIPE, updated
from midol.probes import head_probe, knn_label_scores
from midol.tables import ABLATION_ROWS
from midol.reproduce import machine_info

# The five files of MedMNIST-5 as MedMNIST v2 ships them: (flag, channels, labels per image or 0, train, val, test)
REAL_SHAPES = (('chestmnist', 1, 14, 78_468, 11_219, 22_433), ('retinamnist', 3, 0, 1_080, 120, 400),
               ('octmnist', 1, 0, 97_477, 10_832, 1_000), ('dermamnist', 3, 0, 7_007, 1_003, 2_005),
               ('pathmnist', 3, 0, 89_996, 10_004, 7_180))
CLASSES = {'retinamnist': 5, 'octmnist': 4, 'dermamnist': 7, 'pathmnist': 9}


def write_real_shapes(folder: Path, size: int = 28, seed: int = 0) -> dict:
    "MedMNIST-layout files of the real shapes, random uint8 pixels and labels; {flag: path}."
    rng, out = np.random.default_rng(seed), {}
    for flag, channels, multi, *counts in REAL_SHAPES:
        arrays = {}
        for split, n in zip(('train', 'val', 'test'), counts):
            shape = (n, size, size) if channels == 1 else (n, size, size, 3)
            arrays[f'{split}_images'] = rng.integers(0, 256, shape, dtype=np.uint8)
            arrays[f'{split}_labels'] = rng.integers(0, 2 if multi else CLASSES[flag], (n, multi or 1), dtype=np.uint8)
        out[flag] = folder / (f'{flag}.npz' if size == 28 else f'{flag}_{size}.npz')
        np.savez(out[flag], **arrays)
    return out


def time_steps(cfg: dict, steps: int) -> dict:
    "Seconds per training step (median of `steps` after one warm-up) and per batch read, and the run to reuse."
    t0 = time.perf_counter(); run = start_run(cfg); setup = time.perf_counter() - t0
    step_s, read_s, batches = [], [], epoch_batches(run.data, cfg['batch_size'], 0, cfg['seed'])
    for k in range(steps + 1):
        t0 = time.perf_counter(); x = next(batches); t1 = time.perf_counter()
        train_step(run, x, 0); t2 = time.perf_counter()
        if k: read_s.append(t1 - t0); step_s.append(t2 - t1)
    return dict(setup_s=setup, step_s=float(np.median(step_s)), read_s=float(np.median(read_s)), n_train=len(run.data),
                steps_per_epoch=run.steps_per_epoch), run


def time_inference(run, n: int = 1024) -> float:
    "Seconds per image of the teacher's features and routes (the end-of-run summary reads every train and test image)."
    x = run.data.batch(list(range(n)))
    t0 = time.perf_counter(); teacher_outputs(run.model, x.split(256), run.cfg['global_size'], torch.device('cpu'))
    return (time.perf_counter() - t0) / n


def time_evaluation(run, out: Path, n: int = 2048) -> dict:
    "Seconds per image of frozen features, and the k-NN and linear-head protocols on features of the real split sizes."
    write_encoder(run.model, out); enc = load_encoder(out)
    x = run.data.batch(list(range(n)))
    t0 = time.perf_counter(); extract_features(enc, x, device='cpu'); feat_s = (time.perf_counter() - t0) / n
    D, rng, knn_s, linear_epoch_s = enc.num_features, np.random.default_rng(0), {}, {}
    for flag, _, multi, n_train, n_val, n_test in REAL_SHAPES:
        f = lambda k: rng.standard_normal((k, D)).astype(np.float32)
        t0 = time.perf_counter()
        if multi: knn_label_scores(f(n_train), rng.integers(0, 2, (n_train, multi)), f(n_test))
        else: knn_scores(f(n_train), rng.integers(0, CLASSES[flag], n_train), f(n_test), num_classes=CLASSES[flag])
        knn_s[flag] = time.perf_counter() - t0
        if flag in ('pathmnist', 'retinamnist'):   # one epoch of the linear head, validation included
            feats = {s: (f(k), rng.integers(0, CLASSES[flag], k)) for s, k in (('train', n_train), ('val', n_val), ('test', n_test))}
            t0 = time.perf_counter(); head_probe(feats, 0, updated(LINEAR_PROBE_RECIPE, epochs=1, warmup_epochs=0), CLASSES[flag])
            linear_epoch_s[flag] = time.perf_counter() - t0
    return dict(features_s_per_image=feat_s, feature_dim=D, knn_s=knn_s, linear_epoch_s=linear_epoch_s)


def extrapolate(m: dict, epochs: int, seeds: int) -> dict:
    "Wall time of the full recipe (4 variants pretrained, then k-NN and the linear head with `seeds` seeds) from the measurements."
    n_train = sum(r[3] for r in REAL_SHAPES); n_all = sum(sum(r[3:]) for r in REAL_SHAPES)
    n_summary = n_train + sum(r[5] for r in REAL_SHAPES)
    pretrain = {v: epochs * s['steps_per_epoch'] * (s['step_s'] + s['read_s']) + n_summary * m['inference_s_per_image'][v]
                for v, s in m['steps'].items()}
    e = m['evaluation']
    per_image_epoch = e['linear_epoch_s']['pathmnist'] / (89_996 + 10_004)        # the rate of a large file (small ones pay overheads)
    linear = LINEAR_PROBE_RECIPE.epochs * per_image_epoch * sum(r[3] + r[4] for r in REAL_SHAPES)   # 50 epochs, every file
    evaluate = len(ABLATION_ROWS) * (n_all * e['features_s_per_image'] + seeds * (sum(e['knn_s'].values()) + linear))
    return dict(epochs=epochs, seeds=seeds, pretrain_s=pretrain, evaluate_s=evaluate,
                total_h=(sum(pretrain.values()) + evaluate) / 3600, images_per_epoch=n_train)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--preset', default='cpu'); p.add_argument('--size', type=int, default=28)
    p.add_argument('--steps', type=int, default=5, help='timed steps per variant (after one warm-up)')
    p.add_argument('--threads', type=int, default=1, help='torch threads (0: torch default)')
    p.add_argument('--seeds', type=int, default=3); p.add_argument('--out', default='')
    a = p.parse_args()
    if a.threads: torch.set_num_threads(a.threads)
    before, t_start = machine_info('cpu'), time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d); (d / 'files').mkdir(); t0 = time.perf_counter()
        files = write_real_shapes(d / 'files', a.size)
        m = dict(write_s=time.perf_counter() - t0, file_mb={f: round(p.stat().st_size / 2**20) for f, p in files.items()},
                 steps={}, inference_s_per_image={})
        run = None
        for v in ABLATION_ROWS:
            del run; gc.collect()                      # one run's images in memory at a time
            cfg = resolve_config(a.preset, v, str(d / 'runs' / v), data=f"medmnist:{d / 'files'}")
            m['steps'][v], run = time_steps(cfg, a.steps)
            m['inference_s_per_image'][v] = time_inference(run)
            print(v, {k: round(x, 3) for k, x in m['steps'][v].items()}, f"inference {1e3 * m['inference_s_per_image'][v]:.2f} ms/image", flush=True)
        m['evaluation'] = time_evaluation(run, d / 'runs' / ABLATION_ROWS[-1])
        print('evaluation', json.dumps(m['evaluation']), flush=True)
    record = dict(preset=a.preset, size=a.size, img_size=PRESETS[a.preset]['img_size'], batch_size=PRESETS[a.preset]['batch_size'],
                  threads=torch.get_num_threads(), machine_before=before, machine_after=machine_info('cpu'),
                  measured_s=time.perf_counter() - t_start, **m,
                  full_recipe={str(e): extrapolate(m, e, a.seeds) for e in sorted({PRESETS[a.preset]['epochs'], 1, 2})})
    if a.out: Path(a.out).write_text(json.dumps(record, indent=1))
    for e, x in record['full_recipe'].items():
        print(f"{e} pretraining epoch(s): pretraining {sum(x['pretrain_s'].values()) / 3600:.1f} h, evaluation {x['evaluate_s'] / 3600:.1f} h, total {x['total_h']:.1f} h")


if __name__ == '__main__':
    main()

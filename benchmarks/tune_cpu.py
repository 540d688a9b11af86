"""Search for a `cpu`-scale setting in which DINO self-supervision learns SynthMed-5's fine classes (issue 13, item 3).

One call pretrains the `dino` variant with the given settings into /tmp/tune/<name>, evaluates it beside the two floors
(a randomly initialised encoder of the same architecture, and raw pixels) with the library's own protocols on the same
downstream tasks (seed 0), and appends one row to figures/cpu/tables/tuning_log.md.

    .venv/bin/python benchmarks/tune_cpu.py NAME [--overrides JSON] [--augment JSON] [--model JSON] [--variant dino]

--overrides: pretraining settings (keys of `midol.pretrain.PRESETS['cpu']`, e.g. '{"epochs": 3, "local_scale": [0.2, 0.5]}')
--augment:   fields of `midol.views.Augmentation` (e.g. '{"p_jitter": 0, "p_gray": 0}'); applied to the pretraining views only
--model:     fields of `midol.model.ModelConfig` (e.g. '{"head_hidden": 512}'); applied to the pretraining model only
Pretraining never sees a label. The floors are evaluated once per (architecture, image size) and reused.
"""
import argparse, dataclasses, json, os, shutil, subprocess, sys, time
from pathlib import Path

import numpy as np
import torch

import midol.pretrain as mp
from midol.batches import steps_per_epoch
from midol.synthmed import MODALITIES
from midol.views import Augmentation, MultiCrop
from midol.encoders import load_encoder
from midol.floors import PixelEncoder, RandomEncoder
from midol.evaluate import DOWNSTREAM_SIZES, run_protocols, synthmed_tasks
from midol.model import MIDoL, model_config

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / 'figures' / 'cpu' / 'tables' / 'tuning_log.md'
WORK = Path(os.environ.get('TUNE_DIR', '/tmp/tune'))
PROTOCOLS = ('knn', 'linear', 'logreg')
END = '<!-- end of rows: benchmarks/tune_cpu.py inserts new rows above this line -->'
SHORT = {'xray': 'X', 'fundus': 'F', 'oct': 'O', 'derm': 'D', 'path': 'P'}


def patch_pretraining(augment:dict, model:dict):
    "Make `midol.pretrain` build its views with `Augmentation(**augment)` and its model with `model` overrides."
    aug = Augmentation(**{k: tuple(v) if isinstance(v, list) else v for k, v in augment.items()})
    mp.multicrop = lambda cfg: MultiCrop(n_global=cfg['n_global'], n_local=cfg['n_local'], global_size=cfg['global_size'],
                                         local_size=cfg['local_size'], global_scale=tuple(cfg['global_scale']),
                                         local_scale=tuple(cfg['local_scale']), augment=aug)
    mp.build_model = lambda cfg: MIDoL(model_config(fidelity=cfg['fidelity'], variant=cfg['variant'], arch=cfg['arch'],
                                                    img_size=cfg['img_size'], num_experts=cfg['num_experts'],
                                                    out_dim=cfg['out_dim'], n_global=cfg['n_global'],
                                                    drop_path_rate=cfg['drop_path_rate'], **model))


def load_average()->float:
    "The one-minute load average of this machine."
    return float(open('/proc/loadavg').read().split()[0])


def pretrain_run(name:str, variant:str, overrides:dict)->tuple:
    "Pretrain into WORK/name from scratch; return (resolved config, summary, wall seconds, steps)."
    out = WORK / name
    if out.exists(): shutil.rmtree(out)
    cfg = mp.run_config('cpu', variant, str(out), **overrides)
    t0 = time.time()
    summary = mp.pretrain(cfg, resume=False, progress=False)
    steps = steps_per_epoch(cfg['n_per_modality'] * len(MODALITIES), cfg['batch_size']) * cfg['epochs']
    return cfg, summary, time.time() - t0, steps


def accuracies(df, encoder:str)->dict:
    "{protocol: {modality: ACC}} of one encoder in a results frame."
    df = df[(df.encoder == encoder) & (df.metric == 'ACC')]
    return {p: {d.replace('synthmed-', ''): float(v) for d, v in zip(df[df.protocol == p].dataset, df[df.protocol == p].value)}
            for p in PROTOCOLS}


def evaluate(name:str, cfg:dict)->dict:
    "Accuracies of the run's encoder and of the two floors (same tasks, seed 0): {row: {protocol: {modality: ACC}}}."
    size = cfg['img_size']
    tasks = synthmed_tasks(size, *DOWNSTREAM_SIZES['cpu'])
    run_dir, floors = WORK / name, WORK / f"floors-{cfg['arch']}-{size}"
    dev = torch.device('cpu')
    ours = run_protocols({name: str(run_dir)}, tasks, list(PROTOCOLS), seeds=(0,), out_dir=run_dir / 'eval', device=dev, verbose=False)
    ref = run_protocols({'random init': RandomEncoder(str(run_dir)), 'pixels': PixelEncoder(size)}, tasks, list(PROTOCOLS),
                        seeds=(0,), out_dir=floors, device=dev, verbose=False)
    return {cfg['variant']: accuracies(ours, name), 'random init': accuracies(ref, 'random init'), 'pixels': accuracies(ref, 'pixels')}


def mean(d:dict)->float: return float(np.mean(list(d.values())))


def triple(acc:dict)->str:
    "'knn / head / logreg' means over the modalities."
    return ' / '.join(f"{mean(acc[p]):.1f}" for p in PROTOCOLS)


def log_row(name:str, args, cfg:dict, wall:float, steps:int, load:tuple, acc:dict, variant:str)->str:
    "One markdown table row of the log."
    ours = acc[variant]
    per_mod = ' '.join(f"{SHORT[m]}{ours['linear'][m]:.0f}" for m in MODALITIES)
    gain = mean(ours['linear']) - mean(acc['random init']['linear'])
    settings = '; '.join(s for s in (args.overrides and f"cfg {args.overrides}", args.augment and f"aug {args.augment}",
                                     args.model and f"model {args.model}") if s) or 'cpu preset as is'
    cells = [name, variant, settings.replace('|', '\\|'), str(steps), f"{wall:.0f}", f"{load[0]:.1f}→{load[1]:.1f}",
             triple(ours), per_mod, f"{gain:+.1f}", triple(acc['random init']), triple(acc['pixels'])]
    return '| ' + ' | '.join(cells) + ' |'


def append_row(row:str):
    "Insert `row` above the END marker of the log (the log must exist)."
    text = LOG.read_text()
    if END not in text: raise SystemExit(f"{LOG} lacks the marker line {END!r}")
    LOG.write_text(text.replace(END, row + '\n' + END))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('name'); p.add_argument('--overrides', default=''); p.add_argument('--augment', default='')
    p.add_argument('--model', default=''); p.add_argument('--variant', default='dino')
    p.add_argument('--threads', type=int, default=1, help='torch threads (1: several threads on a shared 2-core machine wait on each other)')
    p.add_argument('--no-log', action='store_true', help='print the row without writing it into the log')
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    patch_pretraining(json.loads(args.augment or '{}'), json.loads(args.model or '{}'))
    load0 = load_average()
    cfg, summary, wall, steps = pretrain_run(args.name, args.variant, json.loads(args.overrides or '{}'))
    load1 = load_average()
    acc = evaluate(args.name, cfg)
    (WORK / args.name / 'tune.json').write_text(json.dumps(dict(args=vars(args), wall=wall, steps=steps, load=[load0, load1],
                                                                 accuracies=acc), indent=1))
    row = log_row(args.name, args, cfg, wall, steps, (load0, load1), acc, args.variant)
    print(row)
    for r, a in acc.items(): print(f"{r:12s} knn/head/logreg {triple(a)}  head per modality {a['linear']}")
    if not args.no_log: append_row(row)


if __name__ == '__main__':
    main()

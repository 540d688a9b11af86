"""The design gate of SynthMed-5 version 3 (issue 23, item 1): is every fine class learnable by the `cpu` backbone, and
invisible to the trivial floors?

Rows, all read out the same way (the library's logistic-regression probe on frozen features, C chosen on val,
downstream seeds 0 or 0 and 1: --seeds; the encoder's pooled output, or its last Swin stages with --readout), per modality and as a mean over the five modalities:

- supervised:  `swin_cpu` trained from scratch with the labels (`midol.evaluate.SupervisedEncoder`, SYNTHMED_RECIPE);
               the ceiling. Target: mean >= 75 %, no modality under 60 %.
- pixels:      the normalised image average-pooled over 2 x 2 blocks (`PixelEncoder`).           Target: <= 50 %.
- histogram:   a 16-bin histogram of each colour channel (48 features).                           Target: <= 50 %.
- random init: `swin_cpu` untrained (`RandomEncoder`).                                            Target: <= 50 %.
- random conv: reference row, no target: an untrained 2-layer conv (64 channels, 5x5 then 3x3, ReLU), global
               average + max pooling (128 features): what untrained local filters read.

Then a modality check: logistic regression on the random-conv features tells the five modalities apart (target > 99 %).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/synthmed_v3_gate.py NAME [--version 3] [--design FILE]
        [--rows supervised,pixels,histogram,random init,random conv] [--modalities xray,oct] [--seeds 0,1] [--readout 2] [--no-log]

--design FILE: a Python file run inside `midol.synthmed` before the data is rendered; it may redefine renderers of
               version 3 (`RENDERERS_V3[name] = ...`). This is how the designs of the search were tried before the
               chosen one went into the generator (then nbs/01_data.ipynb, now nbs/01a_synthmed.ipynb); the files left the tree
               after the search (commit 35b48d4 holds them; figures/cpu/tables/tuning_log.md records what each changed).
Writes /tmp/gate/NAME/gate.json, benchmarks/synthmed_v3_gate/NAME.csv, and appends a row to the "Third search" table of figures/cpu/tables/tuning_log.md.
"""
import argparse, json, os, time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import midol.synthmed as md
from midol.synthmed import MODALITIES
from midol.encoders import extract_features
from midol.finetune import updated
from midol.floors import PixelEncoder, RandomEncoder, SupervisedEncoder, SYNTHMED_RECIPE, HistogramEncoder, RandomConvEncoder
from midol.evaluate import DOWNSTREAM_SIZES, run_protocols
from midol.model import backbone_spec

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / 'figures' / 'cpu' / 'tables' / 'tuning_log.md'
WORK = Path(os.environ.get('GATE_DIR', '/tmp/gate'))
RESULTS = ROOT / 'benchmarks' / 'synthmed_v3_gate'   # one CSV per run: row, modality, seed, accuracy
ROWS = ('supervised', 'pixels', 'histogram', 'random init', 'random conv')
END = '<!-- end of rows: benchmarks/synthmed_v3_gate.py inserts new rows above this line -->'
SHORT = {'xray': 'X', 'fundus': 'F', 'oct': 'O', 'derm': 'D', 'path': 'P'}


def synthmed_tasks(version:int, size:int=32, n_train:int=1000, n_val:int=200, n_test:int=500, seed:int=100,
                   modalities=MODALITIES)->dict:
    "SynthMed-5 of one generator version as downstream tasks, one per modality (as `midol.evaluate.synthmed_tasks`)."
    tasks = {}
    for m, name in enumerate(MODALITIES):
        if name not in modalities: continue
        splits = {s: md.render_synthmed(m, md.SPLIT_OFFSET[s] + np.arange(n), size, seed, version=version)
                  for s, n in zip(('train', 'val', 'test'), (n_train, n_val, n_test))}
        tasks[f'synthmed-{name}'] = {s: (torch.from_numpy(im).permute(0, 3, 1, 2).contiguous(), lab)
                                     for s, (im, lab) in splits.items()}
        tasks[f'synthmed-{name}'].update(task='multiclass', num_classes=3)
    return tasks


def encoders(rows, size:int)->dict:
    "The row encoders for `run_protocols`."
    arch = backbone_spec('swin_cpu', size)
    make = {'supervised': lambda: SupervisedEncoder(arch, updated(SYNTHMED_RECIPE, image_size=size), torch.device('cpu')),
            'pixels': lambda: PixelEncoder(size), 'histogram': lambda: HistogramEncoder(size, 16),
            'random init': lambda: RandomEncoder(arch), 'random conv': lambda: RandomConvEncoder(size)}
    return {r: make[r]() for r in rows}


def modality_accuracy(tasks:dict)->float:
    "Accuracy (%) of logistic regression on random-conv features telling the modalities apart (train -> test)."
    enc = RandomConvEncoder().for_task({}, 0)
    f = {s: [extract_features(enc, t[s][0], device=torch.device('cpu')) for t in tasks.values()] for s in ('train', 'test')}
    X = {s: np.concatenate(v) for s, v in f.items()}
    y = {s: np.concatenate([np.full(len(a), i) for i, a in enumerate(v)]) for s, v in f.items()}
    sc = StandardScaler().fit(X['train'])
    clf = LogisticRegression(C=1.0, max_iter=2000).fit(sc.transform(X['train']), y['train'])
    return 100 * float((clf.predict(sc.transform(X['test'])) == y['test']).mean())


def write_table(path:Path, by_seed:dict):
    "The accuracies of a gate run as a CSV, one line per (row, modality, seed), then the mean over seeds per row and modality."
    lines = ['row,modality,seed,logreg_acc']
    for r, d in by_seed.items():
        for key, v in d.items():
            dataset, seed = key.split('@'); lines.append(f"{r},{dataset.replace('synthmed-', '')},{seed},{v:.1f}")
    for r, d in by_seed.items():
        for m in dict.fromkeys(k.split('@')[0] for k in d):
            vals = [v for k, v in d.items() if k.split('@')[0] == m]
            lines.append(f"{r},{m.replace('synthmed-', '')},mean,{np.mean(vals):.1f}")
    path.parent.mkdir(parents=True, exist_ok=True); path.write_text('\n'.join(lines) + '\n')


def load_average()->float: return float(open('/proc/loadavg').read().split()[0])


def log_row(name:str, args, acc:dict, mod_acc, wall:float, load:tuple)->str:
    "One markdown row: the design, each row's mean (and the supervised row per modality), the modality check, cost."
    mean = lambda r: np.mean(list(acc[r].values())) if r in acc else float('nan')
    sup = ' '.join(f"{SHORT[m]}{acc['supervised'][f'synthmed-{m}']:.0f}" for m in MODALITIES
                   if 'supervised' in acc and f'synthmed-{m}' in acc['supervised'])
    design = f"v{args.version}" + (f" + {Path(args.design).name}" if args.design else '') + (f", seeds {args.seeds}" if args.seeds != '0' else '') + (f", readout {args.readout}" if args.readout else '')
    cells = [name, design, *(f"{mean(r):.1f}" if r in acc else '—' for r in ROWS), sup or '—',
             f"{mod_acc:.1f}" if mod_acc is not None else '—', f"{wall:.0f}", f"{load[0]:.1f}→{load[1]:.1f}"]
    return '| ' + ' | '.join(cells) + ' |'


def append_row(row:str):
    "Insert `row` above the END marker of the log."
    text = LOG.read_text()
    if END not in text: raise SystemExit(f"{LOG} lacks the marker line {END!r}")
    LOG.write_text(text.replace(END, row + '\n' + END))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('name'); p.add_argument('--version', type=int, default=md.SYNTHMED_VERSION)
    p.add_argument('--design', default='', help='a Python file run inside midol.synthmed first (see above)')
    p.add_argument('--rows', default=','.join(ROWS)); p.add_argument('--modalities', default=','.join(MODALITIES))
    p.add_argument('--size', type=int, default=32); p.add_argument('--seed', type=int, default=100)
    p.add_argument('--threads', type=int, default=1); p.add_argument('--no-log', action='store_true')
    p.add_argument('--seeds', default='0', help='downstream seeds (a seed trains its own supervised encoder); rows average over them')
    p.add_argument('--readout', type=int, default=0, help="Swin stages the probe reads (midol's `with_readout`); 0: the encoder's own pooled output")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.design: exec(compile(Path(args.design).read_text(), args.design, 'exec'), vars(md))
    rows, mods, seeds = [r.strip() for r in args.rows.split(',')], args.modalities.split(','), [int(x) for x in args.seeds.split(',')]
    load0, t0 = load_average(), time.time()
    tasks = synthmed_tasks(args.version, args.size, *DOWNSTREAM_SIZES['cpu'], seed=args.seed, modalities=mods)
    out = WORK / args.name
    df = run_protocols(encoders(rows, args.size), tasks, ['logreg'], seeds=seeds, out_dir=out, device=torch.device('cpu'), verbose=True,
                       **({'readout': args.readout} if args.readout else {}))
    df = df[df.metric == 'ACC']
    by_seed = {r: {f'{d}@{s}': float(v) for d, s, v in zip(df[df.encoder == r].dataset, df[df.encoder == r].seed, df[df.encoder == r].value)} for r in rows}
    acc = {r: df[df.encoder == r].groupby('dataset').value.mean().to_dict() for r in rows}   # mean over the seeds
    mod_acc = modality_accuracy(tasks) if len(tasks) == len(MODALITIES) else None
    wall, load1 = time.time() - t0, load_average()
    (out / 'gate.json').write_text(json.dumps(dict(args=vars(args), accuracies=acc, by_seed=by_seed, modality_accuracy=mod_acc,
                                                   wall=wall, load=[load0, load1]), indent=1))
    write_table(RESULTS / f'{args.name}.csv', by_seed)
    for r in rows:
        print(f"{r:12s} mean {np.mean(list(acc[r].values())):5.1f}  " + ' '.join(f"{d.split('-')[1]} {v:.1f}" for d, v in acc[r].items()))
    if len(seeds) > 1: print('by seed:', by_seed)
    if mod_acc is not None: print(f"modality check (random conv + logistic regression): {mod_acc:.1f} %")
    row = log_row(args.name, args, acc, mod_acc, wall, (load0, load1))
    print(row)
    if not args.no_log: append_row(row)


if __name__ == '__main__':
    main()

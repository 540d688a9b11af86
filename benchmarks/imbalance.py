"""The imbalance study of issue 32: routing when the modalities are imbalanced.

    python benchmarks/imbalance.py cap        # figures/cpu/routing_nmi_cap.png: the routing-NMI cap against the imbalance
    python benchmarks/imbalance.py collect    # the table and figure of the finished runs of runs/imbalance/

The runs come from `benchmarks/imbalance_queue.sh` (the `cpu` preset, `midol`, one run per routing option, dataset and
seed). For each finished run, `collect` reads the saved checkpoint and computes, on the run's own data: the routing NMI
of the teacher router's top-1 expert on the training images (as the run's summary) and on the test split, the cap
`midol.routing.max_routing_nmi` for the training mix on equal experts, the expert usage, the routing matrix, and the
fine-class accuracy of logistic regression (C picked on the validation split) and weighted k-NN (k 20) on the teacher's
pooled features, per modality, then averaged over the modalities; and, from the run's history, L_route over its last 50
steps (label-free: it stays high in a run whose routing never settled). The routing NMI is that of the router's own top-1
expert on clean images, whose usage is not held at 1/N (Sinkhorn balances the teacher's plan within training batches,
not the router), so the table also gives the cap at the usage the router reached, which no routing with that usage
can pass. Per-run numbers are cached in the run folder
(`imbalance_eval.json`). It writes, per dataset, `tables/imbalance_<dataset>.{csv,md}` and `imbalance_<dataset>.png`
(routing matrices of seed 0 side by side, and routing NMI per option with the cap as a line) into `figures/cpu`
(SynthMed-5 with Table 1's mix) and `figures/medmnist-cpu` (the MedMNIST files).
"""
import argparse, json, os, sys, time
from pathlib import Path
import numpy as np, pandas as pd, torch
from scipy import stats
import matplotlib; matplotlib.use('Agg')
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from midol.routing import max_routing_nmi, cap_by_imbalance
from midol.metrics import routing_nmi, routing_matrix
from midol.pretrain import build_model, pretrain_dataset, teacher_outputs
from midol.batches import ordered_batches
from midol.probes import logreg_probe, knn_protocol
from midol.runs import load_checkpoint
from midol.tables import detectable_difference
from midol.figures import markdown_table

OPTIONS = ('uniform', 'ema', 'unbalanced', 'source')  # the queue's routing options, in this order
DATASETS = {'synthmed-paper': ('SynthMed-5, Table 1 mix', ROOT / 'figures/cpu'),
            'medmnist3': ('three MedMNIST files', ROOT / 'figures/medmnist-cpu')}
TABLE1 = [445170, 277827, 190144, 125297, 115081]        # Table 1's images per modality
MEDMNIST3 = [4708, 1080, 546]                              # training images of PneumoniaMNIST, RetinaMNIST, BreastMNIST


def draw_cap(out:Path):
    "The routing-NMI cap against largest/smallest share, for 3 and 5 modalities on as many equal experts."
    ratios = np.geomspace(1, 20, 120)
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    for m in (3, 5): ax.plot(ratios, cap_by_imbalance(m, ratios), label=f'{m} modalities, {m} equal experts')
    ax.plot(max(TABLE1) / min(TABLE1), max_routing_nmi(TABLE1), 'o', color='C1', label=f'Table 1 ({max_routing_nmi(TABLE1):.2f})')
    ax.plot(max(MEDMNIST3) / min(MEDMNIST3), max_routing_nmi(MEDMNIST3), 's', color='C0',
            label=f'3 MedMNIST files ({max_routing_nmi(MEDMNIST3):.2f})')
    ax.set(xscale='log', xlabel='largest share / smallest share (shares spaced geometrically)',
           ylabel='highest routing NMI', ylim=(0, 1.02), title='Routing NMI reachable with equal expert masses')
    ax.legend(fontsize=8); fig.tight_layout()
    fig.savefig(out, dpi=110); plt.close(fig)
    print(f"{out}: {out.stat().st_size // 1024} KB")


def _by_modality(ds:dict, feats:dict)->dict:  # split -> dataset, split -> features [N, D]
    "Per modality, the (features, fine labels) of each split: {modality: {split: (features, labels)}}."
    return {m: {s: (feats[s][d.modality == m].numpy(), d.labels[d.modality == m].numpy()) for s, d in ds.items()}
            for m in range(len(ds['train'].modalities))}


def evaluate_run(run:Path)->dict:
    "Routing and fine-class accuracy of one finished run (cached in the run folder)."
    cache = run / 'imbalance_eval.json'
    if cache.is_file(): return json.loads(cache.read_text())
    t0 = time.time()
    cfg = json.loads((run / 'config.json').read_text())
    model = build_model(cfg); model.load_state_dict(load_checkpoint(run / 'checkpoint.pt')['model']); model.eval()
    ds = {s: pretrain_dataset(cfg, s) for s in ('train', 'val', 'test')}
    out = {s: teacher_outputs(model, ordered_batches(d), cfg['global_size'], 'cpu') for s, d in ds.items()}
    feats = {s: f for s, (f, _) in out.items()}
    n_mod, n_exp = len(ds['train'].modalities), model.cfg.num_experts
    train_counts = torch.bincount(ds['train'].modality, minlength=n_mod).tolist()
    logreg, knn = {}, {}
    for m, f in _by_modality(ds, feats).items():
        name = ds['train'].modalities[m]
        logreg[name] = logreg_probe(f)['metrics']['ACC']
        knn[name] = knn_protocol(f)['metrics']['ACC']
    r_tr, r_te = out['train'][1], out['test'][1]
    usage = (torch.bincount(r_tr, minlength=n_exp).float() / len(r_tr)).numpy()   # [N] the router's own top-1 shares
    res = dict(run=run.name, modalities=list(ds['train'].modalities), train_counts=train_counts, n_experts=n_exp,
               routing_nmi_train=routing_nmi(ds['train'].modality, r_tr), routing_nmi_test=routing_nmi(ds['test'].modality, r_te),
               cap_train=max_routing_nmi(train_counts, [1] * n_exp), cap_at_usage=max_routing_nmi(train_counts, usage[usage > 0]),
               expert_usage=usage.tolist(),
               routing_matrix=routing_matrix(r_tr, ds['train'].modality, n_exp, n_mod).tolist(),
               logreg_acc=logreg, knn_acc=knn, logreg_acc_mean=float(np.mean(list(logreg.values()))),
               knn_acc_mean=float(np.mean(list(knn.values()))),
               wall_seconds=json.loads((run / 'summary.json').read_text())['wall_seconds'], eval_seconds=round(time.time() - t0, 1))
    cache.write_text(json.dumps(res, indent=1))
    return res


def finished_runs(root:Path)->pd.DataFrame:
    "Every finished run of the queue under `root`, evaluated: one row per run."
    rows = []
    for d in sorted(root.glob('*-seed*')):
        if not (d / 'summary.json').is_file() or not (d / 'checkpoint.pt').is_file(): continue
        dataset, rest = next((k, d.name[len(k) + 1:]) for k in DATASETS if d.name.startswith(k + '-'))
        option, seed = rest.rsplit('-seed', 1)
        l_route = pd.read_csv(d / 'history.csv')['l_route'].tail(50).mean()   # high when student and teacher routing never agreed
        rows.append(dict(dataset=dataset, option=option, seed=int(seed), **evaluate_run(d), l_route_last50=l_route))
        print(f'{d.name}: routing NMI {rows[-1]["routing_nmi_train"]:.3f} (cap {rows[-1]["cap_train"]:.3f})', flush=True)
    return pd.DataFrame(rows)


def pm(x)->str:
    "mean ± std over seeds (std only with two seeds or more)."
    x = np.asarray(x, float)
    return f'{x.mean():.3f}' + (f' ± {x.std(ddof=1):.3f}' if len(x) > 1 else '')


def options_of(runs:pd.DataFrame)->list:
    "The queue's options in their order, then any other (a search's, e.g. 'unbalanced-lambda1') sorted."
    return [o for o in OPTIONS if o in set(runs.option)] + sorted(set(runs.option) - set(OPTIONS))


def accuracy_drop(a, b)->tuple:  # per-seed accuracies of an option, and of uniform
    "uniform's mean minus the option's, and the smallest difference 80 % power detects at α 0.05 with the pooled std."
    a, b = np.asarray(a, float), np.asarray(b, float)
    n = min(len(a), len(b))
    if n < 2: return b.mean() - a.mean(), np.nan
    sd = np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)
    return b.mean() - a.mean(), detectable_difference(sd, n)


def drop_cell(a, b)->str:
    "The drop of fine-class accuracy against uniform, with the detectable difference and whether it stays within it."
    drop, dd = accuracy_drop(a, b)
    if not np.isfinite(dd): return f'{drop:+.2f} (one seed)'
    return f'{drop:+.2f} (detectable {dd:.2f}: ' + ('within' if drop <= dd else 'beyond') + ')'


def p_cell(a, b)->str:
    "Welch's two-sided t-test of an option's per-seed routing NMI against uniform's ('' below two seeds each)."
    return f'{stats.ttest_ind(a, b, equal_var=False).pvalue:.3g}' if min(len(a), len(b)) > 1 else ''


def summary_table(runs:pd.DataFrame)->pd.DataFrame:
    "One row per routing option: seeds, routing NMI (train, test) beside the cap, expert usage, fine-class accuracy."
    rows, base = [], runs[runs.option == 'uniform']
    for option in options_of(runs):
        g = runs[runs.option == option].sort_values('seed')
        usage = np.mean(np.stack(g.expert_usage.map(lambda u: np.sort(u)[::-1])), 0)   # largest first: experts have no fixed order across seeds
        vs = (lambda cell, q: cell(g[q], base[q])) if option != 'uniform' else (lambda cell, q: '')   # uniform's own row: no comparison
        rows.append({'option': option, 'seeds': len(g), 'routing NMI (train)': pm(g.routing_nmi_train),
                     'cap (equal experts)': f'{g.cap_train.iloc[0]:.3f}', 'cap at the measured usage': pm(g.cap_at_usage),
                     'routing NMI (test)': pm(g.routing_nmi_test),
                     'p vs uniform (NMI train)': vs(p_cell, 'routing_nmi_train'),
                     'L_route, last 50 steps': pm(g.l_route_last50),
                     'expert usage, largest first (train, mean)': ' / '.join(f'{u:.2f}' for u in usage),
                     'logreg ACC % (mean over modalities)': pm(g.logreg_acc_mean), 'k-NN ACC % (mean)': pm(g.knn_acc_mean),
                     'logreg drop vs uniform (points)': vs(drop_cell, 'logreg_acc_mean'),
                     'k-NN drop vs uniform (points)': vs(drop_cell, 'knn_acc_mean'),
                     'pretraining wall (s, mean)': f'{g.wall_seconds.mean():.0f}'})
    return pd.DataFrame(rows)


def draw_runs(runs:pd.DataFrame, title:str, out:Path):
    "Routing matrices of seed 0 side by side, and routing NMI per option (dots: seeds) with the cap as a line."
    options = [o for o in OPTIONS if o in set(runs.option)]
    first = runs.sort_values('seed').groupby('option').first()
    fig, axes = plt.subplots(1, len(options) + 1, figsize=(3.1 * (len(options) + 1), 3.1))
    for ax, option in zip(axes, options):
        r = first.loc[option]; mat = np.asarray(r.routing_matrix)
        ax.imshow(mat, cmap='Blues', vmin=0, vmax=1)
        for (i, j), v in np.ndenumerate(mat): ax.text(j, i, f'{v:.2f}', ha='center', va='center', fontsize=6, color='k' if v < .6 else 'w')
        ax.set(xticks=range(mat.shape[1]), yticks=range(mat.shape[0]), yticklabels=r.modalities, xlabel='expert',
               title=f'{option} (seed {r.seed})\nNMI {r.routing_nmi_train:.2f}', )
        ax.title.set_fontsize(9)
    ax = axes[-1]
    for k, option in enumerate(options):
        g = runs[runs.option == option]
        ax.bar(k, g.routing_nmi_train.mean(), color=f'C{OPTIONS.index(option)}', alpha=.6)
        ax.plot([k] * len(g), g.routing_nmi_train, 'k.', ms=5)
    ax.axhline(runs.cap_train.iloc[0], color='r', ls='--', lw=1, label=f'cap {runs.cap_train.iloc[0]:.2f}')
    ax.set(xticks=range(len(options)), xticklabels=options, ylim=(0, 1), ylabel='routing NMI (training images)')
    ax.tick_params(axis='x', labelrotation=30)
    ax.legend(fontsize=8, loc='lower right'); ax.set_title(title, fontsize=9)
    fig.tight_layout(); fig.savefig(out, dpi=100); plt.close(fig)
    print(f"{out}: {out.stat().st_size // 1024} KB")


def collect(root:Path):
    "Evaluate the finished runs under `root` and write each dataset's table and figure."
    runs = finished_runs(root)
    if runs.empty: return print(f'no finished run under {root}')
    for dataset, g in runs.groupby('dataset'):
        title, fig_dir = DATASETS[dataset]
        table = summary_table(g)
        (fig_dir / 'tables').mkdir(parents=True, exist_ok=True)
        stem = fig_dir / 'tables' / f'imbalance_{dataset}'
        table.to_csv(stem.with_suffix('.csv'), index=False)
        g.drop(columns=['routing_matrix']).to_csv(fig_dir / 'tables' / f'imbalance_{dataset}_runs.csv', index=False)
        seeds = sorted(g.seed.unique())
        stem.with_suffix('.md').write_text(f'Routing options on {title} (`cpu` preset, `midol`; pretraining seeds '
                                           f'{", ".join(map(str, seeds))} as available per option; mean ± std over seeds)\n\n'
                                           + markdown_table(table.set_index('option')))
        draw_runs(g, f'{title}: routing NMI', fig_dir / f'imbalance_{dataset}.png')
        print(table.to_string(index=False))


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('what', choices=['cap', 'collect'])
    p.add_argument('--runs', default=str(ROOT / 'runs/imbalance'), help='the queue\'s output folder')
    a = p.parse_args()
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))
    if a.what == 'cap': draw_cap(ROOT / 'figures/cpu/routing_nmi_cap.png')
    else: collect(Path(a.runs))

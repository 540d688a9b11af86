"""Which readout should Table 2 use (issue 23, item 3)? Logistic regression on SynthMed-5 tasks of one generator version,
for a pretrained encoder and the random-init floor of its architecture, under each readout of `midol.encoders.with_readout`
(0: timm's pooled output; k: the last k Swin stages, each average- and max-pooled). Prints one line per readout:
the mean accuracy over the five modalities of each row, and the encoder's margin over random init.

    OMP_NUM_THREADS=1 python benchmarks/readout_probe.py runs/pretrain/cpu-dino --version 3 --readouts 0,1,2
"""
import argparse, json, time
from pathlib import Path
from midol.evaluate import DOWNSTREAM_SIZES, run_protocols, synthmed_tasks
from midol.floors import RandomEncoder

p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
p.add_argument('run', help='a pretraining out_dir (config.json + encoder.safetensors)')
p.add_argument('--version', type=int, default=3, help='SynthMed-5 generator version of the downstream tasks')
p.add_argument('--readouts', default='0,1,2', help='readouts to compare, comma-separated')
p.add_argument('--seed', type=int, default=0, help='downstream seed (draws the sample and the probe)')
p.add_argument('--out', default='runs/readout_probe', help='results folders, one per readout')
args = p.parse_args()

cfg = json.loads((Path(args.run) / 'config.json').read_text())
tasks = synthmed_tasks(cfg['img_size'], *DOWNSTREAM_SIZES['cpu'], seed=100 + args.seed, version=args.version)
name = Path(args.run).name
for r in map(int, args.readouts.split(',')):
    t0 = time.time()
    res = run_protocols({'random init': RandomEncoder(args.run), name: args.run}, tasks, ['logreg'], seeds=(args.seed,),
                        out_dir=Path(args.out) / f'{name}-v{args.version}-readout{r}', verbose=False, readout=r)
    acc = res[res.metric == 'ACC'].groupby('encoder').value.mean()
    print(f"readout {r}: {name} {acc[name]:.1f} %, random init {acc['random init']:.1f} %, margin {acc[name] - acc['random init']:+.1f} "
          f"({time.time() - t0:.0f} s)", flush=True)

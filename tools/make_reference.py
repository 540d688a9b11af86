"""Copy the finished pretraining runs of a preset into data/reference/, with their SHA-256 checksums.

    python tools/make_reference.py cpu                      # runs/pretrain/cpu-<variant> -> data/reference/cpu-<variant>
    python tools/make_reference.py cpu --seeds 3            # also cpu-<variant>-seed1, -seed2 (the reproduction's seeds)
    python tools/make_reference.py tiny --runs-dir /tmp/runs --root /tmp/reference --checkpoint
    python tools/make_reference.py medmnist --runs runs/medmnist/cpu-28px/pretrain   # -> data/reference/medmnist-cpu-28px-<variant>

Each of the four variants (dino, moe, moe_route, midol) must be a finished run of the preset's own settings
(nbs/03_pretrain.ipynb, or `make reproduce PRESET=...`). A class then skips the training with
`papermill nbs/03_pretrain.ipynb out.ipynb -p use_reference True` (see nbs/teaching.ipynb).
`medmnist` copies the runs of a finished MedMNIST recipe (nbs/06b_medmnist.ipynb, `make medmnist`) from its pretrain
folder, named <variant> or <variant>@<seed>; each reference records the recipe's data files by name and MD5, and the
recipe takes them with `-p use_reference True` when its files have those MD5s."""
import argparse, re
from pathlib import Path
from midol.data import project_root
from midol.medmnist import save_medmnist_reference
from midol.model import VARIANTS
from midol.pretrain import PRESETS, reference_dir, run_config
from midol.runs import read_checksums, save_reference


def report(dest:Path):
    "Print what a reference folder holds."
    listed = read_checksums(dest); size = sum((dest / n).stat().st_size for n in listed)
    print(f'{dest}: {len(listed)} files, {size / 1e6:.2f} MB, checksums in {dest.name}/SHA256SUMS')


def make_references(preset:str, runs_dir=None, root=None, checkpoint:bool=False, seeds:int=1)->list:
    "Save the reference of every variant (seeds 0 to seeds - 1) of `preset` from `runs_dir`/pretrain; return the folders."
    runs = Path(runs_dir or (project_root() or Path.cwd()) / 'runs') / 'pretrain'
    done = []
    for variant in VARIANTS:
        for seed in range(seeds):
            dest = reference_dir(preset, variant, root, seed)
            save_reference(runs / dest.name, dest, run_config(preset, variant, seed=seed), checkpoint)   # the run folder has the reference's name
            report(dest); done.append(dest)
    return done


def make_medmnist_references(runs, root=None, checkpoint:bool=False, seeds:int=1)->list:
    "Save the reference of every variant (seeds 0 to seeds - 1) of a MedMNIST recipe from its pretrain folder; return the folders."
    runs = Path(runs).resolve(); m = re.fullmatch(r'(\w+)-(\d+)px', runs.parent.name)
    if runs.name != 'pretrain' or not m:
        raise SystemExit(f'{runs} is not the pretrain folder of a MedMNIST recipe (runs/medmnist/<preset>-<size>px/pretrain)')
    done = []
    for variant in VARIANTS:
        for seed in range(seeds):
            run = runs / f'{variant}@{seed}'
            if not run.is_dir() and seed == 0: run = runs / variant   # a recipe of one pretraining seed names its runs by variant
            dest = save_medmnist_reference(run, int(m[2]), root, checkpoint)
            report(dest); done.append(dest)
    return done


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('preset', choices=list(PRESETS) + ['medmnist'], help="the preset whose runs are copied, or 'medmnist' (with --runs)")
    parser.add_argument('--runs-dir', default='', help="folder holding pretrain/<preset>-<variant> ('': runs/ at the project root)")
    parser.add_argument('--runs', default='', help='medmnist: the pretrain folder of a finished recipe, e.g. runs/medmnist/cpu-28px/pretrain')
    parser.add_argument('--root', default='', help="where the references go ('': data/reference at the project root)")
    parser.add_argument('--checkpoint', action='store_true', help='also keep checkpoint.pt (a few MB for cpu): the runs can then resume')
    parser.add_argument('--seeds', type=int, default=1, help='pretraining seeds per variant to keep (1: seed 0 only)')
    args = parser.parse_args()
    if args.preset == 'medmnist':
        if not args.runs: parser.error('medmnist needs --runs <the pretrain folder of a finished recipe>')
        make_medmnist_references(args.runs, args.root or None, args.checkpoint, args.seeds)
    else: make_references(args.preset, args.runs_dir or None, args.root or None, args.checkpoint, args.seeds)

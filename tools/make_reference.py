"""Copy the finished pretraining runs of a preset into data/reference/, with their SHA-256 checksums.

    python tools/make_reference.py cpu                      # runs/pretrain/cpu-<variant> -> data/reference/cpu-<variant>
    python tools/make_reference.py cpu --seeds 3            # also cpu-<variant>-seed1, -seed2 (the reproduction's seeds)
    python tools/make_reference.py tiny --runs-dir /tmp/runs --root /tmp/reference --checkpoint

Each of the four variants (dino, moe, moe_route, midol) must be a finished run of the preset's own settings
(nbs/03_pretrain.ipynb, or `make reproduce PRESET=...`). A class then skips the training with
`papermill nbs/03_pretrain.ipynb out.ipynb -p use_reference True` (see nbs/teaching.ipynb)."""
import argparse
from pathlib import Path
from midol.data import project_root
from midol.model import VARIANTS
from midol.pretrain import PRESETS, reference_dir, save_reference


def make_references(preset:str, runs_dir=None, root=None, checkpoint:bool=False, seeds:int=1)->list:
    "Save the reference of every variant (seeds 0 to seeds - 1) of `preset` from `runs_dir`/pretrain; return the folders."
    runs = Path(runs_dir or (project_root() or Path.cwd()) / 'runs') / 'pretrain'
    done = []
    for variant in VARIANTS:
        for seed in range(seeds):
            dest = reference_dir(preset, variant, root, seed)
            listed = save_reference(runs / dest.name, dest, checkpoint)   # the run folder has the reference's name
            size = sum((dest / n).stat().st_size for n in listed)
            print(f'{dest}: {len(listed)} files, {size / 1e6:.2f} MB, checksums in {dest.name}/SHA256SUMS')
            done.append(dest)
    return done


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('preset', choices=list(PRESETS), help='the preset whose runs are copied')
    parser.add_argument('--runs-dir', default='', help="folder holding pretrain/<preset>-<variant> ('': runs/ at the project root)")
    parser.add_argument('--root', default='', help="where the references go ('': data/reference at the project root)")
    parser.add_argument('--checkpoint', action='store_true', help='also keep checkpoint.pt (a few MB for cpu): the runs can then resume')
    parser.add_argument('--seeds', type=int, default=1, help='pretraining seeds per variant to keep (1: seed 0 only)')
    args = parser.parse_args()
    make_references(args.preset, args.runs_dir or None, args.root or None, args.checkpoint, args.seeds)

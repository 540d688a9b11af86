"""Fail when notebooks are not clean or the generated library is out of sync with them (used by `make test`)."""
import hashlib, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

def snapshot(pattern):
    "Map each file matching `pattern` under the project root to the hash of its bytes."
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(ROOT.glob(pattern)) if '.ipynb_checkpoints' not in p.parts}

def changed(before, after):
    "Files added, removed or modified between two snapshots."
    return sorted(str(p.relative_to(ROOT)) for p in set(before) | set(after) if before.get(p) != after.get(p))

def check(cmd, pattern, problem, fix):
    "Run `cmd`; report the files under `pattern` it changed."
    before = snapshot(pattern)
    subprocess.run([str(BIN / cmd)], cwd=ROOT, check=True)
    diff = changed(before, snapshot(pattern))
    if diff:
        print(f"ERROR: {problem}\n  {cmd} changed: " + ", ".join(diff) + f"\n  {fix}", file=sys.stderr)
    return not diff

ok = check('nbdev-clean', 'nbs/**/*.ipynb', 'notebooks were not clean (outputs or metadata left in them).',
           'nbdev-clean has now cleaned them: review the change and commit it.')
ok &= check('nbdev-export', 'midol/**/*.py', 'the library midol/ is out of sync with the notebooks in nbs/.',
            'midol/ is generated: edit the notebook, never midol/*.py; nbdev-export has now regenerated it, commit the result.')
if not ok: sys.exit(1)
print("notebooks clean, library in sync")

"""Checkpoints load as data (issue 29): a checkpoint whose payload holds a pickled callable is refused even with a valid
digest line, and the callable never runs; the checkpoints midol writes, and those of older versions, still load."""
import hashlib, io, pickle
from pathlib import Path
import numpy as np, pytest, torch
from midol.runs import CKPT_MAGIC, CheckpointError, load_checkpoint, newest_checkpoint, rng_state, save_checkpoint


class Trap:
    "Unpickling it creates the file `flag` (io.open(flag, 'w')): what a hostile checkpoint would do, harmlessly."
    def __init__(self, flag): self.flag = str(flag)
    def __reduce__(self): return (io.open, (self.flag, 'w'))


def test_the_trap_runs_when_unpickled_plainly(tmp_path):
    "The test below would pass vacuously if the trap did nothing: plain pickle does run it."
    pickle.loads(pickle.dumps(Trap(tmp_path / 'ran'))).close()
    assert (tmp_path / 'ran').exists()


def test_a_checkpoint_holding_a_callable_is_refused_and_never_runs(tmp_path):
    flag, ckpt = tmp_path / 'ran', tmp_path / 'checkpoint.pt'
    save_checkpoint({'step': 3, 'model': {'w': torch.ones(2)}, 'trap': Trap(flag)}, ckpt)
    head, payload = ckpt.read_bytes().split(b'\n', 1)
    assert head == CKPT_MAGIC + hashlib.sha256(payload).hexdigest().encode()       # the digest line is valid
    with pytest.raises(CheckpointError, match=r'io\.open'): load_checkpoint(ckpt)
    assert not flag.exists()                                                        # the callable never ran
    with pytest.raises(CheckpointError): newest_checkpoint(tmp_path)                # nor does a resume run it
    assert not flag.exists()


def test_checkpoints_of_tensors_and_plain_values_load(tmp_path):
    model = torch.nn.Linear(3, 2); opt = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 3)).sum().backward(); opt.step()
    state = dict(model=model.state_dict(), optimizer=opt.state_dict(), step=7, config=dict(betas=(0.9, 0.95), lr=1e-3),
                 rng=rng_state())
    save_checkpoint(state, tmp_path / 'checkpoint.pt')
    back = load_checkpoint(tmp_path / 'checkpoint.pt')
    assert back['step'] == 7 and back['config'] == state['config']
    assert torch.equal(back['optimizer']['state'][0]['exp_avg'], state['optimizer']['state'][0]['exp_avg'])


def test_an_older_checkpoint_with_a_numpy_rng_state_still_loads(tmp_path):
    "Checkpoints written before 2026-12-07 hold numpy's RNG state as an array and learning rates as numpy floats: they still load."
    np.random.seed(1); old = dict(step=5, rng=dict(numpy=np.random.get_state(), torch=torch.get_rng_state()),
                                optimizer=dict(param_groups=[dict(lr=np.float64(1e-3), weight_decay=np.float64(.04))]))
    buf = io.BytesIO(); torch.save(old, buf); payload = buf.getvalue()
    (tmp_path / 'checkpoint.pt').write_bytes(CKPT_MAGIC + hashlib.sha256(payload).hexdigest().encode() + b'\n' + payload)
    back = load_checkpoint(tmp_path / 'checkpoint.pt')
    assert back['step'] == 5 and np.array_equal(back['rng']['numpy'][1], old['rng']['numpy'][1])
    assert back['optimizer']['param_groups'][0]['lr'] == 1e-3

"Tests of midol.evaluate: encoders, cached features, protocols, metrics, statistics, tables, the paper's numbers."
import json
import numpy as np, pandas as pd, pytest, timm, torch
from safetensors.torch import save_file
from sklearn.metrics import roc_auc_score
from torch.utils.data import TensorDataset
from types import SimpleNamespace
from midol import data, metrics, evaluate, tables, reproduce
ev = SimpleNamespace(**{**vars(data), **vars(metrics), **vars(evaluate), **vars(tables), **vars(reproduce)})  # TODO(H3): import each name from its module

TINY = dict(img_size=32, patch_size=4, window_size=4, embed_dim=16, depths=[1, 1], num_heads=[1, 2])
NAME = 'swin_tiny_patch4_window7_224'

def tiny_swin(seed=0):
    torch.manual_seed(seed)
    return timm.create_model(NAME, pretrained=False, num_classes=0, **TINY)

def toy_split(n, seed, C=3, px=32):
    g = torch.Generator().manual_seed(seed); y = torch.arange(n) % C
    x = torch.randint(0, 120, (n, 3, px, px), generator=g, dtype=torch.uint8)
    x[torch.arange(n), y % 3] += 100
    return x, y

def blobs(n, seed, d=16):
    g = np.random.default_rng(seed); y = np.arange(n) % 3
    return (np.eye(3, d)[y] * 4 + g.normal(size=(n, d))).astype(np.float32), y

# --- encoders ---------------------------------------------------------------------------------------------------------
def test_load_encoder_round_trip(tmp_path):
    enc = tiny_swin().eval(); x = torch.randn(2, 3, 32, 32)
    (tmp_path/'config.json').write_text(json.dumps({'backbone': {'name': NAME, 'kwargs': TINY}}))
    save_file(enc.state_dict(), str(tmp_path/'encoder.safetensors'))
    torch.save({'model': {'module.' + k: v for k, v in enc.state_dict().items()}}, tmp_path/'w.pth')
    with torch.no_grad():
        for e in (ev.load_encoder(tmp_path), ev.load_encoder(tmp_path/'encoder.safetensors'),
                  ev.load_encoder(NAME, weights=tmp_path/'w.pth', **TINY)):
            assert torch.allclose(e(x), enc(x), atol=1e-6)

def test_load_encoder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='not found'): ev.load_encoder(tmp_path/'nothing_here')
    with pytest.raises(FileNotFoundError, match='does not exist'): ev.load_encoder(NAME, weights=tmp_path/'x.pth')
    with pytest.raises(ValueError, match='weights='): ev.load_encoder(NAME)
    sd = {k: v for k, v in tiny_swin().state_dict().items() if not k.startswith('norm.')}
    sd['extra.weight'] = torch.zeros(1)
    with pytest.raises(ValueError, match='missing keys'): ev.load_weights(tiny_swin(), sd)
    with pytest.warns(UserWarning, match='unexpected keys'): ev.load_weights(tiny_swin(), sd, strict=False)

def test_random_encoder():
    e = ev.load_encoder('random:' + NAME, **TINY)
    assert e.num_features == 32 and not e.training

# --- features -----------------------------------------------------------------------------------------------------------
def test_feature_cache_skips_encoder(tmp_path):
    enc, calls = tiny_swin(), []
    enc.register_forward_hook(lambda *a: calls.append(1))
    imgs = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    f1 = ev.extract_features(enc, imgs, batch_size=2, cache_dir=tmp_path)
    n = len(calls)
    f2 = ev.extract_features(enc, TensorDataset(imgs, torch.zeros(5)), batch_size=2, cache_dir=tmp_path)
    assert f1.shape == (5, 32) and n == 3 and len(calls) == n and np.allclose(f1, f2)

# --- protocols ----------------------------------------------------------------------------------------------------------
def test_knn_and_linear_probe_separable():
    feats = {'train': blobs(150, 0), 'val': blobs(60, 1), 'test': blobs(90, 2)}
    assert ev.knn_protocol(feats)['metrics']['ACC'] > 95
    r = ev.linear_probe(feats)
    assert r['metrics']['ACC'] > 95 and r['metrics']['AUC'] > 99 and r['confusion'].sum() == 90

def test_finetune_one_epoch_tiny_swin():
    data = {'train': toy_split(16, 0), 'val': toy_split(9, 1), 'test': toy_split(9, 2), 'num_classes': 3}
    r = ev.finetune_multiclass(tiny_swin(), data, epochs=1, batch_size=8, warmup_epochs=1, size=32, device='cpu')
    assert set(r['metrics']) == {'ACC', 'AUC'} and r['confusion'].shape == (3, 3) and len(r['losses']) == 2

def test_segmentation_runs():
    def seg(n, s):
        x, _ = toy_split(n, s); m = torch.zeros(n, 32, 32, dtype=torch.long); m[:, 8:20, 8:20] = 1
        return x, m
    data = {'train': seg(4, 0), 'val': seg(2, 1), 'test': seg(2, 2), 'num_classes': 2}
    r = ev.finetune_segmentation(tiny_swin(), data, iters=2, lr=1e-3, warmup_iters=1, batch_size=2, size=32, dim=16, eval_every=1, device='cpu')
    assert 0 <= r['metrics']['Dice'] <= 100 and len(r['losses']) == 2

def test_run_protocols_resumes(tmp_path):
    data = {'toy': {'train': toy_split(12, 0), 'val': toy_split(6, 1), 'test': toy_split(6, 2), 'num_classes': 3}}
    res = ev.run_protocols({'a': tiny_swin}, data, {'knn': {'k': 3}, 'linear': {}}, seeds=(0, 1), out_dir=tmp_path, device='cpu', verbose=False)
    assert len(res) == 2 * 2 * 2
    def boom(): raise AssertionError('recomputed')
    assert len(ev.run_protocols({'a': boom}, data, ['knn', 'linear'], seeds=(0, 1), out_dir=tmp_path, verbose=False)) == 8

# --- metrics ------------------------------------------------------------------------------------------------------------
def test_multilabel_auc_matches_sklearn():
    g = np.random.default_rng(1); Y = g.integers(0, 2, (80, 4)); S = g.random((80, 4)) + 0.4 * Y
    per, mean = ev.multilabel_auc(Y, S)
    assert np.allclose(per, roc_auc_score(Y, S, average=None)) and np.isclose(mean, roc_auc_score(Y, S))

def test_multiclass_auc_matches_sklearn():
    g = np.random.default_rng(2); y = g.integers(0, 3, 90); P = g.dirichlet(np.ones(3), 90)
    assert np.isclose(ev.multiclass_auc(y, P), roc_auc_score(y, P, multi_class='ovr'))

def test_dice_hand_made():
    pred = torch.tensor([[1, 1, 0], [0, 0, 0]]); tgt = torch.tensor([[1, 0, 0], [0, 1, 0]])
    assert np.isclose(ev.dice_score(pred, tgt), 2 * 1 / (2 + 2))
    assert ev.dice_score(tgt, tgt) == 1.0 and ev.dice_score(1 - tgt, tgt) == 0.0

# --- statistics and tables ----------------------------------------------------------------------------------------------
def test_ttest_hand_computed():
    # t = -3/sqrt(2/3) = -3.674, df 4: two-sided p = 0.0213116
    assert np.isclose(ev.ttest([1, 2, 3], [4, 5, 6]), 0.0213116, atol=1e-6)
    assert np.isclose(ev.ttest_from_stats(2, 1, 5, 1, n=3), 0.0213116, atol=1e-6)
    assert ev.sig_mark(0.01) == '‡' and ev.sig_mark(0.2) == 'n.s.'

def test_write_table_marks(tmp_path):
    df = pd.DataFrame({'row': ['A', 'B', 'C'], 'dataset': 'D', 'metric': 'ACC', 'mean': [90., 80., 70.], 'std': 1., 'mark': ['', '‡', '']})
    md = ev.write_table(df, tmp_path/'t')
    assert md.loc['A', ('D', 'ACC')] == '**90.00 ± 1.00**' and md.loc['B', ('D', 'ACC')] == '<u>80.00 ± 1.00‡</u>'
    tex = (tmp_path/'t.tex').read_text()
    assert '\\textbf{90.00 $\\pm$ 1.00}' in tex and '\\underline{80.00' in tex
    assert '**90.00 ± 1.00**' in (tmp_path/'t.md').read_text() and (tmp_path/'t.csv').is_file()

def test_aggregate_marks_second_best():
    rows = [(e, 'D', 'p', s, 'ACC', v) for e, vs in {'A': [90, 91, 92], 'B': [80, 81, 82]}.items() for s, v in enumerate(vs)]
    ag = ev.aggregate(pd.DataFrame(rows, columns=ev.RESULT_COLUMNS)).set_index('encoder')
    assert ag.mark['B'] == '‡' and ag.mark['A'] == '' and np.isclose(ag['std']['A'], 1.0)

# --- the paper's numbers ------------------------------------------------------------------------------------------------
def test_paper_tables_counts():
    t2, t3, t5 = (ev.load_paper_table(n) for n in ('table2', 'table3', 'table5'))
    assert t2.shape[0] == 20 and t2.row.unique().tolist() == ev.ABLATION_ROWS
    assert t3.shape[0] == 160 and t3.groupby(['dataset', 'metric']).ngroups == 38 and (t3.mark != '').sum() == 38
    assert t5.shape[0] == 342 and t5.row.nunique() == 9 and t5.groupby(['dataset', 'metric']).ngroups == 38
    assert t3.groupby('modality', sort=False).row.nunique().tolist() == [4, 4, 5, 3, 5]

def test_audit_quoted_pvalues_not_reproduced():
    q = ev.audit_quoted({'table5': ev.load_paper_table('table5')}).set_index(['dataset', 'metric'])
    assert np.isclose(q.p_student[('NIH', 'AUC')], 0.388, atol=1e-3)   # the paper quotes 0.099

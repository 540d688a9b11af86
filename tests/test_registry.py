"""What the registry notebook cannot check: printing outside a notebook, and lookups under any spelling (hypothesis).
The unit checks against the paper's Tables 1 and 4 live in nbs/01f_registry.ipynb."""
from hypothesis import given, settings, strategies as st

from midol.registry import DOWNSTREAM, find_dataset, show_registry


def test_show_registry_prints_markdown_outside_a_notebook(capsys):
    show_registry('pretrain')
    out = capsys.readouterr().out.splitlines()
    assert out[0] == '| name | modality | images |' and '| MIMIC-CXR | xray | 277,827 |' in out and len(out) == 12


@given(st.sampled_from(DOWNSTREAM), st.booleans(), st.randoms(use_true_random=False), st.text(' \t', max_size=2))
@settings(max_examples=60, deadline=None)
def test_find_dataset_under_any_case_and_padding(d, by_table_name, rnd, pad):
    name = d.table_name if by_table_name else d.name
    spelled = ''.join(c.upper() if rnd.random() < 0.5 else c.lower() for c in name)
    assert find_dataset(pad + spelled + pad) is d

"""Property tests for midol.information: entropies, mutual information and the identities of the paper's Eq. 4–8, 13, 17."""
import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from midol.information import (IDENTITIES, as_dist, check_identities, cond_entropy, cond_entropy_ratio,
                               cond_entropy_ratio_given_z, cond_mutual_info, entropy, gaussian_critic, gaussian_mi,
                               gaussian_pairs, infonce, interaction_info, mutual_info, random_joint, regroup, toy_views)

TOL = 1e-9
SETTINGS = settings(max_examples=150, deadline=None)


@st.composite
def joints(draw, ndim: int, max_side: int = 4):
    "A joint distribution with `ndim` axes of 1..max_side outcomes; entries are often exactly 0 or tiny."
    shape = draw(st.tuples(*[st.integers(1, max_side)] * ndim))
    elements = st.one_of(st.just(0.), st.floats(0., 1.), st.floats(1e-12, 1e-6))
    w = draw(hnp.arrays(np.float64, shape, elements=elements))
    assume(w.sum() > 0)
    return w / w.sum()


# ---- basic properties -------------------------------------------------------------------------------------------

@SETTINGS
@given(joints(1, max_side=8))
def test_entropy_bounds(p):
    h = entropy(p)
    assert h >= -TOL
    assert h <= np.log(p.size) + TOL


@SETTINGS
@given(joints(2))
def test_conditional_entropy_nonnegative_and_at_most_entropy(p):
    assert cond_entropy(p) >= -TOL
    assert cond_entropy(p) <= entropy(p.sum(1)) + TOL        # conditioning never increases entropy


@SETTINGS
@given(joints(2))
def test_mutual_info_symmetric_nonnegative(p):
    i = mutual_info(p)
    assert i >= -TOL
    assert abs(i - mutual_info(p.T)) < TOL
    assert i <= min(entropy(p.sum(1)), entropy(p.sum(0))) + TOL


@SETTINGS
@given(joints(3))
def test_conditional_mutual_info_nonnegative(p):
    assert cond_mutual_info(p) >= -TOL
    assert abs(cond_mutual_info(p) - cond_mutual_info(p.transpose(1, 0, 2))) < TOL


@SETTINGS
@given(joints(3), st.permutations([0, 1, 2]))
def test_interaction_info_symmetric_in_its_variables(p, perm):
    assert abs(interaction_info(p) - interaction_info(p.transpose(perm))) < TOL


# ---- chain rules ------------------------------------------------------------------------------------------------

@SETTINGS
@given(joints(2))
def test_chain_rule_entropy(p):
    # H(X,Y) = H(X) + H(Y|X); cond_entropy conditions axis 0 on axis 1, so pass p[y, x]
    assert abs(entropy(p) - (entropy(p.sum(1)) + cond_entropy(p.T))) < TOL


@SETTINGS
@given(joints(3))
def test_chain_rule_mutual_info(p):
    # I(X;Y,Z) = I(X;Z) + I(X;Y|Z)
    lhs = mutual_info(regroup(p, 0, (1, 2)))
    assert abs(lhs - (mutual_info(regroup(p, 0, 2)) + cond_mutual_info(p))) < TOL


# ---- the paper's identities -------------------------------------------------------------------------------------

@SETTINGS
@given(joints(3))
def test_identities_hypothesis(p):
    errors = check_identities(p)
    assert set(errors) == set(IDENTITIES)
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("shape", [(2, 2, 2), (2, 3, 4), (4, 3, 2), (3, 5, 3), (6, 2, 5)])
@pytest.mark.parametrize("sparsity", [0., 0.3, 0.6])
def test_identities_random_joint(shape, sparsity):
    for seed in range(4):                                   # 5 shapes x 3 sparsities x 4 seeds = 60 distributions
        errors = check_identities(random_joint(shape, seed, sparsity))
        assert max(errors.values()) < TOL, (shape, sparsity, seed, errors)


def test_checker_detects_a_wrong_identity():
    "A wrong version of Eq. 8 (H(X|Y) instead of H(X|Z)) must not pass on random distributions."
    for seed in range(5):
        p = random_joint((3, 4, 2), seed)
        wrong = (mutual_info(regroup(p, 0, 1)) - interaction_info(p)) - (cond_entropy(regroup(p, 0, 1))
                                                                         - cond_entropy(regroup(p, 0, (1, 2))))
        assert abs(wrong) > 1e-3


@SETTINGS
@given(joints(3))
def test_density_ratio_forms(p):
    assert abs(cond_entropy_ratio(regroup(p, 0, 2)) - cond_entropy(regroup(p, 0, 2))) < TOL                 # Eq. 13
    assert abs(cond_entropy_ratio_given_z(p) - cond_entropy(regroup(p, 0, (1, 2)))) < TOL                    # Eq. 17


def test_known_values():
    copies = np.zeros((2, 2, 2)); copies[0, 0, 0] = copies[1, 1, 1] = 0.5
    xor = np.zeros((2, 2, 2))
    for x in (0, 1):
        for y in (0, 1): xor[x, y, x ^ y] = 0.25
    assert interaction_info(copies) == pytest.approx(np.log(2))
    assert interaction_info(xor) == pytest.approx(-np.log(2))
    assert cond_mutual_info(xor) == pytest.approx(np.log(2))
    assert entropy(np.full(5, 0.2)) == pytest.approx(np.log(5))


# ---- invalid input ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, match", [
    ([0.5, 0.6], "sum to 1"),
    ([1.5, -0.5], "non-negative"),
    ([np.nan, 1.0], "finite"),
    ([np.inf, 0.0], "finite"),
    ([], "at least one"),
    (1.0, "at least one"),
    (["a", "b"], "cannot read"),
])
def test_invalid_distributions_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        entropy(bad)


def test_wrong_number_of_variables_raises():
    with pytest.raises(ValueError, match="2 variable"):
        mutual_info(np.full((2, 2, 2), 1 / 8))
    with pytest.raises(ValueError, match="3 variable"):
        interaction_info(np.full((2, 2), 1 / 4))
    with pytest.raises(ValueError, match="3 variable"):
        check_identities(np.full(4, 1 / 4))
    with pytest.raises(ValueError, match="distinct"):
        regroup(np.full((2, 2), 1 / 4), 0, 0)


def test_torch_input_accepted():
    p = random_joint((3, 2, 2), seed=3)
    assert interaction_info(torch.tensor(p)) == pytest.approx(interaction_info(p), abs=1e-12)
    assert mutual_info(torch.tensor(p.sum(2), dtype=torch.float32)) == pytest.approx(mutual_info(p.sum(2)), abs=1e-6)
    assert as_dist(torch.tensor(p)).dtype == np.float64


def test_random_joint():
    p = random_joint((3, 4, 2), seed=0, sparsity=0.5)
    assert p.shape == (3, 4, 2) and abs(p.sum() - 1) < 1e-12 and 0 < (p == 0).sum() < p.size
    assert np.array_equal(random_joint((3, 4), 7), random_joint((3, 4), 7))
    with pytest.raises(ValueError, match="sparsity"):
        random_joint((2, 2), 0, sparsity=1.0)
    with pytest.raises(ValueError, match="shape"):
        random_joint((2, 0), 0)


# ---- toy model and InfoNCE --------------------------------------------------------------------------------------

@pytest.mark.parametrize("t", [0.0, 0.25, 0.5, 0.75, 1.0])
def test_toy_views(t):
    p = toy_views(t)
    i_xy, i_xyz, i_xy_z = mutual_info(regroup(p, 0, 1)), interaction_info(p), cond_mutual_info(p)
    assert abs(i_xy - (i_xyz + i_xy_z)) < TOL
    # the modality part is fully redundant with Z: I(X;Y;Z) is the MI of two noisy copies of the modality alone
    m = toy_views(t, n_fine=1)
    assert abs(i_xyz - mutual_info(regroup(m, 0, 1))) < TOL


def test_toy_views_objectives_disagree():
    ts = np.linspace(0, 1, 11)
    i_xy = [mutual_info(regroup(toy_views(t), 0, 1)) for t in ts]
    i_xy_z = [cond_mutual_info(toy_views(t)) for t in ts]
    assert np.argmax(i_xy) == len(ts) - 1 and np.argmax(i_xy_z) == 0


@SETTINGS
@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 6)).map(lambda s: (s[0], s[0])),
                  elements=st.floats(-50, 50)))
def test_infonce_at_most_log_k(scores):
    assert infonce(scores) <= np.log(len(scores)) + 1e-12


def test_infonce_invalid():
    with pytest.raises(ValueError, match="square"):
        infonce(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="finite"):
        infonce(np.array([[np.nan, 0.], [0., 0.]]))


@pytest.mark.parametrize("k", [4, 32])
@pytest.mark.parametrize("rho", [0.3, 0.8, 0.99, 0.999])
def test_infonce_below_gaussian_mi(k, rho):
    x, y = gaussian_pairs(4096 // k, k, 4, rho, seed=1)
    est = np.array([infonce(s) for s in gaussian_critic(x, y, rho)])
    se = est.std() / np.sqrt(len(est))
    assert est.mean() <= gaussian_mi(rho, 4) + 3 * se
    assert est.mean() <= np.log(k) + 1e-12
    if gaussian_mi(rho, 4) > np.log(k) + 4:                   # far above the ceiling: saturated
        assert np.log(k) - est.mean() < 0.05

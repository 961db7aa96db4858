"""The pose prior: normalisation, flip, ground-plane alignment, k-centres, mixture of PPCA, files."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from realtime.lifting import Lifter, PosePrior, PriorError
from realtime.lifting.prior import (DEFAULT_PRIOR, ROOT_INDEX, _log_gaussians, _ppca, align,
                                    bone_sum_squares, flip, k_centres, normalise, rotate_y)
from realtime.skeleton import BONES3D, JOINTS3D

REPO = __import__("pathlib").Path(__file__).resolve().parent.parent
J = {n: i for i, n in enumerate(JOINTS3D)}


def articulated_poses(n: int, rng: np.random.Generator) -> np.ndarray:
    """Random but human-shaped poses (metres, y up): limbs swing in the sagittal plane."""
    p = np.zeros((n, len(JOINTS3D), 3))
    p[:, J["thorax"]] = [0.0, 0.5, 0.0]
    p[:, J["thorax"], [0, 2]] += rng.normal(0, 0.05, (n, 2))
    p[:, J["neck"]] = p[:, J["thorax"]] + [0, 0.1, 0]
    p[:, J["head_top"]] = p[:, J["neck"]] + [0, 0.2, 0] + rng.normal(0, 0.03, (n, 3))
    for side, sx in (("r", -1.0), ("l", 1.0)):
        p[:, J[side + "_shoulder"]] = p[:, J["thorax"]] + [sx * 0.18, 0, 0]
        p[:, J[side + "_hip"]] = [sx * 0.1, 0, 0]
        for top, mid, end, lengths, lo, hi in (("_shoulder", "_elbow", "_wrist", (0.28, 0.25), -1.2, 1.2),
                                               ("_hip", "_knee", "_ankle", (0.42, 0.40), -0.6, 0.9)):
            a = rng.uniform(lo, hi, n)
            b = a + rng.uniform(0, 1.3, n) * (1 if top == "_shoulder" else -1)
            seg = lambda ang: np.stack([np.zeros(n), -np.cos(ang), np.sin(ang)], -1)  # noqa: E731
            p[:, J[side + mid]] = p[:, J[side + top]] + lengths[0] * seg(a)
            p[:, J[side + end]] = p[:, J[side + mid]] + lengths[1] * seg(b)
    p *= rng.normal(1.0, 0.05, (n, 1, 1))
    return rotate_y(p, rng.uniform(0, 2 * np.pi, n)) + rng.normal(0, 1, (n, 1, 3))


def test_normalise_root_centres_and_scales_limbs():
    poses = articulated_poses(50, np.random.default_rng(0)) * 1.7
    out = normalise(poses)
    assert np.allclose(out[:, ROOT_INDEX], 0.0)
    assert np.allclose(bone_sum_squares(out), 1.0)
    ratio = np.linalg.norm(out[:, 3] - out[:, 2], axis=-1) / np.linalg.norm(poses[:, 3] - poses[:, 2], axis=-1)
    assert np.allclose(ratio, 1 / np.sqrt(bone_sum_squares(poses - poses[:, ROOT_INDEX : ROOT_INDEX + 1])))


def test_flip_mirrors_x_and_swaps_left_right():
    poses = articulated_poses(20, np.random.default_rng(1))
    mirrored = flip(poses)
    assert np.allclose(flip(mirrored), poses)
    assert np.allclose(mirrored[:, J["r_wrist"]], poses[:, J["l_wrist"]] * [-1, 1, 1])
    assert np.allclose(mirrored[:, J["head_top"]], poses[:, J["head_top"]] * [-1, 1, 1])
    assert np.allclose(bone_sum_squares(mirrored), bone_sum_squares(poses))


def test_alignment_is_invariant_to_ground_plane_rotation():
    rng = np.random.default_rng(2)
    x = normalise(articulated_poses(600, rng))
    turns = rng.uniform(0, 2 * np.pi, len(x))
    theta = align(np.concatenate([x, rotate_y(x, turns)]), n_basis=3, iters=2)
    diff = np.angle(np.exp(1j * (theta[len(x):] + turns - theta[: len(x)])))
    assert np.degrees(np.abs(diff)).max() < 1.0


def test_k_centres_one_centre_per_mode_even_when_one_mode_dominates():
    rng = np.random.default_rng(3)
    big = rng.normal(0, 0.1, (300, 2))
    small = rng.normal(0, 0.1, (30, 2)) + [5.0, 0.0]
    chosen = k_centres(np.concatenate([big, small]), 2)
    assert sorted(chosen >= 300) == [False, True]


def test_ppca_density_matches_dense_gaussian():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    w, s2 = _ppca(np.cov(x, rowvar=False, bias=True), 2)
    mu = x.mean(0)
    ours = _log_gaussians(x[:5], mu[None], w[None], np.array([s2]))[:, 0]
    dense = multivariate_normal(mu, w @ w.T + s2 * np.eye(6)).logpdf(x[:5])
    assert np.allclose(ours, dense)


def test_fit_save_load_roundtrip(tmp_path):
    poses = articulated_poses(800, np.random.default_rng(5))
    prior = PosePrior.fit(poses, n_components=3, n_basis=4, progress=False, em_iters=10)
    assert prior.n_components == 3 and prior.n_basis == 4
    assert np.isclose(prior.weights.sum(), 1.0) and (prior.noise > 0).all()
    assert np.allclose(prior.means[:, ROOT_INDEX], 0.0)
    assert prior.metric_scale == pytest.approx(np.sqrt(bone_sum_squares(
        poses - poses[:, ROOT_INDEX : ROOT_INDEX + 1]).mean()))
    path = tmp_path / "prior.npz"
    prior.save(path)
    again = PosePrior.load(path)
    assert np.allclose(again.means, prior.means, atol=1e-6) and again.bone_ss_m == prior.bone_ss_m
    held_out = articulated_poses(50, np.random.default_rng(6))
    assert np.allclose(again.log_likelihood(held_out), prior.log_likelihood(held_out), atol=1e-3)


def test_fit_rejects_bad_input():
    with pytest.raises(PriorError, match="poses: expected shape"):
        PosePrior.fit(np.zeros((100, 14, 3)))
    with pytest.raises(PriorError, match="too few"):
        PosePrior.fit(articulated_poses(5, np.random.default_rng(0)), n_components=3)


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(PriorError, match="no such pose prior"):
        PosePrior.load(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(PriorError, match="bad.npz"):
        PosePrior.load(bad)
    partial = tmp_path / "partial.npz"
    np.savez(partial, means=np.zeros((1, 16, 3)))
    with pytest.raises(PriorError, match="missing field"):
        PosePrior.load(partial)


def test_committed_default_prior_loads_and_lifts():
    assert DEFAULT_PRIOR.exists(), "engines/pose_prior.npz must be committed"
    prior = PosePrior.load()
    assert prior.n_components >= 3 and 1.0 < prior.metric_scale < 2.0
    assert "command" in prior.info
    result = Lifter(prior).lift(np.random.default_rng(0).uniform(100, 400, (2, 14, 2)), np.ones((2, 14)))
    assert result.valid.all() and np.isfinite(result.joints3d).all()


@pytest.mark.slow
def test_train_prior_tool_on_a_small_subset(tmp_path, mocap_dir):
    out = tmp_path / "small.npz"
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "train_prior.py"), "--mocap", str(mocap_dir), "--out", str(out),
         "--subjects", "02", "05", "--val-subjects", "06", "--fps", "2", "--components", "2", "--basis", "4",
         "--noise2d", "0.03", "--val-poses", "200", "--no-progress",
         "--cache", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "val" in proc.stdout
    prior = PosePrior.load(out)
    assert prior.n_components == 2 and prior.n_basis == 4
    assert prior.info["subjects"] == ["02", "05"]
    poses = articulated_poses(4, np.random.default_rng(7))
    lifted = Lifter(prior).lift(poses[:, :14, :2] * [300, -300] + 500, np.ones((4, 14)))
    assert lifted.valid.all() and np.isfinite(lifted.joints3d).all()


@pytest.mark.slow
def test_train_prior_tool_refits_on_every_subject_with_final_all(tmp_path, mocap_dir):
    """``--final all`` (the shipped prior): the setting chosen on validation refitted on the training,
    validation and every other subject of the folder (here a test subject's run)."""
    import shutil

    folder = tmp_path / "mocap"
    folder.mkdir()
    for clip in ("07/07_01", "08/08_01", "09/09_01"):
        shutil.copy(mocap_dir / "bvh_cgspeed" / f"{clip}.bvh", folder)
    out = tmp_path / "all.npz"
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "train_prior.py"), "--mocap", str(folder), "--out", str(out),
         "--subjects", "07", "--val-subjects", "08", "--fps", "10", "--components", "2", "--basis", "4",
         "--noise2d", "0.03", "--val-poses", "100", "--final", "all", "--no-progress",
         "--cache", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert "refitted on all" in proc.stdout
    prior = PosePrior.load(out)
    assert prior.info["final"] == "all" and prior.info["subjects"] == ["07", "08", "09"]
    assert prior.info["val_subjects"] == ["08"]


@pytest.mark.parametrize("limbs", ["arms", "legs"])
def test_recombined_limbs_keep_each_body_and_its_bone_lengths(limbs):
    from realtime.lifting.augment import LIMBS, body_frames, recombine

    rng = np.random.default_rng(3)
    poses = articulated_poses(200, rng)
    out = recombine(poses, 300, np.random.default_rng(4), limbs, mirrored=0.0)
    (chain_r, chain_l), (right, left) = LIMBS[limbs]
    moved = list(chain_r[1:] + chain_l[1:])
    still = [j for j in range(len(JOINTS3D)) if j not in moved]
    # every new pose is one of the bodies with its own bones: the unmoved joints match a source pose
    # exactly, and every bone length (moved or not) is that pose's
    src = np.array([np.flatnonzero(np.abs(poses[:, still] - o[still]).max((1, 2)) < 1e-12)[0] for o in out])
    child, parent = np.array(BONES3D).T
    length = lambda p: np.linalg.norm(p[:, child] - p[:, parent], axis=-1)  # noqa: E731
    np.testing.assert_allclose(length(out), length(poses[src]), atol=1e-9)
    # the limbs came from elsewhere: most new poses differ from their body there
    assert (np.abs(out[:, moved] - poses[src][:, moved]).max((1, 2)) > 1e-3).mean() > 0.9
    # a body that is its own donor is unchanged
    one = recombine(poses[:1], 5, np.random.default_rng(0), limbs, mirrored=0.0)
    np.testing.assert_allclose(one, np.repeat(poses[:1], 5, 0), atol=1e-9)
    # mirrored copies: both limbs point alike in the body's frame, one side's across axis negated
    twin = recombine(poses, 100, np.random.default_rng(5), limbs, mirrored=1.0)
    axes = body_frames(twin, right, left)
    local = lambda a, b: np.einsum("nij,nj->ni", axes, twin[:, b] - twin[:, a])  # noqa: E731
    r, m = local(chain_r[0], chain_r[1]), local(chain_l[0], chain_l[1])
    r, m = r / np.linalg.norm(r, axis=1, keepdims=True), m / np.linalg.norm(m, axis=1, keepdims=True)
    np.testing.assert_allclose(r * [-1, 1, 1], m, atol=1e-9)


def test_poses_sat_down_keep_their_upper_body_and_bones_and_put_the_thighs_forward():
    from realtime.lifting.augment import LIMBS, body_frames, seated

    poses = articulated_poses(200, np.random.default_rng(6))
    (chain_r, chain_l), (right, left) = LIMBS["legs"]
    moved = [chain_r[1], chain_r[2], chain_l[1], chain_l[2]]
    still = [j for j in range(len(JOINTS3D)) if j not in moved]
    child, parent = np.array(BONES3D).T
    length = lambda p: np.linalg.norm(p[:, child] - p[:, parent], axis=-1)  # noqa: E731
    for on_floor in (0.0, 1.0):
        out = seated(poses, 300, np.random.default_rng(7), on_floor=on_floor)
        src = np.array([np.flatnonzero(np.abs(poses[:, still] - o[still]).max((1, 2)) < 1e-12)[0] for o in out])
        np.testing.assert_allclose(length(out), length(poses[src]), atol=1e-9)
        axes = body_frames(out, right, left)                     # rows: across, up, forward
        for hip, knee, ankle in (chain_r, chain_l):
            thigh = np.einsum("nij,nj->ni", axes, out[:, knee] - out[:, hip])
            shin = np.einsum("nij,nj->ni", axes, out[:, ankle] - out[:, knee])
            thigh /= np.linalg.norm(thigh, axis=1, keepdims=True)
            shin /= np.linalg.norm(shin, axis=1, keepdims=True)
            assert (thigh[:, 2] > 0.3).all() and abs(thigh[:, 1].mean()) < 0.2   # forward, about level
            if on_floor:
                assert (shin[:, 2] > 0.5).all()                                   # legs out in front
            else:
                assert (shin[:, 1] < -0.7).all()                                  # shins hang down
    assert seated(poses, 0, np.random.default_rng(0)).shape == (0, len(JOINTS3D), 3)


def test_reconstruct_is_the_closest_pose_the_prior_holds():
    rng = np.random.default_rng(11)
    prior = PosePrior.fit(articulated_poses(1500, rng), n_components=2, n_basis=12, progress=False)
    poses = articulated_poses(20, rng)                      # new poses of the same kind, turned and placed
    closest = prior.reconstruct(poses)
    err = np.linalg.norm(closest - poses, axis=-1).mean(1)
    assert np.median(err) < 0.03                            # in place, in size, in the pose's own frame
    wild = poses.copy()
    wild[:, J["r_wrist"]] += [0.5, 0.5, 0.0]                # a wrist half a metre off its forearm
    wild_err = np.linalg.norm(prior.reconstruct(wild) - wild, axis=-1).mean(1)
    assert np.median(wild_err) > 2 * np.median(err)
    holes = poses.copy()
    holes[:, J["neck"]] = np.nan                             # a dataset without the joint
    filled = prior.reconstruct(holes)
    assert np.isfinite(filled).all()
    assert np.median(np.linalg.norm(filled[:, J["neck"]] - poses[:, J["neck"]], axis=-1)) < 0.05

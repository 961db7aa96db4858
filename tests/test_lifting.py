"""The lifter: the closed-form solve against a brute-force reference, missing joints, recovery."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.optimize import least_squares

from realtime.config import LiftingConfig
from realtime.lifting import Lifter, PosePrior
from realtime.lifting.evaluation import drop_joints, mpjpe, pa_mpjpe, random_views
from realtime.lifting.lifter import _rot_x, _rot_y
from realtime.skeleton import JOINTS3D, LSP14, level_to_camera
from test_prior import articulated_poses


@pytest.fixture(scope="module")
def prior() -> PosePrior:
    return PosePrior.fit(articulated_poses(1500, np.random.default_rng(0)), n_components=3, n_basis=5,
                         progress=False, em_iters=15)


def _project(prior, k, coeff, theta, phi, scale, shift):
    model = prior.means[k] + prior.bases[k] @ coeff
    cam = model @ (_rot_x(np.array(phi)) @ _rot_y(np.array(theta))).T
    return (cam[:14, :2] * scale + shift) * [1, -1], model


def _objective(prior, lifter, k, theta, phi, y_up, w):
    """Pixel-space residuals of the regularised problem for one view and component (reference)."""
    proj = (_rot_x(np.array(phi)) @ _rot_y(np.array(theta)))[:2]
    lam = lifter._lam[k]

    def residuals(params):
        s, t, a = params[0], params[1:3], params[3:]
        model = prior.means[k, :14] + prior.bases[k, :14] @ a
        r = (y_up - (s * model @ proj.T + t)) * np.sqrt(w)[:, None]
        return np.concatenate([r.ravel(), np.sqrt(lam) * s * a])
    return residuals


def _pose_like(prior, rng, n_missing=0):
    """A noisy projection of a random model pose, with random confidences and missing joints."""
    kp, _ = _project(prior, int(rng.integers(prior.n_components)), rng.normal(size=prior.n_basis),
                     rng.uniform(0, 2 * np.pi), math.radians(rng.uniform(-10, 30)), rng.uniform(150, 400),
                     rng.uniform(-300, 300, 2))
    kp = kp + rng.normal(0, 5.0, kp.shape)
    conf = rng.uniform(0.3, 1.0, 14)
    conf[rng.choice(14, n_missing, replace=False)] = 0.0
    return kp, conf


def _reference(prior, lifter, k, theta, phi, kp, conf):
    """scipy's solution and posterior energy for one view and component."""
    w = (conf >= lifter.min_confidence).astype(np.float64)
    y_up = kp * [1, -1]
    ref = least_squares(_objective(prior, lifter, k, theta, phi, y_up, w),
                        np.r_[200.0, (w[:, None] * y_up).sum(0) / w.sum(), np.zeros(prior.n_basis)], method="lm",
                        xtol=1e-12, ftol=1e-12)
    s2lam = ref.x[0] ** 2 * lifter._lam[k]
    energy = 2 * ref.cost / (2 * s2lam) + w.sum() * np.log(s2lam) - np.log(prior.weights[k])
    return ref.x, energy


def test_solve_matches_brute_force_least_squares(prior):
    rng = np.random.default_rng(1)
    lifter = Lifter(prior, rotations=16, camera_pitch_deg=10.0)
    for trial in range(3):
        kp, conf = _pose_like(prior, rng, n_missing=trial)
        out = lifter.lift(kp[None], conf[None])
        assert out.valid[0]
        k, theta, phi = out.component[0], math.radians(out.rotation_deg[0]), math.radians(out.elevation_deg[0])
        ref, _ = _reference(prior, lifter, k, theta, phi, kp, conf)
        assert out.scale[0] * prior.metric_scale == pytest.approx(ref[0], rel=1e-5)
        assert np.allclose(out.translation[0] * [1, -1], ref[1:3], atol=1e-3)
        assert np.allclose(out.coefficients[0], ref[3:], atol=1e-5)
        model = prior.means[k] + prior.bases[k] @ ref[3:]
        proj = (_rot_x(np.array(phi)) @ _rot_y(np.array(theta)))[:2]
        assert np.allclose(out.reprojected2d[0], (ref[0] * model[:14] @ proj.T + ref[1:3]) * [1, -1], atol=1e-3)


def test_selection_is_the_best_over_all_views_and_components(prior):
    """Brute force: solve every (rotation, elevation, component) with scipy and take the lowest energy."""
    rng = np.random.default_rng(2)
    lifter = Lifter(prior, rotations=12, camera_pitch_deg=None, elevations_deg=(0.0, 20.0))
    kp, conf = _pose_like(prior, rng, n_missing=1)
    out = lifter.lift(kp[None], conf[None])
    energies = {}
    for phi in (0.0, 20.0):
        for theta in np.linspace(0, 360, 12, endpoint=False):
            for k in range(prior.n_components):
                x, e = _reference(prior, lifter, k, math.radians(theta), math.radians(phi), kp, conf)
                energies[(theta, phi, k)] = e if x[0] > 0 else np.inf
    theta, phi, k = min(energies, key=energies.get)
    assert (out.rotation_deg[0], out.elevation_deg[0], out.component[0]) == pytest.approx((theta, phi, k))


def test_exact_model_pose_is_recovered(prior):
    rng = np.random.default_rng(3)
    coeff = rng.normal(size=prior.n_basis) * 0.5
    theta, phi = 2 * math.pi * 7 / 80, math.radians(15)
    kp, model = _project(prior, 0, coeff, theta, phi, 400.0, np.array([640.0, -360.0]))
    out = Lifter(prior, camera_pitch_deg=15.0).lift(kp[None], np.ones((1, 14)))
    truth = (model @ _rot_y(np.array(theta)).T) * prior.metric_scale
    assert out.joint_names == list(JOINTS3D) and out.joint_names[:14] == list(LSP14)
    assert np.abs(out.joints3d[0] - truth).max() < 0.1
    assert np.abs(out.reprojected2d[0] - kp).max() < 8.0
    assert out.translation[0] == pytest.approx([640.0, 360.0], abs=3.0)
    assert out.scale[0] * prior.metric_scale == pytest.approx(400.0, rel=0.01)
    assert (out.uncertainty[0, :14] > 0).all() and out.uncertainty[0, JOINTS3D.index("pelvis")] == 0


def test_missing_joint_has_no_influence_and_too_few_is_invalid(prior):
    rng = np.random.default_rng(4)
    lifter = Lifter(prior, min_visible_joints=6, min_confidence=0.05)
    kp = rng.uniform(100, 500, (1, 14, 2))
    conf = np.ones((1, 14))
    conf[0, 5] = 0.0
    base = lifter.lift(kp, conf)
    assert base.valid[0]
    for value, c in (([1e6, -1e6], 0.0), ([np.nan, np.nan], 0.0), ([0.0, 0.0], 0.01), ([np.nan, 3.0], 1.0)):
        moved, moved_conf = kp.copy(), conf.copy()
        moved[0, 5], moved_conf[0, 5] = value, c
        out = lifter.lift(moved, moved_conf)
        assert np.allclose(out.joints3d, base.joints3d) and np.allclose(out.cost, base.cost)
    few = np.zeros((2, 14))
    few[0, :5] = 1.0
    few[1, :6] = 1.0
    res = lifter.lift(np.repeat(kp, 2, axis=0), few)
    assert res.valid.tolist() == [False, True]
    assert np.isnan(res.joints3d[0]).all() and np.isfinite(res.joints3d[1]).all()
    assert res.component[0] == -1


def test_batch_equals_single_and_groups_by_pattern(prior):
    views = drop_joints(random_views(articulated_poses(12, np.random.default_rng(5)), np.random.default_rng(6)),
                        2, np.random.default_rng(7))
    conf = views.confidence.copy()
    conf[:4] = np.where(conf[:4] > 0, 1.0, 0.0)
    conf[4:8] = 1.0
    lifter = Lifter(prior)
    batch = lifter.lift(views.keypoints2d, conf)
    for i in range(len(conf)):
        one = lifter.lift(views.keypoints2d[i : i + 1], conf[i : i + 1])
        assert np.allclose(one.joints3d, batch.joints3d[i : i + 1], atol=1e-9)
        assert np.allclose(one.uncertainty, batch.uncertainty[i : i + 1], atol=1e-9)


def test_lifting_projected_poses_recovers_them(prior):
    poses = articulated_poses(200, np.random.default_rng(8))
    views = random_views(poses, np.random.default_rng(9), elevation_deg=(20.0, 20.0))
    out = Lifter(prior, camera_pitch_deg=20.0).lift(views.keypoints2d, views.confidence)
    assert out.valid.all()
    assert np.median(pa_mpjpe(out.joints3d, views.truth)) < 0.06
    assert np.median(mpjpe(out.joints3d, views.truth)) < 0.10


def test_a_lift_given_the_camera_corrects_for_perspective(prior):
    """Close cameras (focal 500-700 px, people 600-800 px tall: 1-2 m away, a webcam on a desk)
    foreshorten a body far from weak perspective; the lift given the camera's focal length and principal point undoes most of it."""
    poses = articulated_poses(300, np.random.default_rng(20))
    views = random_views(poses, np.random.default_rng(21), elevation_deg=(20.0, 20.0), focal_px=(500.0, 700.0),
                         height_px=(600.0, 800.0))
    lifter = Lifter(prior, camera_pitch_deg=20.0)
    weak = lifter.lift(views.keypoints2d, views.confidence)
    full = lifter.lift(views.keypoints2d, views.confidence, **views.camera())
    assert weak.valid.all() and full.valid.all()
    weak_mm, full_mm = (np.mean(pa_mpjpe(o.joints3d, views.truth)) * 1000 for o in (weak, full))
    assert full_mm < 0.9 * weak_mm, (weak_mm, full_mm)
    # the reprojection is in the image's own perspective: closer to the keypoints than weak perspective gets
    weak_px, full_px = (np.abs(o.reprojected2d - views.keypoints2d).mean() for o in (weak, full))
    assert full_px < weak_px, (weak_px, full_px)
    # a far camera (long lens) is nearly weak perspective: the correction costs nothing there
    far = random_views(poses, np.random.default_rng(22), elevation_deg=(20.0, 20.0), focal_px=(20000.0, 20000.0))
    a, b = lifter.lift(far.keypoints2d, far.confidence), lifter.lift(far.keypoints2d, far.confidence, **far.camera())
    assert np.mean(pa_mpjpe(b.joints3d, far.truth)) < np.mean(pa_mpjpe(a.joints3d, far.truth)) + 0.001
    with pytest.raises(ValueError, match="focal_px and centre_px"):
        lifter.lift(views.keypoints2d, views.confidence, focal_px=500.0)
    with pytest.raises(ValueError, match="positive"):
        lifter.lift(views.keypoints2d, views.confidence, focal_px=0.0, centre_px=(960, 540))


def test_the_runtime_lifts_with_its_sources_camera_unless_perspective_is_off(prior):
    from realtime.lifting import LiftingSetup
    from realtime.lifting.camera import Camera
    from realtime.transport.schema import Person

    views = random_views(articulated_poses(6, np.random.default_rng(23)), np.random.default_rng(24),
                         elevation_deg=(10.0, 10.0), focal_px=(600.0, 600.0), height_px=(500.0, 500.0))

    def people():
        return [Person(keypoints2d=k, confidence=c, score=0.9) for k, c in zip(views.keypoints2d, views.confidence)]

    lifter = Lifter(prior, rotations=24, camera_pitch_deg=10.0)
    for perspective, camera, expected in ((True, Camera(600.0, 10.0), views.camera()),
                                          (True, Camera(None, 10.0), {"focal_px": 0.8 * 1920, "centre_px": (960, 540)}),
                                          (False, Camera(600.0, 10.0), {})):
        setup = LiftingSetup(prior, LiftingConfig(rotations=24, perspective=perspective))
        lifted = people()
        setup.lift_people(lifted, camera, 1920, 1080)
        truth = lifter.lift(views.keypoints2d, views.confidence, **expected)
        assert np.allclose(np.stack([p.joints3d for p in lifted]), truth.joints3d, atol=1e-9)


def test_bad_input_shapes_are_named(prior):
    lifter = Lifter(prior)
    with pytest.raises(ValueError, match="keypoints2d"):
        lifter.lift(np.zeros((2, 17, 2)), np.ones((2, 17)))
    with pytest.raises(ValueError, match="confidence"):
        lifter.lift(np.zeros((2, 14, 2)), np.ones((2, 13)))
    empty = lifter.lift(np.zeros((0, 14, 2)), np.zeros((0, 14)))
    assert empty.joints3d.shape == (0, 16, 3)


def test_the_lifting_setup_builds_one_lifter_per_pitch_from_the_config(prior, tmp_path):
    from realtime.lifting import LiftingSetup, PosePrior, PriorError

    setup = LiftingSetup(prior, LiftingConfig(rotations=40, camera_pitch_deg=12.0))
    lifter = setup.lifter(12.0)
    assert len(lifter._theta) == 40 and lifter.camera_pitch_deg == 12.0 and lifter.prior is prior
    assert setup.lifter(12.0) is lifter                       # built once, shared
    searching = setup.lifter(None)
    assert len(searching._theta) == 40 * len(LiftingConfig().elevations_deg)
    # a prior named in the config is the one loaded; one that cannot be loaded is an error naming the key
    prior.save(tmp_path / "mine.npz")
    assert LiftingSetup.from_config(LiftingConfig(prior=str(tmp_path / "mine.npz"))).prior == PosePrior.load(
        tmp_path / "mine.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a prior")
    with pytest.raises(PriorError, match=r"^\[lifting\] prior: .*bad.npz: not a pose prior"):
        LiftingSetup.from_config(LiftingConfig(prior=str(tmp_path / "bad.npz")))


def test_priors_compare_by_value_and_are_not_hashable(prior):
    import dataclasses

    copy = dataclasses.replace(prior, means=prior.means.copy(), info=dict(prior.info))
    assert copy == prior
    other = dataclasses.replace(prior, means=prior.means + 1e-3)
    assert other != prior and (prior == "a prior") is False
    with pytest.raises(TypeError):
        hash(prior)


def test_default_prior_recovers_projected_training_poses(mocap_dir):
    """Real mocap (a training clip) seen by random perspective cameras at a known pitch."""
    from realtime.mocap import load_clip

    prior = PosePrior.load()
    clip = load_clip(mocap_dir / "bvh_cgspeed" / "07" / "07_01.bvh").subsample(10.0)
    assert clip.subject in prior.info["subjects"]
    views = random_views(clip.joints.astype(np.float64), np.random.default_rng(10), elevation_deg=(15.0, 15.0))
    out = Lifter(prior, camera_pitch_deg=15.0).lift(views.keypoints2d, views.confidence)
    assert out.valid.all()
    assert np.median(pa_mpjpe(out.joints3d, views.truth)) < 0.05
    assert np.median(mpjpe(out.joints3d, views.truth)) < 0.08
    reprojection = np.linalg.norm(out.reprojected2d - views.keypoints2d, axis=-1).mean(1) / views.height_px
    assert np.median(reprojection) < 0.02


def _direct_energies(prior, lifter, kp, conf, thetas, phis):
    """Uncached reference: every (elevation, rotation, component) solved on the visible rows alone
    (float64); returns the negative log posteriors, in the lifter's view order, and the solutions."""
    seen = conf >= lifter.min_confidence
    y = (kp * [1, -1])[seen].ravel()
    energies, solutions = [], []
    for phi in phis:
        for theta in thetas:
            proj = (_rot_x(np.array(phi)) @ _rot_y(np.array(theta)))[:2]
            for k in range(prior.n_components):
                design = np.zeros((14, 2, 3 + prior.n_basis))
                design[..., 0] = prior.means[k, :14] @ proj.T
                design[:, 0, 1] = design[:, 1, 2] = 1.0
                design[..., 3:] = np.einsum("cx,lxj->lcj", proj, prior.bases[k, :14])
                a = design[seen].reshape(len(y), -1)
                ridge = np.diag(np.r_[0.0, 0.0, 0.0, np.full(prior.n_basis, lifter._lam[k])])
                z = np.linalg.solve(a.T @ a + ridge, a.T @ y)
                cost = ((y - a @ z) ** 2).sum() + ridge[3:, 3:].diagonal() @ z[3:] ** 2
                s2lam = z[0] ** 2 * lifter._lam[k]
                energy = cost / (2 * s2lam) + seen.sum() * np.log(s2lam) - np.log(prior.weights[k])
                energies.append(energy if z[0] > 1e-6 else np.inf)
                solutions.append((math.degrees(theta), math.degrees(phi), k, z))
    return np.array(energies), solutions


def test_repeated_missing_patterns_reuse_cached_work_and_match_direct_solve(prior):
    """A stream repeats a few missing-joint patterns: the second frame builds nothing new, and the
    cached Schur-complement scoring gives every view the energy of solving it directly."""
    rng = np.random.default_rng(11)
    people = [_pose_like(prior, rng, n_missing=m) for m in (1, 3, 0)]
    kp = np.stack([p[0] for p in people] * 2)
    conf = np.stack([p[1] for p in people] * 2)
    lifter = Lifter(prior, rotations=16, elevations_deg=(0.0, 20.0))
    first = lifter.lift(kp, conf)
    info = lifter.cache_info()
    assert (info["hits"], info["misses"], info["size"]) == (0, 2, 2) and info["bytes"] > 0
    second = lifter.lift(kp + 3.0, conf)
    assert lifter.cache_info() == dict(info, hits=2)
    assert np.allclose(second.joints3d, first.joints3d, atol=1e-9)
    assert np.allclose(second.translation, first.translation + [3.0, 3.0], atol=1e-6)
    thetas = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    seen = conf >= lifter.min_confidence
    centred = np.where(seen[..., None], (kp - kp.mean(1, keepdims=True)) * [1, -1] / 100.0, 0.0)
    scored = lifter._energy(centred.reshape(len(kp), -1), ~seen)
    for i in range(len(kp)):
        energies, solutions = _direct_energies(prior, lifter, kp[i], conf[i], thetas, np.radians([0.0, 20.0]))
        ok = np.isfinite(energies)
        assert (np.isfinite(scored[i]) == ok).all()
        assert np.allclose(scored[i][ok] - scored[i][ok].min(), energies[ok] - energies[ok].min(), atol=2e-3)
        theta, phi, k, z = solutions[int(np.argmin(energies))]
        assert (second.rotation_deg[i], second.elevation_deg[i], second.component[i]) == pytest.approx((theta, phi, k))
        assert second.scale[i] * prior.metric_scale == pytest.approx(z[0], rel=1e-6)
        assert np.allclose(second.coefficients[i], z[3:] / z[0], atol=1e-6)
        assert np.allclose(first.translation[i] * [1, -1], z[1:3], atol=1e-4)


def test_pattern_cache_is_bounded_and_eviction_changes_nothing(prior, monkeypatch):
    import realtime.lifting.lifter as lifter_module

    rng = np.random.default_rng(12)
    people = [_pose_like(prior, rng, n_missing=2) for _ in range(6)]
    kp, conf = np.stack([p[0] for p in people]), np.stack([p[1] for p in people])
    roomy = Lifter(prior, rotations=16)
    expected = roomy.lift(kp, conf)
    one = roomy.cache_info()["bytes"] // roomy.cache_info()["size"]
    monkeypatch.setattr(lifter_module, "PATTERN_CACHE_BYTES", 2 * one)
    tight = Lifter(prior, rotations=16)
    for _ in range(2):
        out = tight.lift(kp, conf)
        assert np.allclose(out.joints3d, expected.joints3d, atol=1e-9)
    info = tight.cache_info()
    assert info["size"] == 2 and info["bytes"] <= 2 * one and info["misses"] > roomy.cache_info()["misses"]


# -- real photos with 3D ground truth -----------------------------------------------------------------------
def test_annotated_3d_frames_project_onto_their_2d_and_have_their_cameras(annotated_dir):
    """The loader's axes, joint mapping and intrinsics agree with the datasets' own 2D annotation."""
    from realtime.pose2d.annotated3d import EVAL_JOINTS, load_annotated3d

    frames = load_annotated3d(annotated_dir)
    assert [f.dataset for f in frames] == ["h36m"] * 4 + ["mpi_inf_3dhp"] * 4
    assert sorted(JOINTS3D[j] for j in EVAL_JOINTS) == sorted(set(JOINTS3D) - {"neck", "head_top"})
    for f in frames:
        cam = f.joints3d[:14] * [1, -1, -1]                               # back to x right, y down, z forward
        uv = cam[:, :2] / cam[:, 2:] * f.focal_px + f.centre_px
        seen = f.visible2d & np.isfinite(cam).all(1)
        assert np.abs(uv[seen] - f.keypoints2d[seen]).max() < 3.0, f.name  # distortion: a pixel or two
        assert (f.joints3d[:, 2][np.isfinite(f.joints3d[:, 2])] < -2.0).all()  # in front of the camera
        assert 0 < f.keypoints2d[f.visible2d].min() and f.keypoints2d[f.visible2d, 0].max() < f.size[0]
        pelvis = f.joints3d[JOINTS3D.index("pelvis")]
        assert np.allclose(pelvis, f.joints3d[[JOINTS3D.index("r_hip"), JOINTS3D.index("l_hip")]].mean(0))
    pitches = [f.pitch_deg for f in frames]
    assert all(8 < p < 15 for p in pitches[:4]) and pitches[4:] == [None] * 4   # Human3.6M looks down ~11 deg
    assert not frames[0].visible2d[LSP14.index("neck")]                       # Human3.6M has no upper neck


def test_annotated_3d_errors_name_the_file(tmp_path):
    from realtime.pose2d.annotated3d import AnnotatedError, load_annotated3d

    with pytest.raises(AnnotatedError, match="cameras.pkl"):
        load_annotated3d(tmp_path)


def test_level_to_camera_and_joint_subsets_of_the_metrics():
    rng = np.random.default_rng(3)
    poses = articulated_poses(20, rng)
    views = random_views(poses, rng, elevation_deg=(20.0, 20.0))
    cam = level_to_camera(views.truth, views.elevation_deg)
    # the camera frame is the level frame pitched: the same pose, so PA-MPJPE is 0, MPJPE is not
    assert pa_mpjpe(cam, views.truth).max() < 1e-9
    assert mpjpe(cam, views.truth, rescale=False).min() > 0.01
    assert np.allclose(level_to_camera(cam, -views.elevation_deg), views.truth)
    assert pa_mpjpe(views.truth, views.truth, joints=[0, 1, 2, 14, 15]).max() < 1e-9
    shifted = views.truth.copy()
    shifted[:, 15, 0] += 0.1                                                   # thorax only
    assert mpjpe(shifted, views.truth, joints=[15], rescale=False) == pytest.approx(0.1)
    assert mpjpe(shifted, views.truth, rescale=False).max() == 0.0             # not among the 14 LSP joints


# -- keypoint conventions -----------------------------------------------------------------------------------
def test_convention_parameters_roundtrip_and_identity():
    from realtime.lifting.conventions import MOCAP, KeypointConvention, parameters_of

    assert MOCAP.is_identity and KeypointConvention.from_parameters().is_identity
    params = dict(hip_width=1.5, hip_raise=-0.05, shoulder_width=0.7, shoulder_raise=-0.1, neck=0.4, head_top=1.1)
    conv = KeypointConvention.from_parameters("x", **params)
    assert parameters_of(conv) == pytest.approx(params)
    poses = articulated_poses(5, np.random.default_rng(0))
    moved = conv.apply(poses)
    p, r, l = JOINTS3D.index("pelvis"), JOINTS3D.index("r_hip"), JOINTS3D.index("l_hip")
    assert np.allclose(moved[:, p], moved[:, [r, l]].mean(1))   # the pelvis is the source's mid-hips
    assert np.allclose(moved[:, JOINTS3D.index("r_knee")], poses[:, JOINTS3D.index("r_knee")])
    width = lambda q: np.linalg.norm(q[:, r] - q[:, l], axis=-1)  # noqa: E731
    assert np.allclose(width(moved), 1.5 * width(poses))         # the raise moves both hips alike
    with pytest.raises(ValueError, match="hip_wdth"):
        KeypointConvention.from_parameters("x", hip_wdth=1.0)


def test_convention_fits_recover_known_parameters():
    from realtime.lifting.conventions import KeypointConvention, fit_2d, fit_proportions, parameters_of

    rng = np.random.default_rng(4)
    mocap = articulated_poses(300, rng)
    truth = dict(hip_width=1.6, shoulder_width=0.75, shoulder_raise=-0.2, neck=0.5, head_top=1.2)
    dataset = KeypointConvention.from_parameters("d", **truth).apply(articulated_poses(200, rng))
    fitted = parameters_of(fit_proportions(dataset, mocap, "d"))
    for k, v in truth.items():
        assert fitted[k] == pytest.approx(v, rel=0.05), k
    # in 2D: keypoints a known convention places, seen by random cameras, noise-free
    conv = KeypointConvention.from_parameters("n", hip_width=0.9, hip_raise=-0.06, shoulder_width=0.7,
                                              shoulder_raise=-0.1, neck=0.4, head_top=0.95)
    views = random_views(mocap[:20], rng)
    cam = level_to_camera(views.truth, views.elevation_deg)          # orthographic stand-in for the camera
    reference = cam[..., :2] * 300
    keypoints = conv.apply(cam)[:, :14, :2] * 300
    assert parameters_of(fit_2d(keypoints, np.ones((20, 14), bool), reference, "n")) == pytest.approx(
        parameters_of(conv), abs=1e-6)


def test_lifter_with_a_convention_fits_the_sources_keypoints(prior):
    """Keypoints placed by a convention are explained exactly by the lifter told that convention, whose
    output stays the prior's own joints."""
    from realtime.lifting.conventions import KeypointConvention

    conv = KeypointConvention.from_parameters("wide", hip_width=1.6, shoulder_width=0.7, shoulder_raise=-0.15)
    k, coeff = 1, np.random.default_rng(5).normal(size=prior.n_basis)
    model = prior.means[k] + prior.bases[k] @ coeff
    cam = conv.apply(model[None])[0] @ (_rot_x(np.array(0.2)) @ _rot_y(np.array(2 * np.pi * 9 / 80))).T
    kp = (cam[:14, :2] * 250 + [400, 300]) * [1, -1]
    plain = Lifter(prior, rotations=80, camera_pitch_deg=math.degrees(0.2)).lift(kp[None], np.ones((1, 14)))
    told = Lifter(prior, rotations=80, camera_pitch_deg=math.degrees(0.2), convention=conv).lift(kp[None], np.ones((1, 14)))
    assert told.cost[0] < 0.3 * plain.cost[0]
    assert np.abs(told.reprojected2d[0] - kp).max() < 0.05 * 250
    truth = (model - model[JOINTS3D.index("pelvis")]) * prior.metric_scale
    assert pa_mpjpe(told.joints3d, truth[None])[0] < 0.03
    same = Lifter(prior, rotations=16, camera_pitch_deg=10.0, convention=KeypointConvention.from_parameters())
    ref = Lifter(prior, rotations=16, camera_pitch_deg=10.0)
    assert np.allclose(same.lift(kp[None], np.ones((1, 14))).joints3d, ref.lift(kp[None], np.ones((1, 14))).joints3d)


# -- camera pitch estimated once from many people ------------------------------------------------------------
def test_pitch_is_estimated_from_many_people_and_then_kept(prior):
    from realtime.lifting import LiftingSetup
    from realtime.lifting.pitch import PitchEstimator

    rng = np.random.default_rng(8)
    views = random_views(articulated_poses(120, rng), rng, elevation_deg=(17.0, 17.0))
    searching = Lifter(prior, rotations=24)
    out = searching.lift(views.keypoints2d, views.confidence)
    assert out.elevation_energy.shape == (120, 5)
    assert np.isfinite(out.elevation_energy[out.valid]).all()
    chosen = np.array(searching.elevations_deg)[np.argmin(out.elevation_energy, 1)]
    assert np.allclose(chosen[out.valid], out.elevation_deg[out.valid])     # the chosen view's elevation
    estimator = PitchEstimator(searching.elevations_deg, people=100)
    assert estimator.add(out.elevation_energy[:50]) is None                 # not enough people yet
    pitch = estimator.add(out.elevation_energy[50:])
    assert pitch == pytest.approx(17.0, abs=3.0)
    assert estimator.add(np.zeros((3, 5))) == pitch                        # fixed once estimated
    with pytest.raises(ValueError, match="3 or more increasing"):
        PitchEstimator((0.0, 10.0))

    setup = LiftingSetup(prior, LiftingConfig(rotations=24, pitch_estimate_people=100))
    for start in range(0, 120, 20):
        setup.lift("cam", None, views.keypoints2d[start:start + 20], views.confidence[start:start + 20])
    assert setup.estimated_pitch("cam") == pytest.approx(17.0, abs=3.0) and setup.estimated_pitch("other") is None
    after = setup.lift("cam", None, views.keypoints2d[:5], views.confidence[:5])
    assert np.allclose(after.elevation_deg[after.valid], round(setup.estimated_pitch("cam"), 1))
    fixed = setup.lift("cam", 5.0, views.keypoints2d[:5], views.confidence[:5])   # a configured pitch wins
    assert np.allclose(fixed.elevation_deg[fixed.valid], 5.0)
    never = LiftingSetup(prior, LiftingConfig(rotations=24, pitch_estimate_people=0))
    never.lift("cam", None, views.keypoints2d, views.confidence)
    assert never.estimated_pitch("cam") is None


def test_committed_prior_on_real_frames_from_their_ground_truth_2d(annotated_dir):
    """A guard on the real-frame benchmark (docs/benchmarks.md: 114.5 mm mean, 41-210 per frame)."""
    from realtime.pose2d.annotated3d import EVAL_JOINTS, load_annotated3d

    frames = load_annotated3d(annotated_dir)
    out = Lifter(PosePrior.load()).lift(np.stack([f.keypoints2d for f in frames]),
                                        np.stack([f.visible2d for f in frames]).astype(float))
    assert out.valid.all()
    error = pa_mpjpe(level_to_camera(out.joints3d, out.elevation_deg), np.stack([f.joints3d for f in frames]),
                     EVAL_JOINTS)
    assert error.mean() < 0.125 and np.median(error) < 0.125 and error.max() < 0.25


def test_people_lying_in_the_image_are_lifted_lying(mocap_dir):
    """The prior holds upright people: a person turned a quarter in the image (lying on the floor) is
    lifted with the image turned back, and the 3D pose comes out lying in the level frame."""
    from realtime.lifting.lifter import _rot_z
    from realtime.mocap import load_clip

    prior = PosePrior.load()
    clip = load_clip(mocap_dir / "bvh_cgspeed" / "07" / "07_01.bvh").subsample(10.0)
    views = random_views(clip.joints.astype(np.float64), np.random.default_rng(11), elevation_deg=(15.0, 15.0))
    lifter = Lifter(prior, camera_pitch_deg=15.0)
    upright = lifter.lift(views.keypoints2d, views.confidence)
    assert (upright.roll_deg == 0).all()
    turn = np.radians(90.0)                             # clockwise on screen: head to the right
    centre = views.keypoints2d.mean(1, keepdims=True)
    d = views.keypoints2d - centre
    turned = np.stack([np.cos(turn) * d[..., 0] - np.sin(turn) * d[..., 1],
                       np.sin(turn) * d[..., 0] + np.cos(turn) * d[..., 1]], -1) + centre
    # the same turn of the camera frame about its optical axis (y up there), seen in the level frame
    phi = np.radians(15.0)
    to_level = _rot_x(np.array(phi)).T @ _rot_z(np.array(-turn)) @ _rot_x(np.array(phi))
    lying = views.truth @ to_level.T
    out = lifter.lift(turned, views.confidence)
    assert out.valid.all()
    assert np.median(np.abs(out.roll_deg - 90.0)) < 20.0
    assert np.median(pa_mpjpe(out.joints3d, lying)) < 0.05
    assert np.median(mpjpe(out.joints3d, lying)) < 0.08
    head_up = out.joints3d[:, JOINTS3D.index("head_top"), 1] - out.joints3d[:, JOINTS3D.index("pelvis"), 1]
    assert np.median(np.abs(head_up)) < 0.3              # lying: the head is not above the pelvis
    reprojection = np.linalg.norm(out.reprojected2d - turned, axis=-1).mean(1) / views.height_px
    assert np.median(reprojection) < 0.02
    # the turn is what does it: upright only, the same people are lifted far worse
    never = Lifter(prior, camera_pitch_deg=15.0, roll_above_deg=180.0).lift(turned, views.confidence)
    assert np.median(pa_mpjpe(never.joints3d, lying)) > 2 * np.median(pa_mpjpe(out.joints3d, lying))
    with pytest.raises(ValueError, match="roll_above_deg"):
        Lifter(prior, roll_above_deg=200.0)


def test_hypotheses_are_what_lift_chooses_from(annotated_dir):
    """Lifter.hypotheses (the real-frame benchmark's diagnostic): its lowest-energy solution is the
    lift, for a standing person (views x components) and for a person lying across the image (the
    same again in each turned image); the best of them is closer to the 3D truth than the choice."""
    from realtime.pose2d.annotated3d import EVAL_JOINTS, load_annotated3d

    lifter = Lifter(PosePrior.load())
    frames = {f.name.split(".")[0].split("_0")[0]: f for f in load_annotated3d(annotated_dir)}
    for name, count in (("S1_Directions_1", 1), ("S5_SittingDown", 3)):
        f = frames[name]
        out = lifter.lift(f.keypoints2d[None], f.visible2d[None].astype(float))
        joints, energy, elevation = lifter.hypotheses(f.keypoints2d, f.visible2d.astype(float))
        views = 80 * len(lifter.elevations_deg)                  # rotations x elevations
        assert len(joints) == len(energy) == len(elevation) == count * views * lifter.prior.n_components
        best = int(np.argmin(energy))
        np.testing.assert_allclose(level_to_camera(joints[best:best + 1], elevation[best:best + 1]),
                                   level_to_camera(out.joints3d, out.elevation_deg), atol=1e-9)
        errors = pa_mpjpe(level_to_camera(joints, elevation), np.repeat(f.joints3d[None], len(joints), 0), EVAL_JOINTS)
        assert np.nanmin(errors) < errors[best]


def test_held_out_clips_are_the_subjects_the_prior_never_saw(mocap_dir, tmp_path):
    """The mocap benchmark scores subjects the prior was not trained on: on the shared CMU folder its
    test split; a folder of other subjects whole, with unreadable clips skipped and named."""
    import shutil

    from realtime.lifting.evaluation import HELD_OUT_PRIOR, held_out
    from realtime.mocap.dataset import SPLIT

    prior = PosePrior.load(HELD_OUT_PRIOR)
    shared = held_out(mocap_dir, prior)
    assert shared.subjects == sorted((s for s, split in SPLIT.items() if split == "test"), key=lambda s: (len(s), s))
    shutil.copy(mocap_dir / "bvh_cgspeed" / "07" / "07_01.bvh", tmp_path / "150_01.bvh")   # a training clip,
    (tmp_path / "151_01.bvh").write_text("not a bvh")                                       # under a new subject
    other = held_out(tmp_path, prior)
    assert other.subjects == ["150"] and len(other.skipped) == 1 and "151_01.bvh" in other.skipped[0][1]
    (tmp_path / "trained").mkdir()
    shutil.copy(mocap_dir / "bvh_cgspeed" / "07" / "07_01.bvh", tmp_path / "trained" / "07_01.bvh")
    with pytest.raises(ValueError, match="trained: no readable clips of subjects the prior was not trained on"):
        held_out(tmp_path / "trained", prior)


def test_the_shipped_prior_saw_every_subject_and_is_scored_by_its_held_out_fit(mocap_dir, tmp_path):
    """The shipped prior is the validated setting refitted on every shared subject (``--final all``);
    held-out numbers on the shared set come from the same setting fitted on train + val only, and a
    folder of subjects the shipped prior never saw is scored with the shipped prior itself."""
    import shutil

    from realtime.lifting.evaluation import HELD_OUT_PRIOR, held_out, prior_for_scoring
    from realtime.mocap.dataset import SPLIT

    shipped, held = PosePrior.load(), PosePrior.load(HELD_OUT_PRIOR)
    assert shipped.info["final"] == "all" and held.info["final"] == "train+val"
    for key in ("components", "basis", "balance", "augment_sitting", "noise2d"):
        assert shipped.info[key] == held.info[key], key
    test = {s for s, split in SPLIT.items() if split == "test"}
    assert test <= set(shipped.info["subjects"]) and not test & set(held.info["subjects"])
    with pytest.raises(ValueError, match="no readable clips of subjects the prior was not trained on"):
        held_out(mocap_dir, shipped)
    assert prior_for_scoring(mocap_dir, shipped) == held
    shutil.copy(mocap_dir / "bvh_cgspeed" / "07" / "07_01.bvh", tmp_path / "150_01.bvh")
    assert prior_for_scoring(tmp_path, shipped) is shipped
    assert prior_for_scoring(mocap_dir, shipped, fallback=tmp_path / "none.npz") is shipped   # no fit to fall back on


def test_the_evidence_adds_the_occam_term_of_each_view_and_component(prior):
    """Lifter(evidence=True) chooses by the marginal likelihood: each (view, component)'s energy grows by
    1/2 log det(I + B^T B / lambda_k), B the basis columns of its design over the visible joints,
    computed here from the prior directly (all joints seen, and one missing)."""
    rng = np.random.default_rng(3)
    kp, conf = _pose_like(prior, rng)
    map_lifter, evidence = Lifter(prior, rotations=12), Lifter(prior, rotations=12, evidence=True)
    k = prior.n_components
    for missing in (None, 3):
        c = conf.copy()
        if missing is not None:
            c[missing] = 0.0
        _, e_map, _ = map_lifter.hypotheses(kp, c)
        _, e_ev, _ = evidence.hypotheses(kp, c)
        seen = c >= 0.05
        for h in (0, 7, 40, len(e_map) - 1):
            view, comp = divmod(h, k)
            proj = (_rot_x(np.array(map_lifter._phi[view])) @ _rot_y(np.array(map_lifter._theta[view])))[:2]
            b = np.einsum("cx,lxj->lcj", proj, prior.bases[comp])[:14][seen].reshape(-1, prior.n_basis)
            lam = prior.noise[comp] + prior.noise2d ** 2
            occam = 0.5 * np.linalg.slogdet(np.eye(prior.n_basis) + b.T @ b / lam)[1]
            assert e_ev[h] - e_map[h] == pytest.approx(occam, rel=1e-3, abs=1e-3)

"""Mocap readers and dataset on the real CMU files in ../shared (and bad files written to tmp_path)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from realtime.mocap import MocapError, load_clip, load_dataset, subject_split
from realtime.mocap.asf_amc import read_amc, read_asf
from realtime.mocap.bvh import read_bvh
from realtime.mocap.dataset import SPLIT
from realtime.skeleton import BONES3D, JOINTS3D

J = JOINTS3D.index
#: One real file of each skeleton convention (and an AMC), with frames and frame rate.
FILES = {
    "asf_amc/02/02_01.amc": ("cmu", 343, 120.0),
    "bvh_cgspeed/02/02_01.bvh": ("motionbuilder", 343, 120.0),  # the converter's rest frame dropped
    "bvh_cgspeed/35/35_01.bvh": ("cgspeed", 358, 120.0),
    "bvh_cgspeed/16/16_01.bvh": ("cmu", 322, 30.0),
}
WALKS = ("asf_amc/02/02_01.amc", "bvh_cgspeed/02/02_01.bvh", "bvh_cgspeed/35/35_01.bvh")


@pytest.fixture(scope="module")
def clips(mocap_dir):
    return {name: load_clip(mocap_dir / name) for name in FILES}


def bone_lengths(joints: np.ndarray) -> np.ndarray:
    return np.array([np.median(np.linalg.norm(joints[:, c] - joints[:, p], axis=-1)) for c, p in BONES3D])


@pytest.mark.parametrize("name", FILES)
def test_reader_gives_joints3d_in_metres_y_up(clips, name):
    clip = clips[name]
    convention, frames, fps = FILES[name]
    assert (clip.convention, clip.frames, clip.fps) == (convention, frames, fps)
    assert clip.joints.shape == (frames, len(JOINTS3D), 3) and clip.joints.dtype == np.float32
    assert (clip.subject, clip.trial) == tuple(clip.path.stem.split("_"))
    joints = clip.joints
    lowest_ankle = np.minimum(joints[:, J("r_ankle"), 1], joints[:, J("l_ankle"), 1])
    # Standing height: head top over the lower ankle, plus the ankle joint's ~8 cm above the floor.
    height = np.percentile(joints[:, J("head_top"), 1] - lowest_ankle, 95) + 0.08
    assert 1.4 < height < 2.0, height
    assert np.mean(joints[:, J("head_top"), 1] > joints[:, [J("r_ankle"), J("l_ankle")], 1].max(1)) > 0.99
    assert np.mean(joints[:, J("thorax"), 1] > joints[:, J("pelvis"), 1]) > 0.99
    assert 0.25 < bone_lengths(joints)[BONES3D.index((J("r_knee"), J("r_hip")))] < 0.55


@pytest.mark.parametrize("name", WALKS)
def test_right_is_the_walkers_own_right(clips, name):
    joints = clips[name].joints
    pelvis = joints[:, J("pelvis")]
    heading = np.gradient(pelvis, axis=0) * clips[name].fps
    heading[:, 1] = 0
    moving = np.linalg.norm(heading, axis=-1) > 0.3
    assert moving.sum() > 100
    right = np.cross(heading, [0.0, 1.0, 0.0])  # facing f with y up: the right hand side is f x y
    for r, l in (("r_hip", "l_hip"), ("r_shoulder", "l_shoulder")):
        across = joints[:, J(r)] - joints[:, J(l)]
        assert np.mean(np.einsum("ij,ij->i", right, across)[moving] > 0) > 0.95, (name, r)


def test_amc_and_motionbuilder_bvh_of_one_recording_agree(clips):
    amc = clips["asf_amc/02/02_01.amc"].joints
    bvh = clips["bvh_cgspeed/02/02_01.bvh"].joints
    assert len(amc) == len(bvh)
    diff = np.abs(bone_lengths(amc) - bone_lengths(bvh))
    assert diff.max() < 0.04 and diff.mean() < 0.02, dict(zip(BONES3D, diff.round(3)))
    centred = np.linalg.norm((amc - amc[:, J("pelvis"), None]) - (bvh - bvh[:, J("pelvis"), None]), axis=-1)
    assert centred.mean() < 0.07


def test_both_bvh_conversions_of_one_subject_share_its_skeleton(clips, mocap_dir):
    """16_01 uses CMU's bone names, 16_15 cgspeed's: same subject, so the same bone lengths."""
    cmu_names = bone_lengths(clips["bvh_cgspeed/16/16_01.bvh"].joints)
    cgspeed = bone_lengths(load_clip(mocap_dir / "bvh_cgspeed/16/16_15.bvh").joints)
    np.testing.assert_allclose(cmu_names, cgspeed, atol=0.005)


def test_dropped_thorax_bone_is_restored(clips):
    """cgspeed BVH lost CMU's thorax bone; the torso must be as long as in the ASF/AMC subjects."""
    torso = BONES3D.index((J("thorax"), J("pelvis")))
    amc = bone_lengths(clips["asf_amc/02/02_01.amc"].joints)[torso]
    for name in ("bvh_cgspeed/35/35_01.bvh", "bvh_cgspeed/16/16_01.bvh"):
        assert abs(bone_lengths(clips[name].joints)[torso] - amc) < 0.04


def test_bvh_forward_kinematics_on_a_hand_written_file(tmp_path):
    path = tmp_path / "01_01.bvh"
    path.write_text("""HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Arm
  {
    OFFSET 0 10 0
    CHANNELS 3 Xrotation Zrotation Yrotation
    End Site
    {
      OFFSET 5 0 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.0333333
1 2 3 0 0 0 0 0 0
1 2 3 90 0 0 90 90 0
""")
    motion = read_bvh(path)
    assert motion.names == ("Hips", "Arm", "Arm/end") and motion.fps == 30.0
    np.testing.assert_allclose(motion.positions[0], [[1, 2, 3], [1, 12, 3], [6, 12, 3]], atol=1e-9)
    # Root turned 90 deg about z: the arm points along -x. The arm's channels are X then Z, so
    # R = Rx(90) @ Rz(90): its end (5,0,0) -> (0,5,0) -> (0,0,5), unchanged by the root's z turn.
    np.testing.assert_allclose(motion.positions[1], [[1, 2, 3], [-9, 2, 3], [-9, 2, 8]], atol=1e-9)


def test_asf_amc_forward_kinematics_on_hand_written_files(tmp_path):
    (tmp_path / "01.asf").write_text(""":version 1.10
:units
  length 0.45
  angle deg
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name upper
     direction 0 1 0
     length 2
     axis 0 0 90 XYZ
    dof rx
  end
  begin
     id 2
     name lower
     direction 1 0 0
     length 1
     axis 0 0 0 XYZ
  end
:hierarchy
  begin
    root upper
    upper lower
  end
""")
    (tmp_path / "01_01.amc").write_text(":FULLY-SPECIFIED\n:DEGREES\n1\nroot 0 0 0 0 0 0\nupper 0\n"
                                        "2\nroot 0 0 0 0 90 0\nupper 90\n")
    skeleton = read_asf(tmp_path / "01.asf")
    assert skeleton.metres_per_unit == pytest.approx(0.056444, abs=1e-6)
    motion = read_amc(tmp_path / "01_01.amc", skeleton)
    at = {n: motion.positions[:, i] for i, n in enumerate(motion.names)}
    np.testing.assert_allclose(at["upper/end"][0], [0, 2, 0], atol=1e-9)
    np.testing.assert_allclose(at["lower/end"][0], [1, 2, 0], atol=1e-9)
    # upper's local x axis is world y (axis 0 0 90): rx 90 turns it about world y; the root adds 90 about y.
    np.testing.assert_allclose(at["upper/end"][1], [0, 2, 0], atol=1e-9)
    np.testing.assert_allclose(at["lower/end"][1], [-1, 2, 0], atol=1e-9)


def _bvh_lines(mocap_dir):
    return (mocap_dir / "bvh_cgspeed/35/35_01.bvh").read_text().splitlines()


def test_truncated_bvh_names_file_and_line(mocap_dir, tmp_path):
    lines = _bvh_lines(mocap_dir)
    last = len(lines) - 5
    cut = lines[:last] + [" ".join(lines[last].split()[:40])]
    path = tmp_path / "35_01.bvh"
    path.write_text("\n".join(cut) + "\n")
    with pytest.raises(MocapError, match=rf"35_01\.bvh line {last + 1}: expected 96 values, got 40"):
        load_clip(path)
    path.write_text("\n".join(lines[:last]) + "\n")
    with pytest.raises(MocapError, match=r"35_01\.bvh line \d+: file ends after \d+ of 358 frames"):
        load_clip(path)


def test_garbled_bvh_names_file_and_line(mocap_dir, tmp_path):
    lines = _bvh_lines(mocap_dir)
    motion = next(i for i, line in enumerate(lines) if line.startswith("Frame Time")) + 1
    bad = list(lines)
    bad[motion + 10] = bad[motion + 10].replace(bad[motion + 10].split()[7], "nan?x", 1)
    path = tmp_path / "35_01.bvh"
    path.write_text("\n".join(bad))
    with pytest.raises(MocapError, match=rf"35_01\.bvh line {motion + 11}: .*not a number"):
        load_clip(path)
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(MocapError, match=r"35_01\.bvh line 1: expected HIERARCHY"):
        load_clip(path)
    path.write_text("\n".join(lines[:40]))
    with pytest.raises(MocapError, match=r"35_01\.bvh line 40: file ends before MOTION"):
        load_clip(path)


def test_unknown_skeleton_is_named(tmp_path):
    path = tmp_path / "01_01.bvh"
    path.write_text("HIERARCHY\nROOT Body\n{\n OFFSET 0 0 0\n CHANNELS 3 Xposition Yposition Zposition\n"
                    " End Site\n {\n  OFFSET 0 1 0\n }\n}\nMOTION\nFrames: 1\nFrame Time: 0.01\n0 0 0\n")
    with pytest.raises(MocapError, match=r"01_01\.bvh: unknown skeleton convention \(joints Body"):
        load_clip(path)


def test_bad_amc_names_file_and_line(mocap_dir, tmp_path):
    (tmp_path / "02.asf").symlink_to(mocap_dir / "asf_amc/02/02.asf")
    lines = (mocap_dir / "asf_amc/02/02_03.amc").read_text().splitlines()
    path = tmp_path / "02_03.amc"
    path.write_text("\n".join(lines[:200]) + "\n")  # ends inside a frame
    with pytest.raises(MocapError, match=r"02_03\.amc line 200: file ends inside frame 7 \(missing"):
        load_clip(path)
    bad = list(lines)
    bad[100] = bad[100].split()[0] + " 1.0 oops 2.0"
    path.write_text("\n".join(bad))
    with pytest.raises(MocapError, match=r"02_03\.amc line 101: "):
        load_clip(path)
    (tmp_path / "02.asf").unlink()
    with pytest.raises(MocapError, match=r"02_03\.amc: needs its skeleton 02\.asf"):
        load_clip(path)


def test_dataset_skips_and_lists_a_bad_clip_and_prefers_amc(mocap_dir, tmp_path):
    root = tmp_path / "mocap"
    for rel in ("asf_amc/02/02.asf", "asf_amc/02/02_03.amc", "bvh_cgspeed/02/02_03.bvh",
                "bvh_cgspeed/16/16_01.bvh", "clip_index.csv"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).symlink_to(mocap_dir / rel)
    bad = root / "bvh_cgspeed/09/09_01.bvh"
    bad.parent.mkdir(parents=True)
    bad.write_text("\n".join((mocap_dir / "bvh_cgspeed/09/09_01.bvh").read_text().splitlines()[:300]))
    ds = load_dataset(root, fps=10.0, progress=False, cache_dir=tmp_path / "cache")
    assert sorted(c.path.name for c in ds.clips) == ["02_03.amc", "16_01.bvh"]
    assert [p.name for p, _ in ds.skipped] == ["09_01.bvh"] and "09_01.bvh line" in ds.skipped[0][1]
    for clip in ds.clips:
        assert clip.fps == pytest.approx(10.0)
    amc = next(c for c in ds.clips if c.path.suffix == ".amc")
    assert amc.frames == len(range(0, 173, 12))
    assert amc.description == "run/jog"

    cached = load_dataset(root, fps=10.0, progress=False, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2
    for a, b in zip(ds.clips, cached.clips):
        np.testing.assert_array_equal(a.joints, b.joints)

    test_only = load_dataset(root, split=subject_split("16"), progress=False, cache_dir=None)
    assert {c.subject for c in test_only.clips} == {"16"}
    subject_02 = load_dataset(root, subjects=["2"], progress=False, cache_dir=None)
    assert [c.subject for c in subject_02.clips] == ["02"]


def test_a_clip_whose_root_teleports_is_skipped_as_broken(mocap_dir, tmp_path):
    """CMU 09_10's cgspeed conversion jumps 2.4 m in one frame and then runs with its legs sideways:
    not a pose to learn or score. A held pose that catches up after a tracking gap (01_07) stays."""
    with pytest.raises(MocapError, match=r"09_10\.bvh: the root jumps 2\.39 m between frames 5 and 6"):
        load_clip(mocap_dir / "bvh_cgspeed/09/09_10.bvh")
    root = tmp_path / "mocap"
    for rel in ("bvh_cgspeed/09/09_10.bvh", "bvh_cgspeed/09/09_11.bvh"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).symlink_to(mocap_dir / rel)
    ds = load_dataset(root, fps=10.0, progress=False, cache_dir=None)
    assert [c.trial for c in ds.clips] == ["11"]
    assert [p.name for p, _ in ds.skipped] == ["09_10.bvh"] and "broken recording" in ds.skipped[0][1]
    root_path = load_clip(mocap_dir / "asf_amc/01/01_07.amc").joints[:, J("pelvis")]
    assert 0.15 < np.linalg.norm(np.diff(root_path, axis=0), axis=-1).max() < 0.4


def test_split_is_by_subject_and_fixed(mocap_dir):
    subjects = {p.stem.split("_")[0] for p in mocap_dir.rglob("*.bvh")} | {
        p.stem.split("_")[0] for p in mocap_dir.rglob("*.amc")}
    assert subjects <= set(SPLIT), "every subject in ../shared has a fixed split"
    groups = {s: {subject for subject in subjects if subject_split(subject) == s}
              for s in ("train", "val", "test")}
    assert all(groups.values())
    assert sum(len(g) for g in groups.values()) == len(subjects)  # no subject in two sets
    assert subject_split("2") == subject_split("02")
    assert subject_split("999") == subject_split("999") in ("train", "val", "test")
    walking_set = {s for s in subjects if int(s) >= 100}
    assert walking_set & groups["test"]


def test_amc_with_bones_in_any_order_reads_the_same(mocap_dir, tmp_path):
    """CMU files list bones in one order per file; any order (the line-by-line path) must agree."""
    (tmp_path / "02.asf").symlink_to(mocap_dir / "asf_amc/02/02.asf")
    lines = (mocap_dir / "asf_amc/02/02_03.amc").read_text().splitlines()
    first = lines.index("1")
    frame = lines[first + 1:first + 30]
    assert lines[first + 30] == "2"
    lines[first + 1:first + 30] = frame[::-1]
    path = tmp_path / "02_03.amc"
    path.write_text("\n".join(lines))
    np.testing.assert_allclose(load_clip(path).joints, load_clip(mocap_dir / "asf_amc/02/02_03.amc").joints,
                               atol=1e-6)


def test_clip_categories_from_cmu_descriptions(mocap_dir):
    from realtime.mocap.categories import CATEGORIES, category
    from realtime.mocap.dataset import clip_descriptions

    assert category("dance - small jetes, pirouette") == "dance"                 # a dance, though it jumps
    assert category("jumping jacks, side twists, squats, jog") == "exercise"
    assert category("run/jog") == "run" and category("Walk") == "walk" and category("WalkDigital8") == "walk"
    assert category("forward jump") == "jump" and category("basketball - dribble, shoot") == "sports"
    assert category("Unknown") == "other"
    described = clip_descriptions(mocap_dir)
    clips = {p.stem for p in mocap_dir.rglob("*.amc")} | {p.stem for p in mocap_dir.rglob("*.bvh")}
    assert clips and clips <= set(described), "every clip in ../shared has a CMU description"
    counts = Counter(category(described[c]) for c in clips)
    assert set(counts) <= set(CATEGORIES)
    assert counts["other"] <= 0.02 * len(clips), counts
    assert {"walk", "run", "jump", "dance", "exercise", "sports"} <= set(counts)


#: cgspeed joint -> the Mixamo rig's name (and 3ds Max Biped's), for rewriting a real clip as other
#: exporters write it.
MIXAMO = {"Hips": "Hips", "LeftHip": "LeftUpLeg", "LeftKnee": "LeftLeg", "LeftAnkle": "LeftFoot",
          "RightHip": "RightUpLeg", "RightKnee": "RightLeg", "RightAnkle": "RightFoot",
          "LeftCollar": "LeftShoulder", "LeftShoulder": "LeftArm", "LeftElbow": "LeftForeArm",
          "LeftWrist": "LeftHand", "RightCollar": "RightShoulder", "RightShoulder": "RightArm",
          "RightElbow": "RightForeArm", "RightWrist": "RightHand", "Neck": "Neck", "Head": "Head",
          "Chest": "Spine", "Chest2": "Spine1"}
BIPED = {"Hips": "Bip01 Pelvis", "LeftHip": "Bip01 L Thigh", "LeftKnee": "Bip01 L Calf",
         "LeftAnkle": "Bip01 L Foot", "RightHip": "Bip01 R Thigh", "RightKnee": "Bip01 R Calf",
         "RightAnkle": "Bip01 R Foot", "LeftShoulder": "Bip01 L UpperArm", "LeftElbow": "Bip01 L Forearm",
         "LeftWrist": "Bip01 L Hand", "RightShoulder": "Bip01 R UpperArm", "RightElbow": "Bip01 R Forearm",
         "RightWrist": "Bip01 R Hand", "Neck": "Bip01 Neck", "Head": "Bip01 Head"}


def write_bvh(bvh, path, rename, prefix="", scale=1.0, axes=np.eye(3), brace_on_line=False):
    """``bvh`` (a parsed file) written again with joints renamed, lengths in another unit and the
    world turned by ``axes`` (a rotation), as another exporter would: offsets and root positions turned,
    each joint's rotation conjugated and written back in its own Euler order."""
    from scipy.spatial.transform import Rotation

    values = bvh.values.copy()
    column = 0
    for declared in bvh.channels:
        rot = [i for i, d in enumerate(declared) if d.endswith("rotation")]
        pos = [i for i, d in enumerate(declared) if d.endswith("position")]
        if rot:
            order = "".join(declared[i][0].upper() for i in rot)
            cols = [column + i for i in rot]
            m = Rotation.from_euler(order, values[:, cols], degrees=True).as_matrix()
            values[:, cols] = Rotation.from_matrix(axes @ m @ axes.T).as_euler(order, degrees=True)
        if pos:
            cols = [column + i for i in pos]        # x, y, z position channels in that order here
            values[:, cols] = values[:, cols] @ axes.T * scale
        column += len(declared)
    children = {j: [k for k, p in enumerate(bvh.parents) if p == j] for j in range(len(bvh.names))}
    ends = dict(bvh.ends)
    out = ["HIERARCHY"]

    def block(j, depth):
        pad = "  " * depth
        word = "ROOT" if bvh.parents[j] < 0 else "JOINT"
        name = prefix + rename.get(bvh.names[j], bvh.names[j])
        out.extend([f"{pad}{word} {name} {{"] if brace_on_line else [f"{pad}{word} {name}", f"{pad}{{"])
        out.append(f"{pad}  OFFSET " + " ".join(f"{v:.6f}" for v in axes @ bvh.offsets[j] * scale))
        out.append(f"{pad}  CHANNELS {len(bvh.channels[j])} " + " ".join(
            c[0].upper() + c[1:] for c in bvh.channels[j]))
        for k in children[j]:
            block(k, depth + 1)
        if j in ends:
            out.extend([f"{pad}  End Site", f"{pad}  {{",
                        f"{pad}    OFFSET " + " ".join(f"{v:.6f}" for v in axes @ ends[j] * scale), f"{pad}  }}"])
        out.append(f"{pad}}}")

    block(0, 0)
    out += ["MOTION", f"Frames: {len(values)}", f"Frame Time: {1 / bvh.fps:.7f}"]
    out += [" ".join(f"{v:.5f}" for v in row) for row in values]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(out) + "\n")
    return path


@pytest.mark.parametrize("rig", ["mixamo", "biped"])
def test_other_exporters_rigs_units_and_up_axes_read_as_the_same_joints(mocap_dir, tmp_path, rig):
    """A real CMU clip written as Mixamo writes BVH (``mixamorig:`` names, centimetres, z up) or as
    3ds Max's Biped does (names with spaces, inches), in a folder named for its performer: the
    generic convention finds the joints by their usual names, the unit from the legs' length and the
    up axis from the rest pose, and gives the same joints as the cgspeed reading of the original."""
    from realtime.mocap.bvh import parse_bvh
    from realtime.mocap.joints import CGSPEED, to_joints3d

    original = parse_bvh(mocap_dir / "bvh_cgspeed/35/35_01.bvh")
    truth = to_joints3d(original.motion(), CGSPEED)           # the file as it is (no repair)
    cmu_unit = 0.0254 / 0.45
    z_up = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])      # our y becomes the file's z
    if rig == "mixamo":
        path = write_bvh(original, tmp_path / "performer7" / "Brisk Walk.bvh", MIXAMO, "mixamorig:",
                         cmu_unit / 0.01, z_up, brace_on_line=True)
        unit = "cm"
    else:
        path = write_bvh(original, tmp_path / "takes" / "walk_subject3.bvh", BIPED, "", cmu_unit / 0.0254)
        unit = "inch"
    clip = load_clip(path)
    assert clip.convention == f"generic ({unit})"
    assert (clip.frames, clip.fps) == (358, 120.0)
    assert clip.subject == ("performer7" if rig == "mixamo" else "subject3")
    same = [j for j in range(len(JOINTS3D)) if JOINTS3D[j] != "head_top"]
    assert np.abs(clip.joints[:, same] - truth[:, same]).max() < 1e-3           # metres, y up
    # the head top at the head's End Site (a rig's crown), not CMU's 1.25 x its head bone
    head = original.motion()
    end = head.positions[:, head.names.index("Head/end")] * cmu_unit
    assert np.abs(clip.joints[:, J("head_top")] - end).max() < 1e-3
    ds = load_dataset(tmp_path, fps=10.0, progress=False, cache_dir=tmp_path / "cache")
    assert [c.path for c in ds.clips] == [path] and not ds.skipped


def test_a_daz_style_rig_under_a_namespace_reads_with_the_usual_names(mocap_dir, clips, tmp_path):
    """CMU's MotionBuilder-friendly BVH (DAZ / Poser names: ``rThigh rShin rShldr rForeArm``, cm) under
    a namespace is no longer that exact convention, but its limbs have the usual names: it reads, in
    centimetres, y up, with limbs as long as the exact reading's within a few centimetres (the
    exact convention's fitted corrections, docs/mocap.md, are what differ: this rig's knees sit high
    and its shoulders 8 cm narrow)."""
    from realtime.mocap.bvh import parse_bvh

    original = parse_bvh(mocap_dir / "bvh_cgspeed/02/02_01.bvh")
    clip = load_clip(write_bvh(original, tmp_path / "S2" / "walk.bvh", {}, "Genesis:"))
    assert clip.convention == "generic (cm)" and clip.subject == "S2"
    exact = clips["bvh_cgspeed/02/02_01.bvh"]
    limbs = [k for k, (c, p) in enumerate(BONES3D) if not {"neck", "head_top", "thorax"} & {JOINTS3D[c], JOINTS3D[p]}]
    assert len(limbs) == 10
    assert np.abs(bone_lengths(clip.joints[1:])[limbs] - bone_lengths(exact.joints)[limbs]).max() < 0.06


def test_a_rig_without_the_usual_limb_names_says_what_it_lacks(mocap_dir, tmp_path):
    from realtime.mocap.bvh import parse_bvh

    original = parse_bvh(mocap_dir / "bvh_cgspeed/35/35_01.bvh")
    rename = {**MIXAMO, "LeftKnee": "LeftShin2", "LeftAnkle": "LeftPaw"}
    path = write_bvh(original, tmp_path / "odd" / "take.bvh", rename)
    with pytest.raises(MocapError, match=r"take\.bvh: unknown skeleton convention .*no joint by the usual names "
                                         r"for l_knee \(leftleg / leftlowerleg / leftshin\), l_ankle"):
        load_clip(path)

import dataclasses
import math
import re
import tomllib

import pytest

from realtime.config import CameraConfig, DEFAULT_CONFIG, Config, ConfigError, from_dict, load_config


def _documented(text: str) -> dict[tuple[str, str], tuple[str, str, bool]]:
    """Every key of config.toml: (section, key) -> (its comment block joined, the value text, commented out)."""
    out, section, block = {}, None, []
    for line in text.splitlines():
        if re.fullmatch(r"\[(\w+)\]", line):
            section, block = line[1:-1], []
            continue
        if line.startswith("# [[camera]]"):
            break
        m = re.fullmatch(r"(# )?(\w+) = (.+)", line)
        if m and section and (not m.group(1) or block):
            out[(section, m.group(2))] = (" ".join(block), m.group(3), bool(m.group(1)))
            block = []
        elif line.startswith("# "):
            block.append(line[2:].strip())
        elif not line.strip():
            block = []
    return out


def test_config_toml_documents_every_key_with_its_help_and_default():
    """Every field of every section is in config.toml: its comment starts with the field's help (what
    `realtime config show` prints), its value is the dataclass default, and a key that is unset by
    default (None) is shown commented out."""
    documented = _documented(DEFAULT_CONFIG.read_text())
    text = DEFAULT_CONFIG.read_text()
    assert "# [[camera]]" in text and all(f"# {f.name} = " in text for f in dataclasses.fields(CameraConfig))
    for section in dataclasses.fields(Config):
        if section.name == "camera":  # an array of tables, none by default: documented as an example
            continue
        for f in dataclasses.fields(section.type if isinstance(section.type, type) else type(getattr(Config(), section.name))):
            key = (section.name, f.name)
            assert key in documented, f"[{section.name}] {f.name} is not documented in config.toml"
            comment, value, commented = documented[key]
            help_text = f.metadata.get("help", "")
            assert help_text, f"[{section.name}] {f.name} has no help text"
            assert comment.startswith(help_text), (
                f"[{section.name}] {f.name}: the comment in config.toml does not start with its help {help_text!r}")
            default = getattr(getattr(Config(), section.name), f.name)
            if default is None:
                assert commented, f"[{section.name}] {f.name} is unset by default: show it commented out"
            else:
                assert not commented and tomllib.loads(f"v = {value}")["v"] == default, (
                    f"[{section.name}] {f.name}: config.toml has {value}, the dataclass default is {default!r}")
    assert load_config() == Config()


def test_a_config_toml_key_without_the_help_fails_the_check():
    """The check above can fail: a comment that drifts from the help is caught."""
    drifted = DEFAULT_CONFIG.read_text().replace("# Most people per photo or video frame", "# Most people per frame")
    documented = _documented(drifted)
    comment, _, _ = documented[("pose2d", "max_people")]
    help_text = dict((f.name, f.metadata["help"]) for f in dataclasses.fields(Config().pose2d))["max_people"]
    assert not comment.startswith(help_text)


def test_config_show_prints_each_key_with_where_its_value_came_from(tmp_path):
    import subprocess
    import sys

    (tmp_path / "c.toml").write_text("[pose2d]\nmax_people = 4\n[lifting]\ncamera_pitch_deg = 12.5\n")
    done = subprocess.run([sys.executable, "-m", "realtime", "config", "show", "--config", str(tmp_path / "c.toml"),
                           "--set", "pose2d.model=\"cpm\""], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = {line.split(" =")[0].split(" (")[0].lstrip("# "): line for line in done.stdout.splitlines() if "#" in line}
    assert "# file" in lines["max_people"] and "max_people = 4" in lines["max_people"]
    assert "# flag" in lines["model"] and '"cpm"' in lines["model"]
    assert "# default" in lines["keypoint_threshold"] and "Keypoints below this confidence" in lines["keypoint_threshold"]
    assert "(unset)" in lines["focal_px"] and "camera_pitch_deg = 12.5" in lines["camera_pitch_deg"]
    bad = subprocess.run([sys.executable, "-m", "realtime", "config", "show", "--set", "pose2d.max_people=0"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "error: [pose2d] max_people: 0 is below the minimum" in bad.stderr


@pytest.mark.parametrize("data, message", [
    ({"pose2d": {"backend": "cuda"}}, "[pose2d] backend: 'cuda' is not one of"),
    ({"pose2d": {"max_people": 0}}, "[pose2d] max_people: 0 is below the minimum"),
    ({"pose2d": {"max_people": "3"}}, "[pose2d] max_people: expected an integer"),
    ({"source": {"loop": "yes"}}, "[source] loop: expected true or false"),
    ({"lifting": {"rotations": 80.5}}, "[lifting] rotations: expected an integer"),
    ({"runtime": {"wokers": 2}}, "[runtime] wokers: unknown key"),
    ({"nonsense": {}}, "[nonsense]: unknown section"),
    ({"runtime": 3}, "[runtime]: expected a table"),
])
def test_bad_values_name_the_key(data, message):
    with pytest.raises(ConfigError) as e:
        from_dict(data)
    assert message in str(e.value)


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[pose2d\nmodel = 'cpm'\n")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        load_config(bad)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text("[runtime]\nworkers = -1\n")
    with pytest.raises(ConfigError, match=r"wrong.toml: \[runtime\] workers"):
        load_config(wrong)


def test_replace_validates_like_the_file():
    cfg = Config().replace("runtime", workers=4)
    assert cfg.runtime.workers == 4
    with pytest.raises(ConfigError, match=r"\[pose2d\] backend"):
        cfg.replace("pose2d", backend="gpu")


def test_unset_keys_are_none_and_nan_is_no_longer_a_sentinel():
    assert Config().lifting.camera_pitch_deg is None and Config().record.path is None
    assert from_dict({"lifting": {"camera_pitch_deg": 15}}).lifting.camera_pitch_deg == 15.0
    for value in ("nan", math.nan, math.inf):
        with pytest.raises(ConfigError, match=r"\[lifting\] camera_pitch_deg: expected a finite number.*remove the key"):
            from_dict({"lifting": {"camera_pitch_deg": value}})
    with pytest.raises(ConfigError, match=r"\[lifting\] elevations_deg\[1\]: expected a finite number, got 'a'"):
        from_dict({"lifting": {"elevations_deg": [0.0, "a"]}})


def test_camera_tables_override_the_global_settings_per_source():
    cfg = from_dict({"camera": [{"name": "cam1", "focal_px": 900, "pitch_deg": 12}, {"name": "door", "focal_px": 700}],
                     "source": {"focal_px": 1000}, "lifting": {"camera_pitch_deg": 5}})
    assert cfg.camera_for("cam1") == (900.0, 12.0)
    assert cfg.camera_for("door") == (700.0, 5.0)      # pitch not given: the global one
    assert cfg.camera_for("cam0") == (1000.0, 5.0)     # no table: the global ones
    assert Config().camera_for("cam0") == (None, None)
    assert from_dict(dataclasses.asdict(cfg)) == cfg   # how a child process receives it
    for bad, message in [({"camera": {"name": "x"}}, "expected an array of tables"),
                         ({"camera": [{"name": "x", "focal": 1}]}, "[camera #1] focal: unknown key"),
                         ({"camera": [{"pitch_deg": 1}]}, "needs the source's name"),
                         ({"camera": [{"name": "a"}, {"name": "a"}]}, "'a' is given twice"),
                         ({"camera": [{"name": "a", "pitch_deg": 100}]}, "[camera #1] pitch_deg: 100.0 is above")]:
        with pytest.raises(ConfigError) as e:
            from_dict(bad)
        assert message in str(e.value)

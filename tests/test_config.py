import dataclasses
import math
import tomllib

import pytest

from realtime.config import CameraConfig, DEFAULT_CONFIG, Config, ConfigError, from_dict, load_config


def test_repository_config_documents_every_option_with_its_default():
    data = tomllib.loads(DEFAULT_CONFIG.read_text())
    cfg = load_config()
    text = DEFAULT_CONFIG.read_text()
    assert "# [[camera]]" in text and all(f"# {f.name} = " in text for f in dataclasses.fields(CameraConfig))
    for section in dataclasses.fields(Config):
        if section.name == "camera":  # an array of tables, none by default: documented as an example
            continue
        values = getattr(cfg, section.name)
        defaults = type(values)()
        assert section.name in data, f"[{section.name}] missing from config.toml"
        for f in dataclasses.fields(values):
            assert f.name in data[section.name], f"[{section.name}] {f.name} missing from config.toml"
            a, b = getattr(values, f.name), getattr(defaults, f.name)
            same = (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)) or a == b
            assert same, f"[{section.name}] {f.name}: config.toml has {a!r}, the dataclass default is {b!r}"


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


def test_nan_pitch_means_unknown():
    assert math.isnan(from_dict({"lifting": {"camera_pitch_deg": "nan"}}).lifting.camera_pitch_deg)
    assert from_dict({"lifting": {"camera_pitch_deg": 15}}).lifting.camera_pitch_deg == 15.0


def test_camera_tables_override_the_global_settings_per_source():
    cfg = from_dict({"camera": [{"name": "cam1", "focal_px": 900, "pitch_deg": 12}, {"name": "door", "focal_px": 700}],
                     "source": {"focal_px": 1000}, "lifting": {"camera_pitch_deg": 5}})
    assert cfg.camera_for("cam1") == (900.0, 12.0)
    assert cfg.camera_for("door") == (700.0, 5.0)      # pitch not given: the global one
    assert cfg.camera_for("cam0") == (1000.0, 5.0)     # no table: the global ones
    assert from_dict(dataclasses.asdict(cfg)) == cfg   # how a child process receives it
    for bad, message in [({"camera": {"name": "x"}}, "expected an array of tables"),
                         ({"camera": [{"name": "x", "focal": 1}]}, "[camera #1] focal: unknown key"),
                         ({"camera": [{"pitch_deg": 1}]}, "needs the source's name"),
                         ({"camera": [{"name": "a"}, {"name": "a"}]}, "'a' is given twice"),
                         ({"camera": [{"name": "a", "pitch_deg": 100}]}, "[camera #1] pitch_deg: 100.0 is above")]:
        with pytest.raises(ConfigError) as e:
            from_dict(bad)
        assert message in str(e.value)

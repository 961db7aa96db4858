"""Fixtures reading the real models and data in ../shared (never copied into the project)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("REALTIME_SHARED", REPO.parent / "shared"))


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is not present (../shared is needed for this test)")
    return path


@pytest.fixture(scope="session")
def shared() -> Path:
    return _need(SHARED)


@pytest.fixture(scope="session")
def mocap_dir(shared) -> Path:
    return _need(shared / "data" / "mocap" / "cmu")


@pytest.fixture(scope="session")
def models_dir(shared) -> Path:
    return _need(shared / "models")


@pytest.fixture(scope="session")
def photos_dir(shared) -> Path:
    return _need(shared / "data" / "images" / "photos")


@pytest.fixture(scope="session")
def annotated_dir(shared) -> Path:
    return _need(shared / "data" / "images" / "annotated")


@pytest.fixture(scope="session")
def demo_video(shared) -> Path:
    return _need(shared / "data" / "video" / "deepstream_Retail02_short.mp4")


@pytest.fixture(scope="session")
def small_video(shared) -> Path:
    return _need(shared / "data" / "video" / "mmdeploy_arm_wrestling.mp4")


def has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    if has_cuda():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)

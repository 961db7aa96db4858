"""Debian's Chromium, headless, driven by Selenium through Debian's chromedriver (no browser download).

`make test` installs both when run as root (the `browser-deps` step); elsewhere the browser tests are
skipped with the reason. WebGL (plotly's 3D) runs on SwiftShader, Chromium's CPU renderer.
"""
from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
try:
    import selenium  # noqa: F401
    SELENIUM = True
except ImportError:
    SELENIUM = False

REASON = ("needs Debian's chromium and chromium-driver (make browser-deps, as root) and selenium (pip install -e '.[dev]')")
AVAILABLE = bool(CHROMIUM and CHROMEDRIVER and SELENIUM)


def skip_without_browser() -> None:
    if not AVAILABLE:
        pytest.skip(REASON)


@contextmanager
def chromium(width: int = 1280, height: int = 900, offline: bool = False) -> Iterator[Any]:
    """``offline``: no host name resolves (a page that needs the network cannot get it)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                "--enable-unsafe-swiftshader", "--use-angle=swiftshader", "--ignore-gpu-blocklist",
                "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    if offline:
        options.add_argument("--host-resolver-rules=MAP * ~NOTFOUND")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_until(driver: Any, script: str, check: Callable[[Any], bool], timeout_s: float) -> Any:
    """Evaluate ``script`` in the page until ``check`` holds for its value; the last value either way."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = driver.execute_script(script)
        if (value is not None and check(value)) or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


def screenshot(driver: Any, path: Path) -> np.ndarray:
    """The page as a BGR image (also written to ``path``)."""
    import cv2

    driver.save_screenshot(str(path))
    image = cv2.imread(str(path))
    assert image is not None, f"no screenshot at {path}"
    return image


def element_crop(driver: Any, image: np.ndarray, element_id: str) -> np.ndarray:
    r = driver.execute_script(f"const r = document.getElementById('{element_id}').getBoundingClientRect();"
                              "return [r.left, r.top, r.width, r.height];")
    x, y, w, h = (int(round(v)) for v in r)
    assert w > 50 and h > 50, f"#{element_id} is {w}x{h}"
    return image[y:y + h, x:x + w]


def palette_pixels(crop: np.ndarray, palette: list[str], tolerance: int = 40) -> int:
    """How many pixels of ``crop`` are near one of the track colours (people drawn) and not grey."""
    count = 0
    for hexcolour in palette:
        rgb = np.array([int(hexcolour[i:i + 2], 16) for i in (1, 3, 5)])
        bgr = rgb[::-1].astype(np.int32)
        count += int((np.abs(crop.astype(np.int32) - bgr).max(axis=2) < tolerance).sum())
    return count


def browser_log(driver: Any) -> list[str]:
    try:
        return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    except Exception:
        return []

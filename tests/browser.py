"""Headless Chromium (Debian package ``chromium``; ``make browser`` installs it) for the report tests.

``screenshot`` renders a page to a PNG and returns its pixels (RGB floats in 0..1); a test that needs
Chromium skips, naming the package, where it is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(html: Path, png: Path, size: str = "1280,2400"):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed; install it with: make browser (apt-get install -y chromium)")
    from matplotlib.image import imread

    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", "--force-color-profile=srgb", f"--user-data-dir={png.parent / 'chromium-profile'}",
               f"--screenshot={png}", f"--window-size={size}", html.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert png.is_file(), f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr[-2000:]}"
    return imread(png)[:, :, :3]


def non_white_fraction(pixels) -> float:
    return float((pixels < 0.94).any(axis=2).mean())


def pixels_near(pixels, color, within: float = 0.06) -> int:
    import numpy as np

    return int((np.abs(pixels - np.array(color)) < within).all(axis=2).sum())

"""The HTML report as a person sees it: headless Chromium (Debian's package) renders reports/index.html."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from test_collect_diagnose import fake_run, healthy_log, write_eval

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=5000",
]


@pytest.fixture(scope="session")
def chromium() -> str:
    """/usr/bin/chromium, installed from Debian's packages when missing."""
    path = shutil.which("chromium")
    if path is None:
        result = subprocess.run(
            [
                "bash",
                "-c",
                "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
                "--no-install-recommends chromium >/dev/null || (apt-get update -qq && "
                "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "
                "chromium >/dev/null)",
            ],
            capture_output=True,
            text=True,
            timeout=900,
        )
        path = shutil.which("chromium")
        assert path, f"could not install chromium: {result.stderr[-2000:]}"
    return path


def test_report_renders_in_chromium(project, catalog, orch, chromium, tmp_path):
    log, history = healthy_log()
    gold = ["suicidal", "none", "none"]
    for model, predicted in (("model-a", ["suicidal", "none", "none"]), ("model-b", ["none", "none", "none"])):
        write_eval(catalog.task(), fake_run(project.root, model, log, history), predicted, gold)
    assert orch("collect").exit_code == 0
    index = project.root / "reports/index.html"
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", index.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r'<table id="comparison">.*?</table>', dom.stdout, re.S).group(0)
    # header, the two runs and the majority baseline (the label prior as a row)
    assert body.count("<tr") == 4 and "model-a" in body and "model-b" in body and "majority baseline" in body
    # two loss curves, three risk confusion matrices (the baseline has no training curve)
    assert re.search(r'data-images-loaded="5"', dom.stdout), "the loss curves and confusion matrices did not load"
    shot = tmp_path / "shot.png"
    result = subprocess.run(
        [
            chromium,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--screenshot={shot}",
            "--window-size=1400,1000",
            index.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    colors = image.getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 50, "the screenshot is blank"
    flagged = (253, 226, 226)  # the shaded row of model-b, whose risk recall is 0
    assert any(color == flagged for _, color in colors)

"""`skilld report`: sentences from planted data, valid figures, a self-contained escaped page, and a real browser.

The browser test runs Debian's headless Chromium (`apt-get install -y chromium`); without it the test fails
with that instruction rather than skipping, because a page nobody has seen rendered is not tested.
"""

from __future__ import annotations

import base64
import functools
import io
import re
import shutil
import stat
import subprocess
from collections.abc import Callable
from datetime import date, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from daemon.report import ReportData, figures, render, verdict, write

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCRIPT = "<script>alert(1)</script>"
START = date(2026, 11, 16)
DAYS = [START + timedelta(days=i) for i in range(7)]
FIGURE_NAMES = {
    "value_scores",
    "skills_per_day",
    "gate_outcomes",
    "usefulness",
    "dataset_growth",
    "extraction_latency",
    "drift",
    "finetune",
}


def _components(scale: float) -> dict[str, list[float]]:
    names = ("outcome", "feedback", "reusability", "complexity", "novelty")
    return {name: [((i * 7 + k) % 10) / 10 * scale for i in range(40)] for k, name in enumerate(names)}


def healthy() -> ReportData:
    """A week where skills were learned, served skills help, nothing drifted and no gap is open."""
    return ReportData(
        generated_at=datetime(2026, 11, 23, 9, 30),
        since_days=7,
        headline={"events": 12_400, "interactions": 310, "scored": 300, "high_value": 41, "skills": 5, "retired": 0},
        value_scores=[(i % 20) / 20 for i in range(300)],
        components=_components(1.0),
        skills_per_day=[(day, i % 2) for i, day in enumerate(DAYS)],  # 0 1 0 1 0 1 0: three skills
        extraction_outcomes_per_day=[
            (day, {"stored": i % 2, "no_skill": 1, "rejected": 0, "parked": 0}) for i, day in enumerate(DAYS)
        ],
        usefulness=[(f"skill {i}", 0.8, 0.65, 0.9, 30 + i) for i in range(25)],
        dataset_per_day=[(day, 100 + 10 * i) for i, day in enumerate(DAYS)],
        extraction_seconds=[2.0 + (i % 9) for i in range(60)],
        drift=[{"name": "source_mix", "psi": 0.04, "ks": 0.1, "p_value": 0.6, "drifted": False, "reason": ""}],
        finetune=[
            {"id": "v1", "created_at": "2026-11-10", "status": "active", "loss_after": 1.1, "eval_loss": 1.4},
            {"id": "v2", "created_at": "2026-11-20", "status": "active", "loss_after": 0.9, "eval_loss": 1.2},
        ],
    )


def troubled() -> ReportData:
    """A week with nothing learned, most extractions rejected, and something wrong everywhere; two series empty."""
    return ReportData(
        generated_at=datetime(2026, 11, 23, 9, 30),
        since_days=7,
        headline={"events": 900, "interactions": 80, "scored": 80, "high_value": 14, "skills": 2, "retired": 1},
        value_scores=[0.3, 0.5, 0.7, 0.9],
        components=_components(0.5) | {"novelty": []},
        skills_per_day=[(day, 0) for day in DAYS],
        extraction_outcomes_per_day=[(DAYS[0], {"rejected": 5, "no_skill": 2}), (DAYS[1], {"rejected": 7})],
        usefulness=[
            (SCRIPT, 0.1, 0.02, 0.3, 12),
            ("costs $5 and $6", 0.2, 0.1, 0.4, 9),
            ("retry the flaky test", 0.3, 0.2, 0.45, 20),
            ("format dates", 0.7, 0.5, 0.85, 6),
        ],
        dataset_per_day=[],
        extraction_seconds=[],
        drift=[
            {"name": "source_mix", "psi": 0.31, "ks": 0.4, "p_value": 0.001, "drifted": True, "reason": "new source"},
            {"name": "prompt_length", "psi": 0.12, "ks": 0.2, "p_value": 0.04, "drifted": False, "reason": ""},
        ],
        failures=[{"size": 6, "representative": "tests hang", "shared": ["pytest"], "questions": [SCRIPT, "why?"]}],
        gaps=[
            {
                "topic": SCRIPT,
                "asked": 9,
                "last_asked": "2026-11-22",
                "nearest_skill": None,
                "only_retired": False,
                "score": 4.5,
            },
            {
                "topic": "docker",
                "asked": 2,
                "last_asked": "2026-11-20",
                "nearest_skill": "x",
                "only_retired": True,
                "score": 1.0,
            },
        ],
        finetune=[
            {"id": "v1", "created_at": "2026-11-10", "status": "retired", "loss_before": 2.0, "eval_loss": 1.2},
            {"id": "v2", "created_at": "2026-11-20", "status": "active", "loss_before": 1.9, "eval_loss": 1.5},
        ],
        experiments=[{"name": "prompt v3", "arms": ["v2", "v3"], "status": "running", "decision": None}],
    )


def empty() -> ReportData:
    """A fresh install: nothing at all yet."""
    return ReportData(generated_at=datetime(2026, 11, 23, 9, 30), since_days=7)


@functools.cache
def drawn(make: Callable[[], ReportData]) -> dict[str, bytes]:
    """The figures of one planted data set, drawn once per test run (drawing is the slow part)."""
    return figures(make())


@pytest.fixture(scope="module")
def troubled_html() -> str:
    return render(troubled())


class Page(HTMLParser):
    """The images, links and visible text of a rendered page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []
        self.references: list[str] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        attributes = dict(attrs)
        if tag == "img":
            self.images.append(attributes)
        self.references += [value or "" for name, value in attrs if name in ("src", "href")]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _check_png(name: str, png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_SIGNATURE), name
    Image.open(io.BytesIO(png)).verify()
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        return image.size


@pytest.mark.parametrize("make", [healthy, troubled, empty])
def test_every_figure_is_a_valid_png_of_a_readable_size(make: Callable[[], ReportData]) -> None:
    assert set(drawn(make)) == FIGURE_NAMES
    for name, png in drawn(make).items():
        width, height = _check_png(name, png)
        assert 300 <= width <= 1200 and 100 <= height <= 1600, (name, width, height)


def test_an_empty_series_gives_a_small_no_data_figure_not_a_full_one() -> None:
    full, bare = drawn(healthy), drawn(empty)
    for name in FIGURE_NAMES:
        full_size, bare_size = _check_png(name, full[name]), _check_png(name, bare[name])
        assert bare_size[0] < full_size[0] and bare_size[1] < 200, (name, full_size, bare_size)
    # only the series that are empty in the troubled data shrink
    mixed = drawn(troubled)
    assert _check_png("dataset_growth", mixed["dataset_growth"])[1] < 200
    assert _check_png("extraction_latency", mixed["extraction_latency"])[1] < 200
    assert _check_png("drift", mixed["drift"])[1] > 150


def test_no_skills_and_many_rejections_says_so_and_points_at_the_reasons() -> None:
    sentences = verdict(troubled())
    assert sentences[0] == (
        "No skill was learned in the last 7 days: 12 extractions were rejected by the quality gate; "
        "see the rejected reasons with `skilld status`."
    )


def test_a_healthy_week_says_skilld_is_learning_and_nothing_else_needs_attention() -> None:
    sentences = verdict(healthy())
    assert sentences == [
        "skilld is learning: 3 skills were learned in the last 7 days (30% of 10 extractions stored).",
        "Nothing else needs attention: no drift, no confidently unhelpful skill, no open gap.",
    ]


def test_every_problem_gets_a_sentence_and_the_verdict_stays_at_five() -> None:
    sentences = verdict(troubled())
    assert len(sentences) == 5
    assert sentences[1].startswith(f"3 served skills are confidently unhelpful ({SCRIPT}, costs $5 and $6, ")
    assert sentences[2].startswith("Drift in source_mix (PSI up to 0.31)")
    assert sentences[3].startswith("The newest fine-tuned model (v2) is worse on held-out data (1.200 → 1.500)")
    assert sentences[4] == f"Top gap: “{SCRIPT}” was asked 9 times and no skill answers it."


def test_nothing_observed_and_parked_extractions_name_their_cause() -> None:
    assert verdict(empty())[0].startswith("Nothing was observed in the last 7 days")
    parked = troubled()
    parked.extraction_outcomes_per_day = [(DAYS[0], {"parked": 4, "rejected": 1})]
    assert verdict(parked)[0].startswith("No skill was learned in the last 7 days: 4 extractions were parked")


def test_the_page_is_self_contained(troubled_html: str) -> None:
    page = Page(troubled_html)
    assert "http://" not in troubled_html and "https://" not in troubled_html
    assert "link" not in page.tags and "script" not in page.tags
    assert len(page.images) == len(FIGURE_NAMES)
    assert page.references and all(ref.startswith("data:image/png;base64,") for ref in page.references)
    for image in page.images:
        assert image["alt"], image.get("alt")
        png = base64.b64decode((image["src"] or "").removeprefix("data:image/png;base64,"), validate=True)
        _check_png("embedded", png)
    assert troubled_html.count("<figcaption>") == len(FIGURE_NAMES)


def test_user_strings_are_escaped_everywhere(troubled_html: str) -> None:
    assert SCRIPT not in troubled_html
    # in the verdict, the usefulness sentence, the gaps table and the failures table
    assert troubled_html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4


def test_the_page_shows_the_verdict_and_the_headline(troubled_html: str) -> None:
    text = unescape(re.sub(r"<[^>]+>", "", troubled_html))
    for sentence in verdict(troubled()):
        assert sentence.replace("`", "") in text
    assert "<code>skilld status</code>" in troubled_html
    assert "high value14" in text and "events900" in text


def test_write_leaves_one_owner_only_file(tmp_path: Path) -> None:
    target = tmp_path / "reports"
    (target).mkdir()
    (target / ".report.html.partial").write_text("stale")
    (target / ".report.html.partial").chmod(0o644)
    path = write(troubled(), target)
    assert path == target / "report.html"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in target.iterdir()) == ["report.html"]
    assert path.read_text(encoding="utf-8").startswith("<!doctype html>")


# ---------------------------------------------------------------------------------------------- browser

PROBE = """<script>
addEventListener("load", () => {
  const images = [...document.images];
  document.body.dataset.images = images.length;
  document.body.dataset.broken = images.filter((i) => !i.complete || i.naturalWidth === 0).length;
});
</script>"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed: on Debian/Ubuntu run `apt-get install -y chromium` (as root)")
    return found


def _browse(chromium: str, profile: Path, *args: str) -> str:
    command = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, f"chromium failed ({done.returncode}): {done.stderr[-2000:]}"
    return done.stdout


def _dom_counts(chromium: str, profile: Path, page: Path) -> tuple[int, int]:
    dom = _browse(chromium, profile, "--virtual-time-budget=5000", "--dump-dom", page.as_uri())
    images = re.search(r'data-images="(\d+)"', dom)
    broken = re.search(r'data-broken="(\d+)"', dom)
    assert images and broken, f"the probe did not run: {dom[:300]!r}"
    return int(images.group(1)), int(broken.group(1))


def _blue_pixels(screenshot: Path) -> int:
    """Pixels of matplotlib's default blue (#1f77b4): the bars and histograms, which only decoded images show."""
    with Image.open(screenshot) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    near = np.abs(pixels - np.array([31, 119, 180], dtype=np.int16)).max(axis=2) < 12
    return int(near.sum())


def test_chromium_renders_the_page_and_decodes_every_figure(tmp_path: Path) -> None:
    chromium = _chromium()
    report = write(troubled(), tmp_path / "report")
    screenshot = tmp_path / "shot.png"
    _browse(chromium, tmp_path / "profile", f"--screenshot={screenshot}", "--window-size=1200,3000", report.as_uri())
    assert _check_png("screenshot", screenshot.read_bytes()) == (1200, 3000)
    assert _blue_pixels(screenshot) > 2000

    text = report.read_text(encoding="utf-8")
    probe = tmp_path / "report" / "probe.html"
    probe.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    assert _dom_counts(chromium, tmp_path / "profile", probe) == (len(FIGURE_NAMES), 0)

    # the probe can see a broken image: the same page with one figure's data corrupted
    corrupted = tmp_path / "report" / "corrupted.html"
    corrupted.write_text(
        text.replace("data:image/png;base64,iVBOR", "data:image/png;base64,AAAAA", 1).replace(
            "</body>", PROBE + "</body>"
        ),
        encoding="utf-8",
    )
    assert _dom_counts(chromium, tmp_path / "profile", corrupted) == (len(FIGURE_NAMES), 1)

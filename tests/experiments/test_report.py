"""The HTML report: escaped, self-contained, and drawn as intended by a real browser.

The browser test renders the page in headless Chromium (Debian's `chromium`; .ci/run installs it
when apt is available) and reads back both the DOM and a screenshot, which is kept under
tests/artifacts/ and named at the end of the run. Without Chromium the test skips, saying so.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import zlib
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest

from handler.experiments import MetricCounts, StopRule, build_results, render_report
from handler.experiments.results import CampaignResults

pytestmark = pytest.mark.unit

CHROMIUM_TIMEOUT_S = 90

HOSTILE = '<script>alert("x")</script> & "quotes" \'single\''


def _results(
    name: str = "Model bake-off", variant_names: tuple[str, ...] = ("control", "sonnet", "opus")
) -> CampaignResults:
    rng = random.Random(16)
    rates = (0.30, 0.42, 0.28)
    means = (820.0, 1150.0, 1400.0)
    sizes = (600, 580, 400)
    stats = {
        v: {
            "thumbs_up": MetricCounts.of(1.0 if rng.random() < rate else 0.0 for _ in range(n)),
            "latency_ms": MetricCounts.of(rng.gauss(mean, 200.0) for _ in range(n)),
        }
        for v, rate, mean, n in zip(variant_names, rates, means, sizes, strict=True)
    }
    a, b, c = variant_names
    return build_results(
        "0c9a4a52-5f5e-4b0e-9a1f-2b8f2f0f1616",
        "bake-off",
        name,
        list(variant_names),
        stats,
        preferences={(b, a): (70, 35, 15), (c, a): (20, 22, 8)},
        stop=StopRule("thumbs_up", min_samples=200),
        lower_is_better={"latency_ms"},
    )


class _Element:
    def __init__(
        self, tag: str, attrs: dict[str, str], sections: list[str], ancestors: list[_Element]
    ) -> None:
        self.tag, self.attrs, self.sections, self.ancestors = tag, attrs, sections, ancestors
        self.chunks: list[str] = []

    @property
    def text(self) -> str:
        return " ".join("".join(self.chunks).split())


class _Dom(HTMLParser):
    """Every element with its attributes, its text and the sections around it."""

    VOID = frozenset({"meta", "line", "circle", "br", "img", "input", "link", "path", "rect"})

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[_Element] = []
        self.text: list[str] = []
        self._sections: list[str] = []
        self._open: list[_Element] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "section":
            self._sections.append(attributes.get("data-metric", attributes.get("class", "")))
        element = _Element(tag, attributes, list(self._sections), list(self._open))
        self.elements.append(element)
        if tag not in self.VOID:
            self._open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self._open.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag == "section" and self._sections:
            self._sections.pop()
        while self._open:
            if self._open.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        for element in self._open:
            element.chunks.append(data)

    def classes(self, cls: str) -> list[_Element]:
        return [e for e in self.elements if cls in e.attrs.get("class", "").split()]

    def rows(self, section: str) -> dict[str, list[str]]:
        """A section's table rows: data-variant -> the texts of its cells."""
        return {
            row.attrs["data-variant"]: [
                e.text for e in self.elements if e.tag == "td" and any(a is row for a in e.ancestors)
            ]
            for row in self.elements
            if row.tag == "tr" and "data-variant" in row.attrs and section in row.sections
        }

    @property
    def all_text(self) -> str:
        return " ".join(" ".join(self.text).split())


def _parse(markup: str) -> _Dom:
    dom = _Dom()
    dom.feed(markup)
    dom.close()
    return dom


def _check_drawn(dom: _Dom, results: CampaignResults) -> None:
    """One error bar per variant per metric, the verdicts, and the sample sizes."""
    for metric in results.metrics:
        bars = [e for e in dom.classes("error-bar") if metric.metric in e.sections]
        expected = [v.variant for v in metric.variants if v.ci is not None]
        assert len(expected) == len(metric.variants)  # every variant has an interval here
        assert sorted(e.attrs["data-variant"] for e in bars) == sorted(expected), metric.metric
        by_variant = {e.attrs["data-variant"]: e for e in bars}
        for v in metric.variants:  # the label (maybe shortened) and the tooltip name the size
            assert by_variant[v.variant].attrs["data-n"] == str(v.n)
            assert f"(n={v.n})" in by_variant[v.variant].text
            assert f"{v.variant}: mean" in by_variant[v.variant].text
        verdicts = [e for e in dom.classes("verdict") if metric.metric in e.sections]
        assert [e.text for e in verdicts] == [" ".join(metric.verdict.split())]
        rows = dom.rows(metric.metric)
        assert {name: cells[1] for name, cells in rows.items()} == {
            v.variant: str(v.n) for v in metric.variants
        }
    assert len(dom.classes("win-rate-bar")) == len(results.preferences)


def test_report_is_self_contained_and_escaped() -> None:
    results = _results(HOSTILE, (f"ctl {HOSTILE}", "b&b", 'c"><svg onload=alert(1)>'))
    markup = render_report(results)
    dom = _parse(markup)
    assert not [e for e in dom.elements if e.tag in ("script", "img", "link", "iframe", "object", "embed")]
    assert not [e for e in dom.elements if any(k.startswith("on") for k in e.attrs)]
    assert not [e for e in dom.elements if {"src", "href"} & set(e.attrs)]
    assert [e.tag for e in dom.elements].count("svg") == 3  # two metrics and the preferences
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    # The hostile strings come back intact as text, after the parser unescapes them.
    assert HOSTILE in dom.all_text
    assert not re.search(r"[a-z]+://|url\(", markup.replace('xmlns="http://www.w3.org/2000/svg"', ""))
    _check_drawn(dom, results)


def test_report_states_the_tests_and_the_decision() -> None:
    results = _results()
    assert results.status == "completed" and results.winner == "sonnet"
    by_metric = {m.metric: m for m in results.metrics}
    assert by_metric["thumbs_up"].test == "two_proportion_z"
    assert by_metric["latency_ms"].test == "welch_t"
    text = _parse(render_report(results)).all_text
    assert "Winner: sonnet" in text
    assert "Welch's t-test" in text and "two-proportion z-test" in text
    assert "sonnet is significantly higher than control (better) on thumbs_up" in text
    assert "sonnet is significantly higher than control (worse)" in text and "on latency_ms" in text
    assert "sonnet preferred" in text


def test_report_without_data() -> None:
    empty = build_results("id", "k", "n", ["a", "b"], {"a": {"m": MetricCounts.of([2.0])}, "b": {}})
    markup = render_report(empty)
    assert "Not enough data on m" in markup
    dom = _parse(markup)
    assert not dom.classes("error-bar")
    assert [e.attrs["data-variant"] for e in dom.classes("no-interval")] == ["a"]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
    """Run a browser in its own process group, and end that whole group if it overstays."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{args[0]} did not finish within {timeout}s")
    finally:
        with contextlib.suppress(ProcessLookupError):  # helpers Chromium left behind in its group
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


def _png_colours(data: bytes) -> tuple[int, int, int]:
    """(width, height, distinct colours) of an 8-bit RGB/RGBA non-interlaced PNG, stdlib only."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, bytearray(), b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(bytes(idat))
    stride = width * bpp
    prev = bytearray(stride)
    colours: set[bytes] = set()
    for y in range(height):
        start = y * (stride + 1)
        kind, row = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 0xFF
        elif kind == 2:
            row = bytearray((a + b) & 0xFF for a, b in zip(row, prev, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = row[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                row[i] = (row[i] + pred) & 0xFF
        if y % 3 == 0:  # a sample of the rows is plenty to tell a page from a blank
            colours.update(bytes(row[i : i + 3]) for i in range(0, stride, bpp))
        prev = row
    return width, height, len(colours)


def test_report_renders_in_headless_chromium(tmp_path: Path, keep_artifact: Callable[[str], Path]) -> None:
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium); the report is not rendered")
    results = _results(f"Bake-off {HOSTILE}")
    page = tmp_path / "report.html"
    page.write_text(render_report(results), encoding="utf-8")
    screenshot = keep_artifact("experiment_report.png")
    screenshot.unlink(missing_ok=True)
    common = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,900",
    ]
    dumped = _run(
        [*common, f"--user-data-dir={tmp_path / 'profile-dom'}", "--dump-dom", page.as_uri()],
        CHROMIUM_TIMEOUT_S,
    )
    assert dumped.returncode == 0, dumped.stderr.decode(errors="replace")[-2000:]
    dom = _parse(dumped.stdout.decode())
    _check_drawn(dom, results)
    assert "Winner: sonnet" in dom.all_text
    assert HOSTILE in dom.all_text  # shown as text, not run: the DOM has no script element
    assert not [e for e in dom.elements if e.tag == "script"]

    shot = _run(
        [
            *common,
            f"--user-data-dir={tmp_path / 'profile-shot'}",
            f"--screenshot={screenshot}",
            page.as_uri(),
        ],
        CHROMIUM_TIMEOUT_S,
    )
    assert shot.returncode == 0, shot.stderr.decode(errors="replace")[-2000:]
    assert screenshot.exists(), "chromium wrote no screenshot"
    data = screenshot.read_bytes()
    assert len(data) > 20_000, f"screenshot is only {len(data)} bytes"
    width, height, colours = _png_colours(data)
    assert (width, height) == (1200, 900)
    assert colours > 50, f"screenshot looks blank: {colours} distinct colours"
    (keep_artifact("experiment_report.html")).write_text(page.read_text(encoding="utf-8"), encoding="utf-8")

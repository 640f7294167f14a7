"""The session report in a real browser: headless Debian chromium opens report.html with every host name
unresolvable; no console message may appear and the page may request nothing over the network."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def open_in_chromium(page, tmp_path) -> tuple[str, list[str], list[str]]:
    """(dumped DOM, console lines, http(s) URLs the page itself requested) for a local HTML file."""
    net = tmp_path / "net.json"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # nothing resolves: a network dependency cannot succeed
        "--virtual-time-budget=3000",  # let the page finish loading (images, fonts) before the dump
        f"--log-net-log={net}",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    console = [line for line in res.stderr.splitlines() if ":CONSOLE" in line]
    # The browser's own background services also appear in the net log; the page's requests are the
    # ones keyed to its file:// origin.
    events = json.loads(net.read_text())["events"]
    page_sources = {
        e["source"]["id"]
        for e in events
        if "file://" in str(e.get("params", {}).get("network_isolation_key", ""))
    }
    urls = sorted(
        {
            e["params"]["url"]
            for e in events
            if e["source"]["id"] in page_sources
            and str(e.get("params", {}).get("url", "")).startswith("http")
        }
    )
    return res.stdout, console, urls


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian chromium (apt-get install chromium)")
def test_report_opens_in_chromium_without_console_errors_or_network(sim_run, tmp_path):
    # The checker itself must see a broken page: a script error and an image from the network.
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><img src="https://example.invalid/x.png"><script>nope();</script>')
    _, console, urls = open_in_chromium(bad, tmp_path / "bad")
    assert any("nope" in line for line in console) and urls == ["https://example.invalid/x.png"]

    dom, console, urls = open_in_chromium(sim_run["out"] / "report" / "report.html", tmp_path / "good")
    assert console == [] and urls == []
    assert "Queries and answers" in dom and dom.count("data:image/jpeg;base64,") >= 5 and "<polyline" in dom

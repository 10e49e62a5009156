"""`runlog journal`: a real history of runs, the page checked in a real headless Chromium."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import integration

from runlog.cli import main as cli

SCRIPT = """\
import argparse, runlog, sys
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, default=0.1)
p.add_argument("--layers", type=int, default=2)
p.add_argument("--fail", action="store_true")
a = p.parse_args()
run = runlog.start(git=False)
loss = 1.0
for step in range(30):
    loss *= 1 - a.lr
    run.log_metrics({"loss": loss, "acc": 1 - loss}, step=step)
if a.fail:
    raise RuntimeError("diverged </script><b>not html</b>")
"""
BUILD = Path(__file__).resolve().parent.parent / "build"


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    d = tmp_path_factory.mktemp("journal")
    (d / "train.py").write_text(textwrap.dedent(SCRIPT))
    env = dict(os.environ)
    env.pop("RUNLOG_DIR", None)
    for args in (["--lr", "0.1", "--note", "baseline"], ["--lr", "0.3", "--note", "higher lr"],
                 ["--lr", "0.3", "--layers", "4", "--note", "deeper"],
                 ["--lr", "0.9", "--fail", "--note", "too far"]):
        subprocess.run([sys.executable, "train.py", *args], cwd=d, env=env, capture_output=True,
                       timeout=60)
    logs = d / "logs"
    ids = sorted(x.name for x in logs.iterdir() if x.is_dir() and not x.name.startswith("."))
    assert len(ids) == 4
    assert cli(["--dir", str(logs), "note", ids[1], "the curve flattens after step 20"]) == 0
    return d, logs, ids


def test_journal_file_is_self_contained(history, capsys):
    d, logs, ids = history
    out = d / "j.html"
    assert cli(["--dir", str(logs), "journal", "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    html = out.read_text()
    assert "<script src" not in html and "<link" not in html
    # no address is fetched: the only URL is the SVG namespace name
    assert set(re.findall(r"https?://[^\s\"'<>)]+", html)) <= {"http://www.w3.org/2000/svg"}
    raw = re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S).group(1)
    assert "<" not in raw  # nothing in the data can start a tag, a comment or an end tag
    data = json.loads(raw)
    runs = data["runs"]
    assert [r["id"] for r in runs] == ids[::-1]  # newest first
    by = {r["note"]: r for r in runs}
    assert by["higher lr"]["since"]["args"] == ["lr 0.1 → 0.3"]
    assert by["deeper"]["since"]["args"] == ["layers 2 → 4"]
    assert by["higher lr"]["notes"][0][1] == "the curve flattens after step 20"
    assert len(by["baseline"]["curves"]["loss"]) == 30
    assert by["too far"]["status"] == "failed" and "diverged" in by["too far"]["error"]
    # the default place is the log directory
    assert cli(["--dir", str(logs), "journal"]) == 0
    assert (logs / "journal.html").exists()
    assert cli(["--dir", str(logs), "ls", "--json"]) == 0  # a file there is not a run
    assert len(capsys.readouterr().out.strip().splitlines()) == 1 + 4  # path, then 4 runs


def _driver():
    integration("selenium")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not chromium or not chromedriver:
        pytest.skip("chromium and chromedriver are not installed (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1280,1000"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=chromedriver), options=opts)


def test_journal_in_a_real_browser(history):
    d, logs, ids = history
    out = d / "browser.html"
    assert cli(["--dir", str(logs), "journal", "-o", str(out)]) == 0
    driver = _driver()
    from selenium.webdriver.common.by import By

    try:
        driver.get(out.as_uri())
        cards = driver.find_elements(By.CSS_SELECTOR, ".card")
        assert len(cards) == 4
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        day = f"{ids[0][:4]}-{ids[0][4:6]}-{ids[0][6:8]}"
        assert driver.find_element(By.CSS_SELECTOR, "h2.day").text == day
        assert len(driver.find_elements(By.CSS_SELECTOR, ".card .curve svg path.series")) == 8
        failed = [c for c in cards if "too far" in c.text][0]
        assert "diverged </script><b>not html</b>" in failed.text  # text, never markup
        # folded material opens on click
        fold = cards[0].find_element(By.CSS_SELECTOR, "details.fold-args")
        assert fold.get_attribute("open") is None
        fold.find_element(By.TAG_NAME, "summary").click()
        assert fold.get_attribute("open") == "true"
        assert "layers" in fold.text
        # the compare view: two runs, curves overlaid, differing arguments highlighted
        button = driver.find_element(By.ID, "compare-btn")
        assert not button.is_enabled()
        for c in cards[1:3]:
            c.find_element(By.CSS_SELECTOR, "input.pick").click()
        assert button.is_enabled() and button.text == "Compare (2)"
        button.click()
        panel = driver.find_element(By.ID, "compare")
        assert panel.is_displayed()
        assert len(panel.find_elements(By.CSS_SELECTOR, ".legend span")) == 2
        assert len(panel.find_elements(By.CSS_SELECTOR, "svg path.series")) == 4  # 2 metrics x 2
        diff = [td.text for td in panel.find_elements(By.CSS_SELECTOR, "td.diff")]
        assert diff == ["4", "2"]  # layers differs between "deeper" and "higher lr"; lr does not
        BUILD.mkdir(exist_ok=True)
        driver.save_screenshot(str(BUILD / "journal-compare-two.png"))
        driver.find_element(By.ID, "compare-close").click()
        assert not panel.is_displayed()
        # the filter box: the page redraws a moment after the last key (a timer, not an event
        # WebDriver sees), so wait until the cards shown are those of the filter
        from selenium.webdriver.support.ui import WebDriverWait

        def cards_shown(n):
            # 60 s only so a broken page fails instead of hanging; it redraws in 120 ms
            WebDriverWait(driver, 60, poll_frequency=0.05).until(
                lambda d: len(d.find_elements(By.CSS_SELECTOR, ".card")) == n,
                f"{n} card(s) never shown")

        box = driver.find_element(By.ID, "filter")
        box.send_keys("deeper")
        cards_shown(1)
        assert "deeper" in driver.find_element(By.CSS_SELECTOR, ".card").text
        box.clear()
        box.send_keys(" ")
        cards_shown(4)
        driver.save_screenshot(str(BUILD / "journal.png"))
    finally:
        driver.quit()


# Text that changes the HTML parser's state inside a <script> element: a comment opener
# followed by "<script" (the data element then swallows the page's own script), an end
# tag, markup, a CDATA end, and the JavaScript line separators.
HOSTILE = ["<!--<script>", "</script>", "<script>alert(1)</script>", "]]>", "a\u2028b\u2029c",
           "<!--<script>x</script><script>alert(2)</script>-->]]>\u2028end"]
HOSTILE_SCRIPT = """\
import argparse, logging, runlog
p = argparse.ArgumentParser()
p.add_argument("--text", default="plain")
p.add_argument("--lr", type=float, default=0.1)
a = p.parse_args()
run = runlog.start(git=False)
logging.getLogger("t").info("log says %s", a.text)
for step in range(3):
    run.metric("loss", a.lr / (step + 1), step=step)
    run.metric("m</script><!--", float(step), step=step)
run.add_note("later: " + a.text)
"""


@pytest.fixture(scope="module")
def hostile_history(tmp_path_factory):
    d = tmp_path_factory.mktemp("journal-hostile")
    (d / "train.py").write_text(textwrap.dedent(HOSTILE_SCRIPT))
    env = dict(os.environ)
    env.pop("RUNLOG_DIR", None)
    for i, text in enumerate(HOSTILE):
        p = subprocess.run([sys.executable, "train.py", "--note", text, "--text", text,
                            "--lr", str(0.1 * (i + 1))], cwd=d, env=env, capture_output=True,
                           timeout=60)
        assert p.returncode == 0, p.stderr
    return d, d / "logs"


def test_journal_data_cannot_leave_its_script_element(hostile_history):
    d, logs = hostile_history
    out = d / "j.html"
    assert cli(["--dir", str(logs), "journal", "-o", str(out)]) == 0
    html = out.read_text(encoding="utf-8")
    start = html.index('<script type="application/json" id="data">') + 42
    data = html[start:html.index("</script>", start)]
    assert not set(data) & {"<", ">", "&", "\u2028", "\u2029"}
    runs = json.loads(data)["runs"]
    assert sorted(r["note"] for r in runs) == sorted(HOSTILE)
    assert html.count("<script") == 2  # the data and the page's own


def test_journal_in_a_real_browser_shows_hostile_text_as_text(hostile_history):
    d, logs = hostile_history
    out = d / "hostile.html"
    assert cli(["--dir", str(logs), "journal", "-o", str(out)]) == 0
    driver = _driver()
    from selenium.webdriver.common.by import By

    try:
        driver.get(out.as_uri())
        cards = driver.find_elements(By.CSS_SELECTOR, ".card")
        assert len(cards) == len(HOSTILE)
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        assert driver.execute_script("return document.scripts.length") == 2  # no markup made
        shown = driver.execute_script("""
            return [...document.querySelectorAll('.card')].map(c => ({
              note: c.querySelector('.note').textContent,
              later: c.querySelector('.notes').textContent,
              args: [...c.querySelectorAll('table.args td')].map(td => td.textContent),
              log: c.querySelector('.fold-log pre').textContent,
              curves: [...c.querySelectorAll('.curve')].map(e => e.textContent)}));""")
        assert sorted(s["note"] for s in shown) == sorted(HOSTILE)  # verbatim
        for s in shown:
            text = s["note"]
            # notes.md splits at "\n" only: U+2028 and U+2029 stay in their note
            assert s["later"].endswith("later: " + text)
            assert s["args"][s["args"].index("text") + 1] == text
            assert "log says " + text in s["log"]
            assert "m</script><!--" in s["curves"]
        for c in cards:  # and on the screen, where the text has no line separator
            note = c.find_element(By.CSS_SELECTOR, ".note")
            assert note.is_displayed()
            if "\u2028" not in note.get_attribute("textContent"):
                assert note.text == note.get_attribute("textContent")
    finally:
        driver.quit()


# nanoGPT-like: many arguments of which one differs, and a metric of the size of a learning
# rate (its labels, 1e-4 and such, are what used to sit on the curves)
WIDE_SCRIPT = """\
import argparse, runlog
p = argparse.ArgumentParser()
for i in range(32):
    p.add_argument(f"--opt{i:02d}", type=int, default=i)
p.add_argument("--lr", type=float, default=1e-4)
a = p.parse_args()
run = runlog.start(git=False)
for step in range(0, 400, 10):
    warm = min(1.0, (step + 10) / 100)
    run.log_metrics({"lr": a.lr * warm, "loss": 4.0 - step * a.lr * 5}, step=step)
"""
LRS = ["1e-4", "3e-4", "1e-3"]


@pytest.fixture(scope="module")
def wide_history(tmp_path_factory):
    d = tmp_path_factory.mktemp("journal-wide")
    (d / "train.py").write_text(WIDE_SCRIPT)
    env = dict(os.environ)
    env.pop("RUNLOG_DIR", None)
    for lr in LRS:
        p = subprocess.run([sys.executable, "train.py", "--lr", lr, "--note", f"lr {lr}"], cwd=d,
                           env=env, capture_output=True, timeout=60)
        assert p.returncode == 0, p.stderr
    # another script: two of its arguments are its own, one (lr) it shares
    (d / "other.py").write_text("import argparse, runlog\np = argparse.ArgumentParser()\n"
                                "p.add_argument('--lr', type=float)\np.add_argument('--zeta', default=1)\n"
                                "p.add_argument('--alpha', default=2)\na = p.parse_args()\n"
                                "runlog.start(git=False)\n")
    p = subprocess.run([sys.executable, "other.py", "--lr", "0.01", "--note", "other"], cwd=d,
                       env=env, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return d, d / "logs"


# Every label of every compare chart against every point of every curve, on the screen:
# the curves sampled every 2 px along their length, the labels as the browser laid them out.
GEOMETRY_JS = """
const out = [];
for (const svg of document.querySelectorAll('#compare svg')) {
  const labels = [...svg.querySelectorAll('text')].map(t => {
    const b = t.getBoundingClientRect();
    return {text: t.textContent, cls: t.getAttribute('class'), l: b.left, r: b.right, t: b.top, b: b.bottom};
  });
  const hits = [];
  let points = 0;
  for (const p of svg.querySelectorAll('path.series')) {
    const m = p.getScreenCTM(), n = p.getTotalLength();
    for (let s = 0; s <= n; s += 2) {
      const q = p.getPointAtLength(s), x = m.a * q.x + m.c * q.y + m.e, y = m.b * q.x + m.d * q.y + m.f;
      points++;
      for (const L of labels)
        if (x >= L.l - 1 && x <= L.r + 1 && y >= L.t - 1 && y <= L.b + 1) hits.push([L.text, x, y]);
    }
  }
  out.push({labels, hits, points});
}
return out;
"""


def test_compare_view_reads_like_ls(wide_history):
    d, logs = wide_history
    out = d / "wide.html"
    assert cli(["--dir", str(logs), "journal", "-o", str(out)]) == 0
    driver = _driver()
    from selenium.webdriver.common.by import By

    try:
        driver.get(out.as_uri())
        cards = driver.find_elements(By.CSS_SELECTOR, ".card")
        assert len(cards) == 4
        for c in cards[1:]:  # the three runs of train.py
            c.find_element(By.CSS_SELECTOR, "input.pick").click()
        driver.find_element(By.ID, "compare-btn").click()
        panel = driver.find_element(By.ID, "compare")
        assert panel.is_displayed()
        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
        args = panel.find_elements(By.CSS_SELECTOR, "tbody.section")[0]
        rows = args.find_elements(By.CSS_SELECTOR, "tr")
        kinds = [r.get_attribute("class") for r in rows]
        # the head, the one differing argument, the fold, then the 32 identical ones
        assert kinds == ["section-head", "differs", "fold"] + ["same"] * 32
        differs = rows[1].find_elements(By.TAG_NAME, "td")
        assert [td.text for td in differs] == ["lr", "0.001", "0.0003", "0.0001"]
        assert all("diff" in td.get_attribute("class") for td in differs[1:])
        fold = rows[2].find_element(By.CSS_SELECTOR, "button.fold-same")
        assert fold.text.endswith("32 identical")
        assert not any(r.is_displayed() for r in rows[3:])  # folded
        assert rows[1].location["y"] < rows[2].location["y"]  # on the screen too
        BUILD.mkdir(exist_ok=True)
        driver.save_screenshot(str(BUILD / "journal-compare.png"))  # docs/journal-compare.png
        fold.click()
        assert all(r.is_displayed() for r in rows[3:]) and fold.get_attribute("aria-expanded") == "true"
        assert rows[3].find_element(By.TAG_NAME, "td").text == "opt00"
        # metrics: both differ here, and nothing is folded
        metrics = panel.find_elements(By.CSS_SELECTOR, "tbody.section")[1]
        assert [r.get_attribute("class") for r in metrics.find_elements(By.CSS_SELECTOR, "tr")] == [
            "section-head", "differs", "differs"]
        # where they ran: the same machine and Python, folded as identical
        envs = panel.find_elements(By.CSS_SELECTOR, "tbody.section")[2]
        head, *rest = envs.find_elements(By.CSS_SELECTOR, "tr")
        assert "all identical" in head.text
        assert rest[0].get_attribute("class") == "fold" and "python" not in envs.text
        assert {r.get_attribute("class") for r in rest[1:]} == {"same"}

        charts = driver.execute_script(GEOMETRY_JS)
        assert len(charts) == 2  # lr and loss
        for chart in charts:
            assert chart["points"] > 100
            assert chart["hits"] == [], chart["hits"]  # no label covers a curve
            ys = [float(L["text"]) for L in chart["labels"] if L["cls"] == "tick y"]
            assert len(ys) >= 3  # the lowest, at least one between, the highest
            steps = {f"{b - a:.6g}" for a, b in zip(ys, ys[1:])}
            assert len(steps) == 1 and ys == sorted(ys)  # evenly spaced
            step = float(steps.pop())
            assert round(step / 10 ** math.floor(math.log10(step)), 6) in (1, 2, 5)  # a round step
            xs = [float(L["text"]) for L in chart["labels"] if L["cls"] == "tick x"]
            assert len(xs) >= 3 and xs[0] <= 0 and xs[-1] >= 390
            # labels do not cover each other either
            boxes = chart["labels"]
            for i, p in enumerate(boxes):
                for q in boxes[i + 1:]:
                    apart = p["r"] <= q["l"] or q["r"] <= p["l"] or p["b"] <= q["t"] or q["b"] <= p["t"]
                    assert apart, (p, q)
        lr_chart = charts[0]
        ys = [float(L["text"]) for L in lr_chart["labels"] if L["cls"] == "tick y"]
        assert ys[0] <= 1e-5 and ys[-1] >= 1e-3  # the axis covers the data

        # a run of another script: the argument both have that differs comes first, then
        # those only one of them has
        from selenium.webdriver.common.keys import Keys

        driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)  # closes it too
        assert not panel.is_displayed()
        for c in (cards[0], cards[2], cards[3]):
            c.find_element(By.CSS_SELECTOR, "input.pick").click()  # other.py and 1e-3 stay
        driver.find_element(By.ID, "compare-btn").click()
        args = panel.find_elements(By.CSS_SELECTOR, "tbody.section")[0]
        keys = [r.find_element(By.TAG_NAME, "td").text
                for r in args.find_elements(By.CSS_SELECTOR, "tr.differs")]
        assert keys[0] == "lr" and sorted(keys[1:]) == sorted(
            ["zeta", "alpha"] + [f"opt{i:02d}" for i in range(32)])
    finally:
        driver.quit()


MANY_SCRIPT = """\
import runlog, sys
for i in range(int(sys.argv[1])):
    run = runlog.start({"i": i}, git=False, console=False, capture_output=False, note=f"run {i}")
    run.metric("loss", 1.0 / (i + 1), step=0)
    run.metric("loss", 0.5 / (i + 1), step=1)
    run.finish()
"""


def test_a_long_history_opens_a_batch_at_a_time(tmp_path):
    (tmp_path / "many.py").write_text(MANY_SCRIPT)
    env = dict(os.environ)
    env.pop("RUNLOG_DIR", None)
    p = subprocess.run([sys.executable, "many.py", "450"], cwd=tmp_path, env=env,
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr
    out = tmp_path / "many.html"
    assert cli(["--dir", str(tmp_path / "logs"), "journal", "-o", str(out)]) == 0
    driver = _driver()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def cards_shown(n):  # the page adds cards on events WebDriver does not see: wait for them
        WebDriverWait(driver, 60, poll_frequency=0.05).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, ".card")) == n, f"{n} cards never shown")

    try:
        driver.get(out.as_uri())
        assert len(driver.find_elements(By.CSS_SELECTOR, ".card")) == 200  # the first batch
        more = driver.find_element(By.ID, "more")
        assert more.text == "show 200 more (250 left)"
        # the filter and Compare reach runs whose cards are not made yet
        driver.find_element(By.ID, "filter").send_keys("run 4")
        cards_shown(1 + 10 + 50)  # run 4, runs 40-49, runs 400-449
        assert driver.find_elements(By.ID, "more") == []
        for c in driver.find_elements(By.CSS_SELECTOR, ".card")[:2]:
            c.find_element(By.CSS_SELECTOR, "input.pick").click()
        driver.find_element(By.ID, "filter").clear()
        driver.find_element(By.ID, "filter").send_keys(" ")
        cards_shown(200)
        assert len(driver.find_elements(By.CSS_SELECTOR, ".card.selected")) == 2  # kept
        # the button brings the next batch (clicked where it is, without scrolling to it:
        # scrolling there brings the batch by itself, as the next step checks)
        driver.execute_script("document.getElementById('more').click()")
        cards_shown(400)
        assert driver.find_element(By.ID, "more").text == "show 50 more (50 left)"
        driver.execute_script("document.getElementById('more').scrollIntoView()")
        cards_shown(450)
        assert driver.find_elements(By.ID, "more") == []
        assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []
    finally:
        driver.quit()


def test_journal_into_a_fifo_leaves_it_a_fifo(history, capsys):
    """`-o /dev/null` or a pipe is written into: renaming over it would replace the device
    (as root, /dev/null itself became the HTML file)."""
    import stat
    import threading

    d, logs, ids = history
    fifo = d / "pipe"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    assert cli(["--dir", str(logs), "journal", "-o", str(fifo)]) == 0
    reader.join(timeout=60)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert got and got[0].startswith(b"<!") and not list(d.glob("pipe.*.tmp"))


def _journal_ids(path: Path) -> list[str]:
    raw = re.search(r'<script type="application/json" id="data">(.*?)</script>', path.read_text(),
                    re.S).group(1)
    return [r["id"] for r in json.loads(raw)["runs"]]


def test_journal_takes_the_newest_runs_unless_told(history, capsys, monkeypatch, tmp_path):
    from runlog.cli import journal as journal_mod

    d, logs, ids = history
    out = tmp_path / "j.html"
    monkeypatch.setattr(journal_mod, "NEWEST", 2)  # the default (500), made small
    assert cli(["--dir", str(logs), "journal", "-o", str(out)]) == 0
    assert _journal_ids(out) == ids[::-1][:2]
    assert "the newest 2 runs" in capsys.readouterr().err
    assert cli(["--dir", str(logs), "journal", "-o", str(out), "--all"]) == 0
    assert _journal_ids(out) == ids[::-1]
    assert cli(["--dir", str(logs), "journal", "-o", str(out), "-n", "3"]) == 0
    assert _journal_ids(out) == ids[::-1][:3]
    # --since: runs started at or after a time; a date in the future leaves none
    assert cli(["--dir", str(logs), "journal", "-o", str(out), "--since", "2001-01-01"]) == 0
    assert _journal_ids(out) == ids[::-1]
    assert cli(["--dir", str(logs), "journal", "-o", str(out), "--since", "2999-01-01"]) == 0
    assert _journal_ids(out) == []
    assert cli(["--dir", str(logs), "journal", "-o", str(out), "--since", "1h"]) == 0
    assert _journal_ids(out) == ids[::-1]  # made minutes ago
    capsys.readouterr()
    assert cli(["--dir", str(logs), "journal", "--since", "yesterday-ish"]) == 1
    assert capsys.readouterr().err.startswith("runlog: error: --since 'yesterday-ish'")


def test_a_long_curve_is_downsampled_as_it_is_read(tmp_path):
    """A million points cost a read, not a list: the curve never holds more than 2 x POINTS."""
    from runlog.cli.journal_data import POINTS, Curve, curves

    c = Curve()
    for i in range(100_000):
        c.add(i)
        assert len(c.kept) < 2 * POINTS
    got = c.items()
    assert got[0] == 0 and got[-1] == 99_999 and got == sorted(got)
    gaps = {b - a for a, b in zip(got, got[1:-1])}
    assert len(gaps) == 1  # evenly spaced (the last point may come sooner)

    run = tmp_path / "20260101-000000"
    run.mkdir()
    with open(run / "metrics.jsonl", "w") as f:
        for s in range(20_000):
            f.write(f'{{"name":"loss","value":{1 / (s + 1)},"step":{s},"time":0}}\n')
            if s % 2:
                f.write(f'{{"value": {s}, "name": "odd", "step": {s}}}\n')  # another writer's order
        f.write('{"name":"loss","value":NaN,"step":20000,"time":0}\n{"name":"loss","val')
    got = curves(str(run))
    assert set(got) == {"loss", "odd"}
    assert len(got["loss"]) == POINTS and got["loss"][0] == [0, 1.0]
    assert got["loss"][-1] == [19_999, round(1 / 20_000, 6)]  # NaN and the torn line are no points
    assert len(got["odd"]) == POINTS and got["odd"][-1] == [19_999, 19_999]


def test_journal_into_a_pipe_writes_into_it_and_leaves_it_a_pipe(history, tmp_path, capsys):
    """-o /dev/stdout, /dev/null or a named pipe: written into, never replaced by a file."""
    d, logs, ids = history
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE)
    assert cli(["--dir", str(logs), "journal", "-o", str(fifo)]) == 0
    html = reader.communicate(timeout=60)[0].decode()
    assert "<html" in html and ids[0] in html
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert sorted(os.listdir(tmp_path)) == ["pipe"]  # no temporary file left beside it


def _journal_data(path: Path) -> dict:
    raw = re.search(r'<script type="application/json" id="data">(.*?)</script>', path.read_text(),
                    re.S).group(1)
    data = json.loads(raw)
    data.pop("made")
    return data


def test_all_reads_each_record_once_and_shows_what_n_shows(history, tmp_path, capsys):
    """--all reads run.json alone (one parse a run, the index only for a run whose record is
    unreadable) and reads ahead the previous run a card compares with; -n lists from the
    index first. Both give the same page, damaged runs and all."""
    d, logs, ids = history
    w = tmp_path / "logs"
    shutil.copytree(logs, w)
    assert {json.loads((w / i / "run.json").read_text())["previous"] for i in ids[1:]} - {None}
    (w / ids[1] / "run.json").write_text("{torn")  # the index still has its line
    lost = w / "20200101-000000"  # killed before its first record: run.log only
    lost.mkdir()
    first = (w / ids[0] / "run.log").read_text().splitlines()[0]
    (lost / "run.log").write_text(first.replace(ids[0], lost.name) + "\n")
    shutil.copytree(w / ids[2], w / "renamed-by-hand")  # placed by its record
    for i in range(2, 5):  # more runs of one second, ordered by their start time
        twin = w / f"{ids[3]}-{i}"
        shutil.copytree(w / ids[3], twin)
        rec = json.loads((twin / "run.json").read_text())
        rec.update(id=twin.name, started_at=rec["started_at"][:20] + f"{7 - i}00" +
                   rec["started_at"][23:], previous=ids[2 if i == 2 else 1])
        (twin / "run.json").write_text(json.dumps(rec))
    pages = {}
    for how in (["--all"], ["-n", "100"]):
        out = tmp_path / f"{how[0]}.html"
        assert cli(["--dir", str(w), "journal", "-o", str(out), *how]) == 0
        pages[how[0]] = _journal_data(out)
    for a, b in zip(pages["--all"]["runs"], pages["-n"]["runs"]):
        assert a == b, a["id"]
    assert pages["--all"] == pages["-n"]
    runs = pages["--all"]["runs"]
    assert len(runs) == len(ids) + 5 and runs[-1]["id"] == lost.name
    assert runs[-1]["status"] == "lost"
    assert [r["since"]["id"] for r in runs if r["id"].startswith(ids[3] + "-")] == \
        [ids[2], ids[1], ids[1]]
    capsys.readouterr()

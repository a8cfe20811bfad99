"""The tour notebook in a real JupyterLab, driven by a real browser (Playwright + the system
Chromium): Run All Cells, no cell fails, and moving the playground's k slider changes what it
shows. Screenshots and the server log go to test-artifacts/ at the repository root.

Needs a Chromium binary (``/usr/bin/chromium``; Debian: ``apt-get install chromium``); Playwright
never downloads one. Where none is found the test is skipped and says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from launch import free_port
from scripts import load_script

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TOUR = ROOT / "notebooks" / "00_tour.ipynb"
# notebooks/run_all.py (a script, not a module of the package): how notebooks are run and cleaned.
run_all = load_script("notebooks/run_all.py")
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The tour takes about 1.5 minutes on 2 free cores, and 16 minutes when the 2 cores are shared
# with 3 to 4 other heavy jobs (measured).
RUN_ALL_TIMEOUT_S = 1800
# JupyterLab user settings for the test: no news or update toasts over the page.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    }
}


def find_chromium() -> str | None:
    """The system Chromium: $CHROMIUM, /usr/bin/chromium, or chromium / chromium-browser on PATH."""
    candidates = [
        os.environ.get("CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def _get(url: str, timeout: float = 5.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read() or b"{}")


def _stop_server(server: subprocess.Popen, base: str, token: str) -> None:
    """Shut the server down with its kernels (REST), then make sure that it and every process it
    started (kernels run in their own sessions) are gone, by pid."""
    started = []
    try:
        started = psutil.Process(server.pid).children(recursive=True)
    except psutil.Error:
        pass
    if server.poll() is None:
        try:
            request = urllib.request.Request(
                f"{base}/api/shutdown?token={token}", method="POST", data=b""
            )
            urllib.request.urlopen(request, timeout=10).close()
        except OSError:
            pass
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=15)
    for process in started:
        try:
            process.kill()
        except psutil.Error:  # already gone
            pass
    psutil.wait_procs(started, timeout=10)


@pytest.fixture
def chromium() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip(
            "no Chromium found (looked at $CHROMIUM, /usr/bin/chromium and PATH); "
            "install one, e.g. `apt-get install chromium`, to run the browser test"
        )
    return path


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on 127.0.0.1 (a free port, a token) whose root holds a copy of the
    tour; yields (base URL, token). Killed, kernels included, even when the test fails."""
    root = tmp_path / "lab"
    root.mkdir()
    # A clean copy: the committed tour carries the outputs of an earlier run, which would make
    # "every cell has an execution count" true before Run All.
    tour = run_all.clean(json.loads(TOUR.read_text()))
    (root / TOUR.name).write_text(json.dumps(tour))
    settings = tmp_path / "lab-settings"
    for name, values in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port, token = free_port(), secrets.token_hex(16)
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }
    ARTIFACTS.mkdir(exist_ok=True)
    log = open(ARTIFACTS / "browser_jupyter_lab.log", "w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
            "--LabApp.extension_manager=readonly",
            "--ServerApp.terminals_enabled=False",
            *(["--allow-root"] if os.geteuid() == 0 else []),
        ],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited with code {server.returncode}; see "
                    f"{ARTIFACTS / 'browser_jupyter_lab.log'}"
                )
            try:
                _get(f"{base}/api/status?token={token}")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("jupyter lab did not answer within 120 s") from None
                time.sleep(0.5)
        yield base, token
    finally:
        _stop_server(server, base, token)
        log.close()


@pytest.fixture
def page(chromium, tmp_path):
    """A page of a headless system Chromium with a fresh profile; closed even on failure."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    context = None
    try:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        yield context.pages[0] if context.pages else context.new_page()
    finally:
        if context is not None:
            context.close()
        playwright.stop()


ALL_EXECUTED = """() => {
    const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputArea-prompt')];
    return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
}"""


KERNEL_IDLE = """() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]
    .some(e => /\\(ipykernel\\)\\s*\\|\\s*Idle/.test(e.textContent))"""


def wait_kernel_idle(page, timeout_s: float = 120) -> None:
    """Until the status bar says the notebook's kernel is started and idle."""
    page.wait_for_function(KERNEL_IDLE, timeout=timeout_s * 1000, polling=500)


def code_cells_in(path: Path) -> tuple[int, int]:
    """(all cells, code cells) of a notebook file."""
    cells = json.loads(path.read_text())["cells"]
    return len(cells), sum(cell["cell_type"] == "code" for cell in cells)


@contextlib.contextmanager
def screenshot_on_failure(page, name: str):
    """Run the block; if it fails, save the page as ARTIFACTS/name (a stale one from an earlier
    run is removed first), then let the failure through."""
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / name).unlink(missing_ok=True)
    try:
        yield
    except BaseException:
        with contextlib.suppress(Exception):  # the page may be gone; the failure matters more
            page.screenshot(path=ARTIFACTS / name)
        raise


def test_tour_runs_in_jupyterlab_and_the_playground_answers(lab, page):
    base, token = lab
    started = time.monotonic()

    def log(what: str) -> None:  # shown with -s, or with the failure report
        print(f"[{time.monotonic() - started:6.1f} s] {what}", flush=True)

    with screenshot_on_failure(page, "browser_tour_failure.png"):
        page.goto(f"{base}/lab/tree/{TOUR.name}?token={token}", timeout=120_000)
        n_cells, n_code = code_cells_in(TOUR)
        page.wait_for_function(
            f"() => document.querySelectorAll('.jp-Notebook .jp-Cell').length === {n_cells}",
            timeout=120_000,
        )
        wait_kernel_idle(page)
        log("notebook open, kernel idle")

        # Run > Run All Cells
        page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()
        page.wait_for_function(ALL_EXECUTED, timeout=RUN_ALL_TIMEOUT_S * 1000, polling=1000)
        wait_kernel_idle(page)
        log("every code cell has an execution count")
        prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputArea-prompt").all_text_contents()
        assert len(prompts) == n_code and all(re.search(r"\[\d+\]", p) for p in prompts), prompts

        # No cell failed: no error output, no traceback on stderr.
        stderr = page.locator(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
        )
        tracebacks = [t for t in stderr.all_text_contents() if "Traceback" in t or "Error" in t]
        assert not tracebacks, tracebacks[0][-3000:]
        assert (
            page.locator(
                ".jp-OutputArea-output.jp-mod-error, .jp-OutputArea-child .jp-mod-error"
            ).count()
            == 0
        )
        assert page.locator(".jp-OutputArea-output img").count() >= 5  # the section figures

        # The playground: move its k slider one step (1.0% -> 1.5%); the kernel recomputes
        # the three conditions and the answers table changes.
        playground = page.locator(".tn-playground").first
        playground.wait_for(timeout=60_000)
        table, status = playground.locator(".tn-answers"), playground.locator(".tn-status")
        table.locator("table").wait_for(timeout=60_000)
        assert "top 1.0% per site" in status.inner_text()
        before = table.inner_text()
        handle = playground.locator(".tn-k .noUi-handle").first
        handle.scroll_into_view_if_needed()
        handle.focus()
        handle.press("ArrowRight")
        assert playground.locator(".tn-k .widget-readout").first.inner_text().strip() == "1.5%"
        page.wait_for_function(
            "([el, old]) => el.innerText !== old",
            arg=[table.element_handle(), before],
            timeout=300_000,
            polling=500,
        )
        page.wait_for_function(
            "el => el.innerText.includes('top 1.5% per site')",
            arg=status.element_handle(),
            timeout=60_000,
            polling=500,
        )
        assert table.inner_text() != before
        log("the playground redrew its answers after the slider moved")
        wait_kernel_idle(page)
        playground.scroll_into_view_if_needed()
        page.screenshot(path=ARTIFACTS / "browser_tour.png")


# A small notebook that opens the neuron browser (issue 24) on the default model.
NEURON_BROWSER_CELLS = [
    """import taskneuron_utils as tn
from taskneuron_utils.ui.widgets import neuron_browser
model, tok = tn.load_model()
tasks = tn.load_tasks(["addition", "product_sentiment"])
rels = {name: tn.attribute(model, tok, task.train[:8], kinds="act", progress=False)
        for name, task in tasks.items()}
sets = {name: rel.top_k(0.01) for name, rel in rels.items()}""",
    "neuron_browser(model, tok, tasks, sets, relevances=rels, n_examples=6, k=4, effect_examples=2)",
]


def test_neuron_browser_in_jupyterlab_shows_the_page_of_the_neuron_picked(lab, page, tmp_path):
    """Run All on a notebook ending in the neuron browser; pick another neuron in its menu:
    the page shown becomes that neuron's (its data-neuron and its text change)."""
    import nbformat

    base, token = lab
    name = "neuron_browser.ipynb"
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(source) for source in NEURON_BROWSER_CELLS],
        # Without a kernelspec JupyterLab stops at its "Select Kernel" dialog.
        metadata={
            "kernelspec": {
                "name": "python3",
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
            }
        },
    )
    (tmp_path / "lab" / name).write_text(nbformat.writes(notebook))  # the lab fixture's root
    with screenshot_on_failure(page, "browser_neuron_browser_failure.png"):
        page.goto(f"{base}/lab/tree/{name}?token={token}", timeout=120_000)
        page.wait_for_function(
            f"() => document.querySelectorAll('.jp-Notebook .jp-Cell').length === "
            f"{len(NEURON_BROWSER_CELLS)}",
            timeout=120_000,
        )
        wait_kernel_idle(page)
        page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()
        browser = page.locator(".tn-neuron-browser").first
        view = browser.locator(".tn-page")
        view.locator(".tn-neuron-page").wait_for(timeout=RUN_ALL_TIMEOUT_S * 1000)
        wait_kernel_idle(page)
        shown = view.locator(".tn-neuron-page").get_attribute("data-neuron")
        before = view.inner_text()
        menu = browser.locator(".tn-neuron select")
        other = next(
            label.strip()
            for label in menu.locator("option").all_text_contents()
            if label.strip() != shown
        )
        menu.select_option(label=other)
        page.wait_for_function(
            "([el, n]) => { const p = el.querySelector('.tn-neuron-page');"
            " return p !== null && p.dataset.neuron === n; }",
            arg=[view.element_handle(), other],
            timeout=300_000,
            polling=500,
        )
        assert view.inner_text() != before
        assert view.locator(".tn-tok").count() > 0  # the examples' tokens, coloured
        browser.scroll_into_view_if_needed()
        page.screenshot(path=ARTIFACTS / "browser_neuron_browser.png")


def test_documentation_site_renders_an_api_page(page, tmp_path):
    """The site as `mkdocs build --strict` makes it (built here into tmp), served over
    127.0.0.1: an API reference page shows the site's title, its heading and a rendered
    signature, in a real browser."""
    pytest.importorskip(
        "mkdocs", reason="the docs extra is not installed: pip install -e '.[docs]'"
    )
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert built.returncode == 0, built.stderr[-3000:]
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "--directory",
            str(site),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        for _ in range(100):  # until it listens (at most 10 s)
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        page.goto(f"http://127.0.0.1:{port}/api/relevance/")
        assert "taskneuron_utils" in page.title()
        heading = page.locator("h1", has_text="tn: relevance and neuron sets")
        heading.wait_for(state="visible", timeout=30_000)
        entry = page.locator("h3[id='taskneuron_utils.attribute']")
        assert entry.is_visible()
        signature = page.locator(".doc-signature").first
        assert signature.is_visible() and "attribute(" in signature.inner_text()
        page.screenshot(path=ARTIFACTS / "browser_docs_api.png")
    finally:
        server.terminate()
        server.wait(timeout=15)

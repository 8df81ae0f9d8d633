"""Screenshots for the README: a student uploads the MDN reference on a running `bin/demo` and waits for
the live result. Usage: python docs/make_screenshots.py http://127.0.0.1:8000  (Chromium from apt)."""

from __future__ import annotations

import sys
import tempfile
import zipfile
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parent.parent
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]


def main(base: str) -> None:
    solution = REPO / "assignments" / "lab1" / "mdn" / "solution" / "mdn.py"
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        archive = Path(tmp) / "mdn.zip"
        with zipfile.ZipFile(archive, "w") as zf:
            zf.write(solution, "mdn/mdn.py")
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(f"{base}/login/")
        page.fill("input[name=username]", "student")
        page.fill("input[name=password]", "student-dd2601")
        page.click("button[type=submit]")
        page.click("text=Mixture density networks versus regression")
        page.screenshot(path=str(REPO / "docs" / "assignment.png"), full_page=True)
        page.set_input_files("input[type=file]", str(archive))
        page.fill("textarea[name=declaration]", "none")
        page.click("text=Submit for grading")
        page.wait_for_selector("text=Result:", timeout=180_000)
        page.screenshot(path=str(REPO / "docs" / "result.png"), full_page=True)
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000")

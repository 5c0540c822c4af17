"""Screenshot of `simsearch serve` in headless Chromium (the picture in the README).

    python scripts/serve_screenshot.py --query "콘크리트 균열" --out docs/serve.png

Serves the index on 127.0.0.1 (a free port), types the query, clicks the first result
and saves the window. Chromium draws Korean only with a font that has Hangul glyphs
(Debian: fonts-noto-cjk or fonts-nanum); point FONTCONFIG_FILE at a fontconfig file
that adds one if the system has none.
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", default=".simsearch")
    parser.add_argument("--name", default="default")
    parser.add_argument("--query", default="콘크리트 균열")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--out", default="docs/serve.png")
    args = parser.parse_args()

    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    import simsearch
    from simsearch.workflows.serve import ServeOptions, create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    index = simsearch.load_index(args.index, args.name)
    app = create_app(index, ServeOptions(port=port, k=args.k))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}",
        "--window-size=1280,1400",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(
        options=options, service=webdriver.ChromeService(executable_path="/usr/bin/chromedriver")
    )
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        driver.find_element(By.ID, "q").send_keys(args.query)
        driver.find_element(By.ID, "go").click()
        wait = WebDriverWait(driver, 120)
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#results tbody tr")))
        driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")[0].click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#similar tbody tr")))
        driver.save_screenshot(args.out)
        print(f"wrote {args.out}")
    finally:
        driver.quit()
        server.should_exit = True


if __name__ == "__main__":
    main()

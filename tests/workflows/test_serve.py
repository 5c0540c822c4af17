"""`serve`: the JSON API (FastAPI's TestClient) returns what `--format json` prints, bad
input gets one clear line, text is escaped; the page works in a real headless Chromium."""

from __future__ import annotations

import io
import json
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import require

pytestmark = pytest.mark.extra
require("fastapi", "serve")

import simsearch  # noqa: E402
from simsearch.cli import core  # noqa: E402
from simsearch.workflows.serve import ServeOptions, create_app  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
EVIL = "<img src=x onerror=\"document.title='pwned'\">"


@pytest.fixture(scope="module")
def served(tmp_path_factory, tiny_model):
    """An index of 40 Korean rows (one of them markup, one empty) built with the tiny
    model, and a TestClient over it (as from 127.0.0.1)."""
    from fastapi.testclient import TestClient

    root = tmp_path_factory.mktemp("serve")
    titles = [f"제목 {i}" for i in range(40)]
    texts = [f"본 발명은 콘크리트 균열 {i}번 보수 방법에 관한 것이다." for i in range(40)]
    texts[3] = f"콘크리트 균열 {EVIL} 음극재"
    texts[8] = ""
    frame = pd.DataFrame({"number": [f"KR-{i:03d}" for i in range(40)], "title": titles})
    frame["abstract"] = texts
    frame.to_csv(root / "p.csv", index=False)
    simsearch.build_index(root / "p.csv", "abstract", model=tiny_model, root=root / "idx")
    index = simsearch.load_index(root / "idx")
    app = create_app(index, ServeOptions(k=5))
    return root, index, TestClient(app, base_url="http://127.0.0.1")


def cli_json(capsys, body) -> list:
    body()
    return json.loads(capsys.readouterr().out)


def test_api_returns_the_cli_json(served, capsys):
    root, index, client = served
    got = client.get("/api/similar/3", params={"k": 4})
    assert got.status_code == 200
    expected = cli_json(
        capsys,
        lambda: core.similar_command(3, k=4, fmt="json", show="number,title", root=root / "idx"),
    )
    assert got.json() == expected
    got = client.get("/api/query", params={"q": "콘크리트 균열", "k": 3})
    expected = cli_json(
        capsys,
        lambda: core.query_command(
            "콘크리트 균열", k=3, fmt="json", show="number,title", root=root / "idx"
        ),
    )
    assert got.status_code == 200 and got.json() == expected
    assert [h["rank"] for h in expected] == [1, 2, 3] and expected[0]["query"] == "콘크리트 균열"


@pytest.mark.parametrize(
    ("params", "flags"),
    [
        ({"mode": "dense"}, {"mode": "dense"}),
        ({"mode": "lexical"}, {"mode": "lexical"}),
        ({"dense_weight": 1.0}, {"dense_weight": 1.0}),
        ({"dense_weight": 0.7, "fusion": "rrf"}, {"dense_weight": 0.7, "fusion": "rrf"}),
    ],
)
def test_ranking_overrides_for_one_request(served, capsys, params, flags):
    """mode, dense_weight and fusion change one request as the CLI flags change one
    command, and leave the next request on the index's settings."""
    root, _, client = served
    got = client.get("/api/query", params={"q": "콘크리트 균열 보수", "k": 5, **params})
    expected = cli_json(
        capsys,
        lambda: core.query_command("콘크리트 균열 보수", k=5, fmt="json", show="number,title",
                                   root=root / "idx", **flags),
    )
    assert got.status_code == 200 and got.json() == expected
    default = client.get("/api/query", params={"q": "콘크리트 균열 보수", "k": 5}).json()
    assert default == cli_json(
        capsys,
        lambda: core.query_command("콘크리트 균열 보수", k=5, fmt="json", show="number,title",
                                   root=root / "idx"),
    )
    assert [h["mode"] for h in default] == ["hybrid"] * len(default)
    similar = client.get("/api/similar/3", params={"k": 4, **params})
    expected = cli_json(
        capsys,
        lambda: core.similar_command(3, k=4, fmt="json", show="number,title",
                                     root=root / "idx", **flags),
    )
    assert similar.status_code == 200 and similar.json() == expected


def test_xlsx_download_holds_the_results(served):
    _, _, client = served
    got = client.get("/api/query.xlsx", params={"q": "리튬 전지", "k": 5})
    assert got.status_code == 200
    assert got.headers["content-disposition"] == 'attachment; filename="simsearch-query.xlsx"'
    sheet = pd.read_excel(io.BytesIO(got.content))
    assert len(sheet) == 5 and sheet.columns[-1] == "text"
    assert sheet["row"].tolist() == [
        h["row"] for h in client.get("/api/query", params={"q": "리튬 전지", "k": 5}).json()
    ]
    # The same flat fields as `-o res.xlsx`, score, mode and matched text included.
    from simsearch.retrieval.hit import FLAT_FIELDS

    assert list(sheet.columns[: 2 + len(FLAT_FIELDS)]) == ["query_index", "query", *FLAT_FIELDS]
    assert sheet["score"].is_monotonic_decreasing
    similar = pd.read_excel(io.BytesIO(client.get("/api/similar/0.xlsx?k=2").content))
    assert similar["row"].tolist() == [h["row"] for h in client.get("/api/similar/0?k=2").json()]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/api/similar/40", "row 40 is out of range: the index has 40 documents"),
        ("/api/similar/x", "the row must be a whole number"),
        ("/api/similar/1?k=0", "k must be a whole number from 1 to 200"),
        ("/api/query?k=3", "no query given"),
        ("/api/query?q=%20%20", "the query (q) is empty"),
        ("/api/query?q=" + "가" * 1001, "the query must be 1 to 1000 characters long"),
        ("/api/nothing", "no such page"),
        ("/api/query?q=a&mode=semantic", "mode must be hybrid, dense or lexical"),
        ("/api/query?q=a&dense_weight=1.5", "dense_weight must be a number from 0 to 1"),
        ("/api/similar/1?dense_weight=nan", "dense_weight must be a number from 0 to 1"),
        ("/api/similar/1?fusion=max", "fusion must be convex or rrf"),
    ],
)
def test_bad_input_is_one_line_of_json(served, url, message):
    _, _, client = served
    got = client.get(url)
    assert got.status_code in (400, 404)
    assert message in got.json()["error"] and "\n" not in got.json()["error"]


def test_page_escapes_and_refuses_foreign_hosts(served):
    _, _, client = served
    page = client.get("/")
    assert page.status_code == 200 and "40 documents" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    # The API carries the markup as data; the page shows it with textContent only.
    hit = client.get("/api/similar/3?k=1").json()
    assert "innerHTML" not in client.get("/static/app.js").text
    assert hit[0]["row"] != 3
    error = client.get("/nothing/<b>x</b>")
    assert error.status_code == 404 and "<b>x</b>" not in error.text
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400


def test_page_offers_the_modes_the_index_can_run(served, tmp_path, tiny_model):
    from fastapi.testclient import TestClient

    root, index, client = served
    page = client.get("/").text
    assert '<select id="mode"' in page
    assert [m for m in ("hybrid", "dense", "lexical") if f'<option value="{m}">' in page] == [
        "hybrid", "dense", "lexical"]
    # A dense-only index has one mode: no control.
    simsearch.build_index(root / "p.csv", "abstract", model=tiny_model, root=tmp_path / "d",
                          lexical=False)
    dense = TestClient(create_app(simsearch.load_index(tmp_path / "d"), ServeOptions(k=5)),
                       base_url="http://127.0.0.1")
    assert '<select id="mode"' not in dense.get("/").text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(served):
    """The app on a real uvicorn server on 127.0.0.1 (a free port), stopped after."""
    import uvicorn

    _, index, _ = served
    port = _free_port()
    app = create_app(index, ServeOptions(port=port, k=5))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start within 20 s"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def client_rows(base: str, params: dict) -> list[str]:
    """Rows of ``/api/query`` on the live server, as the page's data-row strings."""
    import urllib.parse
    import urllib.request

    with urllib.request.urlopen(f"{base}/api/query?{urllib.parse.urlencode(params)}") as r:
        return [str(hit["row"]) for hit in json.load(r)]


@pytest.mark.slow
def test_page_in_headless_chromium(live_server, tmp_path):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(
            "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        )
    webdriver = require("selenium.webdriver")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp_path)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(20)
        driver.get(live_server + "/")
        wait = WebDriverWait(driver, 20)
        driver.find_element(By.ID, "q").send_keys("콘크리트 균열")
        k = driver.find_element(By.ID, "k")
        k.clear()
        k.send_keys("40")  # every row, so row 3 (markup) is among the results
        driver.find_element(By.ID, "go").click()
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#results tbody tr")))
        rows = driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")
        assert len(rows) == 39  # every non-empty row: the empty document never ranks
        marks = {m.text for m in driver.find_elements(By.CSS_SELECTOR, "#results mark")}
        assert marks == {"콘크리트", "균열"}
        # Row 3 holds markup: it shows as text and never runs.
        assert EVIL in driver.find_element(By.ID, "results").text
        assert driver.title != "pwned" and not driver.find_elements(By.CSS_SELECTOR, "td img")
        rows[0].click()
        wait.until(ec.visibility_of_element_located((By.ID, "similar")))
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#similar tbody tr")))
        first = rows[0].get_attribute("data-row")
        title = driver.find_element(By.ID, "similar-title").text
        assert title == f"Rows similar to row {first}"
        similar_rows = driver.find_elements(By.CSS_SELECTOR, "#similar tbody tr")
        assert len(similar_rows) == 38  # all but itself and the empty document
        assert first not in [r.get_attribute("data-row") for r in similar_rows]
        assert driver.find_element(By.ID, "download").is_enabled()
        # The hits are ordered by their score, which the table shows beside the similarity.
        heads = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#results th")]
        assert heads[:4] == ["rank", "row", "similarity", "score"]
        scores = [float(tr.find_elements(By.TAG_NAME, "td")[3].text) for tr in rows]
        assert scores == sorted(scores, reverse=True)
        assert "(hybrid)" in driver.find_element(By.ID, "status").text
        # Another mode for the next search: the page asks the API for it.
        from selenium.webdriver.support.ui import Select

        Select(driver.find_element(By.ID, "mode")).select_by_value("dense")
        driver.find_element(By.ID, "go").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "(dense)"))
        dense = [tr.get_attribute("data-row")
                 for tr in driver.find_elements(By.CSS_SELECTOR, "#results tbody tr")]
        expected = client_rows(live_server, {"q": "콘크리트 균열", "k": 40, "mode": "dense"})
        assert dense == expected
        # Back to the index's settings; a query with particles marks the matched terms
        # ("균열을" is not in the text, its term "균열" is).
        Select(driver.find_element(By.ID, "mode")).select_by_value("")
        box = driver.find_element(By.ID, "q")
        box.clear()
        box.send_keys("균열을 보수하는")
        driver.find_element(By.ID, "go").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "(hybrid)"))
        marks = {m.text for m in driver.find_elements(By.CSS_SELECTOR, "#results mark")}
        assert marks == {"균열", "보수"}
        shot = tmp_path / "serve.png"
        assert driver.save_screenshot(str(shot))
        assert shot.read_bytes()[:4] == b"\x89PNG"
    finally:
        driver.quit()

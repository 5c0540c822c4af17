"""The page `simsearch serve` shows: HTML, CSS and JavaScript, kept as strings so they
ship inside the package with no data-file configuration.

Every text that comes from the index or the user is put into the page with
``textContent`` / ``createTextNode`` (never ``innerHTML``), so a document holding
``<script>`` shows as text. The page loads nothing from outside the server (the
Content-Security-Policy says so too), so it works offline.
"""

from __future__ import annotations

PAGE = """<!doctype html>
<html lang="ko">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>simsearch: {title}</title>
<link rel="stylesheet" href="/static/app.css">
</head>
<body data-k="{k}">
<header>
  <h1>simsearch</h1>
  <p id="about">{about}</p>
</header>
<form id="search" autocomplete="off">
  <input id="q" name="q" type="search" maxlength="{max_query}"
         placeholder="문장이나 키워드로 검색 (search)" required autofocus>
  <label>k <input id="k" name="k" type="number" min="1" max="{max_k}" value="{k}"></label>
{mode_select}
  <button id="go" type="submit">Search</button>
  <button id="download" type="button" disabled>Download .xlsx</button>
</form>
<p id="status" role="status"></p>
<section>
  <h2 id="results-title">Results</h2>
  <table id="results"><thead></thead><tbody></tbody></table>
</section>
<section id="similar-section" hidden>
  <h2 id="similar-title">Similar rows</h2>
  <table id="similar"><thead></thead><tbody></tbody></table>
</section>
<script src="/static/app.js"></script>
</body>
</html>
"""

CSS = """
body { font-family: system-ui, "Noto Sans CJK KR", "Apple SD Gothic Neo", "Malgun Gothic",
       sans-serif; margin: 1.5rem; color: #1d2330; }
header h1 { margin: 0; font-size: 1.4rem; }
#about { color: #555; margin: .2rem 0 1rem; }
form { display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; }
#q { flex: 1 1 28rem; font-size: 1rem; padding: .45rem .6rem; }
#k { width: 4.5rem; }
select { padding: .4rem; font-size: .95rem; }
button { padding: .45rem .9rem; font-size: .95rem; cursor: pointer; }
#status { min-height: 1.2rem; color: #555; }
#status.error { color: #b00020; font-weight: 600; }
h2 { font-size: 1.05rem; margin: 1rem 0 .4rem; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { border-bottom: 1px solid #dde; padding: .3rem .5rem; text-align: left;
         vertical-align: top; }
th { background: #eef3fb; position: sticky; top: 0; }
td.short { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
#results tbody tr { cursor: pointer; }
#results tbody tr:hover, #results tbody tr.picked { background: #f4f7ff; }
mark { background: #ffe58a; padding: 0 .1em; }
"""

JS = r"""
"use strict";
const K = Number(document.body.dataset.k);
const state = { download: null };
const $ = (id) => document.getElementById(id);

function setStatus(text, isError) {
  const s = $("status");
  s.textContent = text;
  s.className = isError ? "error" : "";
}

// The text with every occurrence of a query term wrapped in <mark>, built as DOM
// nodes (no HTML parsing), case-insensitive.
function highlighted(text, terms) {
  const frag = document.createDocumentFragment();
  const lower = text.toLowerCase();
  const wanted = terms.map((t) => t.toLowerCase()).filter((t) => t.length > 0);
  let i = 0;
  while (i < text.length) {
    let best = -1, len = 0;
    for (const t of wanted) {
      const at = lower.indexOf(t, i);
      if (at >= 0 && (best < 0 || at < best || (at === best && t.length > len))) {
        best = at; len = t.length;
      }
    }
    if (best < 0) { frag.appendChild(document.createTextNode(text.slice(i))); break; }
    if (best > i) frag.appendChild(document.createTextNode(text.slice(i, best)));
    const m = document.createElement("mark");
    m.textContent = text.slice(best, best + len);
    frag.appendChild(m);
    i = best + len;
  }
  return frag;
}

function cell(tr, value, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  if (value instanceof Node) td.appendChild(value); else td.textContent = value;
  tr.appendChild(td);
}

// terms: the words to mark in each text; with matched, each hit's own matched index
// terms too (query results only: between two documents they are too many to help).
function render(table, hits, terms, onPick, matched) {
  const head = table.tHead, body = table.tBodies[0];
  head.replaceChildren(); body.replaceChildren();
  const shown = hits.length && hits[0].columns ? Object.keys(hits[0].columns) : [];
  const hr = document.createElement("tr");
  // The score is what the hits are ordered by (in hybrid mode it is not the similarity).
  const reranked = hits.some((h) => h.rerank_score !== undefined && h.rerank_score !== null);
  const scores = reranked ? ["score", "rerank_score"] : ["score"];
  for (const name of ["rank", "row", "similarity", ...scores, ...shown, "text"]) {
    const th = document.createElement("th"); th.textContent = name; hr.appendChild(th);
  }
  head.appendChild(hr);
  for (const hit of hits) {
    const tr = document.createElement("tr");
    tr.dataset.row = hit.row;
    cell(tr, String(hit.rank), "num");
    cell(tr, String(hit.row), "num");
    cell(tr, hit.similarity.toFixed(4), "num");
    for (const name of scores) cell(tr, number(hit[name]), "num");
    for (const name of shown) {
      const v = hit.columns[name];
      const text = v === null || v === undefined ? "" : String(v);
      cell(tr, text, text.length <= 20 ? "short" : "");
    }
    cell(tr, highlighted(hit.text, matched ? terms.concat(surfaces(hit.matched_terms)) : terms));
    if (onPick) tr.addEventListener("click", () => onPick(hit.row, tr));
    body.appendChild(tr);
  }
}

function number(value) {
  return typeof value === "number" ? value.toFixed(4) : "";
}

// A matched index term as it is written in the text: a verb or adjective stem without
// the "다" the index adds (as simsearch.text.kiwi.surface_spans does).
function surfaces(terms) {
  return (terms || []).map((t) => (t.length > 1 && t.endsWith("다") ? t.slice(0, -1) : t));
}

// The ranking's mode chosen on the page ("" = the index's own settings).
function withMode(params) {
  const mode = $("mode") ? $("mode").value : "";
  if (mode) params.set("mode", mode);
  return params;
}

async function getJSON(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

async function similar(row, tr) {
  for (const r of $("results").tBodies[0].rows) r.classList.remove("picked");
  if (tr) tr.classList.add("picked");
  const k = Number($("k").value) || K;
  setStatus("finding rows similar to row " + row + " ...");
  try {
    const params = withMode(new URLSearchParams({ k: String(k) }));
    const hits = await getJSON("/api/similar/" + encodeURIComponent(row) + "?" + params);
    $("similar-title").textContent = "Rows similar to row " + row;
    render($("similar"), hits, [], null, false);
    $("similar-section").hidden = false;
    state.download = "/api/similar/" + encodeURIComponent(row) + ".xlsx?" + params;
    $("download").disabled = false;
    setStatus(hits.length + " rows similar to row " + row + modeNote(hits));
  } catch (err) { setStatus(err.message, true); }
}

$("search").addEventListener("submit", async (event) => {
  event.preventDefault();
  const q = $("q").value.trim();
  const k = Number($("k").value) || K;
  if (!q) { setStatus("type something to search for", true); return; }
  setStatus("searching ...");
  const params = withMode(new URLSearchParams({ q: q, k: String(k) }));
  try {
    const hits = await getJSON("/api/query?" + params);
    $("results-title").textContent = "Results for \u201c" + q + "\u201d";
    render($("results"), hits, q.split(/\s+/), similar, true);
    $("similar-section").hidden = true;
    state.download = "/api/query.xlsx?" + params;
    $("download").disabled = false;
    setStatus(hits.length + " results" + modeNote(hits) + "; click a row for its similar rows");
  } catch (err) { setStatus(err.message, true); }
});

function modeNote(hits) {
  return hits.length && hits[0].mode ? " (" + hits[0].mode + ")" : "";
}

$("download").addEventListener("click", () => {
  if (state.download) window.location.href = state.download;
});
"""

#: The ranking's mode, on an index that has a lexical part ({options}: <option> elements).
MODE_SELECT = """  <label>mode <select id="mode" name="mode">
    <option value="">index default</option>
{options}
  </select></label>"""

ERROR_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>simsearch: error</title>
<link rel="stylesheet" href="/static/app.css"></head>
<body><h1>simsearch</h1><p id="status" class="error">{message}</p>
<p><a href="/">Back to the search page</a></p></body></html>
"""

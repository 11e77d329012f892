"""``lkwedge report --html``: one self-contained HTML file for a postmortem.

No network: inline CSS and JS only, and a Content-Security-Policy that forbids every fetch, so a report
opened from a mail attachment or a CI artifact behaves the same offline. The summary and the timelines
are static HTML/SVG rendered here; the episode table is rendered by the page's script from embedded JSON
(sortable; click a column header, or open the file with ``#sort=silence_s`` / ``#sort=-silence_s``).

Log text is untrusted: everything interpolated into markup goes through ``html.escape``; the embedded
JSON has ``<``, ``>`` and ``&`` escaped so it cannot close its ``<script>`` element; the script inserts
text with ``textContent`` only. ``window.onerror`` writes ``<div id="lkw-js-error">`` into the page so a
headless ``--dump-dom`` reveals a script error.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from html import escape
from typing import Any

from lkwedge.detect.episodes import Episode
from lkwedge.output.render import sdk_lines
from lkwedge.safe import printable

COLORS = {"recovered": "#2e7d32", "disconnected": "#b7791f", "stalled": "#c62828", "unresolved": "#6a1b9a",
          "ghost": "#d81b60"}
OTHER_COLOR = "#455a64"
MAX_CHARTS = 60  # beyond this, charts stop helping; the table still lists every episode
PLOT_W = 1100
LANE_H = 20
MAX_LANES = 6


def _e(value: object) -> str:
    return escape(printable(str(value)), quote=True)


def _secs(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f} s"


def _episode_json(index: int, ep: Episode) -> dict[str, Any]:
    return {
        "i": index, "id": f"ep-{index}", "verdict": ep.verdict, "outcome": ep.outcome,
        "start": ep.start.isoformat() if ep.start else None, "end": ep.end.isoformat() if ep.end else None,
        "silence_s": ep.silence_s, "key": printable(ep.key), "job": ep.job and printable(ep.job),
        "room": ep.room and printable(ep.room), "file": printable(ep.file), "line": ep.line,
        "attempts": ep.attempts,
        "note": printable((ep.note or "") + (f" · advice: {ep.advice}" if ep.advice else "")),
        "evidence": [{"line": ev.line, "time": ev.time.isoformat() if ev.time else None, "role": ev.role,
                      "text": printable(ev.text)} for ev in ep.evidence],
    }


def _script_json(data: object) -> str:
    # Inside <script> only "</" (and "<!--") matter, but escaping all of <, > and & is simplest to audit.
    return (json.dumps(data, ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026"))


def _short(iso: str) -> str:
    """``2026-05-01T10:00:21.120000+00:00`` -> ``2026-05-01 10:00:21Z`` for headings."""
    t = dt.datetime.fromisoformat(iso).astimezone(dt.UTC)
    return t.strftime("%Y-%m-%d %H:%M:%SZ")


def _hm(t: dt.datetime) -> str:
    return t.strftime("%H:%M:%S")


def _assign_lanes(spans: list[tuple[float, float]], overlap_ok: bool) -> list[int] | None:
    """First-fit lanes for (x, width) spans sorted by x, 2 px apart. When MAX_LANES are not enough: None,
    or with ``overlap_ok`` the span goes into the lane that frees up first."""
    ends: list[float] = []
    lanes = []
    for x, w in spans:
        lane = next((n for n, end in enumerate(ends) if end <= x), None)
        if lane is None:
            if len(ends) < MAX_LANES:
                ends.append(0.0)
                lane = len(ends) - 1
            elif overlap_ok:
                lane = min(range(MAX_LANES), key=ends.__getitem__)
            else:
                return None
        ends[lane] = x + w + 2
        lanes.append(lane)
    return lanes


def _timeline_svg(eps: list[tuple[int, Episode]]) -> str:
    """One job's episodes on a time axis: a bar per episode starting at its start whose length is its
    longest silence (at least 3 px), coloured by verdict, with the outcome written after it when it fits."""
    timed = [(i, ep) for i, ep in eps if ep.start is not None]
    if not timed:
        return '<p class="muted">No log times for this job: nothing to place on a time axis.</p>'
    t0 = min(ep.start for _, ep in timed)  # type: ignore[type-var]
    t1 = max(max(ep.end or ep.start, ep.start + dt.timedelta(seconds=ep.silence_s or 0))  # type: ignore[operator]
             for _, ep in timed)
    span = max((t1 - t0).total_seconds(), 30.0)
    pad = span * 0.02
    left, scale = 8, (PLOT_W - 16) / (span + 2 * pad)

    def x_of(t: dt.datetime) -> float:
        return left + ((t - t0).total_seconds() + pad) * scale

    bars = []  # (index, episode, x, width, label, label fits inside the plot)
    for i, ep in sorted(timed, key=lambda p: p[1].start):  # type: ignore[arg-type, return-value]
        x = x_of(ep.start)  # type: ignore[arg-type]
        w = max(3.0, (ep.silence_s or 0) * scale)
        label = ep.outcome or ep.verdict
        label_w = 7 + 6.2 * len(label)
        bars.append((i, ep, x, w, label, x + w + label_w <= PLOT_W, label_w))
    # Labelled first; if even MAX_LANES lanes cannot keep bars and labels apart, drop all labels rather
    # than draw bars over text (the tooltip and the table still carry the outcome).
    lanes = _assign_lanes([(x, w + lw if fit else w) for _, _, x, w, _, fit, lw in bars], overlap_ok=False)
    labelled = lanes is not None
    if lanes is None:
        lanes = _assign_lanes([(x, w) for _, _, x, w, _, _, _ in bars], overlap_ok=True) or []
    items = [(i, ep, x, w, lane, labelled and fit, label)
             for (i, ep, x, w, label, fit, _), lane in zip(bars, lanes, strict=True)]
    lane_count = max(lanes) + 1
    height = 26 + LANE_H * lane_count
    parts = [f'<svg class="timeline" viewBox="0 0 {PLOT_W} {height}" width="{PLOT_W}" height="{height}" '
             f'role="img" aria-label="timeline of {len(items)} episodes">']
    axis_y = height - 18
    parts.append(f'<line x1="{left}" y1="{axis_y}" x2="{PLOT_W - 8}" y2="{axis_y}" class="axis"/>')
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        tick = t0 + dt.timedelta(seconds=frac * (span + 2 * pad) - pad)
        tx = x_of(tick)
        anchor = "start" if frac == 0 else "end" if frac == 1 else "middle"
        parts.append(f'<line x1="{tx:.1f}" y1="{axis_y}" x2="{tx:.1f}" y2="{axis_y + 4}" class="axis"/>'
                     f'<text x="{tx:.1f}" y="{height - 3}" text-anchor="{anchor}" class="tick">'
                     f"{_hm(tick)}</text>")
    for i, ep, x, w, lane, show_label, label in items:
        y = 4 + lane * LANE_H
        color = COLORS.get(ep.verdict, OTHER_COLOR)
        tip = (f"{ep.verdict} · {ep.start.isoformat()} · silence {_secs(ep.silence_s)} · "  # type: ignore[union-attr]
               f"outcome {ep.outcome or 'none'} · {ep.file}:{ep.line}")
        parts.append(f'<a href="#ep-{i}"><g class="ep" data-verdict="{_e(ep.verdict)}">'
                     f"<title>{_e(tip)}</title>"
                     f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 14}" class="start"/>'
                     f'<rect x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="10" fill="{color}"/>')
        if show_label:
            parts.append(f'<text x="{x + w + 3:.1f}" y="{y + 11}" class="lbl">{_e(label)}</text>')
        parts.append("</g></a>")
    parts.append("</svg>")
    return "".join(parts)


def _hist_svg(by_hour: Sequence[int]) -> str:
    peak = max(by_hour) or 1
    bar_w, h = 30, 90
    parts = [f'<svg class="hist" viewBox="0 0 {24 * bar_w} {h + 30}" width="{24 * bar_w}" height="{h + 30}" '
             'role="img" aria-label="incidents by hour of day">']
    for hour, n in enumerate(by_hour):
        bh = h * n / peak
        x = hour * bar_w
        mid = x + bar_w / 2
        parts.append(f"<g><title>{hour:02d}:00–{hour:02d}:59 UTC: {n} incidents</title>"
                     f'<rect x="{x + 3}" y="{h - bh + 12:.1f}" width="{bar_w - 6}" height="{bh:.1f}" '
                     f'class="hbar"/><text x="{mid}" y="{h + 26}" text-anchor="middle" class="tick">'
                     f"{hour:02d}</text>")
        if n:
            parts.append(f'<text x="{mid}" y="{h - bh + 9:.1f}" text-anchor="middle" class="tick">{n}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _worst_table(rows: list[dict[str, Any]], column: str) -> str:
    if not rows:
        return f'<p class="muted">No incidents with a known {column}.</p>'
    body = "".join(f"<tr><td>{_e(r[column])}</td><td class=num>{r['incidents']}</td>"
                   f"<td class=num>{r['stalled']}</td><td class=num>{r.get('ghosts', 0)}</td>"
                   f"<td class=num>{_secs(r['max_silence_s'])}</td></tr>"
                   for r in rows)
    return (f'<table class="small"><thead><tr><th>{column}</th><th>incidents</th><th>stalled</th>'
            f"<th>ghosts</th><th>max silence</th></tr></thead><tbody>{body}</tbody></table>")


_CSS = """
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#fff;--alt:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);
background:var(--bg);margin:0 auto;padding:20px 24px;max-width:1200px}
h1{font-size:22px;margin:0 0 4px}
h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:14px;margin:14px 0 4px;font-family:ui-monospace,Menlo,Consolas,monospace}
.muted{color:var(--muted)}.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:22px}.card.v-stalled b{color:#c62828}.card.v-recovered b{color:#2e7d32}
.card.v-disconnected b{color:#b7791f}.card.v-unresolved b{color:#6a1b9a}.card.v-ghost b{color:#d81b60}
.cols{display:flex;gap:32px;flex-wrap:wrap}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}
table.small{width:auto}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
#episodes th{cursor:pointer;user-select:none;background:var(--alt);position:sticky;top:0}
#episodes th[aria-sort=ascending]::after{content:" ▲"}#episodes th[aria-sort=descending]::after{content:" ▼"}
tr.ev td{background:var(--alt)}
pre{margin:0;white-space:pre-wrap;word-break:break-all;font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}
.verdict{font-weight:600}.verdict.stalled{color:#c62828}.verdict.recovered{color:#2e7d32}
.verdict.disconnected{color:#b7791f}.verdict.unresolved{color:#6a1b9a}.verdict.ghost{color:#d81b60}
button.toggle{font:inherit;font-size:12px;padding:0 6px;cursor:pointer}
svg .axis{stroke:#8c959f}svg .tick{font:11px ui-monospace,Menlo,Consolas,monospace;fill:#57606a}
svg .lbl{font:11px system-ui,sans-serif;fill:#1f2328}svg .start{stroke:#1f2328;stroke-width:1}
svg .hbar{fill:#c62828}svg a:hover rect{stroke:#000;stroke-width:1}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:12px;height:10px;margin-right:4px}
#lkw-js-error{background:#ffebe9;border:1px solid #c62828;padding:8px;margin:8px 0}
.filters{margin:8px 0}.filters label{margin-right:12px}
.scroll{overflow-x:auto}#episodes th,td.nowrap{white-space:nowrap}#episodes{font-size:13px}
#episodes th,#episodes td{padding:3px 4px}
"""

# The script must not depend on anything outside this file. Keep it plain ES2017.
# A separate, tiny first script: it still reports a syntax error in the main script, which would stop
# a handler defined inside that script from ever being installed.
_JS_ONERROR = r"""
window.lkwFail = function (msg) {
  var box = document.getElementById('lkw-js-error');
  if (!box) {
    box = document.createElement('div');
    box.id = 'lkw-js-error';
    document.body.insertBefore(box, document.body.firstChild);
  }
  box.setAttribute('data-error', String(msg));
  box.textContent = 'Report script error: ' + msg;
};
window.onerror = function (msg, src, line) { window.lkwFail(msg + ' (line ' + line + ')'); };
window.addEventListener('unhandledrejection', function (e) { window.lkwFail('promise: ' + e.reason); });
"""

_JS = r"""
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('lkw-data').textContent);
  var table = document.getElementById('episodes');
  var tbody = table.querySelector('tbody');
  var hidden = {};
  var order = data.episodes.slice();
  var NUMERIC = {i: 1, silence_s: 1, line: 1, attempts: 1};

  function cell(tr, text, cls) {
    var td = document.createElement('td');
    if (cls) td.className = cls;
    td.textContent = text === null || text === undefined ? '' : String(text);
    tr.appendChild(td);
    return td;
  }
  function fmtTime(iso) {
    return iso ? iso.replace('T', ' ').replace(/(\.\d{3})\d*/, '$1').replace('+00:00', 'Z') : '';
  }

  function render() {
    var frag = document.createDocumentFragment();
    var shown = 0;
    order.forEach(function (ep) {
      if (hidden[ep.verdict]) return;
      shown += 1;
      var tr = document.createElement('tr');
      tr.id = ep.id;
      tr.setAttribute('data-verdict', ep.verdict);
      cell(tr, ep.i, 'num');
      cell(tr, ep.verdict, 'verdict ' + ep.verdict);
      cell(tr, fmtTime(ep.start), 'nowrap');
      cell(tr, ep.silence_s === null ? '' : ep.silence_s.toFixed(1), 'num');
      cell(tr, ep.outcome);
      cell(tr, ep.key);
      cell(tr, ep.job);
      cell(tr, ep.room);
      // the file's last path part keeps the table narrow; the full path is in the tooltip and evidence
      cell(tr, ep.file.split('/').pop() + ':' + ep.line).title = ep.file + ':' + ep.line;
      cell(tr, ep.attempts, 'num');
      var td = cell(tr, '');
      var btn = document.createElement('button');
      btn.className = 'toggle';
      btn.type = 'button';
      btn.textContent = ep.evidence.length + ' lines';
      td.appendChild(btn);
      var ev = document.createElement('tr');
      ev.className = 'ev';
      ev.hidden = true;
      var evtd = document.createElement('td');
      evtd.colSpan = 11;
      var pre = document.createElement('pre');
      var lines = [];
      if (ep.note) lines.push(ep.note);
      ep.evidence.forEach(function (e) {
        lines.push(ep.file + ':' + e.line + ': [' + e.role + '] ' + e.text);
      });
      pre.textContent = lines.join('\n');
      evtd.appendChild(pre);
      ev.appendChild(evtd);
      btn.addEventListener('click', function () { ev.hidden = !ev.hidden; });
      frag.appendChild(tr);
      frag.appendChild(ev);
    });
    tbody.textContent = '';
    tbody.appendChild(frag);
    table.setAttribute('data-episodes-rendered', String(shown));
    document.getElementById('rendered-count').textContent = String(shown);
  }

  function compare(col, dir) {
    return function (a, b) {
      var x = a[col], y = b[col];
      var xn = x === null || x === undefined, yn = y === null || y === undefined;
      if (xn || yn) return xn === yn ? a.i - b.i : (xn ? 1 : -1);  // missing values last either way
      var c = NUMERIC[col] ? x - y : String(x).localeCompare(String(y));
      return c === 0 ? a.i - b.i : c * dir;
    };
  }

  var headers = table.querySelectorAll('th[data-col]');
  Array.prototype.forEach.call(headers, function (th) {
    th.addEventListener('click', function () {
      var col = th.getAttribute('data-col');
      var dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
      Array.prototype.forEach.call(headers, function (h) { h.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
      order.sort(compare(col, dir));
      table.setAttribute('data-sorted-by', (dir === 1 ? '' : '-') + col);
      render();
    });
  });

  Array.prototype.forEach.call(document.querySelectorAll('input[data-verdict-filter]'), function (box) {
    box.addEventListener('change', function () {
      hidden[box.getAttribute('data-verdict-filter')] = !box.checked;
      render();
    });
  });

  render();
  // Deep link to a sort order: #sort=silence_s or #sort=-silence_s. Goes through the header's click
  // handler, the same path a user's click takes.
  var m = /(?:^#|&)sort=(-?)(\w+)/.exec(window.location.hash);
  if (m) {
    var th = table.querySelector('th[data-col="' + m[2] + '"]');
    if (th) {
      th.click();
      if (m[1] === '-') th.click();
    }
  }
  document.body.setAttribute('data-ready', '1');
})();
"""

# Nothing may be fetched: no script, style sheet, font, image or connection from outside this file.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

_TABLE_COLS = [("i", "#", True), ("verdict", "verdict", False), ("start", "start (UTC)", False),
               ("silence_s", "silence s", True), ("outcome", "outcome", False), ("key", "key", False),
               ("job", "job", False), ("room", "room", False), ("file", "file:line", False),
               ("attempts", "attempts", True)]


def render_html(episodes: Sequence[Episode], summary: dict[str, Any], scan_summary: dict[str, Any],
                *, title: str = "lkwedge report", sources: Sequence[str] = ()) -> str:
    """The whole page as a string. ``summary`` is :func:`lkwedge.output.report.summarize`'s output."""
    indexed = list(enumerate(episodes, start=1))
    data = {"episodes": [_episode_json(i, ep) for i, ep in indexed]}

    groups: dict[str, list[tuple[int, Episode]]] = {}
    for i, ep in indexed:
        groups.setdefault(ep.key, []).append((i, ep))

    def badness(item: tuple[str, list[tuple[int, Episode]]]) -> tuple[int, int, str]:
        eps = [ep for _, ep in item[1]]
        wedged = sum(ep.verdict in ("stalled", "ghost") for ep in eps)
        return (-wedged, -sum(ep.verdict != "recovered" for ep in eps),
                item[0])

    ordered = sorted(groups.items(), key=badness)
    charts = []
    for key, eps in ordered[:MAX_CHARTS]:
        first = eps[0][1]
        label = key if not first.room else f"{key} · room {first.room}"
        counts = {v: sum(ep.verdict == v for _, ep in eps) for v in COLORS}
        count_text = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
        charts.append(f'<section class="job" data-key="{_e(key)}"><h3>{_e(label)} '
                      f'<span class="muted">({len(eps)} episodes: {_e(count_text)})</span></h3>'
                      f"{_timeline_svg(eps)}</section>")
    if len(ordered) > MAX_CHARTS:
        charts.append(f'<p class="muted">{len(ordered) - MAX_CHARTS} more jobs are not charted (the least '
                      "affected); the table below lists all episodes.</p>")
    if not charts:
        charts.append('<p class="muted">No reconnect episodes.</p>')

    verdict_cards = "".join(f'<div class="card v-{_e(v)}"><b>{n}</b>{_e(v)}</div>'
                            for v, n in summary["verdicts"].items())
    sil = summary["silence_s"]
    legend = "".join(f'<span><i style="background:{c}"></i>{v}</span>' for v, c in COLORS.items())
    filters = "".join(f'<label><input type="checkbox" checked data-verdict-filter="{_e(v)}"> {_e(v)}</label>'
                      for v in summary["verdicts"])
    head_cells = "".join(f'<th data-col="{c}"{" class=num" if num else ""}>{_e(label)}</th>'
                         for c, label, num in _TABLE_COLS) + "<th>evidence</th>"
    span = f"{_short(summary['first'])} … {_short(summary['last'])}" if summary["first"] else "no log times"
    notes = "".join(f"<li>{_e(n)}</li>"
                    for n in [*(scan_summary.get("notes", []) or []), *sdk_lines(scan_summary)])
    if summary["worst_jobs"] or not summary["worst_keys"]:
        worst_first = f"<h3>Worst jobs</h3>{_worst_table(summary['worst_jobs'], 'job')}"
    else:  # logs without job ids: rank the streams (pid, service, file) instead
        worst_first = f"<h3>Worst streams</h3>{_worst_table(summary['worst_keys'], 'key')}"
    generated = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    src = ", ".join(sources)

    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{_e(title)}</h1>
<p class="muted">{_e(src)} · {scan_summary.get("lines", "?")} lines · log time {_e(span)} ·
generated {generated}</p>
<noscript><p>The episode table needs JavaScript; the summary and timelines below do not.</p></noscript>
<h2>Summary</h2>
<div class="cards"><div class="card"><b>{summary["episodes"]}</b>episodes</div>{verdict_cards}</div>
<div class="cards"><div class="card"><b>{_secs(sil["p50"])}</b>silence p50</div>
<div class="card"><b>{_secs(sil["p95"])}</b>silence p95</div>
<div class="card"><b>{_secs(sil["max"])}</b>silence max</div></div>
<p class="muted">Silence = the longest stretch of log time inside an episode with no progress line.
An incident is an episode that did not recover.</p>
{f"<ul class=muted>{notes}</ul>" if notes else ""}
<div class="cols"><div>{worst_first}</div>
<div><h3>Worst rooms</h3>{_worst_table(summary["worst_rooms"], "room")}</div></div>
<h3>Incidents by hour of day (UTC, log time)</h3>
{_hist_svg(summary["incidents_by_hour_utc"])}
<h2>Timeline per job</h2>
<p class="legend muted">{legend} Bar = the episode's longest silence, starting at the episode's start; label =
outcome. Hover for details, click to jump to the row.</p>
{"".join(charts)}
<h2>Episodes (<span id="rendered-count">0</span> shown of {len(indexed)})</h2>
<div class="filters">{filters}</div>
<div class="scroll"><table id="episodes" data-episodes-expected="{len(indexed)}" data-episodes-rendered="">
<thead><tr>{head_cells}</tr></thead><tbody></tbody></table></div>
<script type="application/json" id="lkw-data">{_script_json(data)}</script>
<script>{_JS_ONERROR}</script>
<script>{_JS}</script>
</body>
</html>
"""

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
from typing import TYPE_CHECKING, Any

from lkwedge.detect.episodes import Episode
from lkwedge.detect.summary import Summary
from lkwedge.output.present import OTHER_LOOK, VERDICT_LOOKS, seconds
from lkwedge.output.render import sdk_lines
from lkwedge.safe import printable

if TYPE_CHECKING:
    from lkwedge.detect.incidents import Incident
    from lkwedge.output.report import ReportSummary, Worst

COLORS = {verdict: look.html for verdict, look in VERDICT_LOOKS.items()}
OTHER_COLOR = OTHER_LOOK.html
MAX_CHARTS = 60  # beyond this, charts stop helping; the table still lists every episode
PLOT_W = 1100
LANE_H = 20
MAX_LANES = 6


def _e(value: object) -> str:
    return escape(printable(str(value)), quote=True)


def _secs(value: float | None) -> str:
    return seconds(value, unknown="–")


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


GUTTER = 230      # px left of the plot for the job labels
ROW_GAP = 6


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _label_w(text: str) -> float:
    return 7 + 6.2 * len(text)


def timeline_svg(groups: list[tuple[str, list[tuple[int, Episode]]]],
                 incidents: Sequence[Incident]) -> str:
    """Every job on ONE time axis, so drops that hit several jobs at once line up (incidents are drawn as
    bands across all rows). A bar starts at the episode's start and is as long as its longest silence
    (at least 3 px); its outcome is written beside it, after it or, near the right edge, before it.
    Positions are also kept as seconds (data-t, data-w) so the page's script can zoom and pan."""
    timed = [(key, [(i, ep) for i, ep in eps if ep.start is not None]) for key, eps in groups]
    timed = [(key, eps) for key, eps in timed if eps]
    if not timed:
        return '<p class="muted">No log times: nothing to place on a time axis.</p>'
    starts = [ep.start for _, eps in timed for _, ep in eps]
    t0 = min(starts)  # type: ignore[type-var]
    t1 = max(max(ep.end or ep.start,  # type: ignore[operator]
                 ep.start + dt.timedelta(seconds=ep.silence_s or 0)) for _, eps in timed for _, ep in eps)
    span = max((t1 - t0).total_seconds(), 30.0)  # type: ignore[operator]
    pad = span * 0.02
    d0, d1 = -pad, span + pad
    plot_w = PLOT_W - GUTTER - 8
    scale = plot_w / (d1 - d0)

    def x_of(t_s: float) -> float:
        return GUTTER + (t_s - d0) * scale

    rows_svg: list[str] = []
    y = 4
    for key, eps in timed:
        bars = []
        for i, ep in sorted(eps, key=lambda p: p[1].start):  # type: ignore[arg-type, return-value]
            t_s = (ep.start - t0).total_seconds()  # type: ignore[operator]
            x, w = x_of(t_s), max(3.0, (ep.silence_s or 0) * scale)
            label = ep.outcome or ep.verdict
            after = x + w + _label_w(label) <= PLOT_W
            span_x = x if after else x - _label_w(label)
            bars.append((i, ep, t_s, x, w, label, after, span_x, w + _label_w(label)))
        lanes = _assign_lanes([(sx, sw) for *_, sx, sw in bars], overlap_ok=True) or [0] * len(bars)
        height = LANE_H * (max(lanes) + 1)
        first = eps[0][1]
        title = key if not first.room else f"{key} · {first.room}"
        rows_svg.append(f'<g class="row" data-key="{_e(key)}">'
                        f'<text x="4" y="{y + 12}" class="rowlbl">'
                        f"<title>{_e(title)}</title>{_e(_clip(title, 27))}</text>"
                        f'<line x1="{GUTTER}" y1="{y + height + ROW_GAP / 2 - 1}" x2="{PLOT_W - 8}" '
                        f'y2="{y + height + ROW_GAP / 2 - 1}" class="rowline"/>')
        for (i, ep, t_s, x, w, label, after, _, _), lane in zip(bars, lanes, strict=True):
            by = y + lane * LANE_H
            color = COLORS.get(ep.verdict, OTHER_COLOR)
            tip = (f"{ep.verdict} · {ep.start.isoformat()} · silence {_secs(ep.silence_s)} · "  # type: ignore[union-attr]
                   f"outcome {ep.outcome or 'none'} · {ep.file}:{ep.line}")
            lx, anchor = (x + w + 3, "start") if after else (x - 3, "end")
            rows_svg.append(
                f'<a href="#ep-{i}"><g class="ep" data-verdict="{_e(ep.verdict)}" data-t="{t_s:.3f}" '
                f'data-w="{ep.silence_s or 0:.3f}"><title>{_e(tip)}</title>'
                f'<line x1="{x:.1f}" y1="{by}" x2="{x:.1f}" y2="{by + 14}" class="start"/>'
                f'<rect x="{x:.1f}" y="{by + 2}" width="{w:.1f}" height="10" fill="{color}"/>'
                f'<text x="{lx:.1f}" y="{by + 11}" text-anchor="{anchor}" class="lbl">{_e(label)}</text>'
                "</g></a>")
        rows_svg.append("</g>")
        y += height + ROW_GAP
    axis_y = y + 2
    total_h = axis_y + 22
    parts = [f'<svg id="timeline" class="timeline" viewBox="0 0 {PLOT_W} {total_h}" '
             f'data-t0="{t0.isoformat()}" data-d0="{d0:.3f}" data-d1="{d1:.3f}" data-left="{GUTTER}" '
             f'data-right="{PLOT_W - 8}" role="img" aria-label="timeline of every job on one time axis">']
    for inc in incidents:
        t_s = (inc.start - t0).total_seconds()
        spread = round(inc.spread_s, 3)     # as the JSON has it
        bx, bw = x_of(t_s) - 2, max(4.0, spread * scale + 4)
        parts.append(f'<rect class="band" data-t="{t_s:.3f}" data-w="{spread:.3f}" '
                     f'x="{bx:.1f}" y="0" width="{bw:.1f}" height="{axis_y}">'
                     f'<title>incident {_e(inc.id)}: '
                     f'{len(inc.keys)} jobs within {_secs(spread)}</title></rect>')
    parts.extend(rows_svg)
    parts.append(f'<line x1="{GUTTER}" y1="{axis_y}" x2="{PLOT_W - 8}" y2="{axis_y}" class="axis"/>'
                 f'<g id="ticks" data-y="{axis_y}">')
    for k in range(6):
        t_s = d0 + (d1 - d0) * k / 5
        tx = x_of(t_s)
        anchor = "start" if k == 0 else "end" if k == 5 else "middle"
        when = t0 + dt.timedelta(seconds=t_s)
        parts.append(f'<text x="{tx:.1f}" y="{axis_y + 15}" text-anchor="{anchor}" class="tick">'
                     f"{when.strftime('%m-%d %H:%M') if span > 86400 else _hm(when)}</text>")
    parts.append("</g></svg>")
    return "".join(parts)


def _hist_svg(by_hour: Sequence[int]) -> str:
    peak = max(by_hour) or 1
    bar_w, h = 30, 90
    parts = [f'<svg class="hist" viewBox="0 0 {24 * bar_w} {h + 30}" width="{24 * bar_w}" height="{h + 30}" '
             'role="img" aria-label="episodes not recovered by hour of day">']
    for hour, n in enumerate(by_hour):
        bh = h * n / peak
        x = hour * bar_w
        mid = x + bar_w / 2
        parts.append(f"<g><title>{hour:02d}:00–{hour:02d}:59 UTC: {n} not recovered</title>"
                     f'<rect x="{x + 3}" y="{h - bh + 12:.1f}" width="{bar_w - 6}" height="{bh:.1f}" '
                     f'class="hbar"/><text x="{mid}" y="{h + 26}" text-anchor="middle" class="tick">'
                     f"{hour:02d}</text>")
        if n:
            parts.append(f'<text x="{mid}" y="{h - bh + 9:.1f}" text-anchor="middle" class="tick">{n}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def _worst_table(rows: list[Worst], column: str) -> str:
    if not rows:
        return f'<p class="muted">No episode not recovered with a known {column}.</p>'
    body = "".join(f"<tr><td>{_e(r.name)}</td><td class=num>{r.not_recovered}</td>"
                   f"<td class=num>{r.stalled}</td><td class=num>{r.ghosts}</td>"
                   f"<td class=num>{_secs(r.max_silence_s)}</td></tr>"
                   for r in rows)
    return (f'<table class="small"><thead><tr><th>{column}</th><th>not recovered</th><th>stalled</th>'
            f"<th>ghosts</th><th>max silence</th></tr></thead><tbody>{body}</tbody></table>")


_VERDICT_CSS = "".join(f".card.v-{v} b,.verdict.{v}{{color:{c}}}" for v, c in COLORS.items())

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
.card b{display:block;font-size:22px}
.cols{display:flex;gap:32px;flex-wrap:wrap}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}
table.small{width:auto}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
#episodes th{cursor:pointer;user-select:none;background:var(--alt);position:sticky;top:0}
#episodes th[aria-sort=ascending]::after{content:" ▲"}#episodes th[aria-sort=descending]::after{content:" ▼"}
tr.ev td{background:var(--alt)}
pre{margin:0;white-space:pre-wrap;word-break:break-all;font:12px/1.4 ui-monospace,Menlo,Consolas,monospace}
.verdict{font-weight:600}
button.toggle{font:inherit;font-size:12px;padding:0 6px;cursor:pointer}
svg .axis{stroke:#8c959f}svg .tick{font:11px ui-monospace,Menlo,Consolas,monospace;fill:#57606a}
svg .lbl{font:11px system-ui,sans-serif;fill:#1f2328}svg .start{stroke:#1f2328;stroke-width:1}
svg .hbar{fill:#c62828}svg a:hover rect{stroke:#000;stroke-width:1}
.legend span{display:inline-block;margin-right:14px}
.legend i{display:inline-block;width:12px;height:10px;margin-right:4px}
#lkw-js-error{background:#ffebe9;border:1px solid #c62828;padding:8px;margin:8px 0}
.filters{margin:8px 0}.filters label{margin-right:12px}
.scroll{overflow-x:auto}#episodes th,td.nowrap{white-space:nowrap}#episodes{font-size:13px}
#episodes th,#episodes td{padding:3px 4px}#episodes td{overflow-wrap:anywhere}
.headline{font-size:17px;font-weight:600;margin:6px 0 10px}p.small{font-size:12px}
svg.timeline{width:100%;height:auto;display:block;user-select:none}
svg .rowlbl{font:12px ui-monospace,Menlo,Consolas,monospace;fill:#1f2328}svg .rowline{stroke:#eaeef2}
svg .band{fill:#8250df;fill-opacity:.13}.zoom{margin:6px 0}
table.evidence{width:100%;margin:4px 0}table.evidence td{font:12px/1.4 ui-monospace,Menlo,Consolas,monospace;
border:0;padding:1px 6px}table.evidence td.text{overflow-wrap:anywhere}
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

  // Evidence as a small table: time offset from the trigger line, line number, role, text.
  function evidenceTable(ep) {
    var t = document.createElement('table');
    t.className = 'evidence';
    var trigger = ep.evidence.filter(function (e) { return e.role === 'trigger' && e.time; })[0] ||
                  ep.evidence.filter(function (e) { return e.time; })[0];
    var t0 = trigger ? Date.parse(trigger.time) : null;
    ep.evidence.forEach(function (e) {
      var tr = document.createElement('tr');
      var off = '';
      if (t0 !== null && e.time) {
        var d = (Date.parse(e.time) - t0) / 1000;
        off = (d < 0 ? '\u2212' : '+') + Math.abs(d).toFixed(3) + ' s';
      }
      cell(tr, off, 'num nowrap');
      cell(tr, ep.file.split('/').pop() + ':' + e.line, 'nowrap').title = ep.file + ':' + e.line;
      cell(tr, e.role, 'nowrap');
      cell(tr, e.text, 'text');
      t.appendChild(tr);
    });
    return t;
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
      cell(tr, ep.job || ep.key);     // the key only when there is no job (a pid, a service, the file)
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
      evtd.colSpan = 10;
      if (ep.note) {
        var note = document.createElement('p');
        note.textContent = ep.note;
        evtd.appendChild(note);
      }
      evtd.appendChild(evidenceTable(ep));
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

  // The shared timeline: zoom and pan by recomputing x from each mark's seconds (data-t, data-w).
  var svg = document.getElementById('timeline');
  if (svg) {
    var full = [parseFloat(svg.getAttribute('data-d0')), parseFloat(svg.getAttribute('data-d1'))];
    var left = parseFloat(svg.getAttribute('data-left')), right = parseFloat(svg.getAttribute('data-right'));
    var t0ms = Date.parse(svg.getAttribute('data-t0'));
    var NS = 'http://www.w3.org/2000/svg';
    var setDomain = function (d0, d1) {
      var minSpan = 0.5;
      if (d1 - d0 < minSpan) { var mid = (d0 + d1) / 2; d0 = mid - minSpan / 2; d1 = mid + minSpan / 2; }
      var scale = (right - left) / (d1 - d0);
      var xOf = function (t) { return left + (t - d0) * scale; };
      svg.setAttribute('data-domain', d0.toFixed(3) + ',' + d1.toFixed(3));
      Array.prototype.forEach.call(svg.querySelectorAll('g.ep'), function (g) {
        var x = xOf(parseFloat(g.getAttribute('data-t')));
        var w = Math.max(3, parseFloat(g.getAttribute('data-w')) * scale);
        var visible = x + w >= left && x <= right;
        g.style.display = visible ? '' : 'none';
        var line = g.querySelector('line'), rect = g.querySelector('rect'), text = g.querySelector('text');
        line.setAttribute('x1', x); line.setAttribute('x2', x);
        rect.setAttribute('x', Math.max(left, x));
        rect.setAttribute('width', Math.max(3, Math.min(right, x + w) - Math.max(left, x)));
        var lw = 7 + 6.2 * text.textContent.length;
        var after = x + w + lw <= right + 8;
        text.setAttribute('x', after ? x + w + 3 : x - 3);
        text.setAttribute('text-anchor', after ? 'start' : 'end');
      });
      Array.prototype.forEach.call(svg.querySelectorAll('rect.band'), function (b) {
        var x = xOf(parseFloat(b.getAttribute('data-t'))) - 2;
        var w = Math.max(4, parseFloat(b.getAttribute('data-w')) * scale + 4);
        b.style.display = x + w >= left && x <= right ? '' : 'none';
        b.setAttribute('x', Math.max(left, x)); b.setAttribute('width', w);
      });
      var ticks = document.getElementById('ticks');
      var y = parseFloat(ticks.getAttribute('data-y')) + 15;
      ticks.textContent = '';
      for (var k = 0; k <= 5; k++) {
        var ts = d0 + (d1 - d0) * k / 5;
        var iso = new Date(t0ms + ts * 1000).toISOString();
        var label = d1 - d0 > 86400 ? iso.substr(5, 11).replace('T', ' ')
                                    : iso.substr(11, d1 - d0 < 20 ? 12 : 8);
        var tx = document.createElementNS(NS, 'text');
        tx.setAttribute('x', xOf(ts)); tx.setAttribute('y', y); tx.setAttribute('class', 'tick');
        tx.setAttribute('text-anchor', k === 0 ? 'start' : k === 5 ? 'end' : 'middle');
        tx.textContent = label;
        ticks.appendChild(tx);
      }
      current = [d0, d1];
    };
    var current = full.slice();
    var zoomBy = function (f) {
      var mid = (current[0] + current[1]) / 2, half = (current[1] - current[0]) * f / 2;
      setDomain(Math.max(full[0], mid - half), Math.min(full[1], mid + half));
    };
    document.getElementById('zoom-in').addEventListener('click', function () { zoomBy(0.5); });
    document.getElementById('zoom-out').addEventListener('click', function () { zoomBy(2); });
    document.getElementById('zoom-reset').addEventListener('click', function () {
      setDomain(full[0], full[1]);
    });
    Array.prototype.forEach.call(document.querySelectorAll('button[data-zoom]'), function (btn) {
      btn.addEventListener('click', function () {
        var t = (Date.parse(btn.getAttribute('data-start')) - t0ms) / 1000;
        var spread = parseFloat(btn.getAttribute('data-spread'));
        setDomain(t - 10, t + spread + 30);
        svg.scrollIntoView();
      });
    });
    // drag across the plot to zoom to that stretch
    var dragFrom = null;
    var secondsAt = function (evt) {
      var box = svg.getBoundingClientRect();
      var x = (evt.clientX - box.left) * (svg.viewBox.baseVal.width / box.width);
      return current[0] + (x - left) * (current[1] - current[0]) / (right - left);
    };
    svg.addEventListener('mousedown', function (evt) { dragFrom = secondsAt(evt); });
    svg.addEventListener('mouseup', function (evt) {
      if (dragFrom === null) return;
      var to = secondsAt(evt);
      if (Math.abs(to - dragFrom) > (current[1] - current[0]) / 100) {
        setDomain(Math.min(dragFrom, to), Math.max(dragFrom, to));
      }
      dragFrom = null;
    });
    var m0 = /(?:^#|&)zoom=([\d.]+),([\d.]+)/.exec(window.location.hash);
    if (m0) setDomain(parseFloat(m0[1]), parseFloat(m0[2]));
  }

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
  // For checks (and curious readers): whether anything needs a horizontal scroll at this width.
  var boxes = Array.prototype.slice.call(document.querySelectorAll('.scroll'));
  var wide = [document.documentElement].concat(boxes).filter(function (el) {
    return el.scrollWidth > el.clientWidth;
  });
  document.body.setAttribute('data-horizontal-scroll', String(wide.length > 0));
  document.body.setAttribute('data-scroll-width', String(document.documentElement.scrollWidth));
  document.body.setAttribute('data-inner-width', String(window.innerWidth));
  document.body.setAttribute('data-ready', '1');
})();
"""

# Nothing may be fetched: no script, style sheet, font, image or connection from outside this file.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"

_TABLE_COLS = [("i", "#", True), ("verdict", "verdict", False), ("start", "start (UTC)", False),
               ("silence_s", "silence s", True), ("outcome", "outcome", False),
               ("job", "job / key", False), ("room", "room", False), ("file", "file:line", False),
               ("attempts", "attempts", True)]


def render_html(episodes: Sequence[Episode], summary: ReportSummary, scan_summary: Summary,
                *, title: str = "lkwedge report", sources: Sequence[str] = ()) -> str:
    """The whole page as a string. ``summary`` is :func:`lkwedge.output.report.build`'s."""
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
    incidents = summary.incidents or []
    charts = [timeline_svg(ordered[:MAX_CHARTS], incidents)]
    if len(ordered) > MAX_CHARTS:
        charts.append(f'<p class="muted">{len(ordered) - MAX_CHARTS} more jobs are not charted (the least '
                      "affected); the table below lists all episodes.</p>")
    if not indexed:
        charts = ['<p class="muted">No reconnect episodes.</p>']
    inc_rows = "".join(
        f'<tr><td><button type="button" class="toggle" data-zoom="{_e(inc.id)}" '
        f'data-start="{_e(inc.start.isoformat())}" data-spread="{round(inc.spread_s, 3)}">{_e(inc.id)}'
        f'</button></td><td class=nowrap>{_e(_short(inc.start.isoformat()))}</td>'
        f'<td class=num>{len(inc.keys)}</td><td class=num>{_secs(round(inc.spread_s, 3))}</td>'
        f'<td class="verdict {_e(inc.verdict)}">{_e(inc.verdict)}</td><td>{_e(", ".join(inc.keys))}</td></tr>'
        for inc in incidents)
    incident_html = (f'<table class="small" id="incidents"><thead><tr><th>incident</th><th>start</th>'
                     f"<th>jobs</th><th>within</th><th>worst</th><th>jobs hit</th></tr></thead>"
                     f"<tbody>{inc_rows}</tbody></table>" if incidents else
                     '<p class="muted">No incident: no two jobs of one log dropped together.</p>')
    headline = summary.headline

    verdict_cards = "".join(f'<div class="card v-{_e(v)}"><b>{n}</b>{_e(v)}</div>'
                            for v, n in summary.verdicts.items())
    sil = summary.silence
    legend = "".join(f'<span><i style="background:{c}"></i>{v}</span>' for v, c in COLORS.items())
    filters = "".join(f'<label><input type="checkbox" checked data-verdict-filter="{_e(v)}"> {_e(v)}</label>'
                      for v in summary.verdicts)
    head_cells = "".join(f'<th data-col="{c}"{" class=num" if num else ""}>{_e(label)}</th>'
                         for c, label, num in _TABLE_COLS) + "<th>evidence</th>"
    span = f"{_short(summary.first)} … {_short(summary.last)}" if summary.first and summary.last \
        else "no log times"
    notes = "".join(f"<li>{_e(n)}</li>"
                    for n in [*scan_summary.notes, *sdk_lines(scan_summary)])
    if summary.worst_jobs or not summary.worst_keys:
        worst_first = f"<h3>Worst jobs</h3>{_worst_table(summary.worst_jobs, 'job')}"
    else:  # logs without job ids: rank the streams (pid, service, file) instead
        worst_first = f"<h3>Worst streams</h3>{_worst_table(summary.worst_keys, 'key')}"
    generated = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    src = ", ".join(sources[:3]) + (f" and {len(sources) - 3} more" if len(sources) > 3 else "")

    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)}</title>
<style>{_CSS}{_VERDICT_CSS}</style>
</head>
<body>
<h1>{_e(title)}</h1>
<p class="headline" id="headline">{_e(headline)}</p>
<div class="cards"><div class="card"><b>{summary.episodes}</b>episodes</div>{verdict_cards}
<div class="card"><b>{len(incidents)}</b>incidents</div></div>
<p class="muted small">log time {_e(span)} · {scan_summary.lines} lines of {_e(src)} ·
generated {generated}</p>
<noscript><p>The episode table needs JavaScript; the summary and timelines below do not.</p></noscript>
<h2>Incidents</h2>
<p class="muted">Episodes of different jobs in one log that started within the incident gap of each
other: one network blip or server migration. Click one to zoom the timeline to it.</p>
{incident_html}
<h2>Summary</h2>
<div class="cards"><div class="card"><b>{_secs(sil.p50)}</b>silence p50</div>
<div class="card"><b>{_secs(sil.p95)}</b>silence p95</div>
<div class="card"><b>{_secs(sil.max)}</b>silence max</div></div>
<p class="muted">Silence = the longest stretch of log time inside an episode with no progress line.
"Not recovered" counts stalled, unresolved, disconnected and ghost episodes.</p>
{f"<ul class=muted>{notes}</ul>" if notes else ""}
<div class="cols"><div>{worst_first}</div>
<div><h3>Worst rooms</h3>{_worst_table(summary.worst_rooms, "room")}</div></div>
<h3>Episodes not recovered, by hour of day (UTC, log time)</h3>
{_hist_svg(summary.not_recovered_by_hour_utc)}
<h2>Timeline: every job on one time axis</h2>
<p class="legend muted">{legend} Bar = the episode's longest silence, starting at the episode's start; label =
outcome; shaded band = incident. Hover for details, click a bar to jump to its row.</p>
<div class="zoom"><button type="button" class="toggle" id="zoom-in">zoom in</button>
<button type="button" class="toggle" id="zoom-out">zoom out</button>
<button type="button" class="toggle" id="zoom-reset">whole log</button>
<span class="muted">or drag across the timeline to zoom to that stretch</span></div>
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

"""A self-contained HTML page of one simulated run, drawn from its trace: nodes and clients over time.

Top: one lane per node — its role (follower, candidate, leader, with the term),
when it was down (crashed), paused or cut off by a partition.  Below: one lane
per client, each call a bar from its invocation to its answer, coloured by
outcome (ok, failed = did not happen, indeterminate); the calls the
linearizability checker could not place are outlined in red.  Hover anything
for details.  Pure SVG and CSS, no script and no external file, so the page can
be attached to a bug report as it is.
"""

from __future__ import annotations

import html
from typing import Any, Iterable, Sequence

ROLE_COLOURS = {"FOLLOWER": "#d9e2ec", "CANDIDATE": "#f7d774", "LEADER": "#4caf50", "PRE_CANDIDATE": "#fbe9a7"}
OUTCOME_COLOURS = {"ok": "#5b8def", "fail": "#b0b0b0", "info": "#f39c12", "open": "#f39c12"}
LANE = 22
LEFT = 90


def render(trace: Sequence[dict], title: str = "syncobj simulation", summary: Iterable[str] = (),
           illegal: Iterable[int] = ()) -> str:
    """The page for a run's trace records (`world.trace`, or the lines of a --trace file)."""
    bad = set(illegal)
    for rec in trace:
        if rec.get("k") == "illegal":
            bad.update(rec.get("ops", ()))
    end = max((r["t"] for r in trace), default=1.0) or 1.0
    scale = max(25.0, 1500.0 / end)
    width = LEFT + end * scale + 40
    nodes: list[str] = []
    for rec in trace:
        n = rec.get("n")
        if rec.get("k") in ("start", "role", "crash") and n is not None and n not in nodes:
            nodes.append(n)
    clients: list[str] = []
    calls: dict[int, dict] = {}
    for rec in trace:
        if rec["k"] == "call":
            calls[rec["op"]] = {"call": rec, "ret": None}
            if rec["c"] not in clients:
                clients.append(rec["c"])
        elif rec["k"] == "ret" and rec["op"] in calls:
            calls[rec["op"]]["ret"] = rec
    clients.sort(key=_client_key)

    def x(t: float) -> float:
        return LEFT + t * scale

    out: list[str] = []
    y0 = 40
    node_y = {n: y0 + i * LANE for i, n in enumerate(nodes)}
    client_y0 = y0 + len(nodes) * LANE + 40
    client_y = {c: client_y0 + i * (LANE - 6) for i, c in enumerate(clients)}
    height = client_y0 + len(clients) * (LANE - 6) + 40

    # time axis
    step = _tick(end)
    t = 0.0
    while t <= end + 1e-9:
        out.append(f'<line x1="{x(t):.1f}" y1="28" x2="{x(t):.1f}" y2="{height - 20}" class="grid"/>'
                   f'<text x="{x(t):.1f}" y="22" class="tick">{t:g}s</text>')
        t += step
    # node lanes: roles, down, pauses
    for n in nodes:
        y = node_y[n]
        out.append(f'<text x="8" y="{y + 15}" class="label">{html.escape(n)}</text>')
        role: tuple[float, str, int] | None = None
        down_since: float | None = None
        for rec in trace:
            if rec.get("n") != n:
                continue
            k, t = rec["k"], rec["t"]
            if k == "role":
                if role is not None:
                    out.append(_role_box(x, role, t, y))
                role = (t, rec["role"], rec["term"])
            elif k == "crash":
                if role is not None:
                    out.append(_role_box(x, role, t, y))
                    role = None
                down_since = t
            elif k == "start" and down_since is not None:
                out.append(_box(x(down_since), y, x(t) - x(down_since), LANE - 4, "down",
                                f"{n} down {down_since:.3f}s - {t:.3f}s"))
                down_since = None
            elif k == "pause":
                d = rec.get("duration", 0)
                out.append(_box(x(t), y + LANE - 8, d * scale, 4, "pause", f"{n} paused {t:.3f}s for {d:.3f}s"))
        if role is not None:
            out.append(_role_box(x, role, end, y))
        if down_since is not None:
            out.append(_box(x(down_since), y, x(end) - x(down_since), LANE - 4, "down", f"{n} down from {down_since:.3f}s"))
    # partitions: a band over the node lanes while the network is split
    split: tuple[float, str] | None = None
    band_y = y0 - 10
    for rec in trace:
        k = rec["k"]
        if k in ("partition", "one_way", "heal", "liveness_phase"):
            if split is not None:
                out.append(_box(x(split[0]), band_y, x(rec["t"]) - x(split[0]), 6, "part", split[1]))
                split = None
            if k == "partition":
                split = (rec["t"], "partition " + " | ".join(",".join(g) for g in rec["groups"]))
            elif k == "one_way":
                split = (rec["t"], f"one-way block {rec['src']} -> {rec['dst']}")
        if k == "liveness_phase":
            out.append(f'<line x1="{x(rec["t"]):.1f}" y1="28" x2="{x(rec["t"]):.1f}" y2="{height - 20}" '
                       f'class="phase"><title>faults end; liveness phase (majority {rec.get("majority")}, '
                       f'minority {rec.get("minority")} {rec.get("how")})</title></line>')
    if split is not None:
        out.append(_box(x(split[0]), band_y, x(end) - x(split[0]), 6, "part", split[1]))
    # client lanes
    out.append(f'<text x="8" y="{client_y0 - 12}" class="label">clients</text>')
    for c in clients:
        out.append(f'<text x="8" y="{client_y[c] + 11}" class="label small">{html.escape(c)}</text>')
    for op, pair in sorted(calls.items()):
        call, ret = pair["call"], pair["ret"]
        t0 = call["t"]
        t1 = ret["t"] if ret is not None else end
        outcome = ret["o"] if ret is not None else "open"
        colour = OUTCOME_COLOURS.get(outcome, "#999")
        tip = (f"op {op} {call['c']} on {call.get('n')}: {call['obj']}.{call['f']} [{t0:.3f}s - "
               + (f"{t1:.3f}s] {outcome} {ret.get('why', '')} {ret.get('v', '')}" if ret is not None else "never]"))
        cls = "op bad" if op in bad else "op"
        w = max(2.0, (t1 - t0) * scale)
        out.append(f'<rect x="{x(t0):.1f}" y="{client_y[call["c"]]}" width="{w:.1f}" height="{LANE - 10}" '
                   f'fill="{colour}" class="{cls}"><title>{html.escape(tip)}</title></rect>')
    legend = ("".join(f'<span class="key" style="background:{c}"></span>{html.escape(r.lower())} '
                      for r, c in ROLE_COLOURS.items() if r != "PRE_CANDIDATE")
              + '<span class="key down"></span>down <span class="key" style="background:#8e44ad"></span>paused '
              '<span class="key" style="background:#e74c3c"></span>partition &nbsp; calls: '
              + "".join(f'<span class="key" style="background:{OUTCOME_COLOURS[o]}"></span>{label} '
                        for o, label in (("ok", "ok"), ("fail", "failed (not applied)"), ("info", "indeterminate")))
              + '<span class="key bad"></span>not linearizable')
    body = "\n".join(out)
    info = "".join(f"<div>{html.escape(s)}</div>" for s in summary)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font: 13px system-ui, sans-serif; margin: 16px; color: #222; }}
h1 {{ font-size: 17px; margin: 0 0 6px; }}
.summary {{ font-family: ui-monospace, monospace; font-size: 12px; margin-bottom: 8px; white-space: pre-wrap; }}
.legend {{ margin: 6px 0 10px; }}
.key {{ display: inline-block; width: 14px; height: 10px; margin: 0 3px 0 10px; border: 1px solid #888; vertical-align: middle; }}
.key.down {{ background: repeating-linear-gradient(45deg, #555 0 3px, #999 3px 6px); }}
.key.bad {{ background: #fff; border: 2px solid #e00; }}
.scroll {{ overflow-x: auto; border: 1px solid #ddd; }}
svg text {{ font-size: 11px; fill: #333; }}
.label {{ font-weight: 600; }} .small {{ font-size: 10px; font-weight: 400; }}
.tick {{ text-anchor: middle; fill: #777; }}
.grid {{ stroke: #eee; }} .phase {{ stroke: #333; stroke-dasharray: 4 3; stroke-width: 1.5; }}
.down {{ fill: url(#hatch); }} .pause {{ fill: #8e44ad; }} .part {{ fill: #e74c3c; }}
.op {{ stroke: none; }} .op.bad {{ stroke: #e00; stroke-width: 3; }}
</style></head><body>
<h1>{html.escape(title)}</h1><div class="summary">{info}</div>
<div class="legend">nodes: {legend}</div>
<div class="scroll"><svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}">
<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
<rect width="6" height="6" fill="#999"/><rect width="3" height="6" fill="#555"/></pattern></defs>
{body}
</svg></div></body></html>
"""


def _role_box(x: Any, role: tuple[float, str, int], t_end: float, y: float) -> str:
    t0, name, term = role
    colour = ROLE_COLOURS.get(name, "#ccc")
    w = x(t_end) - x(t0)
    label = f'<text x="{x(t0) + 2:.1f}" y="{y + 13}" class="small">{term}</text>' if name == "LEADER" and w > 14 else ""
    return (f'<rect x="{x(t0):.1f}" y="{y}" width="{max(w, 0.5):.1f}" height="{LANE - 4}" fill="{colour}">'
            f'<title>{name.lower()} term {term} {t0:.3f}s - {t_end:.3f}s</title></rect>{label}')


def _box(x0: float, y: float, w: float, h: float, cls: str, tip: str) -> str:
    return (f'<rect x="{x0:.1f}" y="{y}" width="{max(w, 1.0):.1f}" height="{h}" class="{cls}">'
            f'<title>{html.escape(tip)}</title></rect>')


def _tick(end: float) -> float:
    for step in (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300):
        if end / step <= 30:
            return float(step)
    return 600.0


def _client_key(name: str) -> tuple:
    head = name.rstrip("0123456789")
    tail = name[len(head):]
    return (head.startswith("probe"), head, int(tail) if tail else 0, name)


def write_html(path: str, trace: Sequence[dict], **kwargs: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(render(trace, **kwargs))

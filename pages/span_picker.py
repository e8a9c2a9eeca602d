"""Span picker: named-entity labeling (Prodigy ``ner.manual`` / ``ner.correct`` style) as one Streamlit
components-v2 component with inline CSS/JS. A module used by pages, not a page.

Mouse: drag over words (or click one) to select them, then press 1–9 or click a label. The label chosen last stays
*active* (filled button): from then on a mouse selection becomes an entity of that label at once (Prodigy-style;
another number right after retypes it; clicking the active label again turns this off). Clicking an entity opens a
small menu (retype, × remove). Keyboard (text focused): ←/→ word cursor, Shift+←/→ extend, Home/End, 1–9 label,
Backspace/Delete remove, u or Ctrl+Z undo, Enter save, PageUp/PageDown or Alt+←/→ previous/next (asks for a second
press while edits are unsaved), Esc drop the selection. New entities replace those they overlap: no overlaps ever.
Working state lives in the browser per ``key``: reruns with the same ``doc_id`` keep unsaved edits and the undo
stack; a new ``doc_id`` resets to ``spans``. Each save / navigate is ONE trigger event, checked by ``check_event``,
given to ``on_event`` in the change callback (before the rerun); that rerun tells the widget "Saved ✓" or the error.
"""
from __future__ import annotations

from functools import cache
from typing import Any, Callable

import streamlit as st

# Pastel colours (spaCy displaCy's) that keep dark text readable in both themes; golden-angle hues after these.
PALETTE = ("#7aecec", "#feca74", "#bfeeb7", "#aa9cfc", "#ff9561", "#ffeb80", "#ff8197", "#9cc9cc", "#c887fb",
           "#e4e7d2", "#bfe1d9", "#f0d0ff")


def label_colors(labels: list[str]) -> dict[str, str]:
    """One distinct CSS colour per label, by position (stable as long as the label order is)."""
    return {label: PALETTE[i] if i < len(PALETTE) else f"hsl({i * 137.508 % 360:.0f}, 70%, 78%)"
            for i, label in enumerate(dict.fromkeys(labels))}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_event(event: Any, text: str, labels: list[str], doc_id: str) -> dict | None:
    """The component's event, checked and normalised; None when there is none. Raises ValueError (readable) for
    a stale event (another doc_id) or a malformed one. Offsets are Python string indices into ``text``."""
    if event is None:
        return None
    if not isinstance(event, dict):
        raise ValueError(f"an event must be an object, not {type(event).__name__}")
    action = event.get("action")
    if action not in ("save", "navigate"):
        raise ValueError(f"unknown action {action!r} (expected 'save' or 'navigate')")
    if str(event.get("doc_id")) != str(doc_id):
        raise ValueError(f"this {action} was for example {event.get('doc_id')!r}, but {doc_id!r} is shown; ignored")
    seq = event.get("seq")
    if not _is_int(seq) or seq < 0:
        raise ValueError(f"seq must be a non-negative integer, not {seq!r}")
    if action == "navigate":
        delta = event.get("delta")
        if not _is_int(delta) or delta not in (-1, 1):
            raise ValueError(f"navigate delta must be -1 or +1, not {delta!r}")
        return {"action": "navigate", "delta": delta, "doc_id": doc_id, "seq": seq}
    raw = event.get("spans")
    if not isinstance(raw, list):
        raise ValueError(f"spans must be a list, not {type(raw).__name__}")
    spans = []
    for n, span in enumerate(raw, 1):
        if not isinstance(span, dict):
            raise ValueError(f"span {n} must be an object with start, end and label")
        start, end, label = span.get("start"), span.get("end"), span.get("label")
        if not (_is_int(start) and _is_int(end)):
            raise ValueError(f"span {n}: start and end must be integers, not {start!r} and {end!r}")
        if not 0 <= start < end <= len(text):
            raise ValueError(f"span {n}: [{start}, {end}) is not a non-empty range of the {len(text)}-character text")
        if label not in labels:
            raise ValueError(f"span {n} ({text[start:end]!r}): unknown label {label!r}; known: {', '.join(labels)}")
        spans.append({"start": start, "end": end, "label": label})
    spans.sort(key=lambda s: (s["start"], s["end"]))
    for a, b in zip(spans, spans[1:]):
        if b["start"] < a["end"]:
            raise ValueError(f"spans overlap: {text[a['start']:a['end']]!r} ({a['label']}) and "
                             f"{text[b['start']:b['end']]!r} ({b['label']})")
    return {"action": "save", "spans": spans, "doc_id": doc_id, "seq": seq}


def _initial_spans(spans: list[dict], text: str) -> list[dict]:
    """Sorted spans inside the text; a span overlapping an earlier one is dropped (the widget never shows overlaps)."""
    out: list[dict] = []
    for span in sorted(spans, key=lambda s: (int(s["start"]), int(s["end"]))):
        start, end = int(span["start"]), int(span["end"])
        if 0 <= start < end <= len(text) and not (out and start < out[-1]["end"]):
            item = {"start": start, "end": end, "label": str(span["label"])}
            if span.get("score") is not None:
                item["score"] = round(float(span["score"]), 4)
            out.append(item)
    return out


def span_picker(text: str, words: list[tuple[int, int]], spans: list[dict], labels: list[str], *, doc_id: str,
                key: str, suggested: bool = False, on_event: Callable[[dict], Any] | None = None,
                max_height_px: int = 420) -> None:
    """Show the span picker. ``on_event(event)`` runs in the change callback (before the rerun) for each valid
    ``{"action": "save", "spans", "doc_id", "seq"}`` or ``{"action": "navigate", "delta": ±1, "doc_id", "seq"}``;
    a ValueError it raises is shown to the user in the widget instead of "Saved ✓"."""
    pairs = [(int(s), int(e)) for s, e in words]
    if any(not 0 <= s < e <= len(text) for s, e in pairs) or any(b[0] < a[1] for a, b in zip(pairs, pairs[1:])):
        raise ValueError("words must be sorted, non-overlapping, non-empty [start, end) ranges inside the text")
    ack_key = f"_span_picker_ack:{key}"

    def _changed() -> None:
        raw = (st.session_state.get(key) or {}).get("event")
        seq = raw.get("seq") if isinstance(raw, dict) else None
        try:
            event = check_event(raw, text, labels, doc_id)
            if event is not None and on_event is not None:
                on_event(event)
        except ValueError as error:
            st.session_state[ack_key] = {"seq": seq, "ok": False, "message": str(error)}
            return
        if event is not None:
            st.session_state[ack_key] = {"seq": seq, "ok": True, "message": ""}

    data = {"key": key, "doc_id": str(doc_id), "text": text, "words": pairs, "spans": _initial_spans(spans, text),
            "labels": list(labels), "colors": label_colors(labels), "suggested": bool(suggested),
            "max_height": int(max_height_px), "ack": st.session_state.get(ack_key)}
    _component()(key=key, data=data, on_event_change=_changed)


@cache
def _component():
    return st.components.v2.component("spanlab_span_picker", css=_CSS, js=_JS)


_CSS = r"""
.spanpicker{position:relative;font-family:var(--st-font,sans-serif);color:var(--st-text-color,#222);font-size:1rem}
.bar{display:flex;flex-wrap:wrap;gap:.4rem;align-items:center;margin:.35rem 0}
button{font:inherit;font-size:.9rem;padding:.2rem .7rem;border:1px solid var(--st-border-color,#ccc);cursor:pointer;
  border-radius:var(--st-button-radius,.5rem);background:var(--st-background-color,#fff);color:inherit}
button:hover{border-color:var(--st-primary-color,#ff4b4b)} button:disabled{opacity:.45;cursor:default}
button.primary{background:var(--st-primary-color,#ff4b4b);border-color:transparent;color:#fff;font-weight:600}
.lab{border-left:.8rem solid var(--c)} .lab.on{background:var(--c);color:#111;font-weight:600}
kbd{font:inherit;opacity:.6;margin-right:.35rem}
.box{position:relative;overflow:auto;white-space:pre-wrap;overflow-wrap:anywhere;line-height:2.2;font-size:1.05rem;
  padding:.5rem .8rem;border:1px solid var(--st-border-color,#ccc);border-radius:var(--st-base-radius,.5rem);
  user-select:none;-webkit-user-select:none;outline:none;cursor:text}
.box:focus{border-color:var(--st-primary-color,#ff4b4b);box-shadow:0 0 0 1px var(--st-primary-color,#ff4b4b)}
.w,.g{padding:.15rem 0} .w{border-radius:.2rem} .w:hover{background:rgba(128,128,128,.18)}
.e,.e:hover{background:var(--c);color:#111;border-radius:0}
.w.es{padding-left:.3rem;border-radius:.35rem 0 0 .35rem} .w.es.sug{border-left-width:2px}
.e.sug{background:color-mix(in srgb,var(--c) 30%,transparent);color:inherit;border:dashed var(--c);border-width:2px 0}
.sel{background:color-mix(in srgb,var(--st-primary-color,#ff4b4b) 28%,transparent)}
.e.sel{background:var(--c);box-shadow:inset 0 -3px 0 var(--st-primary-color,#ff4b4b)}
.cur{box-shadow:inset 0 -3px 0 var(--st-text-color,#222)}
.tag{background:var(--c);color:#111;font-size:.62rem;font-weight:700;letter-spacing:.03em;padding:.2rem .35rem;
  margin-right:.1rem;border-radius:0 .35rem .35rem 0;cursor:pointer;vertical-align:.08em}
.tag.sug{background:transparent;color:inherit;border:2px dashed var(--c);border-left:0}
.menu{position:absolute;z-index:3;display:flex;gap:.25rem;padding:.25rem;line-height:1.3;white-space:nowrap;
  background:var(--st-background-color,#fff);border:1px solid var(--st-border-color,#ccc);border-radius:.45rem;
  box-shadow:0 3px 10px rgba(0,0,0,.2)} .menu[hidden]{display:none} .menu button{font-size:.75rem;padding:.1rem .45rem}
.status{margin-left:auto;font-size:.85rem;opacity:.8} .status.err{color:var(--st-red-color,#d33);opacity:1}
.list{display:flex;flex-wrap:wrap;gap:.3rem;font-size:.8rem;max-height:5.2rem;overflow:auto}
.chip{border:1px solid var(--c);border-left:.5rem solid var(--c);border-radius:.3rem;padding:0 .4rem;cursor:pointer;
  max-width:22rem;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
"""

_JS = r"""
const STORE = new Map();      // python key -> working state (entities, undo, seq): outlives reruns and remounts
const VIEWS = new WeakMap();  // parentElement -> view (DOM + listeners), built once per mount
const mk = (tag, cls, text) => { const n = document.createElement(tag); if (cls) n.className = cls;
  if (text != null) n.textContent = text; return n; };
const sig = ents => JSON.stringify(ents.map(e => [e.start, e.end, e.label]));
const byStart = (x, y) => x.start - y.start || x.end - y.end;
const first = (n, pred) => { let lo = 0, hi = n;
  while (lo < hi) { const m = (lo + hi) >> 1; if (pred(m)) hi = m; else lo = m + 1; } return lo; };
const colorOf = (v, label) => v.d.colors[label] || '#c8c8c8';
const textOf = (v, e) => v.cps.slice(e.start, e.end).join('');
const selectedEnt = v => v.sel && v.s.ents.find(e => e.a === v.sel.a && e.b === v.sel.b);
const overlapping = (v, a, b) => { const start = v.d.words[a][0], end = v.d.words[b][1];
  return e => e.start < end && start < e.end; };

// Streamlit calls this again whenever `data` changes, on the same parentElement and WITHOUT calling the earlier
// cleanup; so the view is built once, and only the cleanup of the latest call (run on unmount) tears it down.
export default function ({ data, parentElement, setTriggerValue }) {
  let v = VIEWS.get(parentElement); const isNew = !v;
  if (isNew) VIEWS.set(parentElement, v = build(parentElement));
  v.send = setTriggerValue;
  const token = v.token = (v.token || 0) + 1;
  update(v, data, isNew);
  return () => { if (v.token === token) { v.destroy(); VIEWS.delete(parentElement); } };
}
function build(parent) {
  const v = { selEls: [], sel: null, cursor: -1, anchor: -1, drag: null };
  const root = v.root = mk('div', 'spanpicker'), actions = mk('div', 'bar');
  v.labels = mk('div', 'bar'); v.menu = mk('div', 'menu'); v.menu.hidden = true;
  v.status = mk('span', 'status'); v.list = mk('div', 'list');
  v.box = mk('div', 'box'); v.box.tabIndex = 0; v.box.setAttribute('role', 'application');
  v.box.setAttribute('aria-label', 'Text to label: select words, then press 1 to 9');
  const btn = (text, cls, fn, title) => { const b = mk('button', cls, text); b.type = 'button'; b.title = title;
    b.onclick = fn; actions.append(b); return b; };
  btn('Save ⏎', 'primary', () => save(v), 'Save this example (Enter)');
  v.undoBtn = btn('Undo', '', () => undo(v), 'Undo the last edit (u or Ctrl+Z)');
  btn('Clear all', '', () => v.s.ents.length && edit(v, []), 'Remove every entity');
  btn('← Previous', '', () => navigate(v, -1), 'Previous example (PageUp or Alt+←)');
  btn('Next →', '', () => navigate(v, 1), 'Next example (PageDown or Alt+→)');
  actions.append(v.status); root.append(v.labels, v.box, actions, v.list, v.menu); parent.append(root);
  root.addEventListener('mousedown', e => {  // clicking a button keeps the keyboard focus in the text
    if (e.target.closest('button, .chip')) { e.preventDefault(); v.box.focus({ preventScroll: true }); } });
  root.addEventListener('keydown', e => onKey(v, e));
  v.box.addEventListener('mousedown', e => onDown(v, e));
  v.box.addEventListener('mousemove', e => onMove(v, e));
  v.box.addEventListener('scroll', () => placeMenu(v));
  const up = e => onUp(v, e); window.addEventListener('mouseup', up);
  v.destroy = () => { window.removeEventListener('mouseup', up); root.remove(); };
  return v;
}
function update(v, d, isNew) {
  v.d = d; v.root.dataset.key = d.key; v.root.dataset.doc = d.doc_id;
  let s = STORE.get(d.key);
  if (!s) STORE.set(d.key, s = { seq: 0, lastSeq: 0, acked: 0, active: -1 });
  const fresh = s.doc !== d.doc_id || s.text !== d.text, ack = d.ack;
  if (fresh) Object.assign(s, { doc: d.doc_id, text: d.text, ents: fromSpans(d), undo: [], msg: '', err: false,
    warned: 0 }), s.clean = sig(s.ents);
  v.s = s;
  if (ack && ack.seq === s.lastSeq && s.acked !== ack.seq) {  // the answer to our last event
    s.acked = ack.seq; s.msg = ack.ok ? (s.lastAction === 'save' ? 'Saved ✓' : '') : ack.message; s.err = !ack.ok;
    if (ack.ok && s.lastAction === 'save' && !fresh) { s.clean = s.savedSig; s.ents.forEach(e => { e.sug = false; }); }
  }
  if (isNew || v.doc !== s.doc || v.text !== d.text) {
    renderText(v); v.doc = s.doc; v.text = d.text; v.sel = null; v.cursor = v.anchor = -1; }
  v.box.style.maxHeight = d.max_height + 'px';
  renderLabels(v); paint(v);
  const idle = !document.activeElement || document.activeElement === document.body;
  if ((isNew || fresh) && idle) v.box.focus({ preventScroll: true });
}
function fromSpans(d) {  // python spans -> entities with their word range a..b (-1 when they cover no word)
  const W = d.words, n = W.length;
  return d.spans.map(sp => { const a = first(n, i => W[i][1] > sp.start), b = first(n, i => W[i][0] >= sp.end) - 1;
    return { ...sp, a: a <= b ? a : -1, b: a <= b ? b : -1, sug: !!d.suggested }; }).sort(byStart);
}
function renderText(v) {  // one span per word (data-i) and per gap; user text only ever goes into text nodes
  const { text, words } = v.d, cps = v.cps = Array.from(text), frag = document.createDocumentFragment();
  v.words = []; v.gaps = []; v.drawn = new Map(); v.selEls = [];
  let pos = 0;
  words.forEach(([st, en], i) => {
    if (st > pos) { const t = cps.slice(pos, st).join('');
      if (i) frag.append(v.gaps[i - 1] = mk('span', 'g', t)); else frag.append(t); }
    const w = mk('span', 'w', cps.slice(st, en).join('')); w.dataset.i = i; v.words.push(w); frag.append(w); pos = en;
  });
  frag.append(cps.slice(pos).join('')); v.box.replaceChildren(frag);
}
function renderLabels(v) {  // the label bar (with keys) and the same labels in the entity menu, plus ×
  const make = keys => v.d.labels.map((lab, i) => { const b = mk('button', 'lab'); b.type = 'button';
    b.style.setProperty('--c', colorOf(v, lab)); b.title = `Label as ${lab}` + (i < 9 ? ` (key ${i + 1})` : '');
    if (keys && i < 9) b.append(mk('kbd', '', String(i + 1)));
    b.append(lab); b.dataset.label = lab; b.onclick = () => chooseLabel(v, i); return b; });
  const rm = mk('button', 'rm', '×'); rm.type = 'button'; rm.title = 'Remove this entity (Delete)';
  rm.setAttribute('aria-label', 'Remove entity'); rm.onclick = () => removeSel(v);
  v.labels.replaceChildren(...(v.labelBtns = make(true))); v.menu.replaceChildren(...(v.menuBtns = make(false)), rm);
}
function paint(v) {  // entities, diffed against what is drawn; then the list, the selection, the status
  const now = new Set(v.s.ents);
  for (const [e, p] of v.drawn) if (!now.has(e) || p.sug !== e.sug) { v.drawn.delete(e); p.tag.remove();
    for (const x of p.els) { x.classList.remove('e', 'es', 'sug'); x.removeAttribute('title'); } }
  for (const e of v.s.ents) if (e.a >= 0 && !v.drawn.has(e)) v.drawn.set(e, draw(v, e));
  const shown = v.s.ents.slice(0, 100).map(e => { const t = textOf(v, e);
    const chip = mk('span', 'chip', `${e.label} · ${t.length > 40 ? t.slice(0, 40) + '…' : t}`);
    chip.style.setProperty('--c', colorOf(v, e.label)); chip.title = `${e.label}: ${t}`;
    chip.onclick = () => { if (e.a >= 0) { select(v, e.a, e.b); v.words[e.a].scrollIntoView({ block: 'nearest' }); } };
    return chip; });
  v.list.replaceChildren(...shown, v.s.ents.length > 100 ? `… and ${v.s.ents.length - 100} more` : '');
  v.undoBtn.disabled = !v.s.undo.length; paintSel(v);
}
function draw(v, e) {  // classes on the entity's words and gaps, its label tag after the last word
  const c = colorOf(v, e.label), els = [], tag = mk('span', 'tag', e.label);
  const title = e.label + (e.sug ? ' · suggestion' + (e.score != null ? ` · score ${(+e.score).toFixed(2)}` : '') : '');
  for (let i = e.a; i <= e.b; i++) { els.push(v.words[i]); if (i < e.b && v.gaps[i]) els.push(v.gaps[i]); }
  els.forEach(x => x.classList.add('e')); v.words[e.a].classList.add('es');
  for (const x of [...els, tag]) { x.classList.toggle('sug', e.sug); x.style.setProperty('--c', c); x.title = title; }
  tag.dataset.i = e.b; v.words[e.b].after(tag);
  return { els, tag, sug: e.sug };
}
function paintSel(v) {  // selection, cursor, menu, active label and status: cheap enough for every mousemove
  v.selEls.forEach(x => x.classList.remove('sel', 'cur')); v.selEls = [];
  const add = (x, c) => { if (x) { x.classList.add(c); v.selEls.push(x); } }, { sel, s } = v, ent = selectedEnt(v);
  if (sel) for (let i = sel.a; i <= sel.b; i++) { add(v.words[i], 'sel'); if (i < sel.b) add(v.gaps[i], 'sel'); }
  if (v.cursor >= 0) add(v.words[v.cursor], 'cur');
  v.labelBtns.forEach((b, i) => b.classList.toggle('on', i === s.active));
  v.menuBtns.forEach(b => b.classList.toggle('on', !!ent && b.dataset.label === ent.label));
  placeMenu(v, ent);
  const n = s.ents.length, dirty = sig(s.ents) !== s.clean;
  const hint = sel && !ent ? 'press 1–9 or click a label' : s.active >= 0 ? `drag to mark ${v.d.labels[s.active]}` : '';
  v.status.textContent = [`${n} ${n === 1 ? 'entity' : 'entities'}`, dirty && 'unsaved changes', s.msg || hint]
    .filter(Boolean).join(' · ');
  v.status.classList.toggle('err', !!s.err); v.root.dataset.dirty = dirty;
}
function placeMenu(v, ent = selectedEnt(v)) {  // under the entity's tag; hidden once scrolled out of the box
  const at = ent && (v.words[ent.b].nextSibling || v.words[ent.b]).getBoundingClientRect();
  const box = v.box.getBoundingClientRect(), root = v.root.getBoundingClientRect();
  v.menu.hidden = !at || at.bottom < box.top || at.top > box.bottom; if (v.menu.hidden) return;
  v.menu.style.top = (at.bottom - root.top + 2) + 'px';
  v.menu.style.left = Math.max(0, Math.min(at.left - root.left, root.width - v.menu.offsetWidth)) + 'px';
}
function select(v, a, b) { v.sel = { a, b }; v.anchor = a; v.cursor = b; paintSel(v); }
function setMsg(v, msg, err = false) { v.s.msg = msg; v.s.err = err; paintSel(v); }
function edit(v, ents, sel = null) {  // every change of the entities goes through here (undo stack, repaint)
  const s = v.s; s.undo.push(s.ents); if (s.undo.length > 300) s.undo.shift();
  Object.assign(s, { ents: ents.sort(byStart), msg: '', err: false, warned: 0 }); v.sel = sel; paint(v);
}
function undo(v) {
  const s = v.s; if (!s.undo.length) return setMsg(v, 'nothing to undo');
  Object.assign(s, { ents: s.undo.pop(), msg: '', err: false, warned: 0 }); v.sel = null; paint(v);
}
function setLabel(v, a, b, label) {  // words a..b: retype the entity of exactly that range, else replace overlaps
  const W = v.d.words, old = v.s.ents, hit = old.filter(overlapping(v, a, b));
  const same = hit.length === 1 && hit[0].a === a && hit[0].b === b ? hit[0] : null;
  v.s.active = v.d.labels.indexOf(label); v.anchor = a; v.cursor = b;
  if (same && same.label === label && !same.sug) { v.sel = { a, b }; return paint(v); }
  const ent = same ? { ...same, label, sug: false } : { start: W[a][0], end: W[b][1], label, a, b, sug: false };
  edit(v, old.filter(e => !hit.includes(e)).concat(ent), { a, b });
}
function removeSel(v) {
  if (!v.sel) return setMsg(v, 'select an entity first');
  const gone = overlapping(v, v.sel.a, v.sel.b), keep = v.s.ents.filter(e => !gone(e));
  if (keep.length < v.s.ents.length) edit(v, keep); else setMsg(v, 'no entity there');
}
function chooseLabel(v, i) {
  if (v.sel) return setLabel(v, v.sel.a, v.sel.b, v.d.labels[i]);
  v.s.active = v.s.active === i ? -1 : i; paintSel(v);
}
function send(v, action, extra) {  // ONE trigger value per action; Python answers with data.ack on the rerun
  const s = v.s; s.seq += 1; s.lastSeq = s.seq; s.lastAction = action;
  v.send('event', { action, ...extra, doc_id: s.doc, seq: s.seq });
}
function save(v) {
  const bad = v.s.ents.find(e => !v.d.labels.includes(e.label));
  if (bad) return setMsg(v, `unknown label “${bad.label}”: retype it first`, true);
  v.s.savedSig = sig(v.s.ents);
  send(v, 'save', { spans: v.s.ents.map(({ start, end, label }) => ({ start, end, label })) }); setMsg(v, 'saving…');
}
function navigate(v, delta) {
  const s = v.s;
  if (sig(s.ents) !== s.clean && s.warned !== delta) {
    s.warned = delta; return setMsg(v, 'unsaved changes: Save (Enter) first, or press again to discard them', true); }
  s.warned = 0; send(v, 'navigate', { delta }); setMsg(v, 'loading…');
}
function move(v, to, shift) {
  const n = v.words.length, c = Math.max(0, Math.min(n - 1, to)); if (!n) return;
  if (!shift || v.anchor < 0) v.anchor = c;
  v.cursor = c; v.sel = { a: Math.min(v.anchor, c), b: Math.max(v.anchor, c) };
  paintSel(v); v.words[c].scrollIntoView({ block: 'nearest' });
}
function onKey(v, e) {
  const k = e.key, plain = !e.ctrlKey && !e.metaKey && !e.altKey, arrow = { ArrowLeft: -1, ArrowRight: 1 }[k];
  if (e.target.tagName === 'BUTTON' && (k === 'Enter' || k === ' ')) return;  // the focused button's own click
  if (/^[1-9]$/.test(k) && plain && +k <= v.d.labels.length) chooseLabel(v, +k - 1);
  else if (arrow && e.altKey) navigate(v, arrow);
  else if (arrow) move(v, v.cursor < 0 ? (arrow > 0 ? 0 : v.words.length - 1) : v.cursor + arrow, e.shiftKey);
  else if (k === 'Home' || k === 'End') move(v, k === 'Home' ? 0 : v.words.length - 1, e.shiftKey);
  else if (k === 'PageUp' || k === 'PageDown') navigate(v, k === 'PageUp' ? -1 : 1);
  else if (k === 'Backspace' || k === 'Delete') removeSel(v);
  else if ((k === 'u' && plain) || ((e.ctrlKey || e.metaKey) && k.toLowerCase() === 'z')) undo(v);
  else if (k === 'Enter') save(v);
  else if (k === 'Escape') { v.sel = null; paintSel(v); }
  else return;
  e.preventDefault(); e.stopPropagation();
}
function onDown(v, e) {
  const t = e.button === 0 && e.target.closest('.w, .tag'); if (!t) return;  // gaps are not selectable
  e.preventDefault(); v.box.focus({ preventScroll: true });
  const i = +t.dataset.i; v.drag = { from: i, to: i, moved: false }; select(v, i, i);
}
function onMove(v, e) {
  if (!v.drag) return;
  if (!(e.buttons & 1)) return onUp(v, e);  // released outside the window
  const t = e.target.closest('.w'); if (!t || +t.dataset.i === v.drag.to) return;
  const i = v.drag.to = +t.dataset.i; v.drag.moved = true;
  v.sel = { a: Math.min(v.drag.from, i), b: Math.max(v.drag.from, i) }; v.cursor = i; paintSel(v);
}
function onUp(v, e) {  // a click selects the entity under it; else label with the active label, or leave it pending
  const d = v.drag; if (!d) return; v.drag = null;
  const t0 = e.timeStamp, s = v.s, a = Math.min(d.from, d.to), b = Math.max(d.from, d.to);
  const hit = !d.moved && s.ents.find(x => x.a >= 0 && x.a <= a && a <= x.b);
  if (hit) select(v, hit.a, hit.b);
  else if (s.active >= 0 && s.active < v.d.labels.length) setLabel(v, a, b, v.d.labels[s.active]);
  else { v.sel = { a, b }; v.anchor = d.from; v.cursor = d.to; paintSel(v); }
  requestAnimationFrame(() => setTimeout(() => {  // measured once the frame showing it is done
    v.root.dataset.lastHighlightMs = (performance.now() - t0).toFixed(1); }));
}
"""

"""Label-page navigation bar and keyboard shortcuts (Prodigy / Label Studio style) as one Streamlit components-v2
component with inline CSS/JS. A module used by pages, not a page.

It draws ← Previous / Next → and a line naming the keys, and listens to the whole page's keys: 1–9 choose a label,
←/→ go to the previous / next example, u undoes, Enter accepts the model's suggestion. Keys never fire while a text
box, select or other widget that uses keys has the focus, nor with Ctrl/Alt/⌘.

Clicks are never dropped. Streamlit merges a button's clicks that arrive while the page is still rerunning into one,
so this bar keeps its own cursor and every navigation event names the absolute place to go (``position``): the
last event always carries where all clicks so far lead. A label, undo or accept waits for the answer to the event
before it (the browser still shows the old example until then), so two keys are never merged into one. Each event is
one trigger value, checked by ``check_event`` and given to ``on_event`` in the change callback; the rerun answers
with ``ack`` (the event's ``seq``).
"""
from __future__ import annotations

from functools import cache
from typing import Any, Callable

import streamlit as st

ACTIONS = ("navigate", "label", "undo")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_event(event: Any, doc_id: str, labels: list[str], count: int) -> dict | None:
    """The component's event, checked and normalised; None when there is none. Raises ValueError (readable) for a
    malformed event, a label not in ``labels``, or a label meant for another example than ``doc_id``."""
    if event is None:
        return None
    if not isinstance(event, dict):
        raise ValueError(f"an event must be an object, not {type(event).__name__}")
    action, seq = event.get("action"), event.get("seq")
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r} (expected one of {', '.join(ACTIONS)})")
    if not _is_int(seq) or seq < 0:
        raise ValueError(f"seq must be a non-negative integer, not {seq!r}")
    if action == "navigate":
        position = event.get("position")
        if not _is_int(position) or not 0 <= position < max(count, 1):
            raise ValueError(f"position must be an integer from 0 to {count - 1}, not {position!r}")
        return {"action": action, "position": position, "seq": seq}
    if action == "undo":  # your own last change in the dataset, wherever it is: not tied to the example shown
        return {"action": action, "seq": seq}
    if str(event.get("doc_id")) != str(doc_id):
        raise ValueError(f"this {action} was for example {event.get('doc_id')!r}, but {doc_id!r} is shown; ignored")
    label = event.get("label")
    if label not in labels:
        raise ValueError(f"unknown label {label!r}; known: {', '.join(labels)}")
    return {"action": action, "label": label, "suggested": event.get("suggested") is True, "doc_id": doc_id,
            "seq": seq}


def label_keys(*, key: str, doc_id: str, position: int, count: int, labels: list[str] = (),
               suggestion: str | None = None, on_event: Callable[[dict], Any]) -> None:
    """Show the bar for the example at ``position`` (0-based) of ``count``; ``labels`` get the keys 1–9 (none: no
    label keys, e.g. QA), ``suggestion`` the Enter key. ``on_event(event)`` runs in the change callback for each
    valid ``{"action": "navigate", "position"}``, ``{"action": "label", "label", "suggested", "doc_id"}`` or
    ``{"action": "undo"}``; a ValueError it raises is shown in the bar."""
    ack_key = f"_label_keys_ack:{key}"

    def _changed() -> None:
        raw = (st.session_state.get(key) or {}).get("event")
        seq = raw.get("seq") if isinstance(raw, dict) else None
        message = ""
        try:
            event = check_event(raw, doc_id, list(labels), count)
            if event is not None:
                on_event(event)
        except ValueError as error:
            message = str(error)
        if _is_int(seq):
            st.session_state[ack_key] = {"seq": seq, "message": message}

    data = {"key": key, "doc_id": str(doc_id), "position": int(position), "count": int(count),
            "labels": list(labels), "suggestion": suggestion if suggestion in labels else None,
            "ack": st.session_state.get(ack_key)}
    _component()(key=key, data=data, on_event_change=_changed)


@cache
def _component():
    return st.components.v2.component("spanlab_label_keys", css=_CSS, js=_JS)


_CSS = r"""
.labelkeys{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;font-family:var(--st-font,sans-serif);
  color:var(--st-text-color,#222)}
button{font:inherit;font-size:1rem;padding:.35rem 1rem;min-width:9rem;border:1px solid var(--st-border-color,#ccc);
  cursor:pointer;border-radius:var(--st-button-radius,.5rem);background:var(--st-background-color,#fff);color:inherit}
button:hover{border-color:var(--st-primary-color,#ff4b4b);color:var(--st-primary-color,#ff4b4b)}
button:disabled{opacity:.45;cursor:default;color:inherit;border-color:var(--st-border-color,#ccc)}
.keys{font-size:.8rem;opacity:.7} kbd{font:inherit;font-size:.75rem;border:1px solid currentColor;border-radius:.25rem;
  padding:0 .25rem;margin:0 .1rem}
.status{font-size:.85rem} .status.err{color:var(--st-red-color,#d33)}
"""

_JS = r"""
const STORE = new Map();      // python key -> {seq, lastSeq, lastAction, cursor}: outlives reruns and remounts
const VIEWS = new WeakMap();  // parentElement -> view, built once per mount
const mk = (tag, cls, text) => { const n = document.createElement(tag); if (cls) n.className = cls;
  if (text != null) n.textContent = text; return n; };
const TYPING = 'input, textarea, select, [contenteditable=""], [contenteditable="true"], [role="textbox"], ' +
  '[role="combobox"], [role="listbox"], [role="slider"], [role="spinbutton"], [role="radio"], [role="tab"], ' +
  '[role="menu"], [role="option"], [role="grid"], .spanpicker';

export default function ({ data, parentElement, setTriggerValue }) {
  let v = VIEWS.get(parentElement); const isNew = !v;
  if (isNew) VIEWS.set(parentElement, v = build(parentElement));
  v.send = setTriggerValue;
  const token = v.token = (v.token || 0) + 1;
  update(v, data);
  return () => { if (v.token === token) { v.destroy(); VIEWS.delete(parentElement); } };
}
function build(parent) {
  const v = {}, root = v.root = mk('div', 'labelkeys');
  const btn = (text, title, delta) => { const b = mk('button', '', text); b.type = 'button'; b.title = title;
    b.onclick = () => navigate(v, delta); root.append(b); return b; };
  v.prev = btn('← Previous', 'Previous example (← key)', -1);
  v.next = btn('Next →', 'Next example (→ key)', 1);
  v.keys = mk('span', 'keys'); v.status = mk('span', 'status'); root.append(v.keys, v.status); parent.append(root);
  const onKey = e => key(v, e); document.addEventListener('keydown', onKey);
  v.destroy = () => { document.removeEventListener('keydown', onKey); root.remove(); };
  return v;
}
function pending(v) { return v.s.lastSeq > ((v.d.ack && v.d.ack.seq) || 0); }
function update(v, d) {
  v.d = d; v.root.dataset.doc = d.doc_id; v.root.dataset.position = d.position;
  let s = STORE.get(d.key);
  if (!s) STORE.set(d.key, s = { seq: 0, lastSeq: 0, lastAction: '', cursor: d.position });
  const acked = (d.ack && d.ack.seq) || 0;
  if (acked > s.seq) s.seq = s.lastSeq = acked;  // a reloaded tab: continue after what the server has seen
  v.s = s;
  if (!pending(v)) s.cursor = d.position;
  const parts = [];
  if (d.labels.length) parts.push(`<kbd>1</kbd>–<kbd>${Math.min(9, d.labels.length)}</kbd> label`);
  parts.push('<kbd>←</kbd> <kbd>→</kbd> previous / next', '<kbd>u</kbd> undo');
  if (d.suggestion) parts.push('<kbd>Enter</kbd> accept the suggestion');
  v.keys.innerHTML = 'Keys: ' + parts.join(' · ');  // fixed markup only; no user text
  paint(v, d.ack && d.ack.seq === s.lastSeq && d.ack.message ? d.ack.message : '', true);
}
function paint(v, msg, err) {
  const s = v.s, last = v.d.count - 1, busy = pending(v);
  v.prev.disabled = s.cursor <= 0; v.next.disabled = s.cursor >= last;
  v.root.dataset.cursor = s.cursor; v.root.dataset.pending = busy;
  v.status.textContent = msg || (busy ? (s.lastAction === 'navigate' ? `going to ${s.cursor + 1} of ${v.d.count}…`
    : 'saving…') : ''); v.status.classList.toggle('err', !!(msg && err));
}
function send(v, action, extra) {  // ONE trigger value per action; Python answers with data.ack on the rerun
  const s = v.s; s.seq += 1; s.lastSeq = s.seq; s.lastAction = action;
  v.send('event', { action, ...extra, seq: s.seq });
}
function navigate(v, delta) {
  const s = v.s;
  if (pending(v) && s.lastAction !== 'navigate') return paint(v, 'wait: saving…', false);
  const to = Math.max(0, Math.min(v.d.count - 1, s.cursor + delta)); if (to === s.cursor) return;
  s.cursor = to; send(v, 'navigate', { position: to }); paint(v);
}
function act(v, action, extra) {
  if (pending(v)) return paint(v, 'wait: the last key is still being saved', true);
  send(v, action, { ...extra, doc_id: v.d.doc_id }); paint(v);
}
function key(v, e) {
  if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || e.isComposing || !v.root.isConnected) return;
  const target = e.composedPath ? e.composedPath()[0] : e.target;
  if (target && target.closest && (target.closest(TYPING) || target.isContentEditable)) return;
  const k = e.key, d = v.d;
  if (/^[1-9]$/.test(k) && +k <= d.labels.length) act(v, 'label', { label: d.labels[+k - 1] });
  else if (k === 'ArrowLeft' || k === 'ArrowRight') navigate(v, k === 'ArrowLeft' ? -1 : 1);
  else if (k === 'u') act(v, 'undo', {});
  else if (k === 'Enter' && d.suggestion) {
    if (target && target.closest && target.closest('button, a, [role="button"], summary')) return;  // its own click
    act(v, 'label', { label: d.suggestion, suggested: true });
  } else return;
  e.preventDefault();
}
"""

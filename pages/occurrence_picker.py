"""Occurrence picker: a QA context in a scrollable box with every occurrence of the typed answer marked; a click on
one chooses it (the answer is saved at that place). One Streamlit components-v2 component with inline CSS/JS; a
module used by pages, not a page. For answers that occur many times (a radio with hundreds of options is no way to
choose); a few occurrences keep the Label page's radio.

The choice is the component's state ``chosen`` (an occurrence number, 0-based), kept in ``st.session_state[key]``.
User text only ever goes into text nodes.
"""
from __future__ import annotations

from functools import cache
from typing import Any

import streamlit as st


def chosen_of(state: Any, count: int, default: int = 0) -> int:
    """The occurrence number in a picker's session state (``{"chosen": n}``) or a radio's (``n``), within
    ``0..count-1``; ``default`` otherwise."""
    value = state.get("chosen") if isinstance(state, dict) else state
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < count:
        return value
    return default


def occurrence_picker(text: str, spans: list[tuple[int, int]], *, key: str, default: int = 0,
                      max_height_px: int = 360) -> int:
    """Show ``text`` with ``spans`` (character start, end; sorted, non-overlapping) clickable; returns the chosen
    span's number (``default`` until one is clicked)."""
    pairs = [(int(start), int(end)) for start, end in spans]
    if any(not 0 <= s < e <= len(text) for s, e in pairs):
        raise ValueError("spans must be non-empty [start, end) ranges inside the text")
    default = default if 0 <= default < len(pairs) else 0
    chosen = chosen_of(st.session_state.get(key), len(pairs), default)
    data = {"text": text, "spans": pairs, "chosen": chosen, "max_height": int(max_height_px)}
    result = _component()(key=key, data=data, default={"chosen": default}, on_chosen_change=lambda: None)
    return chosen_of({"chosen": getattr(result, "chosen", chosen)}, len(pairs), chosen)


@cache
def _component():
    return st.components.v2.component("spanlab_occurrence_picker", css=_CSS, js=_JS)


_CSS = r"""
.occ{font-family:var(--st-font,sans-serif);color:var(--st-text-color,#222)}
.box{position:relative;overflow:auto;white-space:pre-wrap;overflow-wrap:anywhere;line-height:1.8;font-size:1.05rem;padding:.5rem .8rem;
  border:1px solid var(--st-border-color,#ccc);border-radius:var(--st-base-radius,.5rem)}
mark{background:color-mix(in srgb,var(--st-primary-color,#ff4b4b) 18%,transparent);color:inherit;cursor:pointer;
  border-radius:.2rem;padding:.05rem 0}
mark:hover{outline:2px solid var(--st-primary-color,#ff4b4b)}
mark.on{background:var(--st-primary-color,#ff4b4b);color:#fff;font-weight:600}
.status{font-size:.85rem;opacity:.8;margin-top:.3rem}
"""

_JS = r"""
const VIEWS = new WeakMap();
const mk = (tag, cls, text) => { const n = document.createElement(tag); if (cls) n.className = cls;
  if (text != null) n.textContent = text; return n; };

export default function ({ data, parentElement, setStateValue }) {
  let v = VIEWS.get(parentElement); const isNew = !v;
  if (isNew) { v = { root: mk('div', 'occ') }; v.box = mk('div', 'box'); v.status = mk('div', 'status');
    v.root.append(v.box, v.status); parentElement.append(v.root); VIEWS.set(parentElement, v);
    v.box.addEventListener('click', e => { const m = e.target.closest('mark'); if (!m) return;
      choose(v, +m.dataset.i); v.set('chosen', v.chosen); }); }
  v.set = setStateValue;
  const token = v.token = (v.token || 0) + 1, sig = JSON.stringify([data.text.length, data.spans]);
  if (v.sig !== sig || v.text !== data.text) { render(v, data); v.sig = sig; v.text = data.text;
    v.chosen = -1; choose(v, data.chosen, true); }
  v.box.style.maxHeight = data.max_height + 'px';
  return () => { if (v.token === token) { v.root.remove(); VIEWS.delete(parentElement); } };
}
function render(v, d) {  // text nodes between <mark data-i> nodes; offsets are code points (Python indices)
  const cps = Array.from(d.text), frag = document.createDocumentFragment(); let pos = 0;
  v.marks = d.spans.map(([s, e], i) => { if (s > pos) frag.append(cps.slice(pos, s).join(''));
    const m = mk('mark', '', cps.slice(s, e).join('')); m.dataset.i = i; m.title = `Occurrence ${i + 1}: click to choose`;
    frag.append(m); pos = e; return m; });
  frag.append(cps.slice(pos).join('')); v.box.replaceChildren(frag); v.count = d.spans.length;
}
function choose(v, i, scroll) {
  if (!v.marks.length) { v.status.textContent = ''; return; }
  i = Math.max(0, Math.min(v.marks.length - 1, i));
  if (v.chosen >= 0 && v.marks[v.chosen]) v.marks[v.chosen].classList.remove('on');
  v.chosen = i; const m = v.marks[i]; m.classList.add('on'); v.root.dataset.chosen = i;
  v.status.textContent = `Occurrence ${i + 1} of ${v.count} chosen — click another marked place to choose it.`;
  if (scroll) v.box.scrollTop = Math.max(0, m.offsetTop - v.box.offsetTop - v.box.clientHeight / 3);
}
"""

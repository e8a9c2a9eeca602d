"""Safe HTML for user text with highlighted character spans (QA answers in a context, the Demo page).

Everything is built from the ORIGINAL string by character offsets (Python code points, the offsets the QA
predictor returns), and every piece of user text is escaped: HTML's own specials (& < > " ') plus the characters
Markdown, LaTeX and Streamlit's renderer give meaning to ($ * _ ` [ ] ~ # | \\) become entities. So text holding
``<script>``, ``<img onerror=...>``, ``$x$`` or ``**bold**`` shows literally in ``st.html`` and even in
``st.markdown``. Newlines become ``&#10;`` (the output is one line, so Markdown cannot break it into blocks) and
show as line breaks thanks to ``white-space: pre-wrap`` on the wrapping div.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

# One pass over the text: html.escape's replacements plus numeric entities for Markdown/LaTeX specials.
_ENTITIES = {
    "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#x27;",  # exactly what html.escape emits
    **{char: f"&#{ord(char)};" for char in "$*_`[]~#|\\"},
    "\n": "&#10;", "\r": "&#10;",  # a lone CR (old Mac line end) is a line break too
}
_TABLE = str.maketrans(_ENTITIES)
# For Markdown (captions, messages, widget labels, radio options): Markdown's, LaTeX's and Streamlit's specials and
# the '&' and '<' that would start entities and HTML become numeric entities; a colon before a non-space too (colour
# directives :red[...], icon and emoji shortcodes). Quotes, dots, dashes, "a: b" and an underscore inside a word stay
# as they are, so ordinary names and sentences read the same in tests and logs (see escape_markdown).
_MARKDOWN_TABLE = str.maketrans({char: f"&#{ord(char)};" for char in "&<>$*_`[]~#|\\@"})
_INERT_UNDERSCORE = re.compile(r"(?<=[^\W_])_(?=[^\W_])")  # inside a word (support_tickets): never emphasis
_COLON = re.compile(r":(?=\S)")
# GitHub-flavoured autolinks are found in the text AFTER entities are decoded (http://..., www.x, a@b.c), so an
# invisible WORD JOINER (U+2060) goes where it breaks their pattern: after "http:", between "www" and ".", after "@".
WORD_JOINER = "\u2060"
_AUTOLINK_BREAKS = (re.compile(r"(?i)(\bhttps?:)(?=//)"), re.compile(r"(?i)(\bwww)(?=\.)"), re.compile(r"(@)"))
_BLOCK_START = re.compile(r"^([-+=]|\d{1,9}[.)])")          # a list item, rule or setext heading underline


WRAPPER_CLASS = "spanlab-text"
LARGE_CLASS = "spanlab-large"
MARK_CLASS = "spanlab-mark"
ACTIVE_CLASS = "spanlab-active"

HIGHLIGHT_CSS = f"""<style>
.{WRAPPER_CLASS} {{ white-space: pre-wrap; overflow-wrap: anywhere; line-height: 1.6; font-size: 1rem; }}
.{WRAPPER_CLASS}.{LARGE_CLASS} {{ font-size: 1.35rem; line-height: 1.7; }}
.{WRAPPER_CLASS} mark.{MARK_CLASS} {{ background: rgba(255, 214, 0, 0.28); color: inherit; padding: 0 0.1em;
  border-radius: 0.2em; }}
.{WRAPPER_CLASS} mark.{MARK_CLASS}.{ACTIVE_CLASS} {{ background: #ffd600; color: #111; font-weight: 600;
  box-shadow: 0 0 0 2px #ffb300; }}
.spanlab-big {{ font-size: 2.6rem; font-weight: 700; line-height: 1.2; overflow-wrap: anywhere; }}
</style>"""


def escape_text(text: str) -> str:
    """User text as inert HTML: no tags, no entities of its own, no Markdown or LaTeX syntax."""
    return str(text).replace("\r\n", "\n").translate(_TABLE)


# Unicode bidi isolates (UAX #9): FIRST STRONG ISOLATE ... POP DIRECTIONAL ISOLATE. Text between them takes its own
# direction and cannot reorder what follows, so "باريس — 42%" keeps its suffix after the Arabic text.
FIRST_STRONG_ISOLATE, POP_ISOLATE = "\u2068", "\u2069"
_ISOLATE_MARKS = str.maketrans({char: None for char in "\u2066\u2067\u2068\u2069"})


def isolate(text) -> str:
    """User or model text made a bidi island, for plain-text places (widget labels, Markdown) where <bdi> is not
    available; isolate marks inside the text are dropped, so none can close or leave open the island."""
    return FIRST_STRONG_ISOLATE + str(text).translate(_ISOLATE_MARKS) + POP_ISOLATE


def escape_markdown(text) -> str:
    """User text for anything Streamlit renders as Markdown (st.markdown, captions, messages, widget labels, radio
    options): it shows literally. No link, image, emphasis, heading, list, HTML, LaTeX, autolink or shortcode can
    form; line breaks stay line breaks, leading spaces stay spaces. Characters become numeric entities, which
    Markdown shows as the characters themselves; ``html.unescape`` gives the text back, with a WORD_JOINER (invisible)
    inside anything that looked like a web or e-mail address."""
    lines = str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    escaped = []
    for line in lines:
        body = line.lstrip(" \t")
        indent = "".join(f"&#{ord(char)};" for char in line[:len(line) - len(body)])
        for pattern in _AUTOLINK_BREAKS:
            body = pattern.sub(lambda match: match.group(1) + WORD_JOINER, body)
        pieces = _INERT_UNDERSCORE.split(body)  # kept as they are; every other character translated
        body = "_".join(piece.translate(_MARKDOWN_TABLE) for piece in pieces)
        body = _COLON.sub("&#58;", body).replace(WORD_JOINER, "&#8288;")
        body = _BLOCK_START.sub(lambda match: "".join(f"&#{ord(char)};" for char in match.group(1)), body)
        escaped.append(indent + body)
    return "  \n".join(escaped)


def _span_bounds(span) -> tuple[int, int] | None:
    """(start, end) of a tuple/list or a dict with start/end; None when it is not a usable span."""
    if isinstance(span, Mapping):
        start, end = span.get("start"), span.get("end")
    elif isinstance(span, Sequence) and not isinstance(span, str) and len(span) >= 2:
        start, end = span[0], span[1]
    else:
        return None
    if isinstance(start, bool) or isinstance(end, bool):
        return None
    try:
        return int(start), int(end)
    except (TypeError, ValueError):
        return None


def _subtract(start: int, end: int, taken: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of [start, end) not covered by any interval in ``taken``."""
    pieces = [(start, end)]
    for t_start, t_end in taken:
        next_pieces = []
        for p_start, p_end in pieces:
            if t_end <= p_start or t_start >= p_end:
                next_pieces.append((p_start, p_end))
                continue
            if p_start < t_start:
                next_pieces.append((p_start, t_start))
            if t_end < p_end:
                next_pieces.append((t_end, p_end))
        pieces = next_pieces
    return pieces


def layout_spans(text_length: int, spans: Iterable, active: int | None = None) -> list[tuple[int, int, int]]:
    """Non-overlapping (start, end, span_index) pieces, sorted by start.

    Spans outside ``0 <= start < end <= text_length`` (or malformed) are ignored. The active span is placed
    first and kept whole; every other span is clipped to the characters no earlier span took (spans are
    placed in the order given), so overlaps never nest or duplicate text.
    """
    bounds = [_span_bounds(span) for span in spans]
    order = list(range(len(bounds)))
    if active is not None and 0 <= active < len(bounds):
        order.remove(active)
        order.insert(0, active)
    taken: list[tuple[int, int]] = []
    pieces: list[tuple[int, int, int]] = []
    for index in order:
        bound = bounds[index]
        if bound is None:
            continue
        start, end = bound
        if not (0 <= start < end <= text_length):
            continue
        for p_start, p_end in _subtract(start, end, taken):
            pieces.append((p_start, p_end, index))
        taken.append((start, end))
    return sorted(pieces)


def _title(span) -> str | None:
    if isinstance(span, Mapping):
        for key in ("title", "label", "answer"):
            if span.get(key):
                return str(span[key])
    return None


def highlight_html(text: str, spans: Iterable = (), active: int | None = None, *, large: bool = False,
                   highlight_others: bool = True) -> str:
    """A ``<div>`` showing ``text`` with ``spans`` marked; ``active`` (an index into ``spans``) marked strongly.

    ``spans``: (start, end) pairs or dicts with ``start``/``end`` (e.g. QA answers; a dict's ``title``/``label``
    becomes the tooltip). ``highlight_others=False`` marks only the active span. ``large`` uses the bigger
    presenter font. Pair with :data:`HIGHLIGHT_CSS` (``st.html(HIGHLIGHT_CSS + highlight_html(...))``).
    """
    text = "" if text is None else str(text)
    spans = list(spans or [])
    pieces = layout_spans(len(text), spans, active)
    if not highlight_others:
        pieces = [piece for piece in pieces if piece[2] == active]
    out = []
    cursor = 0
    for start, end, index in pieces:
        out.append(escape_text(text[cursor:start]))
        classes = MARK_CLASS + (f" {ACTIVE_CLASS}" if index == active else "")
        title = _title(spans[index])
        title_attr = f' title="{escape_text(title)}"' if title else ""
        out.append(f'<mark class="{classes}" data-span="{index}"{title_attr}>{escape_text(text[start:end])}</mark>')
        cursor = end
    out.append(escape_text(text[cursor:]))
    classes = WRAPPER_CLASS + (f" {LARGE_CLASS}" if large else "")
    return f'<div class="{classes}">{"".join(out)}</div>'


def big_text_html(text: str) -> str:
    """One short piece of user text (e.g. a predicted label) as a large heading, escaped."""
    return f'<div class="spanlab-big">{escape_text(text)}</div>'


ENTITY_CSS = """<style>
.spanlab-text mark.spanlab-entity { color: #111; padding: 0.05em 0.3em; margin: 0 0.1em; border-radius: 0.35em;
  line-height: 2.1; box-decoration-break: clone; -webkit-box-decoration-break: clone; }
.spanlab-entity .spanlab-type { font-size: 0.62em; font-weight: 700; letter-spacing: 0.04em; margin-left: 0.4em;
  vertical-align: middle; text-transform: uppercase; opacity: 0.8; }
.spanlab-legend { display: flex; flex-wrap: wrap; gap: 0.4em; margin: 0.3em 0 0.6em; }
.spanlab-legend span { color: #111; padding: 0.1em 0.6em; border-radius: 0.35em; font-size: 0.9rem; }
</style>"""


def _safe_colour(colour: str) -> str:
    """A CSS colour from SpanLab's own palette (#rrggbb or hsl(...)); anything else becomes a neutral grey."""
    import re
    ok = re.fullmatch(r"#[0-9a-fA-F]{3,8}|hsl\(\s*[\d.]+\s*,\s*[\d.]+%\s*,\s*[\d.]+%\s*\)", str(colour))
    return colour if ok else "#dddddd"


def entities_html(text: str, entities: Iterable[Mapping], colors: Mapping[str, str], *, large: bool = False) -> str:
    """``text`` with each entity marked in its type's colour and its type written after it (as displaCy draws
    entities), everything escaped; ``entities`` are {start, end, label} dicts (overlapping ones are clipped)."""
    text = "" if text is None else str(text)
    entities = list(entities or [])
    out, cursor = [], 0
    for start, end, index in layout_spans(len(text), entities):
        label = str(entities[index].get("label", ""))
        out.append(escape_text(text[cursor:start]))
        score = entities[index].get("score")
        title = f' title="{escape_text(label)} · {float(score):.0%}"' if isinstance(score, (int, float)) else ""
        out.append(f'<mark class="spanlab-entity" style="background: {_safe_colour(colors.get(label, ""))}"'
                   f'{title}>{escape_text(text[start:end])}<span class="spanlab-type">{escape_text(label)}</span>'
                   "</mark>")
        cursor = end
    out.append(escape_text(text[cursor:]))
    classes = WRAPPER_CLASS + (f" {LARGE_CLASS}" if large else "")
    return f'<div class="{classes}">{"".join(out)}</div>'


def legend_html(colors: Mapping[str, str]) -> str:
    """One coloured chip per entity type, escaped."""
    chips = "".join(f'<span style="background: {_safe_colour(colour)}">{escape_text(label)}</span>'
                    for label, colour in colors.items())
    return f'<div class="spanlab-legend">{chips}</div>'

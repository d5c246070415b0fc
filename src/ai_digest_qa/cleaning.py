"""Cleaning of scraped article text: remove what is not content, never real content.

The seed articles are Chinese web scrapes. Each rule below removes one kind of noise
and is deliberately narrow; every removal is recorded in :class:`CleanResult.removed`
so it can be inspected (``ai-digest-qa`` never deletes silently).

Rules, in order:

1. ``header-meta``: page furniture in the first lines of a scrape (``转载``, ``365 天前``,
   a bare view count, ``167 阅读15分钟``, the bare site name that follows them) and
   image-credit lines (``图片来源:...``).
2. ``mt-caption``: machine-translation captions under images (``机器翻译,仅供参考``).
3. ``ad``: advertisement paragraphs (paper-guidance / "SCI 论文" / WeChat account
   promotions). A line with an ad marker removes its whole paragraph (the run of
   non-blank lines around it), because the ad lists continue without markers.
4. ``footer``: the site footer at the end of a page: from a footer marker (``Logo``,
   ``更多推荐``, ``相关推荐``, ``推荐阅读``) within the last lines to the end.
5. ``duplicate-reference``: in a reference list (after ``参考文献``/``References``),
   entries that repeat an earlier entry (ignoring the number and the venue) and a
   final entry cut off mid-way. Unique references are kept.
6. ``katex-double``: math that the scrape rendered twice, once as Unicode text and
   once as TeX source (``y=θ0+θ1x1+ϵy = \\theta_0 + \\theta_1x_1 + \\epsilon``, ``yy``).
   The TeX copy is dropped when both copies spell the same symbols; single letters
   doubled (``yy``) are merged only in documents where rule 6 already found TeX.

Paper records (arXiv metadata) are not scrapes: their abstracts carry inline TeX
(``4.3$\\times$ speedup``, ``\\textbf{63.2}``), which :func:`plain_tex` turns into the
text it renders to, so a question's "4.3x" or "1248x1248" finds it.

Bump :data:`CLEANER_VERSION` whenever a rule changes: the index manifest records it,
so a changed cleaner rebuilds the index instead of mixing old and new text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

CLEANER_VERSION = 2

_HEADER_ZONE_LINES = 12
_HEADER_META = re.compile(
    r"^(?:转载|原创|\d+\s*(?:天|小时|分钟)前|\d{1,9}|\d+\s*阅读\s*\d+\s*分钟|"
    r"\d{4}-\d{2}-\d{2}(?:\s+\d{2}:\d{2}(?::\d{2})?)?)$"
)
_BARE_SITE_NAME = re.compile(r"^[A-Za-z][\w.\-]{1,30}$")
_IMAGE_CREDIT = re.compile(r"^(?:图片来源|图源|题图来源)\s*[:：]")
_MT_CAPTION = re.compile(r"^机器翻译\s*[,，、]?\s*仅供参考\s*$")
_AD_MARKER = re.compile(
    r"论文指导|SCI\s*论文|公众号|关助工重号|扫码(?:领取|关注)|私信领取|添加小助手"
)
_FOOTER_MARKER = re.compile(r"^(?:Logo|更多推荐|相关推荐|推荐阅读|猜你喜欢)$")
_FOOTER_ZONE_LINES = 8
_REFERENCES_HEADING = re.compile(r"^(?:参考文献|参考资料|References|Bibliography)\s*[:：]?$", re.I)
_REFERENCE_ENTRY = re.compile(r"^\s*\[(\d+)\]\s*(.*)$")
_CJK = r"\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef"
_NON_CJK_RUN = re.compile(rf"[^{_CJK}\n]+")
_TEX_SIGNAL = re.compile(r"\\[A-Za-z]+|[_^{}]")
_GREEK = {
    "alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ϵ", "varepsilon": "ε",
    "zeta": "ζ", "eta": "η", "theta": "θ", "vartheta": "ϑ", "iota": "ι", "kappa": "κ",
    "lambda": "λ", "mu": "μ", "nu": "ν", "xi": "ξ", "pi": "π", "rho": "ρ", "sigma": "σ",
    "tau": "τ", "phi": "ϕ", "varphi": "φ", "chi": "χ", "psi": "ψ", "omega": "ω",
    "Gamma": "Γ", "Delta": "Δ", "Theta": "Θ", "Lambda": "Λ", "Pi": "Π", "Sigma": "Σ",
    "Phi": "Φ", "Psi": "Ψ", "Omega": "Ω",
}


@dataclass
class CleanResult:
    """The cleaned text and what was removed, as ``(rule, removed text)`` pairs."""

    text: str
    removed: list[tuple[str, str]] = field(default_factory=list)


def clean_text(text: str) -> CleanResult:
    """Apply every rule of this module to ``text`` (see the module docstring)."""
    removed: list[tuple[str, str]] = []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = [line.rstrip() for line in lines]
    lines = _drop_header_meta(lines, removed)
    lines = _drop_lines(lines, removed)
    lines = _drop_footer(lines, removed)
    lines = _drop_duplicate_references(lines, removed)
    cleaned = _undouble_katex("\n".join(lines), removed)
    cleaned = re.sub(r"\n{3,}", "\n\n", cleaned).strip("\n")
    return CleanResult(cleaned + "\n" if cleaned else "", removed)


def _drop_header_meta(lines: list[str], removed: list[tuple[str, str]]) -> list[str]:
    out: list[str] = []
    previous_was_meta = False
    for number, line in enumerate(lines):
        stripped = line.strip()
        in_header = number < _HEADER_ZONE_LINES
        if in_header and stripped and (
            _HEADER_META.match(stripped)
            or (previous_was_meta and _BARE_SITE_NAME.match(stripped))
        ):
            removed.append(("header-meta", stripped))
            previous_was_meta = True
            continue
        if stripped:
            previous_was_meta = False
        out.append(line)
    return out


def _paragraph_bounds(lines: list[str], index: int) -> tuple[int, int]:
    start = index
    while start > 0 and lines[start - 1].strip():
        start -= 1
    end = index
    while end + 1 < len(lines) and lines[end + 1].strip():
        end += 1
    return start, end


def _drop_lines(lines: list[str], removed: list[tuple[str, str]]) -> list[str]:
    drop: dict[int, str] = {}
    for index, line in enumerate(lines):
        stripped = line.strip()
        if _IMAGE_CREDIT.match(stripped):
            drop[index] = "header-meta"
        elif _MT_CAPTION.match(stripped):
            drop[index] = "mt-caption"
        elif _AD_MARKER.search(stripped):
            start, end = _paragraph_bounds(lines, index)
            for ad_index in range(start, end + 1):
                drop.setdefault(ad_index, "ad")
    for index in sorted(drop):
        if lines[index].strip():
            removed.append((drop[index], lines[index].strip()))
    return [line for index, line in enumerate(lines) if index not in drop]


def _drop_footer(lines: list[str], removed: list[tuple[str, str]]) -> list[str]:
    content = [i for i, line in enumerate(lines) if line.strip()]
    for index in content[-_FOOTER_ZONE_LINES:]:
        if _FOOTER_MARKER.match(lines[index].strip()):
            removed.extend(("footer", line.strip()) for line in lines[index:] if line.strip())
            return lines[:index]
    return lines


def _reference_key(entry: str) -> str:
    entry = re.sub(r"\.\s*In\s+[^.]*\.?\s*$", ".", entry)  # the venue varies between copies
    return re.sub(r"[\W_]+", "", entry).lower()


def _drop_duplicate_references(lines: list[str], removed: list[tuple[str, str]]) -> list[str]:
    try:
        heading = next(i for i, line in enumerate(lines) if _REFERENCES_HEADING.match(line.strip()))
    except StopIteration:
        return lines
    seen: list[str] = []
    out = lines[: heading + 1]
    last_entry = max(
        (i for i, line in enumerate(lines) if _REFERENCE_ENTRY.match(line)), default=-1
    )
    for index in range(heading + 1, len(lines)):
        match = _REFERENCE_ENTRY.match(lines[index])
        if not match:
            out.append(lines[index])
            continue
        key = _reference_key(match.group(2))
        truncated = index == last_entry and not re.search(r"[.)。）\]]\s*$", match.group(2))
        duplicate = key in seen or (truncated and any(k.startswith(key) for k in seen))
        if duplicate or truncated:
            removed.append(("duplicate-reference", lines[index].strip()))
            continue
        seen.append(key)
        out.append(lines[index])
    return out


def _tex_to_symbols(tex: str) -> str:
    """The symbols a TeX snippet renders to, without layout: ``\\theta_0`` -> ``θ0``."""
    tex = re.sub(r"\\([A-Za-z]+)", lambda m: _GREEK.get(m.group(1), ""), tex)
    return _symbols(tex)


def _symbols(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z\u0370-\u03ff]", "", text)


def _split_double(run: str, allow_plain: bool) -> int | None:
    """Index where the TeX copy starts in ``run`` (rendered text + TeX source), if any.

    Cuts that differ only by punctuation spell the same symbols; the last one keeps
    closing brackets with the rendered copy.
    """
    for cut in range(len(run) - 1, 0, -1):
        rendered, tex = run[:cut], run[cut:]
        if rendered[-1] == " " or tex[0] == " ":
            continue
        if _TEX_SIGNAL.search(tex):
            if _symbols(rendered) and _symbols(rendered) == _tex_to_symbols(tex):
                return cut
        elif allow_plain and rendered == tex and len(rendered) <= 3 and rendered.isalpha():
            return cut
    return None


def _undouble_katex(text: str, removed: list[tuple[str, str]]) -> str:
    if not _TEX_SIGNAL.search(text) or "\\" not in text:
        return text
    found_tex = False

    def fix(match: re.Match[str], allow_plain: bool) -> str:
        nonlocal found_tex
        run = match.group(0)
        lead = len(run) - len(run.lstrip(" ,;:"))
        trail = len(run) - len(run.rstrip(" "))
        core = run[lead : len(run) - trail]
        if not core:
            return run
        cut = _split_double(core, allow_plain)
        if cut is None:
            return run
        found_tex = found_tex or bool(_TEX_SIGNAL.search(core[cut:]))
        removed.append(("katex-double", core[cut:]))
        return run[:lead] + core[:cut] + run[len(run) - trail :]

    text = _NON_CJK_RUN.sub(lambda m: fix(m, allow_plain=False), text)
    if found_tex:
        text = _NON_CJK_RUN.sub(lambda m: fix(m, allow_plain=True), text)
    return text


# Text-style commands whose argument is the text ("\\textbf{63.2}" is "63.2").
_TEX_TEXT_COMMAND = re.compile(
    r"\\(?:textbf|textit|texttt|textrm|textsc|emph|mathrm|mathbf|mathit|text|url)"
    r"\{([^{}]*)\}")
# Inline math as TeX writes it: short, on one line, no space inside either "$" and no
# digit after the closing one, so prices ("$5 per hour, against $40") are not math;
# a span that opens with a command is math wherever it stands ("800$\\times$800").
_TEX_MATH = re.compile(r"\$(\\[^$\n]{1,39}?)\$|\$(?=\S)([^$\n]{1,40}?)(?<=\S)\$(?!\d)")
_TEX_SYMBOLS = {"times": "×", "%": "%", "pm": "±", "sim": "~", "approx": "≈", "leq": "≤",
                "geq": "≥", "le": "≤", "ge": "≥", "cdot": "·", "rightarrow": "→",
                "to": "→", "infty": "∞", ",": "", ";": " ", "!": "", " ": " "}


def plain_tex(text: str) -> str:
    """``text`` with arXiv-style inline TeX rendered as plain text: math spans
    (``$49.4$``, ``50$\\times$``), text commands (``\\textbf{AP}``), TeX quotes
    (````Textbooks''``) and ``\\%``. Anything else is left as written.

    Why not a TeX-to-text library (pylatexenc): abstracts use a bare ``%`` for percent
    ("86.8% GPU memory"), which TeX reads as a comment and such a library drops the rest
    of the line; this rewrites only the few constructs abstracts use."""
    previous = None
    while previous != text:  # innermost first: "\\textbf{$\\textbf{63.3}$AP}"
        previous = text
        text = _TEX_TEXT_COMMAND.sub(lambda m: m.group(1), text)
    text = _TEX_MATH.sub(lambda m: _tex_math(m.group(1) or m.group(2)), text)
    return text.replace("``", '"').replace("''", '"').replace("\\%", "%")


def _tex_math(tex: str) -> str:
    def command(match: re.Match[str]) -> str:
        name = match.group(1)
        return _TEX_SYMBOLS.get(name, _GREEK.get(name, ""))

    text = re.sub(r"\\([A-Za-z]+|[%,;! ])", command, tex)
    return re.sub(r"[{}]", "", text).replace("^", "").strip()

"""Read ebmlib's docstrings as the plain text they are written in, with reStructuredText's literals.

The docstrings write absolute values and norms with bars (``|d(a) - d(b)|``) and star-arguments in shapes
(``(B, *in_shape)``); reStructuredText would read the first as a substitution and the second as the
start of an emphasis. Outside double-backquoted literals both are escaped, so they print as written;
``*emphasis*`` and ``**strong**`` keep their meaning.
"""
import re

_LITERAL = re.compile(r"(``.+?``)")
# *word* or **words**: opened after a space or punctuation, closed before one
_EMPHASIS = re.compile(r"(?<![\w\\*])(\*\*?)[^*\s](?:[^*]*?[^*\s])?\1(?=[\s.,;:!?)'\"-]|$)")


def _escape_plain(text):
    """Escape bars and unpaired stars in ``text`` (no literals in it)."""
    pieces, last = [], 0
    for match in _EMPHASIS.finditer(text):
        pieces.append(text[last:match.start()].replace("|", r"\|").replace("*", r"\*"))
        pieces.append(match.group(0).replace("|", r"\|"))
        last = match.end()
    pieces.append(text[last:].replace("|", r"\|").replace("*", r"\*"))
    return "".join(pieces)


def escape_docstring_line(line):
    """One docstring line with its bars and unpaired stars escaped outside ``literals``."""
    return "".join(part if part.startswith("``") else _escape_plain(part) for part in _LITERAL.split(line))


def escape_lines(app, what, name, obj, options, lines):
    lines[:] = [escape_docstring_line(line) for line in lines]


def setup(app):
    app.connect("autodoc-process-docstring", escape_lines)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

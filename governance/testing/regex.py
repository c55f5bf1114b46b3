"""Contract patterns (JSON Schema, so ECMA-262 regular expressions) in the engines' RE2 dialect.

DuckDB (`regexp_matches`) and BigQuery (`REGEXP_CONTAINS`) both use RE2, which searches like ECMA
(`^`/`$` anchor the whole text without the multiline flag). Where the two dialects differ the
translation keeps ECMA's meaning:

- `\\s`/`\\S`: ECMA's white space includes Unicode spaces (NBSP, U+2028, BOM, ...); RE2's is ASCII only,
  so `\\s` becomes an explicit class of ECMA's white space;
- `.`: ECMA excludes every line terminator (\\n, \\r, U+2028, U+2029); RE2 only \\n;
- `\\uXXXX` and `\\u{X}` become RE2's `\\x{XXXX}`; `(?<name>` becomes `(?P<name>`;
- look-around (`(?=`, `(?!`, `(?<=`, `(?<!`) and back-references (`\\1`, `\\k<name>`) have no RE2
  form: such a pattern is reported as an error of its check, never silently weakened.

The pipeline's vectorised check (`pipelines.transforms.rules`) hands the pattern to Arrow's RE2 as
written; for the patterns above the two agree, and the unit tests hold them to it.
"""

from __future__ import annotations

import re

_ECMA_SPACE = r"\t\n\x{0B}\f\r \x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}"
_ECMA_DOT = r"[^\n\r\x{2028}\x{2029}]"
_HEX4 = re.compile(r"[0-9A-Fa-f]{4}")
_BRACED = re.compile(r"\{([0-9A-Fa-f]{1,6})\}")


class UnsupportedPattern(ValueError):
    """An ECMA construct RE2 cannot express; the message names it."""


def re2_pattern(pattern: str) -> str:
    """The RE2 spelling of an ECMA-262 pattern with the same matches (see the module notes)."""
    out: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= len(pattern):
                raise UnsupportedPattern("the pattern ends with a lone backslash")
            nxt = pattern[i + 1]
            i += 2
            if nxt == "s":
                out.append(_ECMA_SPACE if in_class else f"[{_ECMA_SPACE}]")
            elif nxt == "S":
                if in_class:
                    raise UnsupportedPattern(r"`\S` inside a character class has no RE2 form")
                out.append(f"[^{_ECMA_SPACE}]")
            elif nxt == "u":
                braced = _BRACED.match(pattern, i)
                if braced:
                    out.append(r"\x{" + braced.group(1) + "}")
                    i = braced.end()
                elif _HEX4.match(pattern, i):
                    out.append(r"\x{" + pattern[i : i + 4] + "}")
                    i += 4
                else:
                    raise UnsupportedPattern(r"`\u` must be followed by four hex digits")
            elif nxt.isdigit() and nxt != "0":
                raise UnsupportedPattern(f"back-reference `\\{nxt}` has no RE2 form")
            elif nxt == "k" and pattern.startswith("<", i):
                raise UnsupportedPattern(r"named back-reference `\k<...>` has no RE2 form")
            elif nxt == "c":
                raise UnsupportedPattern(r"control escape `\c` is not translated")
            elif nxt == "/":
                out.append("/")
            else:
                out.append("\\" + nxt)
            continue
        if in_class:
            if ch == "]":
                in_class = False
            out.append(ch)
        elif ch == "[":
            if pattern.startswith("[^]", i) or pattern.startswith("[]", i):
                raise UnsupportedPattern("ECMA's empty classes `[]` / `[^]` are not translated")
            in_class = True
            out.append(ch)
            if pattern.startswith("[^", i):
                out.append("^")
                i += 1
        elif ch == ".":
            out.append(_ECMA_DOT)
        elif ch == "(" and pattern.startswith("(?", i):
            rest = pattern[i + 2 : i + 4]
            if rest[:1] in ("=", "!") or rest in ("<=", "<!"):
                raise UnsupportedPattern("look-around assertions have no RE2 form")
            if rest[:1] == "<":
                out.append("(?P<")
                i += 3
                continue
            out.append(ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out)

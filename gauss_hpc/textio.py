"""Users' text files (SMILES lists, CSVs, seed files) read line by line, so that bad bytes cost their own line
only: a line that is not UTF-8 (a binary paste, Latin-1 from an old spreadsheet) or holds a NUL byte comes back
with its bytes written as \\xNN and an `error` that starts with the reject reason `encoding` and names the line,
for the reader to count as a rejected line. Any line ending (LF, CRLF, CR, mixed) and a UTF-8 BOM are accepted."""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

ENCODING = "encoding"          # the reject reason of a line that cannot be read as text


@dataclass(frozen=True)
class Line:
    number: int                # 1-based line number in the file
    text: str                  # the decoded line (undecodable bytes as \xNN), without its line ending
    error: str = ""            # "" or "encoding: line N: ..."


def decode_line(raw: bytes, number: int) -> Line:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Line(number, raw.decode("utf-8", errors="backslashreplace"),
                    f"{ENCODING}: line {number}: byte 0x{raw[exc.start]:02x} at column {exc.start + 1} is not UTF-8")
    if "\x00" in text:
        return Line(number, text.replace("\x00", "\\x00"),
                    f"{ENCODING}: line {number}: NUL byte at column {text.index(chr(0)) + 1}")
    return Line(number, text)


def lines(path: str | Path) -> Iterator[Line]:
    """Every line of a text file, decoded one by one (see the module docstring)."""
    data = Path(path).read_bytes()
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    for number, raw in enumerate(data.splitlines(), 1):
        yield decode_line(raw, number)

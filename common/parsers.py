"""The one JSON parser of the API: hostile input is a 400, never a 500 (E1, issue "security").

DRF's parser turns a `ValueError` into a 400 but lets a `RecursionError` (JSON nested a few
thousand deep) escape as a 500, and its message quotes Python's internals ("use
sys.set_int_max_str_digits()"). This one refuses nesting deeper than MAX_DEPTH and answers
every parse failure with a plain message."""

from __future__ import annotations

import codecs
import json
import logging
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils.json import strict_constant

logger = logging.getLogger("reserve.requests")

# No request of this API nests deeper than a few levels; 32 leaves room and stays far below
# the interpreter's recursion limit.
MAX_DEPTH = 32


def json_depth_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Iterative, so a deep document cannot exhaust the stack here either."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
    return False


def json_loads_safely(raw: bytes | str) -> Any:
    """json.loads for untrusted input: ParseError (400) with a plain message on any failure."""
    try:
        value = json.loads(raw, parse_constant=strict_constant)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep for the decoder
        logger.warning("malformed JSON body", extra={"error": type(exc).__name__})
        raise ParseError("The body is not valid JSON.") from exc
    if json_depth_exceeds(value):
        logger.warning("JSON body nested too deep")
        raise ParseError(f"The body's JSON is nested deeper than {MAX_DEPTH} levels.")
    return value


class SafeJSONParser(JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        encoding = (parser_context or {}).get("encoding") or "utf-8"
        try:
            text = codecs.getreader(encoding)(stream).read()
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError("The body is not valid JSON.") from exc
        return json_loads_safely(text)

"""Byte-level tokenizer: text files -> a flat token file (OLMo/Dolma's format).

Token ids are the UTF-8 bytes (0-255) and EOS = 256 after each document, so the
vocabulary is 257 (the tiny recipe's). The output is a raw little-endian uint16 memmap
like OLMo's `.npy` token files (no header); `olmoctl.train.data.tokens` also reads files with
a numpy header.

    python -m olmoctl.train.data.tokenize TEXT... --out FILE.npy
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from olmoctl.errors import UsageError

EOS = 256


def tokenize_documents(docs: Iterable[str | bytes]) -> np.ndarray:
    """Each document's UTF-8 bytes followed by EOS, concatenated, as uint16."""
    parts: list[np.ndarray] = []
    for doc in docs:
        raw = doc.encode("utf-8") if isinstance(doc, str) else doc
        parts.append(np.frombuffer(raw, dtype=np.uint8).astype(np.uint16))
        parts.append(np.array([EOS], dtype=np.uint16))
    if not parts:
        return np.zeros(0, dtype=np.uint16)
    return np.concatenate(parts)


def write_tokens(tokens: np.ndarray, out: str | os.PathLike[str]) -> Path:
    """Write a raw uint16 token file atomically (temp file, fsync, rename)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(np.ascontiguousarray(tokens, dtype="<u2").tobytes())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)
    return out


def tokenize_files(paths: Iterable[str | os.PathLike[str]], out: str | os.PathLike[str]) -> int:
    """Tokenize text files (one document each) into `out`; returns the token count."""
    docs: list[bytes] = []
    for p in paths:
        try:
            docs.append(Path(p).read_bytes())
        except OSError as e:
            raise UsageError(f"{p}: cannot read: {e.strerror}") from None
    if not docs:
        raise UsageError("no input text files given")
    tokens = tokenize_documents(docs)
    write_tokens(tokens, out)
    return int(tokens.size)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m olmoctl.train.data.tokenize",
        description="Byte-level tokenizer (EOS=256, uint16): text files -> token file.",
    )
    ap.add_argument("texts", nargs="+", help="text files; each one is a document")
    ap.add_argument("--out", required=True, help="output token file (raw uint16, OLMo format)")
    args = ap.parse_args(argv)
    try:
        n = tokenize_files(args.texts, args.out)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    print(f"{n} tokens -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

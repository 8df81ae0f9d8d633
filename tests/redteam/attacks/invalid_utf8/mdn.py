# Attack: output that is not text: invalid UTF-8, NUL bytes, terminal escapes and HTML.
import os
import sys


def fit(x, y, *, seed, max_seconds):
    os.write(1, b"\xff\xfe\xfd invalid \xc3\x28 utf8 \x00\x00 nul \x1b[2J\x1b[31m escape\n")
    sys.stdout.buffer.write(b"<script>alert(1)</script> \xed\xa0\x80 surrogate \x00\n")
    sys.stdout.flush()
    os.write(2, bytes(range(256)))
    raise RuntimeError("binary output done")

"""Reading input files with bounded cost: regular files only, never more than a set number of bytes.

A named pipe would block a read forever and a link to `/dev/zero` never ends; a huge file named `.jpg`
would be held in memory whole. Each is skipped with a reason instead (the build counts it).
"""

import os
import stat

from .errors import SkipImage

DEFAULT_MAX_FILE_BYTES = 256 * 2**20  # far above any real photo; a decompression-bomb guard covers pixels


def read_file(path, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> bytes:
    """The bytes of the regular file at `path`; SkipImage('not-a-file' | 'file-too-large' | 'unreadable').

    >>> read_file("/dev/zero")
    Traceback (most recent call last):
    ...
    ssl4rl_data.errors.SkipImage: not-a-file
    """
    try:
        # O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting for one.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        raise SkipImage("unreadable") from None
    with os.fdopen(descriptor, "rb") as handle:
        try:
            info = os.fstat(descriptor)
            if not stat.S_ISREG(info.st_mode):
                raise SkipImage("not-a-file")
            if info.st_size > max_bytes:
                raise SkipImage("file-too-large")
            want = info.st_size + 1 if info.st_size else max_bytes + 1  # size 0: a file that does not say
            data = handle.read(want)
            if len(data) == want and info.st_size:  # it grew while we read: still never past the limit
                data += handle.read(max(0, max_bytes + 1 - len(data)))
        except OSError:
            raise SkipImage("unreadable") from None
    if len(data) > max_bytes:
        raise SkipImage("file-too-large")
    return data

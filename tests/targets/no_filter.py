"""A stand-in launcher for tests/test_run.py: reports that seccomp refused, as
bpfns/_launch.py does when the filter cannot be installed."""

import os
import socket
import sys

if __name__ == "__main__":
    with socket.socket(fileno=int(sys.argv[1])) as channel:
        channel.sendall(b"E1 Operation not permitted")
    os._exit(126)

"""Loaded at start-up by every Python process the test run starts, notebook kernels and DDP ranks
included (tests/conftest.py puts this folder on PYTHONPATH). With LESSON_NETWORK_OFF=1, a connection
to, or a name lookup of, any host but this machine fails at once: the notebooks run with the network off.
"""

import os

if os.environ.get("LESSON_NETWORK_OFF") == "1":
    import socket

    LOCAL = {"127.0.0.1", "::1", "localhost", "", None}
    _connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def _check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOCAL:
            raise OSError(f"the network is off in the lesson's tests: no connection to {address[0]}")

    def connect(self, address):
        _check(self, address)
        return _connect(self, address)

    def connect_ex(self, address):
        _check(self, address)
        return _connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in LOCAL:
            raise socket.gaierror(f"the network is off in the lesson's tests: no lookup of {host}")
        return _getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo

"""The processes the tests start have no network: the notebooks' nbval runs prove they work offline."""

import json
import os
import subprocess
import sys

PROBE = r"""
import json, socket
results = {}
for name, attempt in {
    "another machine": lambda: socket.create_connection(("192.0.2.1", 80), timeout=5),
    "a name lookup": lambda: socket.getaddrinfo("huggingface.co", 443),
}.items():
    try:
        attempt()
        results[name] = "reached"
    except OSError as err:
        results[name] = str(err)
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
socket.create_connection(server.getsockname(), timeout=5).close()  # this machine stays reachable
results["loopback"] = "reached"
print(json.dumps(results))
"""


def test_the_test_run_turns_the_network_off_for_the_processes_it_starts():
    assert os.environ["LESSON_NETWORK_OFF"] == "1" and "offline" in os.environ["PYTHONPATH"]


def test_a_started_process_cannot_reach_another_machine_but_reaches_this_one():
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    results = json.loads(done.stdout)
    assert results["another machine"].startswith("the network is off in the lesson's tests")
    assert results["a name lookup"].startswith("the network is off in the lesson's tests")
    assert results["loopback"] == "reached"

"""A stand-in for `framepress worker` with the same SIGTERM contract: burns CPU in 50 ms units of
"work" while the file named by STANDIN_LOAD exists; SIGTERM lets the current unit finish, then the
process exits 0. Appends "<pid> <event>" lines to STANDIN_LOG."""
import os
import signal
import sys
import time

load, record = os.environ["STANDIN_LOAD"], os.environ["STANDIN_LOG"]
draining = False


def note(event):
    with open(record, "a") as f:
        f.write(f"{os.getpid()} {event}\n")


def on_term(*_):
    global draining
    draining = True


signal.signal(signal.SIGTERM, on_term)
note("started")
while not draining:
    if os.path.exists(load):
        end = time.monotonic() + 0.05
        while time.monotonic() < end:  # a unit of work is never cut short
            pass
    else:
        time.sleep(0.05)
note("drained")
sys.exit(0)

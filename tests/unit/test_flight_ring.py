"""The flight recorder's ring (probe.flight), in this process: it rotates within its size,
each segment reads on its own, the whole ring reads as one recording, and a failure to write
stops it quietly."""
from __future__ import annotations

import os

from tasktop.probe.flight import SEGMENTS, FlightRecorder
from tasktop.wire.recording import Recording

from test_recording_format import summary


def test_the_ring_rotates_within_its_size(tmp_path):
    flight = FlightRecorder(str(tmp_path), 256 * 1024, 0.0, {"pid": 7, "argv": ["app.py"]})
    for i in range(3000):
        flight.sample(summary(1000.0 + i, groups=20, grow=i), float(i))
    assert flight.error is None and flight.segment > SEGMENTS + 2
    names = sorted(os.listdir(flight.path))
    assert len(names) == SEGMENTS and names[-1] == f"{flight.segment:06d}.ttrec"
    assert sum(os.path.getsize(os.path.join(flight.path, n)) for n in names) <= 256 * 1024 + 4 * 4096
    for name in names:  # each segment is a recording of its own
        assert len(Recording(os.path.join(flight.path, name))) > 0
    rec = Recording(flight.path)
    assert rec.end == 3999.0 and rec.times == sorted(rec.times)
    assert rec.summary(len(rec) - 1)["groups"][0]["count"] == 3 + 2999
    flight.close("exit")
    assert Recording(flight.path).ended == {"reason": "exit"}


def test_a_write_failure_stops_it_quietly(tmp_path):
    flight = FlightRecorder(str(tmp_path), 256 * 1024, 0.0, {"pid": 7})
    flight.sample(summary(1.0, groups=2), 1.0)
    os.close(flight.fd)  # as if the disk went away: the next write fails
    flight.sample(summary(2.0, groups=2), 2.0)
    assert not flight.running and flight.error.startswith("stopped recording: OSError")
    flight.sample(summary(3.0, groups=2), 3.0)  # nothing more, and nothing raised
    flight.close("exit")
    assert flight.status()["error"] == flight.error


def test_an_unusable_directory_stops_it_at_once(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    flight = FlightRecorder(str(blocker), 256 * 1024, 0.0, {"pid": 7})
    assert not flight.running and "stopped recording" in flight.error
    flight.sample(summary(1.0, groups=2), 1.0)

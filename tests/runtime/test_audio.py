"""Speech on the real clip tests/assets/speech_two_utterances.wav (two recorded utterances from Debian's
pocketsphinx-testdata, joined at 2.786 s), and the runtime without a microphone."""

from __future__ import annotations

import io
import wave

import numpy as np
import pytest

from glasses_runtime.audio import (
    AudioFileError,
    AudioUnavailableError,
    MicrophoneSource,
    SpeechListener,
    SpeechSegmenter,
    WavSource,
)
from glasses_runtime.runner import RunConfig, run

JOIN_S = 2.786  # end of goforward.raw, start of something.raw inside the clip


@pytest.fixture(scope="module")
def speech_wav(assets):
    return assets / "speech_two_utterances.wav"


def _rms_speech_s(samples: np.ndarray, level: float = 0.02) -> np.ndarray:
    """Start times (s) of 100 ms windows whose RMS is above `level`: a crude, independent speech reference."""
    n = len(samples) // 1600
    rms = np.sqrt((samples[: n * 1600].reshape(n, 1600) ** 2).mean(axis=1))
    return np.nonzero(rms > level)[0] * 0.1


def test_vad_finds_the_two_utterances(speech_wav):
    wav = WavSource(speech_wav, block=1000)  # blocks that do not line up with the 512-sample windows
    seg = SpeechSegmenter()
    segs = [s for t, b in wav.blocks(t0_ns=0) for s in seg.push(b, t)] + seg.finish()
    assert len(segs) == 2, [(s.start_ns / 1e9, s.end_ns / 1e9) for s in segs]
    a, b = ((s.start_ns / 1e9, s.end_ns / 1e9) for s in segs)
    assert 0.0 <= a[0] < a[1] <= JOIN_S <= b[0] < b[1] <= wav.duration_s  # one segment per recording
    loud = _rms_speech_s(wav.samples)
    for t in loud:  # every clearly loud 100 ms window lies inside a detected segment
        assert any(s - 0.1 <= t <= e for s, e in (a, b)), t
    assert a[1] - a[0] > 1.0 and b[1] - b[0] > 1.0
    assert len(segs[0].audio) >= int((a[1] - a[0] - 0.1) * 16000)


def test_speech_listener_thread_reports_segments(speech_wav):
    got = []
    listener = SpeechListener(WavSource(speech_wav), got.append).start()
    listener.join(60)
    assert listener.error is None and listener.segments == 2 and len(got) == 2


def test_wav_of_the_wrong_format_is_refused(tmp_path):
    p = tmp_path / "8k.wav"
    with wave.open(str(p), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.zeros(800, "<i2").tobytes())
    with pytest.raises(AudioFileError, match="8000 Hz.*16 kHz mono 16-bit PCM"):
        WavSource(p)
    (tmp_path / "x.wav").write_bytes(b"RIFF....nope")
    with pytest.raises(AudioFileError, match="not a readable WAV"):
        WavSource(tmp_path / "x.wav")
    # a 16 kHz file cut in the middle of a sample: one clear line that names the file (#15)
    cut = tmp_path / "cut.wav"
    with wave.open(str(cut), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(1600, "<i2").tobytes())
    cut.write_bytes(cut.read_bytes()[:-1])
    with pytest.raises(AudioFileError, match=r"cut.wav ends in the middle of a sample"):
        WavSource(cut)


@pytest.fixture
def no_microphone(monkeypatch):
    """The device layer of a machine without audio input (as on CI): PortAudio finds no input device."""
    import sounddevice as sd

    def query_devices(device=None, kind=None):
        raise sd.PortAudioError("Error querying device -1")

    monkeypatch.setattr(sd, "query_devices", query_devices)


def test_missing_microphone_is_a_clear_error(no_microphone):
    with pytest.raises(AudioUnavailableError, match="no microphone.*video-only"):
        MicrophoneSource()


def test_run_with_mic_but_no_microphone_goes_video_only(no_microphone, pico_pte, bikes_frames, tmp_path):
    msgs = io.StringIO()
    summary = run(
        RunConfig(
            source=str(bikes_frames), model=pico_pte, memory=tmp_path / "m.db", mic=True, max_frames=12
        ),
        messages=msgs,
    )
    assert summary["frames_processed"] == 12 and summary["stopped_by"] == "max_frames"
    assert msgs.getvalue().count("no microphone") == 1
    assert any("running video-only" in n for n in summary["notes"])
    assert summary["speech_segments"] == 0


def test_run_records_speech_events(pico_pte, bikes_frames, speech_wav, tmp_path):
    from runtime_helpers import stored

    summary = run(
        RunConfig(source=str(bikes_frames), model=pico_pte, memory=tmp_path / "m.db", audio_file=speech_wav),
        messages=io.StringIO(),
    )
    # The listener is stopped when the 50 frames are done; in video mode the file is read unpaced, so both
    # segments are found long before that.
    assert summary["speech_segments"] == 2
    ev = stored(tmp_path / "m.db", "events", summary["memory"]["session_id"])
    assert len(ev) == summary["events"] == summary["memory"]["events_acknowledged"]

"""Audio: microphone / WAV input at 16 kHz mono, Silero VAD, speech segments as timestamped events."""

from glasses_runtime.audio.listener import SpeechListener
from glasses_runtime.audio.sources import (
    AudioFileError,
    AudioUnavailableError,
    MicrophoneConfig,
    MicrophoneSource,
    WavSource,
    open_microphone,
)
from glasses_runtime.audio.vad import (
    SAMPLE_RATE,
    SileroVad,
    SpeechSegment,
    SpeechSegmenter,
    VadConfig,
    VadError,
)

__all__ = [
    "SAMPLE_RATE",
    "AudioFileError",
    "AudioUnavailableError",
    "MicrophoneConfig",
    "MicrophoneSource",
    "SileroVad",
    "SpeechListener",
    "SpeechSegment",
    "SpeechSegmenter",
    "VadConfig",
    "VadError",
    "WavSource",
    "open_microphone",
]

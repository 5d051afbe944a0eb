"""Sound sources: WAV/FLAC/OGG decoding, resampling, folders, .npz, bad files, the cache."""

import numpy as np
import pytest
import soundfile as sf

from selfsup.data import load_source
from selfsup.data.audio import AudioData, resample
from selfsup.errors import DataError


def tone(sr, seconds=0.3, f=440.0, channels=1):
    t = np.arange(int(sr * seconds)) / sr
    x = 0.5 * np.sin(2 * np.pi * f * t)
    return np.stack([x] * channels, 1) if channels > 1 else x


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG"])
def test_wav_flac_ogg_decode_to_mono_at_the_modality_rate(tmp_path, fmt):
    root = tmp_path / "snd"
    for c, f in (("low", 300.0), ("high", 1200.0)):
        (root / c).mkdir(parents=True)
        for i in range(2):
            sf.write(root / c / f"{i}.{fmt.lower()}", tone(22050, 0.2 + 0.1 * i, f, 2), 22050,
                     format=fmt)  # fmt: skip
    s = load_source(str(root))
    d = s.train
    assert isinstance(d, AudioData) and d.sr == 16000 and d.classes == ["high", "low"]
    assert len(d) == 4 and sorted(d.lengths.tolist()) == [3200, 3200, 4800, 4800]
    assert np.isnan(d.x[d.lengths.argmin(), -1])  # the shorter clip is NaN-padded
    peak = np.nanmax(np.abs(d.x))
    assert 0.4 < peak < 0.6  # two equal channels averaged, not summed


def test_resampling_keeps_a_tone_and_removes_what_is_above_nyquist():
    sr_in, sr_out = 22050, 16000
    x = tone(sr_in, 0.5, 440.0)
    y = resample(x, sr_in, sr_out)
    t = np.arange(len(y)) / sr_out
    inner = slice(200, len(y) - 200)
    np.testing.assert_allclose(y[inner], 0.5 * np.sin(2 * np.pi * 440 * t)[inner], atol=2e-3)
    high = resample(tone(44100, 0.5, 12000.0), 44100, 16000)  # above 8 kHz: filtered out
    assert np.abs(high[200:-200]).max() < 0.01
    up = resample(tone(8000, 0.25, 300.0), 8000, 16000)
    assert len(up) == 4000


def test_train_test_folders_and_unlabelled_clips(tmp_path):
    for split in ("train", "test"):
        for c in ("a", "b"):
            (tmp_path / "d" / split / c).mkdir(parents=True)
            sf.write(tmp_path / "d" / split / c / "x.wav", tone(16000), 16000)
    s = load_source(str(tmp_path / "d"))
    assert len(s.train) == 2 and len(s.test) == 2 and s.test.classes == ["a", "b"]
    (tmp_path / "u").mkdir()
    sf.write(tmp_path / "u" / "one.wav", tone(8000), 8000)
    u = load_source(str(tmp_path / "u")).train
    assert u.y is None and u.info["ids"] == ["one.wav"] and u.sr == 16000


def test_npz_with_sr_is_sound_and_without_sr_is_not_claimed(tmp_path, tones_npz):
    d = load_source(str(tones_npz)).train
    assert isinstance(d, AudioData) and d.sr == 16000 and len(d) == 24
    three = tmp_path / "c.npz"
    np.savez(
        three, x=np.random.default_rng(0).standard_normal((4, 2, 800)), sr=8000, y=[0, 1, 0, 1]
    )
    assert load_source(str(three)).train.lengths.tolist() == [1600] * 4
    series = tmp_path / "s.npz"
    np.savez(series, x=np.random.default_rng(0).standard_normal((4, 2, 50)).astype("float32"))
    assert not isinstance(load_source(str(series)).train, AudioData)


def test_a_second_load_comes_from_the_cache(tmp_path):
    (tmp_path / "d").mkdir()
    sf.write(tmp_path / "d" / "a.wav", tone(16000), 16000)
    a = load_source(str(tmp_path / "d")).train
    cached = list((tmp_path / "cache").glob("audio-*.npz"))
    assert len(cached) == 1
    b = load_source(str(tmp_path / "d")).train
    assert np.array_equal(a.x, b.x, equal_nan=True) and b.info["ids"] == ["a.wav"]


@pytest.mark.parametrize("name,needle", [("corrupt", "cannot decode"), ("silent", "silent"),
                                          ("empty", "no samples")])  # fmt: skip
def test_bad_files_are_one_line_or_skipped_and_counted(tmp_path, name, needle):
    root = tmp_path / name
    root.mkdir()
    sf.write(root / "good.wav", tone(16000), 16000)
    if name == "corrupt":
        (root / "bad.wav").write_bytes(b"RIFF\x00\x00not a wave file at all")
    else:
        sf.write(root / "bad.wav", np.zeros(1600 if name == "silent" else 0), 16000)
    with pytest.raises(DataError, match=needle) as e:
        load_source(str(root))
    assert "\n" not in str(e.value) and "bad.wav" in str(e.value)
    with pytest.warns(UserWarning, match="skipped 1"):
        d = load_source(str(root), skip_corrupt=True).train
    assert len(d) == 1 and d.info["skipped"] == 1


def test_a_rate_of_zero_and_bad_npz_arrays_are_one_line(tmp_path):
    p = tmp_path / "z.npz"
    np.savez(p, x=np.ones((2, 100)), sr=0)
    with pytest.raises(DataError, match="sr is 0 Hz"):
        load_source(str(p))
    np.savez(p, x=np.ones((2, 3, 4, 5)), sr=8000)
    with pytest.raises(DataError, match=r"\(N, T\) or \(N, C, T\)"):
        load_source(str(p))
    np.savez(p, x=np.zeros((2, 100)), sr=8000)
    with pytest.raises(DataError, match="silent"):
        load_source(str(p))


def test_spoken_digits_without_espeak_names_the_package(monkeypatch):
    import shutil

    from selfsup.data import spoken_digits

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(DataError, match="apt-get install espeak-ng"):
        spoken_digits.generate()


def _fake_espeak(monkeypatch, spoken_digits):
    """espeak-ng replaced by a tone per word, so generation runs anywhere in a second or two."""
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/espeak-ng")

    def say(exe, text, voice, speed, pitch):
        f = 200 + 40 * spoken_digits.DIGITS.index(text) + pitch
        t = np.arange(int(8000 * 60 / speed)) / 8000
        return np.sin(2 * np.pi * f * t).astype(np.float32), 8000

    monkeypatch.setattr(spoken_digits, "say", say)
    monkeypatch.setattr(spoken_digits, "ACCENTS", ("en-us", "en-gb"))  # 2 x 2 voices, 80 clips
    monkeypatch.setattr(spoken_digits, "VARIANTS", ("m1", "m3"))


def test_spoken_digits_rooms_shares_every_draw_but_the_room(monkeypatch):
    """``spoken_digits:rooms`` adds a room and a microphone to each clip and nothing else: with the
    room taken away it is ``spoken_digits`` exactly (the room has its own random stream)."""
    from selfsup.data import spoken_digits as sd

    _fake_espeak(monkeypatch, sd)
    plain = sd.generate(rooms=False)
    rooms = sd.generate(rooms=True)
    monkeypatch.setattr(sd, "in_room", lambda rng, x: x)
    no_room = sd.generate(rooms=True)
    for k in plain:
        assert np.array_equal(plain[k], no_room[k], equal_nan=plain[k].dtype.kind == "f"), k
    for k in ("train_y", "train_voice", "test_y", "test_voice"):
        assert np.array_equal(plain[k], rooms[k]), k
    tail = rooms["train_lengths"] - plain["train_lengths"]  # the reverberation, 0.2-0.8 s
    assert (tail >= 0.2 * sd.RATE - 1).all() and (tail <= 0.8 * sd.RATE).all()
    assert not np.allclose(plain["train_x"][0, :1000], rooms["train_x"][0, :1000])


def test_in_room_reverberates_and_colours():
    """A click in a room: the direct sound first, then a tail that decays by about 60 dB over the
    reverberation time; the microphone's response is smooth and within +-9 dB."""
    from selfsup.data import spoken_digits as sd

    x = np.zeros(16000)
    x[0] = 1.0
    y = sd.in_room(np.random.default_rng(0), x)
    assert len(y) > len(x)
    e = np.convolve(y**2, np.ones(400), "valid")  # 25 ms energy windows
    assert e[800] < e[0] and e[4000] < e[800]
    spec_db = 20 * np.log10(np.abs(np.fft.rfft(y, 1 << 16)) + 1e-12)
    assert np.isfinite(spec_db).all()


def test_sound_pairs_with_images_in_a_paired_npz(tmp_path):
    from _audio_data import tones

    import selfsup

    x, y, _ = tones(n=24)
    img = np.random.default_rng(0).integers(0, 255, (24, 8, 8)).astype(np.uint8)
    p = tmp_path / "pair.npz"
    np.savez(p, x_a=x, sr_a=8000, x_b=img, y=y)
    d = load_source(str(p)).train
    assert type(d).modality == "paired" and isinstance(d.a, AudioData) and d.a.sr == 16000
    run = selfsup.train(method="clip", data=str(p), epochs=1, batch_size=8, out=str(tmp_path / "r"),
                        overrides=["train.progress=none", "model.width=0.125", "eval.report=false",
                                   "eval.diagnostics=false", "eval.baselines=false"])  # fmt: skip
    assert {"xmodal_r1", "a_linear_top1", "b_linear_top1"} <= set(run.summary["eval"])


def test_sample_rate_and_max_seconds_options(tmp_path):
    (tmp_path / "d").mkdir()
    sf.write(tmp_path / "d" / "a.wav", tone(22050, 1.0), 22050)
    with pytest.warns(UserWarning, match="max-seconds"):
        d = load_source(str(tmp_path / "d"), options={"sample_rate": "8000", "max_seconds": 0.5})
    d = d.train
    assert d.sr == 8000 and d.lengths.tolist() == [4000] and d.info["cut"] == 1
    with pytest.raises(DataError, match="--sample-rate"):
        load_source(str(tmp_path / "d"), options={"sample_rate": "fast"})

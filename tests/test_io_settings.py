"""dsd.ioengine: environment variables and runtime overrides become IoEngine options."""

from __future__ import annotations

import pytest

from dsd import _native
from dsd.ioengine import IoSettings, io_settings, open_engine, pack_read, settings, unpack_completions

pytestmark = pytest.mark.timeout(30)


def test_defaults_and_environment():
    assert settings({}) == IoSettings("auto", 0, 64, False, "auto", "auto")
    env = {"DSD_IO_BACKEND": "POSIX", "DSD_IO_WORKERS": "3", "DSD_IO_QUEUE_DEPTH": "128",
           "DSD_IO_SQPOLL": "1", "DSD_IO_DIRECT": "off", "DSD_IO_REGISTER": "off"}
    assert settings(env) == IoSettings("posix", 3, 128, True, "off", "off")
    assert settings({}).coalesce == "auto" and settings({"DSD_IO_COALESCE": "0"}).coalesce == "off"
    assert settings({"DSD_IO_COALESCE": "1"}).coalesce == "auto"
    assert settings({"DSD_IO_COALESCE": "Bursts"}).coalesce == "bursts"
    assert settings({}).engine_kwargs()["coalesce"] == "halves"
    assert settings({}).engine_kwargs(coalesce_auto="bursts")["coalesce"] == "bursts"
    assert settings({"DSD_IO_COALESCE": "halves"}).engine_kwargs(coalesce_auto="bursts")["coalesce"] == "halves"
    with pytest.raises(ValueError, match="DSD_IO_COALESCE"):
        settings({"DSD_IO_COALESCE": "sometimes"})


@pytest.mark.parametrize("var, value", [
    ("DSD_IO_BACKEND", "spdk"), ("DSD_IO_WORKERS", "-1"), ("DSD_IO_WORKERS", "many"),
    ("DSD_IO_QUEUE_DEPTH", "0"), ("DSD_IO_QUEUE_DEPTH", "5000"), ("DSD_IO_SQPOLL", "maybe"),
    ("DSD_IO_DIRECT", "always"), ("DSD_IO_REGISTER", "yes"), ("DSD_IO_COALESCE", "sometimes"),
    ("DSD_IO_MAPPED", "always"),
])
def test_bad_environment_names_the_variable(var, value):
    with pytest.raises(ValueError, match=var):
        settings({var: value})


def test_runtime_overrides_restore(monkeypatch):
    monkeypatch.setenv("DSD_IO_BACKEND", "uring")
    with io_settings(backend="posix", workers=1) as s:
        assert s.backend == "posix" and settings().workers == 1
        with io_settings(queue_depth=8):
            assert settings() == IoSettings("posix", 1, 8, False, "auto", "auto")
        assert settings().queue_depth == 64
    assert settings().backend == "uring"
    with pytest.raises(TypeError):
        with io_settings(colour="blue"):
            pass
    with pytest.raises(ValueError):
        with io_settings(backend="nope"):
            pass


def test_open_engine_uses_settings(monkeypatch, tmp_path):
    monkeypatch.setenv("DSD_IO_BACKEND", "posix")
    monkeypatch.setenv("DSD_IO_WORKERS", "2")
    with open_engine() as eng:
        assert eng.backend == "posix" and eng.workers == 2 and eng.backend_reason == "requested"
    with open_engine(backend="auto", workers=1) as eng:
        ok, why = _native.io_uring_probe()
        assert eng.backend_reason.startswith("auto")
        if not ok:
            assert eng.backend == "posix"


def test_record_helpers_roundtrip():
    rec = pack_read(1, 2, 3, 4, 5, 6, tag=7)
    assert len(rec) == _native.REQUEST_RECORD_SIZE == 64
    assert _native.COMPLETION_RECORD_SIZE == 32
    (c,) = unpack_completions(bytes(range(32)))
    assert c.request_id == int.from_bytes(bytes(range(8)), "little")
    assert (c.status, c.reason, c.reason_name) == (24, 25, "25")
    (ok,) = unpack_completions(bytes(24) + bytes([0, 2]) + bytes(6))
    assert ok.reason_name == "EOF"


def test_doctor_checks(monkeypatch):
    from dsd.ioengine import doctor_checks

    checks = {name: (ok, detail) for name, ok, detail in doctor_checks()}
    assert checks["io_uring"] == _native.io_uring_probe()
    assert "O_DIRECT on /dev/shm" in checks
    ok, detail = checks["io backend"]
    assert ok and detail.split()[0] in ("uring", "posix")
    monkeypatch.setenv("DSD_IO_BACKEND", "nonsense")
    ok, detail = {n: (o, d) for n, o, d in doctor_checks()}["io backend"]
    assert not ok and "DSD_IO_BACKEND" in detail


def test_doctor_says_whether_the_mapped_read_path_takes_a_cached_read(monkeypatch):
    from dsd.doctor import check_mapped_reads
    from dsd.ioengine import doctor_checks

    check = check_mapped_reads()
    assert check.ok and check.detail.startswith("on:"), check
    assert {n: (o, d) for n, o, d in doctor_checks()}["mapped reads"][0]
    monkeypatch.setenv("DSD_IO_MAPPED", "off")
    check = check_mapped_reads()
    assert check.ok and check.detail.startswith("off"), check
    monkeypatch.setenv("DSD_IO_MAPPED", "sometimes")
    check = check_mapped_reads()
    assert not check.ok and "DSD_IO_MAPPED" in check.detail, check

"""The schedule API's pure parts: content negotiation, ETags, dates and versions, the no-token refusal."""

from __future__ import annotations

from datetime import date

import pytest

from tasks.serve.http import CSV, JSON, PARQUET, TABLE_TYPES, etag_of, negotiate, not_modified
from tasks.serve.store import ApiError, LruCache, parse_day, parse_version

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, JSON),
        ("", JSON),
        ("*/*", JSON),
        ("text/csv", CSV),
        ("text/*", CSV),
        ("application/x-parquet", PARQUET),
        ("text/csv;q=0.5, application/vnd.apache.parquet", PARQUET),
        ("text/html, text/csv;q=0.1", CSV),
        ("application/json;q=0, text/csv;q=0.2", CSV),
        ("TEXT/CSV", CSV),
    ],
)
def test_negotiate(accept: str | None, media: str) -> None:
    assert negotiate(accept, TABLE_TYPES) == media


@pytest.mark.parametrize("accept", ["image/png", "text/html", "application/json;q=0"])
def test_negotiate_refuses(accept: str) -> None:
    with pytest.raises(ApiError) as err:
        negotiate(accept, TABLE_TYPES)
    assert err.value.status == 406
    assert accept in err.value.detail


def test_etags() -> None:
    tag = etag_of("abc", "schedule", "*", JSON)
    assert tag.startswith('"')
    assert tag.endswith('"')
    assert len(tag) == 34
    assert tag != etag_of("abc", "schedule", "*", CSV)
    assert not_modified(tag, tag)
    assert not_modified(f'"other", W/{tag}', tag)
    assert not_modified("*", tag)
    assert not not_modified(None, tag)
    assert not not_modified('"other"', tag)


def test_dates_and_versions() -> None:
    assert parse_day("2026-03-29") == date(2026, 3, 29)
    assert parse_version("latest") == "latest"
    assert parse_version("v=002") == "v=002"
    assert parse_version("7") == "v=007"
    for bad_day in ("2026-3-29", "29.03.2026", "2026-02-30", "x"):
        with pytest.raises(ApiError, match="malformed delivery date") as err:
            parse_day(bad_day)
        assert err.value.status == 422
    for bad_version in ("v2", "v=1", "newest", "-1"):
        with pytest.raises(ApiError, match="malformed version"):
            parse_version(bad_version)


def test_lru_cache_evicts_the_oldest() -> None:
    cache = LruCache(2)
    calls: list[str] = []

    def value(key: str) -> str:
        calls.append(key)
        return key.upper()

    assert cache.get(("a",), lambda: value("a")) == "A"
    cache.get(("b",), lambda: value("b"))
    cache.get(("a",), lambda: value("a"))  # hit, now newest
    cache.get(("c",), lambda: value("c"))  # evicts b
    cache.get(("b",), lambda: value("b"))
    assert calls == ["a", "b", "c", "b"]


def test_the_api_does_not_start_without_a_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tasks.config import get_settings
    from tasks.serve.__main__ import main

    monkeypatch.delenv("DAP_API_TOKENS", raising=False)
    get_settings.cache_clear()
    try:
        assert main([]) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err.strip()
    assert err.startswith("ERROR ConfigError: the schedule API has no bearer token: set DAP_API_TOKENS")
    assert "\n" not in err


def test_tokens_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.config import Settings

    monkeypatch.setenv("DAP_API_TOKENS", " a1, b2 ,,")
    tokens = Settings().api_tokens
    assert [t.get_secret_value() for t in tokens] == ["a1", "b2"]
    assert "a1" not in repr(Settings())

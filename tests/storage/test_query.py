"""The search language parser: what it accepts and the errors bad queries get."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storage import Archive
from storage.search.query import QuerySyntaxError, Term, parse, parse_full


def test_words_phrases_prefixes_exclusions_and_or() -> None:
    parsed = parse('alpha "exact phrase" pre* -beta -"not this" gamma OR delta')
    assert parsed.groups == [
        [Term("alpha")],
        [Term("exact phrase", "phrase")],
        [Term("pre", "prefix")],
        [Term("gamma"), Term("delta")],
    ]
    assert parsed.excluded == [Term("beta"), Term("not this", "phrase")]
    assert parsed.free_text == "alpha exact phrase pre gamma delta"


def test_filters() -> None:
    parsed = parse(
        'role:user role:assistant user:ada session:"s1" kind:document '
        "source:chatgpt after:2025-03 before:2025-04-02 words"
    )
    f = parsed.filters
    assert f.role == ["user", "assistant"] and f.user == ["ada"] and f.session == ["s1"]
    assert f.kind == ["document"] and f.source == ["chatgpt"]
    assert f.after == dt.datetime(2025, 3, 1).astimezone()
    assert f.before == dt.datetime(2025, 4, 2).astimezone()
    assert parsed.groups == [[Term("words")]]


def test_unknown_fields_are_text() -> None:
    parsed = parse("https://example.com at 10:30 foo:bar")
    assert [g[0].text for g in parsed.groups] == ["https://example.com", "at", "10:30", "foo:bar"]


@pytest.mark.parametrize(
    ("query", "message", "position"),
    [
        ('say "hello', 'this " is never closed', 5),
        ("after:yesterday", "after:yesterday is not a date", 1),
        ("before:2025-13-40", "is not a date", 1),
        ("kind:email", "kind:email is not one of message, document, context", 1),
        ("role:", "role: needs a value", 1),
        ("OR cats", "OR needs something before it", 1),
        ("cats OR", "OR needs something after it", 6),
        ("fox OR -dog", "OR cannot be followed by an exclusion", 8),
        ('fox OR -"lazy dog"', "OR cannot be followed by an exclusion", 8),
        ("-dog OR fox", "OR cannot follow an exclusion", 6),
        ("cat -dog OR fox", "OR cannot follow an exclusion", 10),
        ("role:user OR role:assistant fox", "OR joins words or phrases, not filters", 11),
        ("fox OR role:user", "OR joins words or phrases, not filters", 8),
        ("fox role:user OR cat", "OR joins words or phrases, not filters", 15),
        ("-role:user fox", "a filter cannot be excluded (-role:user)", 1),
        ("fox -Kind:document", "a filter cannot be excluded (-Kind:document)", 5),
        ("fox -after:2025", "a filter cannot be excluded", 5),
        ("after:0001 fox", "after:0001 is too far in the past or future to search", 1),
        ("fox before:0001-01-01", "before:0001-01-01 is too far in the past or future", 5),
        ("fox \udcff", "it is not valid UTF-8 (byte 0xFF)", 5),
        ("fox\udcc3\udca9", "it is not valid UTF-8 (byte 0xC3)", 4),
        ('"a \ud83d"', "it is not valid UTF-8 (U+D83D)", 4),
    ],
)
def test_errors_say_what_and_where(query: str, message: str, position: int) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse(query)
    assert message in str(info.value)
    assert f"at character {position}" in str(info.value)
    assert info.value.position == position - 1


def test_or_message_says_how_to_allow_several_values_of_a_filter() -> None:
    with pytest.raises(QuerySyntaxError, match=r"repeat the field \(role:user role:assistant\)"):
        parse("role:user OR role:assistant fox")
    assert parse("role:user role:assistant fox").filters.role == ["user", "assistant"]


@pytest.mark.parametrize("query", ['-"lazy dog"', "--fox", "-fox -dog", "- -fox *"])
def test_a_query_of_only_exclusions_says_what_is_missing(query: str) -> None:
    with pytest.raises(QuerySyntaxError) as info:
        parse(query).check_searchable()
    assert "only excludes words; add a word, a phrase or a filter to search for" in str(info.value)
    assert info.value.query == query


def test_exclusions_with_a_filter_or_a_word_are_searchable() -> None:
    parsed = parse("role:user -fox")
    assert parsed.empty and parsed.filters.role == ["user"]
    assert parsed.excluded == [Term("fox")]
    parsed.check_searchable()
    parse("cat -dog").check_searchable()
    parsed = parse("-fox")
    parsed.filters.role.append("user")  # as a filter given to search() joins it
    parsed.check_searchable()
    parse("- * ** --").check_searchable()  # the search says "nothing to search for"
    # Only the known fields are filters: an unknown one is text, and may be excluded.
    parsed = parse("-foo:bar fox")
    assert parsed.excluded == [Term("foo:bar")] and parsed.groups == [[Term("fox")]]


@pytest.mark.parametrize(
    ("zone", "query"),
    [
        ("UTC", "after:0001 fox"),
        ("UTC", "before:0001-01-01 fox"),
        ("Pacific/Kiritimati", "after:9999-12-31T23:59:59 fox"),
        ("America/New_York", "before:9999-12-31T23:59:59 fox"),  # OverflowError there
    ],
)
def test_dates_at_the_ends_of_the_calendar_are_syntax_errors(
    time_zone: Callable[[str], None], zone: str, query: str
) -> None:
    time_zone(zone)
    with pytest.raises(QuerySyntaxError, match="too far in the past or future to search") as info:
        parse(query)
    assert info.value.position == 0
    # With an offset, the same days are searched as given.
    f = parse("after:0001-01-01T00:00+00:00 before:9999-12-31T23:59:59+00:00 fox").filters
    assert f.after and f.after.year == 1 and f.before and f.before.year == 9999


@pytest.mark.asyncio
async def test_dates_given_to_archive_search_are_checked_the_same(
    time_zone: Callable[[str], None], archive: Archive
) -> None:
    time_zone("UTC")
    with pytest.raises(QuerySyntaxError, match="after:0001 is too far in the past or future"):
        await archive.search("fox", "keyword", after="0001")
    with pytest.raises(QuerySyntaxError, match="before:yesterday is not a date"):
        await archive.search("fox", "keyword", before="yesterday")
    assert (await archive.search("fox", "keyword", after="0002")).total == 0


def test_huge_query_is_refused_quickly() -> None:
    with pytest.raises(QuerySyntaxError, match="10,000 characters long; at most 1,000"):
        parse("word " * 2000)
    with pytest.raises(QuerySyntaxError, match="more than 64 search terms"):
        parse(" ".join(f"w{i}" for i in range(70)))


def test_lone_operators_and_control_characters() -> None:
    assert parse("- * ** --").empty
    parsed = parse("tab\there\x00nul\x1bescape")
    assert [g[0].text for g in parsed.groups] == ["tab", "here", "nul", "escape"]


@given(st.text(max_size=300))
def test_any_text_parses_or_raises_a_syntax_error(text: str) -> None:
    try:
        parsed = parse(text)
    except QuerySyntaxError as exc:
        assert exc.query == text
        return
    for term in parsed.positive_terms + parsed.excluded:
        assert term.text and "\x00" not in term.text


QUERY_PARTS = st.sampled_from(
    [
        "alpha",
        "Beta",
        "x1",
        "é",
        "ü2",
        "_u",
        "a_b",
        "e-mail",
        "-",
        "-neg",
        "*",
        "pre*",
        '"',
        '"two words"',
        "role:user",
        "kind:message",
        "http://x.y",
        "OR",
        "or",
        ":",
        " ",
        "  ",
        "\t",
        "\n",
        "\x01",
        "\x1f",
        "\x7f",
        "\u2028",
        "…",
        "日本",
        "x\udcff",
    ]
)


@settings(max_examples=1000)
@given(st.lists(QUERY_PARTS, max_size=12).map("".join))
def test_the_plain_words_shortcut_parses_as_the_full_parser(query: str) -> None:
    try:
        expected = parse_full(query)
    except QuerySyntaxError as exc:
        with pytest.raises(QuerySyntaxError) as raised:
            parse(query)
        assert str(raised.value) == str(exc)
        return
    assert parse(query) == expected

"""GET /search: indexed, case- and accent-insensitive substring search, every term, titles first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from fixtures.prompts import MakeRow
from fixtures.users import AUser
from logharbor.db.engine import make_engine
from logharbor.prompts.search import MAX_QUERY_CHARS, MAX_TERMS, document, fold, parse_terms
from prompts.prompt_support import (
    BAD_TOKEN,
    PARAMS_INVALID,
    TOKEN_INVALID,
    TOKEN_MISSING,
    assert_error,
)

QUERY_INVALID = "Missing or malformed query string."


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Café CAFÉ cafe", "cafe cafe cafe"),
        ("Ångström Øre Straße", "angstrom øre strasse"),
        ("Αθήνα ΑΘΗΝΑ ΟΔΟΣ", "αθηνα αθηνα οδοσ"),
        ("ПРИВЕТ Ёжик", "привет ежик"),
        ("Tiếng Việt", "tieng viet"),
        ("ﬁle ＦＵＬＬ", "file full"),  # noqa: RUF001
        # Marks that make another letter stay: dakuten, Devanagari vowel signs, Hangul syllables.
        ("がぎ", "がぎ"),
        ("हिन्दी", "हिन्दी"),
        ("한국어", "한국어"),
        ("東京タワー", "東京タワー"),
    ],
)
def test_fold(raw: str, folded: str) -> None:
    assert fold(raw) == folded


def test_parse_terms_splits_on_any_whitespace_and_drops_duplicates() -> None:
    assert parse_terms("  Product\u00a0review\tPRODUCT  ") == ["product", "review"]
    assert parse_terms(" \u0301 ") == []


def test_document_lists_cjk_pairs_per_field() -> None:
    doc = document("東京タワー", "写真 a", ["日本", "x"])
    assert doc["title"] == "東京タワー"
    assert doc["body"] == "写真 a\n日本\nx"
    # Pairs never straddle two fields ("ー写") or a space.
    assert doc["grams"] == " タワ ワー 京タ 写真 日本 東京 "
    assert document("Plain title", "no cjk", [])["grams"] == ""


def _ids(response: Any) -> list[str]:
    assert response.status_code == 200, response.text
    return [prompt["_id"] for prompt in response.json()]


@pytest.fixture
def find(client: TestClient, user: AUser) -> Callable[[str], list[str]]:
    def run(q: str) -> list[str]:
        return _ids(client.get("/search", params={"q": q}, headers=user.headers))

    return run


def test_substring_matching_in_title_content_and_tags(
    user: AUser, make_prompt: MakeRow, find: Callable[[str], list[str]]
) -> None:
    biology = make_prompt(user, title="Explain Photosynthesis", content="For kids")
    mail = make_prompt(user, title="Follow-up", content="Draft polite emails", tags=["Outreach"])
    tagged = make_prompt(user, title="Untitled one", content="Nothing", tags=["Photography"])
    make_prompt(user, title="Model only", content="Nothing", model="photon-1")

    assert find("photo") == [biology["_id"], tagged["_id"]]
    assert find("EMAIL") == [mail["_id"]]
    assert find("outreach") == [mail["_id"]]
    assert find("synthesis kids") == [biology["_id"]]
    # The model is not searched (the SDK docs that do are an outlier).
    assert find("photon") == []
    assert find("zebra") == []


def test_every_term_must_match_somewhere(
    user: AUser, make_prompt: MakeRow, find: Callable[[str], list[str]]
) -> None:
    both = make_prompt(user, title="Product launch", content="Write a review", tags=["retail"])
    make_prompt(user, title="Product launch", content="Write a tweet")
    make_prompt(user, title="Book review", content="Short")
    assert find("product review") == [both["_id"]]
    assert find("product+review".replace("+", " ")) == [both["_id"]]
    assert find("review retail launch") == [both["_id"]]
    assert find("product review missing") == []


def test_title_matches_rank_first_then_insertion_order(
    user: AUser, make_prompt: MakeRow, find: Callable[[str], list[str]]
) -> None:
    content_1 = make_prompt(user, title="First one", content="about travel plans")
    title_1 = make_prompt(user, title="Travel itinerary", content="Plan a trip")
    tag_1 = make_prompt(user, title="Third one", content="Nothing here", tags=["travel"])
    title_2 = make_prompt(user, title="Cheap travel", content="For students")
    both_terms = make_prompt(user, title="Travel plans", content="Both terms in the title")

    assert find("travel") == [
        title_1["_id"],
        title_2["_id"],
        both_terms["_id"],
        content_1["_id"],
        tag_1["_id"],
    ]
    assert find("travel plan") == [both_terms["_id"], title_1["_id"], content_1["_id"]]


def test_accents_and_case_in_any_script(
    user: AUser, make_prompt: MakeRow, find: Callable[[str], list[str]]
) -> None:
    plain = make_prompt(user, title="Cafe menu", content="Coffee")
    upper = make_prompt(user, title="Notes", content="LE CAFÉ DU COIN")
    greek = make_prompt(user, title="Οδηγός για την Αθήνα", content="ταξίδι")  # noqa: RUF001
    russian = make_prompt(user, title="Приветствие", content="Напиши ПИСЬМО клиенту")
    japanese = make_prompt(user, title="翻訳文", content="東京タワーの写真を説明して")
    korean = make_prompt(user, title="번역문", content="한국어 문장을 요약해 주세요")
    hindi = make_prompt(user, title="अनुवाद", content="हिन्दी में लिखें")

    assert find("café") == [plain["_id"], upper["_id"]]
    assert find("CAFE") == [plain["_id"], upper["_id"]]
    assert find("ΑΘΗΝΑ") == [greek["_id"]]
    assert find("αθήνα ΤΑΞΙΔΙ") == [greek["_id"]]
    assert find("письмо") == [russian["_id"]]
    assert find("ПРИВЕТ") == [russian["_id"]]
    assert find("タワー") == [japanese["_id"]]
    assert find("東京") == [japanese["_id"]]
    assert find("写") == [japanese["_id"]]
    assert find("요약") == [korean["_id"]]
    assert find("हिन्दी") == [hindi["_id"]]


def test_two_character_cjk_terms(
    user: AUser, make_prompt: MakeRow, find: Callable[[str], list[str]]
) -> None:
    content = make_prompt(user, title="Photo task", content="写真を説明して", tags=["旅行"])
    title = make_prompt(user, title="写真の翻訳", content="Translate")
    split = make_prompt(user, title="Ends with 写", content="真ん中")
    korean = make_prompt(user, title="요약 작업", content="짧게")

    assert find("写真") == [title["_id"], content["_id"]]
    assert find("旅行") == [content["_id"]]
    assert find("写真 translate") == [title["_id"]]
    assert find("写真 説明 photo") == [content["_id"]]
    # A pair split between the title and the content is not a match.
    assert find("写真") == [title["_id"], content["_id"]]
    assert find("真ん") == [split["_id"]]
    assert find("요약 짧게") == [korean["_id"]]
    # One-character terms: "写" is in the split prompt's title, so it ranks above "content".
    assert find("写 真") == [title["_id"], split["_id"], content["_id"]]


def test_short_terms_and_mixed_lengths(
    user: AUser, make_prompt: MakeRow, find: Callable[[str], list[str]]
) -> None:
    ai = make_prompt(user, title="AI ethics", content="Discuss")
    go = make_prompt(user, title="Go routines", content="Describe channels in Go")
    assert find("ai") == [ai["_id"]]
    assert find("a") == [ai["_id"], go["_id"]]
    assert find("go channels") == [go["_id"]]
    assert find("ai channels") == []


def test_special_characters_match_literally(
    user: AUser, make_prompt: MakeRow, find: Callable[[str], list[str]]
) -> None:
    percent = make_prompt(user, title="Discount", content="Save 50% today")
    under = make_prompt(user, title="Snake", content="use snake_case names")
    quoted = make_prompt(user, title="Quote", content='Say "hello" (politely) - or *not* OR AND')
    plain = make_prompt(user, title="Plain", content="save 500 today, snakeXcase")

    assert find("%") == [percent["_id"]]
    assert find("50%") == [percent["_id"]]
    assert find("_") == [under["_id"]]
    assert find("snake_case") == [under["_id"]]
    assert find('"hello"') == [quoted["_id"]]
    assert find('"') == [quoted["_id"]]
    assert find("(politely)") == [quoted["_id"]]
    assert find("*not*") == [quoted["_id"]]
    assert find("-") == [quoted["_id"]]
    assert find("OR") == [quoted["_id"]]
    assert find("AND") == [quoted["_id"]]
    for nasty in ('"unbalanced', "NEAR(a b)", "a*", "^start", "col:value", "\\", "''", "%%", "(("):
        assert find(nasty) == [], nasty
    assert find("save today") == [percent["_id"], plain["_id"]]


def test_only_the_callers_prompts_are_searched(
    client: TestClient, make_user: Callable[..., AUser], make_prompt: MakeRow
) -> None:
    alice, bob = make_user(), make_user()
    mine = make_prompt(alice, title="Shared words here")
    make_prompt(bob, title="Shared words here")
    response = client.get("/search?q=shared", headers=alice.headers)
    assert _ids(response) == [mine["_id"]]
    assert response.json() == [mine]


def test_the_index_follows_edits_and_deletes(
    client: TestClient, user: AUser, make_prompt: MakeRow, find: Callable[[str], list[str]]
) -> None:
    prompt = make_prompt(user, title="Old title", content="Old text", tags=["oldtag"])
    url = f"/prompts/{prompt['_id']}"
    client.patch(url, json={"title": "Fresh title", "tags": ["newtag"]}, headers=user.headers)
    assert find("old") == [prompt["_id"]]  # still in the content
    assert find("oldtag") == []
    assert find("fresh newtag") == [prompt["_id"]]
    client.patch(url, json={"content": "Nothing left"}, headers=user.headers)
    assert find("old") == []
    client.delete(url, headers=user.headers)
    assert find("fresh") == []


def test_search_pages_when_asked(client: TestClient, user: AUser, make_prompt: MakeRow) -> None:
    made = [make_prompt(user, title=f"Report {i}") for i in range(5)]
    response = client.get("/search?q=report&page=2&pageLimit=2", headers=user.headers)
    assert response.json() == {
        "data": made[2:4],
        "meta": {"page": 2, "pageLimit": 2, "totalItems": 5},
    }
    assert_error(client.get("/search?q=report&page=0", headers=user.headers), 400, PARAMS_INVALID)


def test_search_errors(client: TestClient, user: AUser) -> None:
    for query in ("", "?q=", "?q=%20%20", "?q=%CC%81", "?q=a%00b", "?q=a&q=b"):
        response = client.get(f"/search{query}", headers=user.headers)
        expected = PARAMS_INVALID if "&q=" in query else QUERY_INVALID
        assert_error(response, 400, expected)
    too_many = " ".join(f"term{i}" for i in range(MAX_TERMS + 1))
    assert_error(
        client.get("/search", params={"q": too_many}, headers=user.headers), 400, QUERY_INVALID
    )
    too_long = "x" * (MAX_QUERY_CHARS + 1)
    assert_error(
        client.get("/search", params={"q": too_long}, headers=user.headers), 400, QUERY_INVALID
    )
    assert client.get("/search", params={"q": too_long[1:]}, headers=user.headers).json() == []
    enough = " ".join(f"term{i}" for i in range(MAX_TERMS))
    assert client.get("/search", params={"q": enough}, headers=user.headers).json() == []
    assert_error(client.get("/search?q=a&limit=3", headers=user.headers), 400, PARAMS_INVALID)
    assert_error(client.get("/search?q=a"), 401, TOKEN_MISSING)
    assert_error(client.get("/search?q=a", headers=BAD_TOKEN), 401, TOKEN_INVALID)


def test_search_is_served_by_an_index(
    database_url: str, user: AUser, make_prompt: MakeRow, find: Callable[[str], list[str]]
) -> None:
    prompt = make_prompt(user, title="Indexed prompt", content="searchable words")
    assert find("searchable") == [prompt["_id"]]
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                # The FTS5 index agrees with its content table, and MATCH goes through it.
                conn.execute(
                    text(
                        "INSERT INTO prompt_search_fts(prompt_search_fts) "
                        "VALUES ('integrity-check')"
                    )
                )
                plan = conn.execute(
                    text(
                        "EXPLAIN QUERY PLAN SELECT rowid FROM prompt_search_fts "
                        "WHERE prompt_search_fts MATCH '\"searchable\"'"
                    )
                ).all()
                assert any("VIRTUAL TABLE INDEX" in str(row) for row in plan)
            else:
                indexes = conn.execute(
                    text("SELECT indexdef FROM pg_indexes WHERE tablename = 'prompt_search'")
                ).scalars()
                trigram = [d for d in indexes if "gin_trgm_ops" in d]
                assert len(trigram) == 3, trigram
                conn.execute(text("SET enable_seqscan = off"))
                plan = conn.execute(
                    text("EXPLAIN SELECT id FROM prompt_search WHERE body LIKE '%searchable%'")
                ).scalars()
                assert any("ix_prompt_search_trgm_body" in line for line in plan)
                pair = conn.execute(
                    text("EXPLAIN SELECT id FROM prompt_search WHERE grams LIKE '% 写真 %'")
                ).scalars()
                assert any("ix_prompt_search_trgm_grams" in line for line in pair)
    finally:
        engine.dispose()

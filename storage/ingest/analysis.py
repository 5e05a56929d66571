"""Document analysis: counts, reading time, a language guess, keywords and a title.

The language is guessed from the writing system, then, for Latin script, from the most
frequent function words of a few languages: light, offline and good enough to filter on.
Keywords are the most frequent words that are not function words (a fixed list).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

from storage.ingest.chunking import WORD_RE

WORDS_PER_MINUTE = 230
CJK_CHARS_PER_MINUTE = 500
TOP_KEYWORDS = 10
MIN_KEYWORD_LENGTH = 3
SAMPLE_CHARS = 20_000  # enough text to judge the language of a document
MAX_TITLE_CHARS = 120

_STOPWORDS = {
    "en": "the of and to in a is that for it as was with be by on not he i this are or his "
    "from at which but have an they you were her she there one all we their has been if "
    "would will can more when no out so what up its about into than them only other may "
    "these do could our any also some such then after should most over how where had him "
    "said who did very just like",
    "fr": "le la les de des du et un une est que qui dans en pour pas sur au aux ce il elle "
    "par plus sont avec ne se son sa ses ou mais nous vous leur",
    "de": "der die das und ist nicht ein eine zu den von mit sich des auf für im dem als auch "
    "es an er so dass wie wird bei oder aus sind noch nach",
    "es": "el la los las de del y que en un una es por con para no se su al lo como más pero "
    "sus le ya o fue este ha",
    "it": "il di che la e le un una per non sono del della in con si da al gli è come anche "
    "ma più nel alla dei",
    "pt": "o a os as de do da dos das e que em um uma para com não se por mais no na ao é "
    "como mas foi",
    "nl": "de het een en van in is dat op te zijn met voor niet aan er die maar om ook als "
    "bij of door",
}
_STOPWORD_SETS = {lang: frozenset(words.split()) for lang, words in _STOPWORDS.items()}
_ALL_STOPWORDS = frozenset().union(*_STOPWORD_SETS.values())
_CJK_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_LATIN_WORD_RE = re.compile(r"[^\W\d_]+")
# Scripts that name their language well enough, as character classes.
_SCRIPTS = {
    "ru": re.compile(r"[\u0400-\u04ff]"),
    "el": re.compile(r"[\u0370-\u03ff]"),
    "he": re.compile(r"[\u0590-\u05ff]"),
    "ar": re.compile(r"[\u0600-\u06ff]"),
    "hi": re.compile(r"[\u0900-\u097f]"),
    "th": re.compile(r"[\u0e00-\u0e7f]"),
    "ja": re.compile(r"[\u3040-\u30ff]"),  # kana
    "zh": re.compile(r"[\u4e00-\u9fff]"),  # Han: Chinese, unless kana says Japanese
    "ko": re.compile(r"[\uac00-\ud7af]"),
}
_LATIN_RE = re.compile(r"[A-Za-z\u00c0-\u024f]")


def count_words(text: str) -> int:
    return sum(1 for _ in WORD_RE.finditer(text))


def detect_language(text: str) -> str:
    """An ISO 639-1 code, or "und" when there is too little text to tell."""
    sample = text[:SAMPLE_CHARS]
    scripts = Counter({lang: len(pattern.findall(sample)) for lang, pattern in _SCRIPTS.items()})
    latin = len(_LATIN_RE.findall(sample))
    lang, count = scripts.most_common(1)[0]
    if count > latin:
        if lang == "zh" and scripts["ja"] > 0.05 * count:
            return "ja"
        return lang
    words = [w.lower() for w in _LATIN_WORD_RE.findall(sample)]
    if len(words) < 3:
        return "und"
    scores = {
        lang: sum(1 for w in words if w in stopwords) for lang, stopwords in _STOPWORD_SETS.items()
    }
    best = max(scores, key=lambda lang: scores[lang])
    return best if scores[best] else "und"


def keywords(text: str, top: int = TOP_KEYWORDS) -> list[str]:
    counts = Counter(
        w
        for w in (m.lower() for m in _LATIN_WORD_RE.findall(text))
        if len(w) >= MIN_KEYWORD_LENGTH and w not in _ALL_STOPWORDS
    )
    return [word for word, _ in counts.most_common(top)]


def fallback_title(text: str) -> str | None:
    """The first non-empty line, shortened: the title most documents show first."""
    for line in text.split("\n", 50)[:50]:
        line = " ".join(line.split())
        if len(line) >= 3:
            return line if len(line) <= MAX_TITLE_CHARS else line[: MAX_TITLE_CHARS - 1] + "…"
    return None


def analyse(text: str, pages: int | None, title: str | None) -> dict[str, Any]:
    words = count_words(text)
    cjk = len(_CJK_RE.findall(text))
    minutes = (words - cjk) / WORDS_PER_MINUTE + cjk / CJK_CHARS_PER_MINUTE
    return {
        "pages": pages,
        "words": words,
        "characters": len(text),
        "reading_time_minutes": math.ceil(minutes * 10) / 10,
        "language": detect_language(text),
        "keywords": keywords(text),
        "title": title,
    }

"""The text side of search, without the database: normalising a query, splitting it into words,
expanding it with the team's synonyms, and pg_trgm's trigram measures in Python (the SQLite
fallback's matcher and, on both databases, the spelling correction of the `corrected` answer).

pg_trgm's rules, mirrored here: a word is a run of letters and digits, lower-cased, padded with
two spaces before and one after; its trigrams are the set of its 3-character windows; the
similarity of two words is the number of trigrams they share over the number in either
(pg_trgm's `similarity`: "sneekers" and "sneakers" share 6 of 12, 0.5).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

WORD = re.compile(r"\w+", re.UNICODE)
MAX_WORDS = 8  # of a query; the rest is ignored (a sentence is not a product search)
MAX_VARIANTS = 6  # the query itself and up to five rewrites by synonyms
# A typo: a query word of TYPO_MIN_LENGTH+ letters that is no catalog word, one edit (a letter
# wrong, missing, extra, or two swapped) from a catalog word, with a trigram similarity of at
# least TYPO_THRESHOLD ("sneekers"/"sneakers" 0.5, "jaket"/"jacket" 0.44, "sneakres"/"sneakers"
# 0.38; "coat"/"cost" 0.25 is refused). Shorter words have too many neighbours ("hat", "cat").
TYPO_MIN_LENGTH = 4
TYPO_THRESHOLD = 0.3
TYPO_FACTOR = 0.85  # a typo's match counts for its similarity times this
EXACT, PREFIX = 1.0, 0.9  # a word as typed; the start of a word
MAX_CORRECTIONS = 3  # catalog words a typo may stand for, the nearest first


def normalise(text: str) -> str:
    """Lower case, single spaces, trimmed: how queries, terms and alternatives are compared."""
    return " ".join(text.lower().split())


def words(text: str) -> list[str]:
    """The query's words as pg_trgm and the `simple` text search configuration see them."""
    return WORD.findall(text.lower())[:MAX_WORDS]


@lru_cache(maxsize=4096)
def trigrams(word: str) -> frozenset[str]:
    padded = f"  {word} "
    return frozenset(padded[i : i + 3] for i in range(len(padded) - 2))


def similarity(a: str, b: str) -> float:
    """pg_trgm's similarity of two words (0..1)."""
    mine, theirs = trigrams(a), trigrams(b)
    union = len(mine | theirs)
    return len(mine & theirs) / union if union else 0.0


def typo_keys(word: str) -> set[str]:
    """The word and its one-letter deletions: two words within one edit share one of these
    (SymSpell's deletion neighbourhood)."""
    return {word} | {word[:i] + word[i + 1 :] for i in range(len(word))}


def typo_of(query_word: str, word: str) -> float:
    """The similarity of `word` if `query_word` may be a typo of it, else 0."""
    if len(query_word) < TYPO_MIN_LENGTH or len(word) < TYPO_MIN_LENGTH or query_word == word:
        return 0.0
    if not typo_keys(query_word) & typo_keys(word):
        return 0.0
    near = similarity(query_word, word)
    return near if near >= TYPO_THRESHOLD else 0.0


def word_score(query_word: str, text_words: Iterable[str], *, typos: bool = True) -> float:
    """How well one query word matches a product's words: 1 for the word itself, 0.9 for the
    start of a word ("snea" → "sneakers"), else 0.85 x the similarity of a word it may be a
    typo of (when `typos`), else 0."""
    best = 0.0
    for word in text_words:
        if word == query_word:
            return EXACT
        if word.startswith(query_word) and len(query_word) >= 2:
            best = max(best, PREFIX)
        elif typos and (near := typo_of(query_word, word)):
            best = max(best, near * TYPO_FACTOR)  # below a prefix: a guess, not what was typed
    return best


def text_score(query_words: list[str], text: str, *, known: frozenset[str] = frozenset()) -> float:
    """A product text's relevance to a query: every word must match (0 otherwise); the mean of
    the words' scores. Words in `known` (found as typed in the catalog) are not taken as typos."""
    if not query_words:
        return 0.0
    text_words = words_all(text)
    total = 0.0
    for query_word in query_words:
        score = word_score(query_word, text_words, typos=query_word not in known)
        if score == 0.0:
            return 0.0
        total += score
    return total / len(query_words)


def words_all(text: str) -> list[str]:
    return WORD.findall(text.lower())


def variants(query: str, synonyms: Mapping[str, list[str]]) -> list[str]:
    """The query, then the query with a synonym's term (a word or a run of words) replaced by
    each of its alternatives, at most MAX_VARIANTS in all. `synonyms` maps normalised terms to
    their alternatives."""
    base = " ".join(words(query))
    found = [base] if base else []
    if not synonyms or not base:
        return found
    padded = f" {base} "
    for term, alternatives in synonyms.items():
        key = " ".join(words(term))
        if not key or f" {key} " not in padded:
            continue
        for alternative in alternatives:
            rewritten = " ".join(words(padded.replace(f" {key} ", f" {alternative} ", 1)))
            if rewritten and rewritten not in found:
                found.append(rewritten)
            if len(found) >= MAX_VARIANTS:
                return found
    return found


def correction(query_words: list[str], texts: Iterable[str]) -> str | None:
    """The query as the found products spell it ("sneekers" → "sneakers"), or None when every
    word was found as typed (as a word or the start of one). Read off the products found, so it
    never suggests a word the catalog lacks."""
    vocabulary: set[str] = set()
    for text in texts:
        vocabulary.update(words_all(text))
    if not vocabulary or not query_words:
        return None
    corrected, changed = [], False
    for query_word in query_words:
        if any(word.startswith(query_word) for word in vocabulary):
            corrected.append(query_word)
            continue
        best = max(vocabulary, key=lambda word: (typo_of(query_word, word), -len(word)))
        if typo_of(query_word, best):
            corrected.append(best)
            changed = True
        else:
            corrected.append(query_word)
    return " ".join(corrected) if changed else None

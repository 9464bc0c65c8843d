"""Who a bank charge paid: the payee text a bank writes, reduced to the merchant's name, and a
finder of those names as whole words in other text (task files, audit targets)."""
from __future__ import annotations

import re
from typing import Iterator

# Words a bank writes around a merchant's name, never the name itself.
NOISE = frozenset("""
card payment purchase pos dd direct debit sepa lastschrift sammellastschrift kartenzahlung bg giro credit
transfer to from ref reference online recurring subscription visa mastercard maestro amex contactless
paypal pp sq sumup zettle izettle stripe www com net org io co inc ltd llc gmbh plc limited corp the de fp so
standing order ach via on at
""".split())
COUNTRY = frozenset("gb uk us usa ca de fr nl ie au es it se ch at be dk no fi pl pt lu nz sg".split())
_SPLIT = re.compile(r"[^\w&+']+")
# Every digit as 0: payees that differ only in numbers (dates, card and store numbers) read the same,
# so a bank's 70,000 distinct card lines come down to a few hundred texts to name.
DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")


def merchant_key(payee: str) -> str:
    """The merchant a payee text names, as up to two words: 'CANVA* 1234 SYDNEY AU' → 'canva sydney',
    '4521 12MAR26 , ADOBE SYSTEMS 123 , LONDON GB' → 'adobe systems', 'PAYPAL *SPOTIFY' → 'spotify'.
    Words with digits (references, dates, numbers) and the bank's own words are left out; the first
    comma-separated part that names something is the merchant."""
    for segment in payee.lower().split(","):
        words: list[str] = []
        for word in _SPLIT.split(segment.replace("_", " ")):
            word = word.strip("'&+")
            if len(word) < 2 or word in NOISE or any(c.isdigit() for c in word) or (words and word in COUNTRY):
                continue
            words.append(word)
            if len(words) == 2:
                break
        if words:
            return " ".join(words)
    return ""


def _alnum(ch: str) -> bool:
    return ch.isalnum()


class Words:
    """Names to look for as whole words (not 'canva' inside 'canvas') in lower-case text, with
    ``str.find``: a scan in C per name, far cheaper than one regex of many alternatives."""

    def __init__(self, words: dict[str, str]) -> None:
        self.words = {name: word.lower() for name, word in words.items() if word}

    def __bool__(self) -> bool:
        return bool(self.words)

    def at(self, text: str, word: str) -> Iterator[int]:
        """Where ``word`` starts as a whole word in ``text``."""
        size, start = len(word), text.find(word)
        while start != -1:
            end = start + size
            if (start == 0 or not _alnum(text[start - 1])) and (end == len(text) or not _alnum(text[end])):
                yield start
            start = text.find(word, start + 1)

    def found(self, text: str, among: set[str] | None = None) -> list[str]:
        """The names (of ``among``, default all) whose word is in ``text``."""
        return [name for name, word in self.words.items()
                if (among is None or name in among) and word in text and next(self.at(text, word), None) is not None]

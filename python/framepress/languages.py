"""Language tags for manifests: HLS LANGUAGE (RFC 8216) and DASH @lang want BCP 47 (RFC 5646),
where a language with a two-letter ISO 639-1 code must use it; sources tag streams with ISO 639-2
(three letters, as MP4 and Matroska store them). Tags outside this table go through as they are
(three-letter codes of languages without a two-letter one are valid BCP 47)."""
from __future__ import annotations

_TWO_LETTER = {
    "ara": "ar", "ben": "bn", "bul": "bg", "cat": "ca", "ces": "cs", "cze": "cs", "dan": "da", "deu": "de",
    "ger": "de", "ell": "el", "gre": "el", "eng": "en", "spa": "es", "est": "et", "eus": "eu", "baq": "eu",
    "fas": "fa", "per": "fa", "fin": "fi", "fra": "fr", "fre": "fr", "gle": "ga", "glg": "gl", "heb": "he",
    "hin": "hi", "hrv": "hr", "hun": "hu", "ind": "id", "isl": "is", "ice": "is", "ita": "it", "jpn": "ja",
    "kor": "ko", "lit": "lt", "lav": "lv", "msa": "ms", "may": "ms", "nld": "nl", "dut": "nl", "nor": "no",
    "nob": "nb", "nno": "nn", "pol": "pl", "por": "pt", "ron": "ro", "rum": "ro", "rus": "ru", "slk": "sk",
    "slo": "sk", "slv": "sl", "srp": "sr", "swe": "sv", "tam": "ta", "tel": "te", "tha": "th", "tur": "tr",
    "ukr": "uk", "urd": "ur", "vie": "vi", "zho": "zh", "chi": "zh", "cym": "cy", "wel": "cy",
}


def bcp47(tag: str) -> str:
    """'eng' -> 'en'; '' and 'und' stay as they are."""
    return _TWO_LETTER.get(tag.lower(), tag)

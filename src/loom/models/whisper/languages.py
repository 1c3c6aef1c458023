"""Whisper's languages and tasks, shared by the tokenizer and `generate`. No torch import.

The order of `LANGUAGES` is the order of the language tokens in the vocabulary: the token of
the i-th language is `<|startoftranscript|>` + 1 + i (the table of OpenAI's whisper package).
"""

from __future__ import annotations

from ...errors import InputError

_TABLE = (
    "en:english zh:chinese de:german es:spanish ru:russian ko:korean fr:french ja:japanese pt:portuguese "
    "tr:turkish pl:polish ca:catalan nl:dutch ar:arabic sv:swedish it:italian id:indonesian hi:hindi "
    "fi:finnish vi:vietnamese he:hebrew uk:ukrainian el:greek ms:malay cs:czech ro:romanian da:danish "
    "hu:hungarian ta:tamil no:norwegian th:thai ur:urdu hr:croatian bg:bulgarian lt:lithuanian la:latin "
    "mi:maori ml:malayalam cy:welsh sk:slovak te:telugu fa:persian lv:latvian bn:bengali sr:serbian "
    "az:azerbaijani sl:slovenian kn:kannada et:estonian mk:macedonian br:breton eu:basque is:icelandic "
    "hy:armenian ne:nepali mn:mongolian bs:bosnian kk:kazakh sq:albanian sw:swahili gl:galician mr:marathi "
    "pa:punjabi si:sinhala km:khmer sn:shona yo:yoruba so:somali af:afrikaans oc:occitan ka:georgian "
    "be:belarusian tg:tajik sd:sindhi gu:gujarati am:amharic yi:yiddish lo:lao uz:uzbek fo:faroese "
    "ht:haitian_creole ps:pashto tk:turkmen nn:nynorsk mt:maltese sa:sanskrit lb:luxembourgish my:myanmar "
    "bo:tibetan tl:tagalog mg:malagasy as:assamese tt:tatar haw:hawaiian ln:lingala ha:hausa ba:bashkir "
    "jw:javanese su:sundanese yue:cantonese"
)
# code -> English name, in vocabulary order
LANGUAGES: dict[str, str] = {
    code: name.replace("_", " ") for code, name in (item.split(":") for item in _TABLE.split())
}
# English name (and a few aliases) -> code
TO_LANGUAGE_CODE: dict[str, str] = {
    **{name: code for code, name in LANGUAGES.items()},
    "burmese": "my", "valencian": "ca", "flemish": "nl", "haitian": "ht", "letzeburgesch": "lb",
    "pushto": "ps", "panjabi": "pa", "moldavian": "ro", "moldovan": "ro", "sinhalese": "si",
    "castilian": "es", "mandarin": "zh",
}
TASKS = ("translate", "transcribe")


def language_code(language: str) -> str:
    """"French", "fr" or "<|fr|>" -> "fr"; anything else raises InputError listing the valid names."""
    if not isinstance(language, str):
        raise InputError(f"language must be a string such as 'en' or 'english', found {language!r}")
    key = language.lower()
    if key.startswith("<|") and key.endswith("|>"):
        key = key[2:-2]
    if key in TO_LANGUAGE_CODE:
        return TO_LANGUAGE_CODE[key]
    if key in LANGUAGES:
        return key
    valid = list(LANGUAGES) if len(key) <= 3 else list(TO_LANGUAGE_CODE)
    raise InputError(f"unsupported language {language!r}; it must be one of {valid}")


def check_task(task: str) -> str:
    if task not in TASKS:
        raise InputError(f"unsupported task {task!r}; it must be one of {list(TASKS)}")
    return task


__all__ = ["LANGUAGES", "TO_LANGUAGE_CODE", "TASKS", "language_code", "check_task"]

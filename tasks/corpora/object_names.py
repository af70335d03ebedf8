"""Object names: read from Tux Paint stamp captions and clip-art titles, written with articles, found in captions.

- Stamps (`stamp_name`): the first line of a stamp's `.txt` is an English caption ("An owl.", "A ripe, red
  tomato!", "Mercury—the planet closest to the Sun."). Its first clause is cut at a dash, a parenthesis, a
  sentence break or an aside after a comma; the article is kept ("a", "an", "the", "some", or none: "Santa
  Claus"); a phrase longer than `MAX_NAME_WORDS` words, or with digits, symbols or `STAMP_REJECT_WORDS`
  (sentences: "Remember to flush...", scenes: "A spider playing soccer"), is not a name.
- Clip art (`clipart_title_name`, `clipart_stem_name`): the title of the drawing if, cleaned (author prefix,
  parentheses, trailing numbers and `GENERIC_WORDS` gone; `TRANSLATIONS` of the Italian and French words
  applied), every word is English by `wordfreq` (more frequent in English than in Italian, French or Spanish,
  less `OTHER_LANGUAGE_MARGIN`) and no word is a person's first name; else the English words that begin its
  file name ("flying_wasp_gerald_g._02"), ending on a known noun (`noun_vocabulary`: the ImageNet class names
  shipped with timm plus the names already read), since authors' names follow the object's in file names.
- Matching (`object_named`): a caption names an object when the object's words appear in it in order, each
  word compared in its singular form ("two owls" names "owl"; "garbage trucks" names "garbage truck").
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

from tasks.corpora.english import indefinite_article

MAX_NAME_WORDS = 4
MAX_STEM_WORDS = 2  # of a name read from a clip-art file name
ARTICLES = ("a", "an", "the", "some")
STAMP_REJECT_WORDS = {  # sentences and scenes, not names: "this shell is...", "a spider playing soccer"
    "this", "it", "its", "it's", "we", "you", "your", "me", "is", "are", "with", "and", "playing", "dancing",
    "making", "tux", "george", "edward", "eddie", "another", "two", "couple", "empty", "at", "down", "enter",
    "remember", "eat", "say", "boom", "carry", "carries", "means", "appooppan",
}
CLIPART_AUTHOR_PREFIX = re.compile(r"^clip ?art by [^-]+ - ", re.I)  # such a title names the author's template
TEMPLATE_TITLES = {"", "etiquette icons", "r16 sibmission", "various cliparts", "people", "homes clipart"}
SKIPPED_TITLES = {"svg road signs", "road signs", "aiga_symbol_signs"}  # signs, not objects
GENERIC_WORDS = {  # dropped from a name when something is left: "Simple Evergreen" -> "evergreen"
    "simple", "cartoon", "generic", "stylized", "stylised", "clipart", "icon", "symbol", "drawing", "image",
    "picture", "illustration", "clip", "art", "bw", "bn", "svg", "png", "line", "lineart", "new", "nice",
    "basic", "plain", "shiny", "glossy", "contour", "md", "aj", "v", "rpswb", "sketch", "one", "another", "yet",
    "outline", "silhouette", "silhouet", "profile", "a", "an", "the", "my", "b", "w",
}
CLIPART_REJECT_WORDS = {  # a name with any of these is not an object name
    "theme", "collection", "various", "example", "template", "logo", "button", "pattern", "diagram", "set",
    "icons", "iconset", "tux", "gnome", "debian", "linux", "openclipart", "inkscape", "architetto", "rollandin",
    "francesco", "nicu", "etiquette", "blueprint", "revisited", "sibmission", "submission", "version", "test",
    "our", "your", "in", "with", "without", "and", "or", "on", "at", "for", "by", "from", "to", "is", "are",
    "not", "no", "front", "back", "side", "view", "left", "right", "top", "bottom", "upper", "lower", "corner",
    "part", "vector", "cliparts", "stuff", "thing", "things", "objects", "object", "misc", "remix", "edit",
    "edited", "style", "styled", "pack", "mini", "fs", "dev", "ii", "iii", "iv", "jr", "what", "what's",
    "two", "three", "four", "five", "six", "einstein", "beethoven", "bach", "handel", "beckham", "coltrane",
    "bambi", "pacman", "tetris", "pong", "psycho", "sexy", "stripper", "pimp", "cannabis", "wmd", "ppl", "as",
    "shi", "ken",
}
NOT_HEAD_WORDS = {  # a name ending in one of these lacks its noun: "a wooden", "a little"
    "black", "blue", "white", "green", "yellow", "red", "orange", "purple", "pink", "brown", "grey", "gray",
    "wooden", "little", "double", "big", "small", "old", "happy", "crazy", "incredible", "soft", "flying",
    "sleeping", "open", "closed", "racked", "grounded", "either", "opposite", "only", "ahead", "near", "length",
    "wild", "sailing", "hiking", "working", "reading", "singing", "swimming", "throw",
}
CLIPART_REJECT_NAMES = {  # English words that name no object one can draw on its own
    "circle", "panel", "smoke", "air", "park", "jazz", "virus", "io", "hub", "game", "games", "sport", "sports",
    "music", "science", "education", "food", "animal", "animals", "people", "tools", "tool", "office",
    "unknown", "untitled", "design", "sign", "mark", "light", "shadow", "water", "ok", "yes", "home", "room",
    "scene", "landscape", "background", "border", "label", "text", "love", "peace", "happy", "sad", "group",
    "team", "party", "holiday", "christmas", "easter", "halloween", "winter", "summer", "spring", "autumn",
    "fall", "night", "day", "weather", "time", "help", "network", "storage", "wall", "note", "paint", "next",
    "break", "question", "quit", "thinking", "chat", "user", "fitness", "yoga", "video", "movie", "gender",
    "paper", "papers", "photo", "media", "splatter", "reunion", "parking", "female", "male", "adult", "kid",
    "human", "buddy", "cm", "enthusiast", "manager", "mascot", "picnic", "cloudy", "rain", "snow", "snowstorm",
    "lam", "ours", "rugby", "aerobics", "patchwork", "ink", "upright", "certificate", "segmented", "minute",
    "minute hand", "evolution", "evolution steps", "heart tiles", "golf symbols", "road signs", "table tennis",
    "menu", "mix", "end", "route", "crossroads", "roundabout", "zigzag", "motorway", "tunnel", "kaboom", "sub",
    "scotch", "metro", "chess", "golf", "soccer", "judo", "trekking", "pregnancy", "frame", "beach trip",
    "fall scene", "xmas", "plush", "desktop", "don", "arctic", "samoa", "andalusia", "liberty", "roman", "sony",
    "chevrolet", "shelby", "cycle", "cycles", "evolution", "treble", "bass", "double", "media", "hacker emblem",
}
RENAMES = {  # a name -> the one captions use
    "card": "playing card", "home": "house", "tshirt": "T-shirt", "tophat": "top hat", "sportcar": "sports car",
    "piggybank": "piggy bank", "palmtree": "palm tree", "teddybear": "teddy bear", "beachball": "beach ball",
    "grass hopper": "grasshopper", "w cloud": "cloud", "moons": "moon", "lightning": "lightning bolt",
    "light bulb": "lightbulb", "analogue clock": "analog clock", "balloons": "balloon", "cellular phone": "cell phone",
    "cone soft": "ice cream cone", "pan cakes": "pancakes", "sand glass": "hourglass", "paint brush": "paintbrush",
    "bicycle cycle": "bicycle", "formula car": "racing car", "father christmas": "Father Christmas",
}
TRANSLATIONS = {  # Italian and French words of clip-art titles and file names -> English
    "cavallo": "horse", "acquila": "eagle", "aquila": "eagle", "orso": "bear", "gatto": "cat", "gatti": "cats",
    "leone": "lion", "tigre": "tiger", "canguro": "kangaroo", "coniglio": "rabbit", "pecora": "sheep",
    "pecorella": "lamb", "topo": "mouse", "rana": "frog", "lucertola": "lizard", "farfalla": "butterfly",
    "farfalle": "butterflies", "coccinella": "ladybug", "coccinelle": "ladybug", "lumaca": "snail",
    "zanzara": "mosquito", "formica": "ant", "cigno": "swan", "gabbiano": "seagull", "pollo": "chicken",
    "tacchino": "turkey", "uccello": "bird", "mucca": "cow", "cammello": "camel", "struzzo": "ostrich",
    "anatra": "duck", "papera": "duck", "elefante": "elephant", "elefantone": "elephant", "pinguino": "penguin",
    "colombo": "pigeon", "albero": "tree", "casa": "house", "sedia": "chair", "tavolo": "table", "zucca": "pumpkin",
    "aglio": "garlic", "pomodori": "tomatoes", "pera": "pear", "pesca": "peach", "torta": "cake",
    "clessidra": "hourglass", "bussola": "compass", "chiave": "key", "trattore": "tractor", "bicicletta": "bicycle",
    "microscopio": "microscope", "siringa": "syringe", "stampante": "printer", "calcolatrice": "calculator",
    "candela": "candle", "betoniera": "cement mixer", "biberon": "baby bottle", "borsetta": "handbag",
    "ambulanza": "ambulance", "motosega": "chainsaw", "provetta": "test tube", "principessa": "princess",
    "ragazza": "girl", "ragazzo": "boy", "rosa": "rose", "spaventapasseri": "scarecrow", "fiore": "flower",
    "ravanello": "radish", "cornetto": "croissant", "abeille": "bee", "libellule": "dragonfly",
    "libellula": "dragonfly", "pasteque": "watermelon", "glace": "ice cream", "gateau": "cake",
    "cronometro": "stopwatch", "dino": "dinosaur", "dinosauro": "dinosaur", "dinosauri": "dinosaurs",
    "champignon": "mushroom", "croissant": "croissant", "sole": "sun", "pennello": "paintbrush",
    "scatolone": "cardboard box", "igloo": "igloo", "calzettoni": "socks", "zaino": "backpack",
}
EN_MIN_ZIPF = 2.5  # wordfreq's log10 frequency per billion words: "ladybug" 2.8, "farfalla" 1.2
OTHER_LANGUAGES = ("it", "fr", "es")  # most non-English titles are Italian, French or Spanish
OTHER_LANGUAGE_MARGIN = 0.5  # a word this much more frequent (zipf) in one of them is not taken for English
PROPER_WORDS = {  # capitalised in names
    "christmas", "easter", "halloween", "santa", "claus", "eiffel", "american", "african", "indian", "chinese",
    "japanese", "french", "italian", "english", "swiss", "german", "mexican", "celtic", "egyptian", "greek",
    "viking", "saturn", "jupiter", "mars", "venus", "mercury", "neptune", "uranus", "pluto", "earth", "moon",
    "valentine", "thanksgiving", "rubik's", "atari",
}
MASS_NOUNS = {
    "bread", "cheese", "butter", "milk", "popcorn", "bacon", "salami", "corn", "broccoli", "hair", "confetti",
    "money", "grass", "coffee", "lettuce", "sushi", "spaghetti", "lasagna", "knitting", "fireworks", "garlic",
    "ice", "lightning", "salad", "toast", "rice", "pasta", "juice", "wine", "beer", "tea", "jam", "honey",
    "lemonade", "soup", "cattle", "pantyhose",
}
THE_NAMES = {"sun", "moon", "earth", "Moon", "Earth", "full Moon"}  # "the sun"
NO_ARTICLE_NAMES = {"Jupiter", "Saturn", "Mars", "Venus", "Mercury", "Neptune", "Uranus", "Pluto", "Father Christmas"}
HEAD_END_WORDS = {"of", "with", "in", "on", "for", "from"}  # "stack of books": the article's head is "stack"
PLACE_PREPOSITIONS = {"in", "on", "with", "inside", "under", "against", "near", "at", "from", "as"}
SINGULAR_S = {"rhinoceros", "lens", "gas", "canvas", "atlas", "christmas", "gallows", "chaos", "series", "species",
              "news", "tennis"}  # end in "s" but are not plurals
IRREGULAR_PLURALS = {
    "mice": "mouse", "people": "person", "men": "man", "women": "woman", "children": "child", "geese": "goose",
    "feet": "foot", "teeth": "tooth", "leaves": "leaf", "knives": "knife", "wolves": "wolf", "loaves": "loaf",
    "shelves": "shelf", "calves": "calf", "halves": "half", "dice": "die", "oxen": "ox",
}


# ---- words and matching --------------------------------------------------------------------------------------


def singular(word: str) -> str:
    """A plural English noun's singular by rule ("boxes" -> "box", "cherries" -> "cherry"); others unchanged."""
    if word in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[word]
    if word in SINGULAR_S:
        return word
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "xes", "ches", "shes", "zes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is", "ous")):
        return word[:-1]
    return word


def words_of(text: str) -> list[str]:
    """Lowercase words; apostrophes stay inside words ("wizard's"), hyphens and punctuation split them."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower().replace("’", "'"))


def name_key(name: str) -> str:
    """What spellings of one object share: its lowercase words, each singular ("Ladybugs" -> "ladybug")."""
    return " ".join(singular(w) for w in words_of(name))


def head_noun(name: str) -> str:
    """The noun a name is about, singular: its last word before a place phrase ("Eiffel tower in Paris" ->
    "tower", "pair of pliers" -> "plier", "garbage trucks" -> "truck")."""
    words = name_key(name).split()
    cut = next((i for i, w in enumerate(words) if w in PLACE_PREPOSITIONS and i > 0), len(words))
    return words[cut - 1] if words else ""


def object_named(caption: str, name: str) -> bool:
    """Whether the caption names the object: its words appear in the caption in order, compared singular."""
    target, words = name_key(name).split(), name_key(caption).split()
    return bool(target) and any(words[i : i + len(target)] == target for i in range(len(words) - len(target) + 1))


def names_mentioned(caption: str, names: list[str] | set[str]) -> set[str]:
    """The names among `names` that the caption names (`object_named`)."""
    return {name for name in names if object_named(caption, name)}


# ---- articles ------------------------------------------------------------------------------------------------


def default_article(name: str) -> str:
    """ "a"/"an" for a countable singular, "the" for the sun and moon, "" for plurals and mass nouns."""
    if name in THE_NAMES:
        return "the"
    if name in NO_ARTICLE_NAMES:
        return ""
    words = name.lower().split()
    head: list[str] = []
    for word in words:
        if word in HEAD_END_WORDS:
            break
        head.append(word)
    last = (head or words)[-1]
    if singular(last) != last or last in MASS_NOUNS:
        return ""
    return indefinite_article(name)


# ---- Tux Paint stamps ----------------------------------------------------------------------------------------


def english_caption(txt: str) -> str:
    """The English caption of a stamp's .txt: its first line that is not `xx.utf8=...` (other languages)."""
    for line in txt.splitlines():
        if line.strip() and not re.match(r"^[\w@-]+\.utf-?8=", line):
            return line.strip()
    return ""


def _first_clause(text: str) -> str:
    text = text.replace("’", "'").replace("“", "").replace("”", "").replace('"', "").strip()
    text = re.split(r"—|–| - |\(|[.!?:;](?:\s|$)|, (?=from|also|and|called|which|it|or|sliced)", text)[0]
    return text.strip(" .!?,'")


def stamp_name(caption: str) -> tuple[str, str] | None:
    """(name, article) of a stamp's English caption ("An owl." -> ("owl", "an")), or None if it is not a name."""
    words = _first_clause(caption).split()
    if not words:
        return None
    first = words[0].lower()
    article = ("the" if first == "our" else first) if first in ARTICLES + ("our",) else ""
    rest = [w.strip(",'") for w in (words[1:] if article else words)]
    if not rest or len(rest) > MAX_NAME_WORDS or {w.lower() for w in rest} & STAMP_REJECT_WORDS:
        return None
    if any(not re.fullmatch(r"[A-Za-z'\-]+", w) for w in rest):  # digits, $, symbols: coins and codes
        return None
    if rest[0].lower() == "very" and len(rest) > 1:
        rest = rest[1:]
    if not article:  # the first word is capitalised as a sentence's: "Santa Claus", but "measuring tape"
        rest = [w if w.lower() in PROPER_WORDS else w.lower() for w in rest]
        article = "" if rest[0].lower() in PROPER_WORDS else default_article(" ".join(rest))
    elif article in ("a", "an"):
        article = indefinite_article(rest[0])  # the captions' own "An hippopotamus"
    return " ".join(rest), article


# ---- clip art ------------------------------------------------------------------------------------------------


def svg_title(svg_text: str) -> str:
    """The `<dc:title>` of an SVG's work (`<cc:Work>`), not those of its creator or publisher agents."""
    work = re.search(r"<cc:Work\b.*?</cc:Work>", svg_text, re.S)
    if work is None:
        return ""
    own = re.sub(r"<cc:Agent\b.*?</cc:Agent>", "", work.group(0), flags=re.S)
    title = re.search(r"<dc:title>(.*?)</dc:title>", own, re.S)
    return html.unescape(html.unescape(title.group(1))).strip() if title else ""


@lru_cache(maxsize=None)
def _is_english(word: str) -> bool:
    from wordfreq import zipf_frequency

    english = zipf_frequency(word, "en")
    others = max(zipf_frequency(word, lang) for lang in OTHER_LANGUAGES)
    return english >= EN_MIN_ZIPF and english >= others - OTHER_LANGUAGE_MARGIN


@lru_cache(maxsize=1)
def _first_names() -> frozenset[str]:
    """People's first names (Faker's English, German, French and Italian lists), lowercase."""
    from importlib import import_module

    names: set[str] = set()
    for locale in ("en_US", "de_DE", "fr_FR", "it_IT"):
        provider = import_module(f"faker.providers.person.{locale}").Provider
        names |= {n.lower() for n in provider.first_names}
    return frozenset(names)


@lru_cache(maxsize=1)
def noun_vocabulary() -> frozenset[str]:
    """Words of the ImageNet-1k class names (timm ships them): nouns a name read from a file may end on."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    names = (info.index_to_description(i) for i in range(info.num_classes()))
    return frozenset(w for n in names for w in words_of(n))


def _clean_words(words: list[str], nouns: frozenset[str] | set[str]) -> list[str] | None:
    """Lowercase English words, translated and without generic words; None if one is not English or a first name."""
    out: list[str] = []
    for word in (w.lower() for w in words):
        word = TRANSLATIONS.get(word, word)
        if word in GENERIC_WORDS or (out and out[-1] == word):
            continue
        if word not in TRANSLATIONS.values() and not _is_english(word):
            return None
        if word in _first_names() and word not in nouns:
            return None
        out.append(word)
    return out


def _checked(words: list[str] | None) -> str | None:
    """The name `words` spell, if it passes the clip-art filters; else None."""
    if not words or len(words) > MAX_NAME_WORDS or set(words) & CLIPART_REJECT_WORDS:
        return None
    name = RENAMES.get(" ".join(words), " ".join(words))
    if name in CLIPART_REJECT_NAMES or words[-1] in NOT_HEAD_WORDS or len(name.replace(" ", "")) < 3:
        return None
    return " ".join(w.capitalize() if w in PROPER_WORDS else w for w in name.split())


def _tokens(text: str) -> list[str]:
    text = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", text.replace("t-shirt", "tshirt"))  # camelCase -> camel Case
    return re.findall(r"[A-Za-z']+|\d+|[^\sA-Za-z'\d_\-.]+", text)


def clipart_title_name(title: str, nouns: frozenset[str] | set[str] = frozenset()) -> str | None:
    """The object name a clip-art title gives ("Blue Dragonfly (B and W)" -> "blue dragonfly"), or None.

    A template's title ("Clipart by Nicu Buculei - baloon1_04", "Etiquette Icons") names no drawing: None.
    """
    if CLIPART_AUTHOR_PREFIX.match(title) or title.strip().lower() in TEMPLATE_TITLES | SKIPPED_TITLES:
        return None
    for part in title.split(" - "):
        part = re.sub(r"\([^)]*\)?", " ", part)
        part = re.split(r",|\s(?:with|on|in|and|for)\s", part, flags=re.I)[0]
        part = re.sub(r"[\s_]*\d+\s*$", "", part.strip())  # "Dog 03", "bee1"
        words = _tokens(part)
        if all(re.fullmatch(r"[A-Za-z']+", w) for w in words) and (name := _checked(_clean_words(words, nouns))):
            return name
    return None


def clipart_stem_name(file_stem: str, nouns: frozenset[str] | set[str]) -> str | None:
    """The object name that begins a clip-art file name ("flying_wasp_gerald_g._02" -> "flying wasp"), or None.

    The English words before the first number or other word, at most `MAX_STEM_WORDS`, cut back until the
    last is one of `nouns` (an author's name that happens to be English follows the object's).
    """
    prefix: list[str] = []
    for token in _tokens(file_stem):
        cleaned = _clean_words([token], nouns) if re.fullmatch(r"[A-Za-z']+", token) else None
        if cleaned is None:
            break
        prefix += cleaned
    for n in range(min(len(prefix), MAX_STEM_WORDS), 0, -1):
        if singular(prefix[n - 1]) in nouns or prefix[n - 1] in nouns:
            return _checked(prefix[:n])
    return None

"""The pictures of the object-caption corpus: Debian packages unpacked into the cache, read as named objects.

Set-up (`ensure_sources`): each package of `PACKAGES` is fetched with `apt-get download` into `CACHE/debs` and
unpacked with `dpkg-deb -x` into `CACHE/objects_src/PACKAGE` (the cache is `encoders.cache.cache_dir()`), once;
sounds and programs are deleted, images and caption files kept. Their licences (GPL-2, CC-BY-SA-3.0, public
domain) differ from the library's: the files stay in the cache and are never committed.

Objects (`object_inventory`), each an image file with a name (`tasks.corpora.object_names` reads the names):
- Tux Paint stamps (`tuxpaint-stamps-default`, GPL-2): a PNG (most with alpha; about 2/3 cut-out photos, the
  rest drawings) beside a `.txt` whose first line is an English caption ("An owl."). Left out: the
  `SKIPPED_STAMP_FOLDERS` (letters, digits, coins, chess pieces, music notes, road signs: glyphs, not objects),
  SVG-only stamps (nothing here renders SVG) and captions that are not a short noun phrase.
- Open Clip Art Library drawings (`openclipart-png` + `openclipart-svg`, public domain): a PNG named by the
  `<dc:title>` of its SVG twin, or failing that by its file name, only in the `CLIPART_FOLDERS` (animals, food,
  vehicles, tools...: not icons, arrows, flags, patterns, road signs).
Images smaller than `MIN_SIDE_PX` or larger than `MAX_PIXELS` are left out. Objects are grouped by `name_key`
(lowercase, singular words): one name, one or more images.

Backgrounds (`photo_backgrounds`): the scene photos of `scratch` (CC-BY-SA-3.0) and the photo templates of
`tuxpaint-data` (GPL-2+), each with the place phrase of `PLACES` where one fits ("on a beach"), else none.

Development photos (`dev_photos`): the 7 sample photos of `darknet`, each with a reference caption and the
names that count as naming its main object, from `darknet_photos.json` (our own writing; the photos are not
committed).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from tasks.corpora.object_names import (
    clipart_stem_name,
    clipart_title_name,
    default_article,
    english_caption,
    name_key,
    noun_vocabulary,
    stamp_name,
    svg_title,
)

PACKAGES = ("tuxpaint-stamps-default", "openclipart-png", "openclipart-svg", "scratch", "tuxpaint-data", "darknet")
KEPT_SUFFIXES = {".png", ".svg", ".txt", ".jpg", ".jpeg"}  # everything else of a package (sounds, code) is deleted
STAMPS = "tuxpaint-stamps-default/usr/share/tuxpaint/stamps"
CLIPART_PNG = "openclipart-png/usr/share/openclipart/png"
CLIPART_SVG = "openclipart-svg/usr/share/openclipart/svg"
SCRATCH_BACKGROUNDS = "scratch/usr/share/scratch/Media/Backgrounds"
TUXPAINT_TEMPLATES = "tuxpaint-data/usr/share/tuxpaint/templates"
LICENCES = {
    "tuxpaint-stamps": "GPL-2", "openclipart": "public domain", "scratch": "CC-BY-SA-3.0",
    "tuxpaint-templates": "GPL-2+",
}

SKIPPED_STAMP_FOLDERS = (  # letters, digits, coins, chess pieces, music notes, road signs: glyphs, not objects
    "symbols/alphabets", "symbols/math", "symbols/money", "symbols/chess", "symbols/faces", "symbols/music",
    "town/roadsigns",
)
CLIPART_FOLDERS = (  # object-like categories; a deeper folder in CLIPART_SKIPPED is left out
    "animals", "buildings", "containers", "education", "electronics", "food", "office", "people", "plants",
    "recreation", "science", "tools", "transportation", "unsorted", "computer/hardware", "computer/games",
    "signs_and_symbols/clocks", "signs_and_symbols/money", "geography/astronomy",
)
MIN_SIDE_PX = 32  # smaller object images are icons
MAX_PIXELS = 4_000_000  # some clip-art PNGs are 13,000 px wide: too slow to decode for a 224 px tile
CLIPART_SKIPPED = (
    "people/smilies", "recreation/religion", "transportation/aiga-symbols", "transportation/roadsigns",
    "transportation/boating",
)
PLACES = {  # background file stem -> where the objects are, for captions; None where no short phrase fits
    "chalkboard": "in front of a chalkboard", "clothing-store": "in a clothing store", "hall": "in a hall",
    "kitchen": "in a kitchen", "party-room": "in a party room", "room1": "in a room", "room2": "in a room",
    "room3": "in a room", "spotlight-stage": "on a stage", "the-movies-inside": "in a cinema",
    "beach-malibu": "on a beach", "canyon": "in a canyon", "flower-bed": "in a flower bed", "forest": "in a forest",
    "garden-rock": "in a garden", "grand-canyon": "in a canyon", "gravel-desert": "in a desert", "hill": "on a hill",
    "lake": "by a lake", "moon": "on the moon", "pathway": "in a garden", "tree": "by a tree",
    "water-and-rocks": "by a stream", "wave": "in front of a wave", "woods-and-bench": "in a park",
    "all-sports-mural": "in front of a mural", "atom-playground": "in a playground", "bench-with-view": "in a park",
    "berkeley-mural": "in front of a mural", "boardwalk": "on a boardwalk", "brick-wall-and-stairs": "by a brick wall",
    "brick-wall1": "by a brick wall", "brick-wall2": "by a brick wall", "building-at-mit": "in front of a building",
    "building-fireproof": "in front of a building", "castle": "in front of a castle",
    "city-with-water": "in front of a city", "city-with-water2": "in front of a city", "driveway": "on a lawn",
    "graffiti": "in front of graffiti", "hallway_outdoors": "in a hallway", "hay_field": "in a field",
    "houses": "in a village", "mansion": "in front of a mansion", "mural-faro": "in front of a mural",
    "parking-ramp": "in a parking garage", "pool": "by a swimming pool", "route66": "on a road",
    "school2": "in front of a school", "silos": "on a farm", "the-movies": "in front of a cinema",
    "train-tracks1": "on railway tracks", "train-tracks2": "on railway tracks", "village": "in a village",
    "wooden-house": "in front of a wooden house", "baseball-field": "in a stadium",
    "basketball-court1-a": "on a basketball court", "basketball-court1-b": "on a basketball court",
    "football-field": "in a stadium", "playing-field": "on a playing field", "tennis-backboard": "on a tennis court",
    "burnt_bark": "on tree bark", "cliff": "in front of a cliff", "corn_maze": "in a corn field", "jellyfish": None,
    "lighthouse": "in front of a lighthouse", "mossy_bark": "on tree bark", "mossy_log": "on a mossy log",
    "mudstone": "on rock", "ocean_splash": "in the sea", "ocean_waves": "by the sea", "redwoods_above": "in a forest",
    "rocks": "on pebbles", "sheep": "in a field", "spiders_web": None, "sun_behind_clouds": "in the sky",
    "sun_behind_leaves": None, "trees_above": "in a forest", "trees_at_dusk": None, "wool_mill_machine": None,
}


# ---- set-up --------------------------------------------------------------------------------------------------


def sources_dir() -> Path:
    """`CACHE/objects_src`: one folder per unpacked package."""
    from encoders.cache import cache_dir

    return cache_dir() / "objects_src"


def ensure_sources(packages: tuple[str, ...] = PACKAGES) -> Path:
    """Download and unpack each package not yet in `sources_dir()`; returns that folder."""
    root = sources_dir()
    missing = [p for p in packages if not (root / p).is_dir()]
    if not missing:
        return root
    tools = [t for t in ("apt-get", "dpkg-deb") if shutil.which(t) is None]
    if tools:
        raise RuntimeError(
            f"the object corpus needs the Debian packages {', '.join(missing)}, unpacked into {root}; "
            f"this machine has no {' or '.join(tools)} to fetch them (on Debian or Ubuntu: apt-get download PKG; "
            "dpkg-deb -x PKG.deb DIR)"
        )
    debs = root.parent / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    for package in missing:
        deb = _downloaded(debs, package) or _download(debs, package)
        unpacked = Path(tempfile.mkdtemp(dir=root, prefix=f".{package}-"))  # renamed into place when complete
        try:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
            _prune(unpacked)
            unpacked.chmod(0o755)
            unpacked.rename(root / package)
        except BaseException:
            shutil.rmtree(unpacked, ignore_errors=True)
            raise
    return root


def _downloaded(debs: Path, package: str) -> Path | None:
    found = sorted(debs.glob(f"{package}_*.deb"))
    return found[-1] if found else None


def _download(debs: Path, package: str) -> Path:
    result = subprocess.run(["apt-get", "download", package], cwd=debs, capture_output=True, text=True)
    deb = _downloaded(debs, package)
    if result.returncode != 0 or deb is None:
        raise RuntimeError(f"apt-get download {package} failed (run apt-get update first?): {result.stderr.strip()}")
    return deb


def _prune(folder: Path) -> None:
    """Delete what the corpus never reads (sounds, programs, docs but the copyright files)."""
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix.lower() not in KEPT_SUFFIXES and path.name != "copyright":
            path.unlink()


# ---- objects ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectImage:
    path: Path
    source: str  # "tuxpaint-stamps" or "openclipart"
    licence: str


@dataclass(frozen=True)
class NamedObject:
    """One object name and every image that shows it."""

    name: str  # as captions write it, without article: "garbage truck", "Sumatran tiger"
    article: str  # "a", "an", "the", "some" or "" ("Santa Claus", "blueberries")
    images: tuple[ObjectImage, ...]

    @property
    def key(self) -> str:
        return name_key(self.name)

    @property
    def phrase(self) -> str:
        """The name with its article: "an owl", "the Eiffel tower", "Santa Claus"."""
        return f"{self.article} {self.name}" if self.article else self.name


Entry = tuple[str, str, ObjectImage]  # (name, article, image)


def usable_image(path: Path) -> bool:
    """Whether an object image's size (read from its header) is within MIN_SIDE_PX and MAX_PIXELS."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            width, height = image.size
    return min(width, height) >= MIN_SIDE_PX and width * height <= MAX_PIXELS


def stamp_objects(root: Path) -> list[Entry]:
    """Every usable Tux Paint stamp under `root` (see the module docstring)."""
    base = root / STAMPS
    out = []
    for txt in sorted(base.rglob("*.txt")):
        png = txt.with_suffix(".png")
        if not png.is_file() or txt.parent.relative_to(base).as_posix().startswith(SKIPPED_STAMP_FOLDERS):
            continue
        if not usable_image(png):
            continue
        parsed = stamp_name(english_caption(txt.read_text(encoding="utf-8", errors="replace")))
        if parsed is not None:
            out.append((*parsed, ObjectImage(png, "tuxpaint-stamps", LICENCES["tuxpaint-stamps"])))
    return out


def clipart_objects(root: Path, known_names: list[str] = ()) -> list[Entry]:
    """Every usable Open Clip Art drawing under `root`: named by its title, else by its file name, whose last
    word must then be a known noun (ImageNet's, or one of `known_names` or of the titles' names)."""
    png_root, svg_root = root / CLIPART_PNG, root / CLIPART_SVG
    drawings = []
    for png in sorted(png_root.rglob("*.png")):
        folder = png.parent.relative_to(png_root).as_posix()
        svg = svg_root / png.relative_to(png_root).with_suffix(".svg")
        wanted = folder.startswith(CLIPART_FOLDERS) and not folder.startswith(CLIPART_SKIPPED)
        if wanted and svg.is_file() and usable_image(png):
            drawings.append((png, svg_title(svg.read_text(encoding="utf-8", errors="replace"))))
    nouns = set(noun_vocabulary()) | {w for n in known_names for w in name_key(n).split()}
    titled = {png: clipart_title_name(title, nouns) for png, title in drawings}
    nouns |= {w for name in titled.values() if name for w in name_key(name).split()}
    out = []
    for png, _ in drawings:
        name = titled[png] or clipart_stem_name(png.stem, nouns)
        if name is not None:
            out.append((name, default_article(name), ObjectImage(png, "openclipart", LICENCES["openclipart"])))
    return out


# ---- inventory -----------------------------------------------------------------------------------------------


def object_inventory(root: Path | None = None) -> list[NamedObject]:
    """Every usable object name with its images, sorted by name key (stamps' spelling and article win)."""
    root = Path(root) if root is not None else ensure_sources()
    stamps = stamp_objects(root)
    grouped: dict[str, list[Entry]] = defaultdict(list)
    for entry in stamps + clipart_objects(root, [name for name, _, _ in stamps]):
        grouped[name_key(entry[0])].append(entry)
    objects = []
    for key in sorted(grouped):
        entries = grouped[key]
        # the spelling: a stamp's (people wrote those captions for the image), a singular one before a plural
        name, article, _ = min(entries, key=lambda e: (e[2].source != "tuxpaint-stamps", e[0].lower() != key))
        objects.append(NamedObject(name, article, tuple(e[2] for e in entries)))
    return objects


@dataclass(frozen=True)
class PhotoBackground:
    path: Path
    source: str  # "scratch" or "tuxpaint-templates"
    licence: str
    place: str | None  # "on a beach"; None where no short phrase fits

    @property
    def name(self) -> str:
        return self.path.stem


def photo_backgrounds(root: Path | None = None) -> list[PhotoBackground]:
    """The scene photos (JPEG) of scratch and the Tux Paint templates, sorted by path."""
    root = Path(root) if root is not None else ensure_sources()
    found = [(p, "scratch") for p in sorted((root / SCRATCH_BACKGROUNDS).glob("*/*.jpg"))]
    found += [(p, "tuxpaint-templates") for p in sorted((root / TUXPAINT_TEMPLATES).glob("*.jpg"))]
    return [PhotoBackground(p, source, LICENCES[source], PLACES.get(p.stem)) for p, source in found]


# ---- development photos -------------------------------------------------------------------------------------

DARKNET_DATA = "darknet/usr/share/darknet/data"
DEV_PHOTOS_FILE = Path(__file__).with_name("darknet_photos.json")


@dataclass(frozen=True)
class DevPhoto:
    """A real photo for development checks, with a reference caption written for it."""

    path: Path
    caption: str
    main: tuple[str, ...]  # names of its main object: a caption naming one of them names the main object
    also: tuple[str, ...]  # other things in the photo that a caption may name truly


def dev_photos(root: Path | None = None) -> list[DevPhoto]:
    """The darknet sample photos (dog, eagle, giraffe, horses, kite, person, scream) with their references."""
    root = Path(root) if root is not None else ensure_sources(("darknet",))
    rows = json.loads(DEV_PHOTOS_FILE.read_text())["photos"]
    return [DevPhoto(root / DARKNET_DATA / r["file"], r["caption"], tuple(r["main"]), tuple(r["also"])) for r in rows]

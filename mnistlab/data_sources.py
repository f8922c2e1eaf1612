"""Where a data set's files can come from besides torchvision's download: Debian's packaged copy.

On Debian and Ubuntu, `apt-get install dataset-fashion-mnist` puts Fashion-MNIST's four gzipped
files in /usr/share/datasets/fashion-mnist/. `unpack_debian` decompresses them into the folder
torchvision reads (`<root>/FashionMNIST/raw/`, the names being its `resources` without `.gz`), so
the data set works offline.

Debian recompressed the files (their .gz bytes differ from the published ones whose MD5s torchvision
lists), so the .gz checksums cannot decide. The uncompressed files are byte-identical to the
published ones: their MD5s (published with the data sets; torchvision 0.29 does not list them), which
each `Dataset` holds (`raw_md5`), are checked here, and then torchvision itself reads both splits.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from mnistlab.dataset import DATASETS, FASHION
from mnistlab.errors import DataError

DEBIAN_FOLDER = FASHION.debian_folder  # /usr/share/datasets/fashion-mnist
DEBIAN_PACKAGE = FASHION.debian_package

TITLES = {d.torchvision_name: d.title for d in DATASETS.values()}
# MD5 of each uncompressed file, by torchvision class name: the Datasets' own (`Dataset.raw_md5`).
RAW_MD5 = {d.torchvision_name: dict(d.raw_md5) for d in DATASETS.values()}


@dataclass(frozen=True)
class Unpacked:
    """What `unpack_debian` did: which files it decompressed from `source` into `folder`."""

    folder: Path
    source: Path
    written: tuple[str, ...]  # decompressed now
    kept: tuple[str, ...]  # already there, left alone

    def __str__(self) -> str:
        if not self.written:
            return f"All {len(self.kept)} files were already in {self.folder}; nothing was unpacked."
        return f"Decompressed {', '.join(self.written)} from {self.source} into {self.folder}."


def raw_names(cls) -> tuple[str, ...]:
    """The uncompressed files torchvision reads for `cls`: its `resources`' names without `.gz`."""
    return tuple(os.path.splitext(os.path.basename(url))[0] for url, _ in cls.resources)


def raw_folder(root, cls) -> Path:
    """Where torchvision looks for `cls`'s files: `<root>/<class name>/raw`."""
    return Path(root).expanduser() / cls.__name__ / "raw"


def dataset_folder_has_files(root, cls) -> bool:
    """All of `cls`'s raw files are in `root` (what torchvision's `_check_exists` asks: that they
    exist, not that they are right)."""
    raw = raw_folder(root, cls)
    return all((raw / name).is_file() for name in raw_names(cls))


def _fix_hint(root, cls, package: str) -> str:
    raw = raw_folder(root, cls)
    names = raw_names(cls)
    return (f"Put the {len(names)} files ({', '.join(names)}) in {raw}, or set MNISTLAB_DATA "
            f"to a folder that holds {cls.__name__}/raw/; or install Debian's copy with "
            f"`apt-get install {package}` (`apt-get install --reinstall {package}` if it is damaged).")


def _decompress(source: Path, folder: Path, name: str) -> tuple[Path, str]:
    """`source` decompressed into a hidden temporary file in `folder`: (its path, its MD5)."""
    md5 = hashlib.md5()
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out, gzip.open(source, "rb") as gz:
            while chunk := gz.read(1 << 20):
                md5.update(chunk)
                out.write(chunk)
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp), md5.hexdigest()


def unpack_debian(cls, root, debian: Path = DEBIAN_FOLDER, package: str = DEBIAN_PACKAGE) -> Unpacked:
    """`cls`'s gzipped files from Debian's folder, decompressed into `<root>/<class name>/raw/`.

    Files already there are kept. The missing ones are decompressed to temporary files and checked
    (the published MD5s, then torchvision reads both splits) before any is renamed into place, so a
    missing, truncated or wrong file leaves the folder as it was and raises a DataError that names
    the folders and the fixes.
    """
    title = TITLES.get(cls.__name__, cls.__name__)
    debian = Path(debian)
    folder = raw_folder(root, cls)
    names = raw_names(cls)
    kept = tuple(n for n in names if (folder / n).is_file())
    missing = [n for n in names if n not in kept]
    if not missing:
        return Unpacked(folder, debian, (), kept)
    absent = [f"{n}.gz" for n in missing if not (debian / f"{n}.gz").is_file()]
    if absent:
        raise DataError(f"The {title} files are not in {folder}, and {debian} does not hold "
                        f"{', '.join(absent)}. {_fix_hint(root, cls, package)}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"Could not create {folder} to unpack {title} into ({e.strerror or e}). "
                        f"{_fix_hint(root, cls, package)}") from e
    expected = RAW_MD5.get(cls.__name__, {})
    temporary: dict[str, Path] = {}
    written: list[Path] = []
    try:
        for name in missing:
            source = debian / f"{name}.gz"
            try:
                temporary[name], md5 = _decompress(source, folder, name)
            except (EOFError, gzip.BadGzipFile, zlib.error) as e:
                raise DataError(f"{source} is damaged ({type(e).__name__}: {e}). "
                                f"{_fix_hint(root, cls, package)}") from e
            except OSError as e:
                raise DataError(f"Could not unpack {source} into {folder} ({e.strerror or e}). "
                                f"{_fix_hint(root, cls, package)}") from e
            if name in expected and md5 != expected[name]:
                raise DataError(f"{source} does not hold the published {name} (its MD5 is {md5}, "
                                f"not {expected[name]}). {_fix_hint(root, cls, package)}")
        for name in missing:
            os.replace(temporary.pop(name), folder / name)
            written.append(folder / name)
        _torchvision_reads(cls, root, title, debian, package)
    except BaseException:
        for path in [*temporary.values(), *written]:
            path.unlink(missing_ok=True)
        raise
    return Unpacked(folder, debian, tuple(missing), kept)


def _torchvision_reads(cls, root, title: str, debian: Path, package: str) -> None:
    """torchvision's own check (`_check_exists`, then parsing each split's files), or a DataError."""
    for train in (True, False):
        try:
            cls(str(Path(root).expanduser()), train=train, download=False)
        except Exception as e:  # RuntimeError, AssertionError, ValueError... for a wrong file
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise DataError(f"torchvision could not read the {title} files unpacked from {debian} "
                            f"into {raw_folder(root, cls)} ({type(e).__name__}: {reason}). "
                            f"{_fix_hint(root, cls, package)}") from e

"""`FileStore`: the local profile's document store, one file per document under a root folder.

Layout: the document `leases/0-3f` is the file `<root>/leases/0-3f`. Each file is one header line
`meshkit-document 1 <etag>` followed by the document's bytes, so the ETag travels with the content in
one atomic rename. The ETag is `<generation>-<sha256 prefix>`: the generation grows with every write,
so a document written back to earlier content still gets a new ETag (no ABA on `if_match`).

Writes go to a temporary file in the same folder, are fsynced, renamed over the document and the
folder is fsynced. Conditional writes hold an exclusive `fcntl.flock` on `<root>/.lock` from the
read of the current ETag to the rename, which makes them safe across processes (and threads, since
each write opens the lock file anew). Reads take no lock: a rename is atomic, so a reader sees the
old or the new document, never a mix.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

from meshkit.errors import NameError_, TerminalError
from pipelines.checkpoints.store import Document, DocumentStore, PreconditionFailed

_MAGIC = b"meshkit-document 1 "
_LOCK = ".lock"
_SEGMENT = re.compile(r"[A-Za-z0-9_~%=+$-][A-Za-z0-9._~%=+$-]*")
_PARTIAL = re.compile(r"[A-Za-z0-9._~%=+$-]*")
MAX_NAME = 1024  # Azure Blob's limit
MAX_SEGMENT = 250  # file names are at most 255 bytes
_NAME_RULE = (
    "Document names are '/'-separated segments of letters, digits and . _ ~ % = + $ - "
    f"(a segment may not start with '.'; at most {MAX_SEGMENT} characters a segment, {MAX_NAME} in all), "
    "e.g. `leases/0-3f` or `offsets/curated-writer`"
)


def validate_document_name(name: str) -> str:
    """Return `name` if it is safe as a relative path and a blob name, else raise `NameError_` with the rule.

    Both stores apply the same rule, so a name that works on the local profile works on Azure Blob.
    """
    segments = name.split("/")
    if not name or len(name) > MAX_NAME:
        raise NameError_(f"invalid document name {name!r}: empty or longer than {MAX_NAME}", hint=_NAME_RULE)
    for segment in segments:
        if not _SEGMENT.fullmatch(segment) or len(segment) > MAX_SEGMENT:
            why = "absolute paths, '..' and empty segments are not allowed" if segment in {"", ".", ".."} else ""
            raise NameError_(
                f"invalid document name {name!r}: bad segment {segment!r}" + (f" ({why})" if why else ""),
                hint=_NAME_RULE,
            )
    return name


def document_key(value: str) -> str:
    """Any string (a feed range id, a consumer group) as one valid name segment: percent-encoded,
    dots included, so `..` or `$Default` cannot escape or break a name."""
    return quote(value, safe="-_~").replace(".", "%2E")


def validate_prefix(prefix: str) -> str:
    """Return a listing prefix (complete segments, then a possibly empty or partial last one) or raise."""
    head, _, last = prefix.rpartition("/")
    if head:
        validate_document_name(head)
    elif prefix.startswith("/"):
        raise NameError_(f"invalid document prefix {prefix!r}: absolute paths are not allowed", hint=_NAME_RULE)
    if not _PARTIAL.fullmatch(last) or last.startswith(".") or len(last) > MAX_SEGMENT:
        raise NameError_(f"invalid document prefix {prefix!r}: bad segment {last!r}", hint=_NAME_RULE)
    return prefix


class FileStore(DocumentStore):
    """Documents as files under `root` (created when missing), with ETags and cross-process conditional writes."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._ensure_dir(self.root)

    def get(self, name: str) -> Document | None:
        path = self._path(validate_document_name(name))
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        except (IsADirectoryError, NotADirectoryError):
            return None
        etag, data = _split(raw, path)
        return Document(name=name, data=data, etag=etag)

    def put(self, name: str, data: bytes, *, if_match: str | None = None, if_none_match: bool = False) -> str:
        path = self._path(validate_document_name(name))
        self._check_no_clash(name, path)
        with self._locked():
            current = self._current_etag(path)
            if if_none_match and current is not None:
                raise PreconditionFailed(f"document {name!r} already exists", hint="Read it and retry with if_match.")
            if if_match is not None and current != if_match:
                state = "does not exist" if current is None else f"has ETag {current!r}"
                raise PreconditionFailed(
                    f"document {name!r} changed: expected ETag {if_match!r}, it {state}",
                    hint="Another writer got there first; read it again before writing.",
                )
            generation = int(current.split("-", 1)[0]) + 1 if current else 1
            etag = f"{generation}-{hashlib.sha256(data).hexdigest()[:16]}"
            self._ensure_dir(path.parent)
            _write_atomic(path, _MAGIC + etag.encode("ascii") + b"\n" + data)
            return etag

    def list(self, prefix: str) -> Iterator[Document]:
        head, _, _ = validate_prefix(prefix).rpartition("/")
        base = self.root / head if head else self.root
        names: list[str] = []
        for folder, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            relative = Path(folder).relative_to(self.root).as_posix()
            for file in files:
                if file.startswith("."):
                    continue  # the lock file and temporary files of writes in flight
                name = file if relative == "." else f"{relative}/{file}"
                if name.startswith(prefix):
                    names.append(name)
        for name in sorted(names):
            document = self.get(name)
            if document is not None:
                yield document

    def close(self) -> None:
        """Nothing to release: every operation opens and closes its own files."""

    def _path(self, name: str) -> Path:
        return self.root.joinpath(*name.split("/"))

    def _check_no_clash(self, name: str, path: Path) -> None:
        """Files cannot be both a document and a folder (Blob allows `a` and `a/b`); say so plainly."""
        clash = path if path.is_dir() else next((p for p in path.parents if p.is_file()), None)
        if clash is not None and clash != self.root and self.root in (clash, *clash.parents):
            raise NameError_(
                f"document name {name!r} clashes with {clash.relative_to(self.root).as_posix()!r}: "
                "a name cannot be both a document and a prefix of other documents' folders",
                hint="Use names that end in a distinct segment, e.g. `leases/<range>` and `offsets/<group>`.",
            )

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.root / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def _current_etag(self, path: Path) -> str | None:
        try:
            with path.open("rb") as handle:
                header = handle.readline(len(_MAGIC) + 64)
        except FileNotFoundError:
            return None
        return _parse_header(header, path)

    def _ensure_dir(self, folder: Path) -> None:
        """Create `folder` and missing parents, fsyncing each new entry's parent so it survives a crash."""
        missing: list[Path] = []
        current = folder
        while not current.exists():
            missing.append(current)
            current = current.parent
        for new in reversed(missing):
            with contextlib.suppress(FileExistsError):
                new.mkdir()
            _fsync_dir(new.parent)


def _write_atomic(path: Path, content: bytes) -> None:
    tmp = path.with_name(f".tmp-{path.name[:64]}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with tmp.open("wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _split(raw: bytes, path: Path) -> tuple[str, bytes]:
    header, _, data = raw.partition(b"\n")
    return _parse_header(header + b"\n", path), data


def _parse_header(header: bytes, path: Path) -> str:
    if not header.startswith(_MAGIC) or not header.endswith(b"\n"):
        raise TerminalError(
            f"{path} is not a meshkit document (no `meshkit-document 1 <etag>` header)",
            hint="Files under the checkpoint folder are written by meshkit only; move this file elsewhere.",
        )
    return header[len(_MAGIC) : -1].decode("ascii")

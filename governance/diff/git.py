"""Read contracts as they were at a git revision, without touching the working tree.

Every git call is bounded by a timeout; a folder that is not a repository or a revision that does
not exist is a `ConfigError` that says what to run instead.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path, PurePosixPath

from meshkit.errors import ConfigError, TransientError
from meshkit.products.model import CONTRACT_FILE

GIT_TIMEOUT_SECONDS = 30.0


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = _git_bytes(cwd, *args)
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")
    )


def _git_bytes(cwd: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    git = shutil.which("git")
    if git is None:
        raise ConfigError("git is not installed", hint="Install git; `meshkit diff` reads revisions with it.")
    try:
        return subprocess.run(
            [git, "-C", str(cwd), *args],
            input=stdin,
            capture_output=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise TransientError(
            f"`git {' '.join(args)}` took longer than {GIT_TIMEOUT_SECONDS:.0f} s",
            hint="Run it by hand to see why (a lock, a network filesystem), then try again.",
        ) from exc


def repo_root(path: Path) -> Path:
    """The top of the git working tree holding `path`."""
    done = _git(path, "rev-parse", "--show-toplevel")
    if done.returncode != 0:
        raise ConfigError(
            f"{path} is not inside a git repository",
            hint="Run `meshkit diff` from a clone of the mesh repository (or pass --root).",
        )
    return Path(done.stdout.strip()).resolve()


def resolve_revision(repo: Path, revision: str) -> str:
    """The commit id `revision` names; a clear error when it names nothing."""
    if not revision or revision.startswith("-"):
        raise ConfigError(
            f"invalid revision {revision!r}", hint="Pass a branch, tag or commit, e.g. --base origin/main."
        )
    done = _git(repo, "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
    if done.returncode != 0:
        raise ConfigError(
            f"git revision {revision!r} does not exist in {repo}",
            hint="Check the name with `git log --oneline`; in CI fetch the base first (`git fetch origin main`).",
        )
    return done.stdout.strip()


def contract_paths_at(repo: Path, commit: str, domains_dir: Path) -> list[str]:
    """Repository-relative paths of `domains/<domain>/<product>/datacontract.yaml` at `commit`."""
    prefix = PurePosixPath(domains_dir.resolve().relative_to(repo).as_posix())
    spec = "." if str(prefix) == "." else str(prefix)
    done = _git(repo, "ls-tree", "-r", "--name-only", commit, "--", spec)
    if done.returncode != 0:
        raise ConfigError(f"cannot list files at {commit}: {done.stderr.strip()}", hint="Check the revision.")
    paths = []
    for line in done.stdout.splitlines():
        path = PurePosixPath(line)
        inside = path.relative_to(prefix) if str(prefix) != "." else path
        if len(inside.parts) == 3 and inside.name == CONTRACT_FILE:
            paths.append(line)
    return sorted(paths)


def read_at(repo: Path, commit: str, path: str) -> str:
    """The text of `path` (repository-relative, POSIX) at `commit`."""
    done = _git(repo, "show", f"{commit}:{path}")
    if done.returncode != 0:
        raise ConfigError(f"cannot read {path} at {commit}: {done.stderr.strip()}", hint="Check the path and revision.")
    return done.stdout


def read_many_at(repo: Path, commit: str, paths: list[str]) -> dict[str, str]:
    """The texts of many files at `commit` through one `git cat-file --batch` (a mesh of 1,000 products
    would otherwise start 1,000 processes); a path missing at `commit` is left out."""
    if not paths:
        return {}
    done = _git_bytes(repo, "cat-file", "--batch", stdin="".join(f"{commit}:{p}\n" for p in paths).encode())
    if done.returncode != 0:
        raise ConfigError(f"cannot read files at {commit}: {done.stderr.decode(errors='replace').strip()}")
    out, pos, texts = done.stdout, 0, {}
    for path in paths:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) != 3:  # `<object> missing` (or ambiguous): nothing follows the header
            continue
        size = int(header[2])
        texts[path] = out[pos : pos + size].decode("utf-8", "replace")
        pos += size + 1  # the content is followed by a newline
    return texts

"""The one wrapper around git (GitPython)."""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import git
from git.exc import GitCommandError, InvalidGitRepositoryError, NoSuchPathError

from vpcmesh.errors import VpcmeshError


def head_commit(root: Path) -> str | None:
    """The commit checked out at `root` (a mesh may sit in a subfolder), or None."""
    try:
        return str(git.Repo(root, search_parent_directories=True).head.commit.hexsha)
    except (InvalidGitRepositoryError, NoSuchPathError, ValueError):
        return None


MAX_MEMBER = 16 << 20  # bytes: no mesh file is near it (model/snapshot.py says why)
FETCH_TIMEOUT = 300  # seconds for one git fetch of a node's bundles


def credential_helper(url: str, token_file: Path) -> str:
    """A git credential helper that answers with the token read from `token_file` when git
    asks (after the server's 401): the token goes to git through a pipe, never through a
    command line, the environment or a file of git's; the user is the URL's, else
    'vpcmesh' (GitHub and Gitea take any user with a token)."""
    user = urlsplit(url).username or "vpcmesh"
    return (f"!f() {{ test \"$1\" = get || exit 0; echo username={shlex.quote(user)};"
            f" printf password=; tr -d '[:space:]' < {shlex.quote(str(token_file))}; echo; }}; f")


class Mirror:
    """A local bare copy of a remote's branch, fetched on demand; reads files of its tip."""

    def __init__(self, cache: Path, url: str, ref: str, token_file: Path | None = None
                 ) -> None:
        self.url, self.ref = url, ref
        if (cache / "HEAD").exists():
            self.repo = git.Repo(cache)
        else:
            cache.mkdir(parents=True, exist_ok=True)
            self.repo = git.Repo.init(cache, bare=True)
        # Never a prompt (a timer has no terminal), and no helper but ours: a stored
        # credential of root's must not be sent to this remote.
        self.repo.git.update_environment(GIT_TERMINAL_PROMPT="0", GIT_ASKPASS="/bin/false",
                                         SSH_ASKPASS="/bin/false")
        helpers = ["credential.helper="]
        if token_file is not None:
            helpers.append(f"credential.helper={credential_helper(url, token_file)}")
        self.repo.git.set_persistent_git_options(c=helpers)

    def fetch(self) -> str:
        """Fetch the ref; returns the commit it points at."""
        target = f"refs/vpcmesh/{self.ref}"
        try:
            # '--' ends the options: the URL can never be one; a stuck fetch is killed.
            self.repo.git.fetch("--quiet", "--no-tags", "--force", "--depth", "1", "--",
                                self.url, f"+refs/heads/{self.ref}:{target}",
                                kill_after_timeout=FETCH_TIMEOUT)
        except GitCommandError as exc:
            detail = (exc.stderr or "").strip().replace("\n", " ")
            raise VpcmeshError.at(self.url, f"cannot fetch branch '{self.ref}': {detail}"
                                  ) from None
        return str(self.repo.commit(target).hexsha)

    def read(self, commit: str, path: str) -> bytes | None:
        try:
            blob = self.repo.commit(commit).tree / path
        except KeyError:
            return None
        data: bytes = blob.data_stream.read()
        return data


def repo_at(root: Path) -> git.Repo:
    try:
        return git.Repo(root, search_parent_directories=True)
    except (InvalidGitRepositoryError, NoSuchPathError):
        raise VpcmeshError.at(str(root), "not a git repository") from None


def merge_base(root: Path, branch: str = "main") -> str:
    repo = repo_at(root)
    if branch not in repo.heads and f"origin/{branch}" in [r.name for r in repo.refs]:
        branch = f"origin/{branch}"  # a CI checkout has the remote branch only
    try:
        bases = repo.merge_base(branch, "HEAD")
    except GitCommandError as exc:
        raise VpcmeshError.at(branch, f"no merge base with HEAD: {exc.stderr.strip()}") from None
    if not bases:
        raise VpcmeshError.at(branch, "no merge base with HEAD; pass --base REF")
    return str(bases[0].hexsha)


def tracked_files(root: Path) -> list[str]:
    """What git tracks under `root`, and what it would add (untracked, not ignored), by path
    relative to `root`."""
    try:
        out = git.Git(str(root)).ls_files("--cached", "--others", "--exclude-standard")
    except (GitCommandError, NoSuchPathError):
        raise VpcmeshError.at(str(root), "not a git repository; pass the files to check"
                              ) from None
    return sorted(str(out).splitlines())


def members_at(root: Path, ref: str) -> tuple[str, dict[str, tuple[str, bytes]]]:
    """The files of the mesh folder (`root`, maybe a subfolder of the repository) as of `ref`,
    read from `git archive` in memory: nothing is extracted to disk. Returns the commit and
    the members by path relative to `root`, each with its kind ("file", "folder", "link" or
    "other") and bytes; links are listed, not followed."""
    import io
    import tarfile

    repo = repo_at(root)
    prefix = root.resolve().relative_to(Path(repo.working_tree_dir or root).resolve())
    try:
        commit = repo.commit(ref)
    except (ValueError, GitCommandError, git.BadName):
        raise VpcmeshError.at(ref, "no such commit or branch") from None
    try:  # a base before the mesh existed (an empty first commit, a mesh folder added later)
        tree = commit.tree if str(prefix) == "." else commit.tree / prefix.as_posix()
    except KeyError:
        return str(commit.hexsha), {}
    if not len(tree):
        return str(commit.hexsha), {}  # git archive of an empty tree is no tar at all
    buffer = io.BytesIO()
    paths = [str(prefix)] if str(prefix) != "." else []
    repo.archive(buffer, treeish=commit.hexsha, format="tar", path=paths)
    buffer.seek(0)
    lead = "" if str(prefix) == "." else f"{prefix.as_posix()}/"
    members: dict[str, tuple[str, bytes]] = {}
    with tarfile.open(fileobj=buffer) as tar:
        for member in tar:
            name = member.name.rstrip("/")
            if not name.startswith(lead) or name == lead.rstrip("/"):
                continue
            rel = name[len(lead):]
            if member.isfile() and member.size > MAX_MEMBER:
                members[rel] = ("large", b"")  # never read: the snapshot reports it
            elif member.isfile():
                handle = tar.extractfile(member)
                members[rel] = ("file", handle.read() if handle else b"")
            elif member.isdir():
                members[rel] = ("folder", b"")
            else:
                members[rel] = ("link" if member.issym() or member.islnk() else "other", b"")
    return str(commit.hexsha), members


def dirty_paths(root: Path) -> list[str]:
    """What differs from HEAD under `root` (changed, staged, deleted or untracked, not
    ignored), by path relative to `root`."""
    runner = git.Git(str(root))
    try:
        changed = runner.diff("--name-only", "--relative", "HEAD", "--", ".")
        untracked = runner.ls_files("--others", "--exclude-standard", "--", ".")
    except (GitCommandError, NoSuchPathError):
        raise VpcmeshError.at(str(root), "not a git repository with a commit") from None
    return sorted({*str(changed).splitlines(), *str(untracked).splitlines()} - {""})


def remotes_containing(root: Path, commit: str) -> list[str]:
    """The remote-tracking branches that contain `commit` (as last fetched or pushed)."""
    try:
        out = repo_at(root).git.branch("-r", "--contains", commit)
    except GitCommandError:
        return []
    return [line.strip() for line in str(out).splitlines() if line.strip()]


def in_history(root: Path, ancestor: str, commit: str) -> bool | None:
    """Whether `ancestor` is `commit` or one of its ancestors; None when this clone cannot
    tell (a shallow clone that lacks the commit)."""
    repo = repo_at(root)
    try:
        repo.git.merge_base("--is-ancestor", ancestor, commit)
    except GitCommandError as exc:
        if exc.status == 1:
            return False
        shallow = (Path(repo.git_dir) / "shallow").exists()
        return None if shallow else False
    return True


class Publication:
    """The branch nodes pull, fetched into a scratch repository: what it holds now, and one
    new commit that makes it hold exactly the new files."""

    def __init__(self, scratch: Path, remote: str, branch: str) -> None:
        self.scratch, self.remote, self.branch = scratch, remote, branch
        self.repo = git.Repo.init(scratch)
        with self.repo.config_writer() as config:
            config.set_value("user", "name", "vpcmesh publish")
            config.set_value("user", "email", "vpcmesh@localhost")
        self.repo.git.remote("add", "origin", remote)
        try:
            self.repo.git.fetch("--quiet", "--depth", "1", "origin",
                                f"+refs/heads/{branch}:refs/remotes/origin/{branch}")
            self.exists = True
        except GitCommandError as exc:
            if "couldn't find remote ref" not in (exc.stderr or ""):
                detail = (exc.stderr or "").strip().replace("\n", " ")
                raise VpcmeshError.at(remote, f"cannot fetch: {detail}") from None
            self.exists = False

    def current(self, rel: str) -> bytes | None:
        """A file as the branch holds it now, or None."""
        if not self.exists:
            return None
        try:
            blob = self.repo.commit(f"origin/{self.branch}").tree / rel
        except KeyError:
            return None
        data: bytes = blob.data_stream.read()
        return data

    def push(self, files: dict[str, bytes], message: str) -> str | None:
        """One new commit holding exactly `files`; None when the branch already does."""
        repo, scratch, branch = self.repo, self.scratch, self.branch
        if self.exists:
            repo.git.checkout("--quiet", "-B", branch, f"origin/{branch}")
            repo.git.rm("-r", "--quiet", "--cached", "--ignore-unmatch", ".")
        else:
            repo.git.checkout("--quiet", "--orphan", branch)
        for child in scratch.iterdir():
            if child.name != ".git":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        for rel, data in files.items():
            path = scratch / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        repo.git.add("--all", ".")
        if self.exists and not repo.git.diff("--cached", "--name-only", f"origin/{branch}"):
            return None
        repo.git.commit("--quiet", "-m", message)
        try:
            repo.git.push("--quiet", "origin", f"HEAD:refs/heads/{branch}")
        except GitCommandError as exc:
            detail = (exc.stderr or "").strip().replace("\n", " ")
            raise VpcmeshError.at(self.remote, f"cannot push to '{branch}': {detail}") from None
        return str(repo.head.commit.hexsha)


def in_repository(root: Path) -> bool:
    try:
        repo_at(root)
    except VpcmeshError:
        return False
    return True


def first_commit(root: Path, message: str) -> str:
    """`git init -b main` and a first commit of everything in `root`; returns the commit.
    Without a user.email in git's config, the commit is made as vpcmesh init."""
    repo = git.Repo.init(root)
    repo.git.symbolic_ref("HEAD", "refs/heads/main")  # git < 2.28 has no --initial-branch
    try:
        repo.git.config("user.email")
    except GitCommandError:
        repo.git.update_environment(
            GIT_AUTHOR_NAME="vpcmesh init", GIT_AUTHOR_EMAIL="vpcmesh@localhost",
            GIT_COMMITTER_NAME="vpcmesh init", GIT_COMMITTER_EMAIL="vpcmesh@localhost")
    repo.git.add("-A")
    repo.git.commit("-q", "-m", message)
    return str(repo.head.commit.hexsha)

#!/usr/bin/env python3
"""Copies the files a `docker build .` would send, by the repository's .dockerignore, to DEST,
and checks that every file an `include_bytes!`/`include_str!` in the sources names is among them
(`cargo metadata --locked` on DEST checks the manifests; this checks what the compiler reads).

Usage: docker_context.py REPO DEST

Candidates are the files git tracks or would track (untracked, not ignored). Supports the
patterns .dockerignore uses here: comments, `**/` prefixes, `*`, and a directory excluding all
below it; a `!` exception is refused rather than misread.
"""

import fnmatch
import pathlib
import re
import shutil
import subprocess
import sys


def patterns(repo):
    out = []
    for line in (repo / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            sys.exit(f"docker_context.py: exceptions ({line}) are not supported")
        out.append(line.strip("/"))
    return out


def excluded(path, pats):
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pat in pats:
        for prefix in prefixes:
            if fnmatch.fnmatchcase(prefix, pat):
                return True
            if pat.startswith("**/"):
                tail = pat[3:]
                if any(fnmatch.fnmatchcase("/".join(parts[i : len(prefix.split("/"))]), tail)
                       for i in range(len(prefix.split("/")))):
                    return True
    return False


def main():
    repo = pathlib.Path(sys.argv[1]).resolve()
    dest = pathlib.Path(sys.argv[2])
    pats = patterns(repo)
    files = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True, capture_output=True,
    ).stdout.decode().split("\0")
    n = 0
    for f in files:
        if not f or excluded(f, pats) or not (repo / f).is_file():
            continue
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / f, dest / f)
        n += 1
    print(f"docker context: {n} files")
    missing = []
    include = re.compile(r'include_(?:bytes|str)!\(\s*"([^"]+)"\s*\)')
    for rs in dest.rglob("*.rs"):
        for name in include.findall(rs.read_text(errors="replace")):
            if not (rs.parent / name).is_file():
                missing.append(f"{rs.relative_to(dest)}: {name}")
    if missing:
        sys.exit("docker context lacks included files:\n  " + "\n  ".join(missing))
    print("docker context: every included file is present")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Fails when a reference in the repository's code or docs does not resolve inside the repository.

    python3 scripts/check-docs.py

Checked in every tracked text file:
  - no reference outside the clone: the project's sibling folders, a design file other than
    docs/design.md, absolute paths of a build machine (its work folder, root's or a user's home);
  - every repository path it names (in Rust: in comments) (a word starting with one of the top-level folders, e.g.
    `driver/core/src/gate.rs` or `docs/design.md`) exists, as a file or a folder;
  - in Markdown, every relative link target exists (anchors and web links are not followed).
Paths written with a placeholder (`<os>`, `*`, `{a,b}`, `$VAR`, `...`) are patterns, not references,
and are skipped. Build outputs under target/ are not references either.
Exit status: 0 when everything resolves, 1 with one line per dangling reference otherwise.
"""
import os
import re
import subprocess
import sys

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), ".."))
TOP = ("docs", "driver", "userspace", "installer", "tests", "scripts", "xtask", "fuzz",
       ".github", ".ci", "README.md")
TEXT_EXT = {".md", ".rs", ".sh", ".toml", ".py", ".conf", ".yml", ".yaml", ".txt", ".lua",
            ".slint", ".wxs", ".inf", ".plist", ".c", ".h", ".json", ".service", ".desktop", ""}
OUTSIDE = [
    (re.compile(r"\.\./shared\b"), "points to the sibling folder 'shared', which a clone does not have"),
    (re.compile(r"(?<![\w/.-])DESIGN\.md"), "cites DESIGN.md; the design is docs/design.md"),
    (re.compile(r"(?<![\w.])/(work|root)/"), "an absolute path of a build machine"),
    (re.compile(r"(?<![\w.])/home/[a-z]"), "an absolute path of a build machine"),
]
# A repository path: a top-level folder, then path characters. Trailing punctuation is trimmed.
PATH_RE = re.compile(r"(?<![\w./$-])((?:%s)/[\w./@+-]*[\w/])" % "|".join(
    re.escape(t) for t in TOP if not t.endswith(".md")))
MD_LINK_RE = re.compile(r"\]\(([^)\s]+)\)")
PLACEHOLDER = re.compile(r"[<>*{}$]|\.\.\.|XXXX")


def tracked_files():
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                         capture_output=True).stdout
    return [f for f in out.decode().split("\0") if f]


def is_text(path):
    return os.path.splitext(path)[1] in TEXT_EXT or os.path.basename(path) in ("run", "before-stop")


def exists(rel, base=""):
    """True if `rel` names something in the repository: from the root, or (as READMEs and crate
    sources write `tests/x.rs` or `scripts/y.sh`) from the citing file's folder or any folder above."""
    rel = rel.rstrip("/")
    while True:
        if os.path.exists(os.path.join(ROOT, base, rel)):
            return True
        if not base:
            return False
        base = os.path.dirname(base)


def check_file(rel, problems):
    try:
        with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
        return
    if rel == "scripts/check-docs.py":
        return  # this file names the patterns it looks for
    for n, line in enumerate(lines, 1):
        for pattern, why in OUTSIDE:
            if pattern.search(line):
                problems.append(f"{rel}:{n}: {why}: {line.strip()[:120]}")
        # In Rust, string literals are data (paths of a generated workspace, say): only comments
        # cite files. Workflow steps create folders of their own.
        if rel.endswith(".rs"):
            line = line.split("//", 1)[1] if "//" in line else ""
        if rel.endswith((".yml", ".yaml")):
            continue
        for m in PATH_RE.finditer(line):
            path = m.group(1).rstrip(".")
            if PLACEHOLDER.search(line[m.start():m.end() + 1]) or re.search(r"(^|/)target[\w-]*/", path):
                continue
            if not exists(path, os.path.dirname(rel)):
                problems.append(f"{rel}:{n}: names {path}, which is not in the repository")
        if rel.endswith(".md"):
            for m in MD_LINK_RE.finditer(line):
                target = m.group(1)
                if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                    continue
                target = target.split("#", 1)[0]
                if not target or PLACEHOLDER.search(target):
                    continue
                resolved = os.path.normpath(os.path.join(os.path.dirname(rel), target))
                if resolved.startswith("..") or not exists(resolved):
                    problems.append(f"{rel}:{n}: link to {target} does not resolve in the repository")


def main():
    problems = []
    for rel in tracked_files():
        if is_text(rel) and os.path.isfile(os.path.join(ROOT, rel)):
            check_file(rel, problems)
    for p in problems:
        print(p)
    print(f"doc references: {len(problems)} dangling", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

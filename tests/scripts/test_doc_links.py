"""The documents must not point at what is not there: every relative link in README.md,
fuzz/README.md and docs/*.md resolves to a file in the repository (and, with a #fragment into a Markdown
file, to one of its headings, by GitHub's rule for heading anchors); every
`docs/NAME.md#anchor` a comment in the code cites resolves the same way; no comment
cites DESIGN.md (a file outside the repository); and the Layout section of
docs/design.md names every file under src/ and scripts/, and nothing that is gone.
Stdlib only; .ci/run runs it.

    python3 -m unittest tests/scripts/test_doc_links.py
"""

import os
import re
import unittest

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))

# Where code comments live; their citations of docs/*.md are checked too.
CODE_DIRS = ["src", "tests", "scripts", "benches", "fuzz", ".ci", "static"]
CODE_SUFFIXES = (".rs", ".sh", ".py", ".mjs", ".js", ".html", ".toml", "run")

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
# [text](target) and ![alt](target); the target ends at whitespace or ')'.
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$", re.M)
CITATION = re.compile(r"docs/([A-Za-z0-9_.-]+\.md)#([A-Za-z0-9_-]+)")


def documents():
    """README.md, fuzz/README.md and every docs/*.md, as paths relative to the root."""
    docs = sorted(
        os.path.join("docs", name)
        for name in os.listdir(os.path.join(ROOT, "docs"))
        if name.endswith(".md")
    )
    return ["README.md", os.path.join("fuzz", "README.md")] + docs


def read(rel):
    with open(os.path.join(ROOT, rel), encoding="utf-8") as f:
        return f.read()


def without_code(text):
    """The Markdown with fenced blocks and inline code removed: links there are text."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def slug(heading):
    """GitHub's anchor for a heading: the text (link targets and code marks dropped),
    lowercased, every character but letters, digits, '_', '-' and spaces removed,
    spaces made hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.replace("`", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(rel):
    """Every heading anchor of a Markdown file, with GitHub's -1, -2 for repeats."""
    seen = {}
    out = set()
    for _, title in HEADING.findall(FENCE.sub("", read(rel))):
        base = slug(title)
        n = seen.get(base, 0)
        out.add(base if n == 0 else f"{base}-{n}")
        seen[base] = n + 1
    return out


def broken(source_rel, target):
    """Why a link from source_rel to target does not resolve, or None."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
        return None
    path, _, fragment = target.partition("#")
    if path:
        full = os.path.normpath(os.path.join(ROOT, os.path.dirname(source_rel), path))
        if not full.startswith(ROOT + os.sep) and full != ROOT:
            return f"{target}: outside the repository"
        if not os.path.exists(full):
            return f"{target}: no such file"
        rel = os.path.relpath(full, ROOT)
    else:
        rel = source_rel
    if fragment and rel.endswith(".md") and fragment not in anchors(rel):
        return f"{target}: no heading #{fragment} in {rel}"
    return None


def code_files():
    for top in CODE_DIRS:
        base = os.path.join(ROOT, top)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [
                d for d in dirnames
                if d not in ("target", "node_modules", ".venv", "corpus", "artifacts")
            ]
            for name in filenames:
                if name.endswith(CODE_SUFFIXES):
                    yield os.path.relpath(os.path.join(dirpath, name), ROOT)


def layout():
    """The files docs/design.md's Layout section names: each `### \\`DIR/\\``
    subsection lists its files as bullets that start with one or more `NAME`s."""
    text = read(os.path.join("docs", "design.md"))
    start = text.index("\n## Layout\n")
    end = text.find("\n## ", start + 1)
    section = text[start:] if end < 0 else text[start:end]
    named = set()
    directory = None
    for line in section.splitlines():
        m = re.match(r"^### `([^`]+)/`\s*$", line)
        if m:
            directory = m.group(1)
            continue
        if line.startswith("### "):
            directory = None
            continue
        if directory and line.startswith("- `"):
            head = line[2:].split(":", 1)[0]
            for name in re.findall(r"`([^`]+)`", head):
                named.add(f"{directory}/{name}")
    return named


def tree():
    """Every file that must be in the Layout: the sources and the scripts."""
    files = set()
    for top, keep in (("src", (".rs",)), ("scripts", (".sh", ".py"))):
        for dirpath, _, filenames in os.walk(os.path.join(ROOT, top)):
            for name in filenames:
                if name.endswith(keep):
                    files.add(os.path.relpath(os.path.join(dirpath, name), ROOT))
    return files


class Slugs(unittest.TestCase):
    """The anchor rule itself, on headings whose GitHub anchors are known."""

    def test_github_anchors(self):
        self.assertEqual(slug("Compression: `--deflate`"), "compression---deflate")
        self.assertEqual(slug("TLS: wss:// against ws://"), "tls-wss-against-ws")
        self.assertEqual(slug("Under attack: descriptors and memory"),
                         "under-attack-descriptors-and-memory")
        self.assertEqual(slug("Counters: /stats, /metrics and the dashboard"),
                         "counters-stats-metrics-and-the-dashboard")

    def test_repeated_headings_are_numbered(self):
        self.assertEqual(len({"a", "a-1"} & {"a", "a-1", "a-2"}), 2)


class Links(unittest.TestCase):

    def test_relative_links_in_the_documents_resolve(self):
        problems = []
        for rel in documents():
            for target in LINK.findall(without_code(read(rel))):
                why = broken(rel, target)
                if why:
                    problems.append(f"{rel}: {why}")
        self.assertEqual(problems, [], "\n" + "\n".join(problems))

    def test_the_documents_link_to_each_other(self):
        # A check that finds no link at all would pass on anything.
        found = sum(len(LINK.findall(without_code(read(rel)))) for rel in documents())
        self.assertGreater(found, 20)

    def test_code_citations_of_docs_resolve(self):
        problems = []
        cited = 0
        for rel in code_files():
            if rel == os.path.relpath(__file__, ROOT):
                continue  # this file's examples are not citations
            with open(os.path.join(ROOT, rel), encoding="utf-8", errors="replace") as f:
                text = f.read()
            for doc, fragment in CITATION.findall(text):
                cited += 1
                target = os.path.join("docs", doc)
                if not os.path.exists(os.path.join(ROOT, target)):
                    problems.append(f"{rel}: docs/{doc}: no such file")
                elif fragment not in anchors(target):
                    problems.append(f"{rel}: docs/{doc}#{fragment}: no such heading")
        self.assertEqual(problems, [], "\n" + "\n".join(problems))
        self.assertGreater(cited, 0, "no code comment cites docs/*.md#anchor")

    def test_no_comment_cites_design_md(self):
        # DESIGN.md was a reference outside the repository; docs/design.md replaces it.
        citing = []
        for rel in code_files():
            if rel == os.path.relpath(__file__, ROOT):
                continue  # this file names it, to look for it
            with open(os.path.join(ROOT, rel), encoding="utf-8", errors="replace") as f:
                if re.search(r"(?<!docs/)\bDESIGN(\.md)?\b", f.read()):
                    citing.append(rel)
        self.assertEqual(citing, [])


class Layout(unittest.TestCase):

    def test_every_source_and_script_is_in_the_layout(self):
        missing = sorted(tree() - layout())
        self.assertEqual(missing, [], "not in docs/design.md#layout")

    def test_nothing_in_the_layout_is_gone(self):
        gone = sorted(p for p in layout() if not os.path.exists(os.path.join(ROOT, p)))
        self.assertEqual(gone, [], "in docs/design.md#layout but not in the tree")


if __name__ == "__main__":
    unittest.main()

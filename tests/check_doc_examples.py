#!/usr/bin/python3
"""Docs as code: every C++ block (```cpp) in README.md and docs/**/*.md is
checked, so that an API change breaks the docs build.

Two kinds of block:

* An excerpt of an example. Its first line is `// examples/<path>`; the rest
  of the block must appear verbatim in that file, as a run of whole,
  consecutive lines (the whole file, or an excerpt of a long one: to show two
  parts of a file, use two blocks). The examples themselves are compiled by
  the build and run by the tests.

      check_doc_examples.py excerpts SOURCE_DIR

* Any other block is compiled: one translation unit per block, written to
  OUT_DIR as <doc>_<line>.cpp (with #line, so errors point into the .md).
  Without a prelude the block is a whole translation unit, compiled as is.
  A fragment names a prelude in an HTML comment on the line before the fence:

      <!-- doc-prelude: in_task -->
      ```cpp
      co_await grove::sleep(1s);
      ```

  tests/doc_preludes/<name>.hpp is included first. It declares what the
  fragment uses (stand-ins such as `conn`, `urls`, `fetch()`) and says where
  the fragment goes: if it defines DOC_BODY_BEGIN and DOC_BODY_END, the
  fragment goes between them (a function body); otherwise at namespace scope.
  namespace_scope: at namespace scope, with the stand-ins; in_task: the body
  of a grove::task<void> coroutine; in_function: the body of a plain function
  (code that runs a loop itself, as a test does). Add a stand-in to
  namespace_scope.hpp, or a prelude, when a fragment needs one.

      check_doc_examples.py compile SOURCE_DIR OUT_DIR -- COMPILER FLAGS...

  The block's path is appended to COMPILER FLAGS (the caller passes
  -fsyntax-only, -I, warnings).

Blocks fenced sh, cmake, text, json, ... (or with no language) are not
checked: a block that is deliberately not C++ must not be fenced cpp."""
import concurrent.futures
import glob
import os
import re
import subprocess
import sys

CPP_FENCES = {"cpp", "c++", "cxx"}
PRELUDE = re.compile(r"<!--\s*doc-prelude:\s*([\w-]+)\s*-->")
EXCERPT = re.compile(r"// (examples/[\w./-]+\.[ch]pp)")


def markdown_files(root):
    files = [os.path.join(root, "README.md")]
    files += sorted(glob.glob(os.path.join(root, "docs", "**", "*.md"), recursive=True))
    return [f for f in files if os.path.exists(f)]


def cpp_blocks(root, failures):
    """Yields (doc, line of the fence, prelude or None, text) per C++ block."""
    for path in markdown_files(root):
        doc = os.path.relpath(path, root)
        lines = open(path, encoding="utf-8").read().split("\n")
        i = 0
        pending = None  # (line, name) of a doc-prelude comment not yet used
        while i < len(lines):
            m = re.match(r"^(\s*)(`{3,})\s*([^\s`]*)", lines[i])
            c = PRELUDE.search(lines[i])
            if c:
                pending = (i + 1, c.group(1))
            if not m:
                if lines[i].strip() and not c and pending:
                    failures.append(f"{doc}:{pending[0]}: doc-prelude comment not followed by a cpp block")
                    pending = None
                i += 1
                continue
            indent, fence, lang = m.groups()
            start = i
            body = []
            i += 1
            while i < len(lines) and not re.match(rf"^\s*{fence}`*\s*$", lines[i]):
                line = lines[i]
                body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
                i += 1
            if i == len(lines):
                failures.append(f"{doc}:{start + 1}: code block is not closed")
            i += 1
            if lang.lower() in CPP_FENCES:
                yield doc, start + 1, pending[1] if pending else None, "\n".join(body) + "\n"
            elif pending:
                failures.append(f"{doc}:{pending[0]}: doc-prelude comment before a {lang or 'plain'} block")
            pending = None


def check_excerpts(root):
    failures = []
    checked = 0
    for doc, line, prelude, text in list(cpp_blocks(root, failures)):
        first, _, body = text.partition("\n")
        m = EXCERPT.fullmatch(first.strip())
        if not m:
            continue
        checked += 1
        where = f"{doc}:{line}"
        path = os.path.join(root, m.group(1))
        if prelude:
            failures.append(f"{where}: an excerpt of {m.group(1)} takes no doc-prelude")
        elif not os.path.exists(path):
            failures.append(f"{where}: {m.group(1)} does not exist")
        else:
            want = body.rstrip("\n").split("\n")
            have = open(path, encoding="utf-8").read().split("\n")
            if not body.strip() or not any(
                have[k : k + len(want)] == want for k in range(len(have) - len(want) + 1)
            ):
                failures.append(f"{where}: block is not a verbatim run of lines of {m.group(1)}")
    for f in failures:
        print("check_doc_examples:", f)
    print(f"excerpts: {checked} checked, {len(failures)} problems")
    return 1 if failures or not checked else 0


def translation_unit(root, doc, line, prelude, text):
    out = [f"// Generated by tests/check_doc_examples.py from {doc}:{line}; do not edit."]
    if prelude:
        out.append(f'#include "{os.path.join(root, "tests", "doc_preludes", prelude + ".hpp")}"')
        out.append("#ifdef DOC_BODY_BEGIN\nDOC_BODY_BEGIN\n#endif")
    out.append(f'#line {line + 1} "{doc}"')
    out.append(text.rstrip("\n"))
    if prelude:
        out.append("#ifdef DOC_BODY_END\nDOC_BODY_END\n#endif")
    return "\n".join(out) + "\n"


def compile_blocks(root, out_dir, command):
    failures = []
    jobs = []
    os.makedirs(out_dir, exist_ok=True)
    for old in glob.glob(os.path.join(out_dir, "*.cpp")):
        os.remove(old)
    for doc, line, prelude, text in list(cpp_blocks(root, failures)):
        if EXCERPT.fullmatch(text.partition("\n")[0].strip()):
            continue  # an excerpt: check_excerpts' business
        where = f"{doc}:{line}"
        if prelude and not os.path.exists(os.path.join(root, "tests", "doc_preludes", prelude + ".hpp")):
            failures.append(f"{where}: no prelude tests/doc_preludes/{prelude}.hpp")
            continue
        tu = os.path.join(out_dir, re.sub(r"\W", "_", doc) + f"_{line}.cpp")
        with open(tu, "w", encoding="utf-8") as f:
            f.write(translation_unit(root, doc, line, prelude, text))
        jobs.append((where, tu))

    def run(job):
        where, tu = job
        r = subprocess.run(command + [tu], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return where, tu, r

    passed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for where, tu, r in pool.map(run, jobs):
            if r.returncode != 0:
                print(r.stdout, end="")
                failures.append(f"{where}: does not compile ({tu})")
            else:
                passed += 1
                print(f"check_doc_examples: {where}: compiles")
    for f in failures:
        print("check_doc_examples:", f)
    if failures:
        print("compiler:", " ".join(command))
    print(f"blocks: {passed} of {len(jobs)} compile, {len(failures)} problems")
    return 1 if failures or not jobs else 0


def main(argv):
    if len(argv) >= 2 and argv[0] == "excerpts":
        return check_excerpts(os.path.abspath(argv[1]))
    if len(argv) >= 5 and argv[0] == "compile" and argv[3] == "--":
        return compile_blocks(os.path.abspath(argv[1]), argv[2], argv[4:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

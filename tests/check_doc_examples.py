#!/usr/bin/python3
"""Docs as code: every ```cpp block in README.md starts with a line
`// examples/<file>.cpp` and the rest of the block appears, verbatim, in
that file (which CI compiles). Usage: check_doc_examples.py SOURCE_DIR"""
import os
import re
import sys

root = sys.argv[1]
readme = open(os.path.join(root, "README.md")).read()
blocks = re.findall(r"```cpp\n(.*?)```", readme, re.S)
failures = []
for b in blocks:
    first, _, body = b.partition("\n")
    m = re.fullmatch(r"// (examples/[\w./-]+\.cpp)", first.strip())
    if not m:
        failures.append(f"README block does not name its file: {first!r}")
        continue
    path = os.path.join(root, m.group(1))
    if not os.path.exists(path):
        failures.append(f"{m.group(1)} does not exist")
    elif body not in open(path).read():
        failures.append(f"README block is not verbatim in {m.group(1)}")
for f in failures:
    print("check_doc_examples:", f)
print(f"{len(blocks) - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures or not blocks else 0)

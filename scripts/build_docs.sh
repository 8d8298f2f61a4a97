#!/usr/bin/env bash
# Build the documentation site with warnings as errors: bash scripts/build_docs.sh [--site-dir DIR]
#
# Offline: no inventories, no web fonts, notebooks rendered as stored (not executed).
# Needs the docs extra: pip install -e ".[docs]".
# A page named in mkdocs.yml's nav but absent fails the build; DOCS_ALLOW_MISSING=1 builds with an
# in-memory placeholder for each (see scripts/mkdocs_hooks.py). Every public module (with a docstring) of
# stimuli, rsa_bridge, extractors and analyses must have a `::: module` entry in docs/api/*.md.
set -euo pipefail
cd "$(dirname "$0")/.."
site_dir=site
if [ "${1:-}" = "--site-dir" ]; then site_dir=$2; fi
if ! python -c "import mkdocs, mkdocstrings_handlers.python, mkdocs_jupyter, material, latex2mathml" 2>/dev/null; then
  echo "build_docs: the docs tools are missing; install them with: pip install -e \".[docs]\"" >&2
  exit 2
fi
export NO_MKDOCS_2_WARNING=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
start=$SECONDS
# README.md is outside the site: check that its relative links point at files that exist
python - <<'PY'
import os, re, sys
from pathlib import Path
allow = os.environ.get("DOCS_ALLOW_MISSING") == "1"
bad = []
for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", Path("README.md").read_text(encoding="utf-8")):
    if re.match(r"^[a-z]+:", target) or Path(target).exists():
        continue
    if allow and target.startswith("docs/"):
        print(f"build_docs: README links to {target}, absent here (DOCS_ALLOW_MISSING=1)", file=sys.stderr)
        continue
    bad.append(target)
if bad:
    sys.exit("build_docs: README.md links to files that do not exist: " + ", ".join(bad))
PY
# every public module with a docstring has a `::: module` entry in docs/api/*.md
python - <<'PY'
import ast, re, sys
from pathlib import Path
listed = {m for f in Path("docs/api").glob("*.md")
          for m in re.findall(r"^:::\s+([\w.]+)", f.read_text(encoding="utf-8"), flags=re.M)}
missing = []
for package in ("stimuli", "rsa_bridge", "extractors", "analyses"):
    for path in sorted(Path(package).rglob("*.py")):
        parts = path.with_suffix("").parts
        parts = parts[:-1] if parts[-1] == "__init__" else parts
        if any(p.startswith("_") for p in parts) or "tests" in parts:
            continue
        if ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) is None:
            continue  # an empty package __init__ has nothing to show
        if ".".join(parts) not in listed:
            missing.append(".".join(parts))
if missing:
    sys.exit("build_docs: public modules missing from docs/api/*.md (add a `::: module` line): " + ", ".join(missing))
PY
python -m mkdocs build --strict --clean --site-dir "$site_dir"
echo "docs: built into $site_dir/ in $((SECONDS - start)) s"

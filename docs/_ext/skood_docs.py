"""skood's own Sphinx glue (loaded by docs/conf.py).

- Generated reports pulled into pages with ``{include}`` (``results/*/results.md``
  written by ``skood benchmark``, ``perf/*.md`` by benchmarks/step_cost.py) are
  tidied as they are read, so that a rerun of the benchmark needs no hand edits:
  their title line is dropped (the page has its own headings), the command they
  record becomes a code block (as plain text, ``--models`` would be typeset as an
  en-dash), a table column that is ``n/a`` in every row (peak memory, CUDA
  only, in a CPU run) is dropped, ``PER_SET_MARKER`` separates a benchmark
  report's summary from its per-OOD-set tables, and the report's own figures
  section is dropped (its image paths are relative to the report's folder, not
  to the including page, which shows the figures it picks itself); its other
  ``## `` headings (Summary, Tables) become bold lines, so that the page's own
  sections stay its outline.
- The headline figure (FPR95 per method, near and far OOD data) is drawn from
  ``results/*/results.csv`` by benchmarks/headline_figure.py at every build, into
  ``_generated/`` (gitignored).
- Cross-references into a project whose intersphinx inventory is not there
  (docs/_intersphinx/*.inv missing) become plain text instead of warnings, so the
  build with -W degrades to unlinked names rather than failing.
"""
import importlib.util
import re
from pathlib import Path

from docutils import nodes

EXTERNAL_PROJECTS = ("python", "numpy", "sklearn", "torch", "skorch")
#: examples shown in the gallery but not run by the build: they need data CI may lack, or
#: minutes of CPU; each one states its expected output in its text (conf.py reads this)
NOT_EXECUTED = ["fashion_cnn.py"]
#: the gallery's first example
FIRST_EXAMPLE = "quickstart.py"


class ExampleOrder:
    """sphinx-gallery's ``within_subsection_order``: :data:`FIRST_EXAMPLE` first, then the
    examples the build runs by file name, and last those it does not run."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        name = Path(filename).name
        return (name in NOT_EXECUTED, name != FIRST_EXAMPLE, name)

    def __repr__(self):         # sphinx-gallery compares the configuration through repr
        return f"<{type(self).__name__}>"
_COMMAND = re.compile(r"^(?P<before>.*?\b[Cc]ommand:) `?(?P<command>[^`\n]+?)`?\s*$")


#: put before the first per-OOD-set table of a benchmark report, so that a page can include
#: the summary (``:end-before:``) and the per-set tables (``:start-after:``) apart
PER_SET_MARKER = "<!-- per OOD set -->"
#: the heading of a per-OOD-set table: ``OOD set **name**:`` or, since the reports name
#: the set's group, ``OOD set **name** (near):`` / ``(far):``
_FIGURES = re.compile(r"^## Figures\b")
_PER_SET = re.compile(r"^OOD set \*\*(?P<name>.+?)\*\*(?: \((?:near|far)\))?:\s*$")


def tidy_report(text):
    """The generated markdown report ``text`` with the command as a code block, without
    its ``# title`` line, without table columns that are ``n/a`` in every row and
    without its ``## Figures`` section (to the end: a benchmark report's last); other
    ``## `` headings become bold lines."""
    lines = text.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    out = []
    for line in lines:
        if _FIGURES.match(line):
            break
        if line.startswith("## "):
            out.append(f"**{line[3:].strip()}**")
            continue
        match = _COMMAND.match(line)
        if match and not line.startswith("|"):
            out += [match["before"], "", "```bash", wrap_command(match["command"]), "```"]
        elif _PER_SET.match(line) and PER_SET_MARKER not in out:
            out += [PER_SET_MARKER, "", line]
        else:
            out.append(line)
    return "\n".join(_drop_empty_columns(out)) + "\n"


def wrap_command(command, width=88):
    """``command`` on lines of at most ``width`` characters (where it can be), broken before
    an option with shell line continuations, so that a code block needs no scrolling."""
    lines = []
    for word in command.split(" "):
        if lines and word.startswith("-") and len(lines[-1]) + 1 + len(word) > width - 2:
            lines.append("    " + word)
        elif lines:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return " \\\n".join(lines)


def _cells(line):
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _drop_empty_columns(lines):
    """Drop, in each markdown table, the columns whose body cells are all ``n/a``."""
    out, i = [], 0
    while i < len(lines):
        if not lines[i].lstrip().startswith("|"):
            out.append(lines[i])
            i += 1
            continue
        j = i
        while j < len(lines) and lines[j].lstrip().startswith("|"):
            j += 1
        table = [_cells(line) for line in lines[i:j]]
        body = table[2:]
        keep = [k for k in range(len(table[0]))
                if not body or not all(k < len(row) and row[k] == "n/a" for row in body)]
        out += ["| " + " | ".join(row[k] for k in keep if k < len(row)) + " |" for row in table]
        i = j
    return out


def include_read(app, relative_path, parent_docname, content):
    path = Path(relative_path).as_posix()
    if re.fullmatch(r"(results/[^/]+/results|perf/[^/]+)\.md", path):
        content[0] = tidy_report(content[0])


def write_headline_figure(app):
    script = Path(app.srcdir).parent / "benchmarks" / "headline_figure.py"
    spec = importlib.util.spec_from_file_location("headline_figure", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.write_figure(Path(app.srcdir) / "results",
                        Path(app.srcdir) / "_generated" / "fpr95_near_far.png")


def missing_reference(app, env, node, contnode):
    """Plain text for a reference into an external project whose inventory is absent."""
    target = node.get("reftarget", "")
    prefix = target.split(":", 1)[0] if ":" in target else None
    loaded = set(app.config.intersphinx_mapping)
    if prefix in EXTERNAL_PROJECTS and prefix not in loaded:
        return contnode if node.get("refexplicit") else nodes.literal(
            text=target.split(":", 1)[1])
    return None


def setup(app):
    app.connect("include-read", include_read)
    app.connect("builder-inited", write_headline_figure)
    # after intersphinx (priority 500): only what it could not resolve gets here
    app.connect("missing-reference", missing_reference, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

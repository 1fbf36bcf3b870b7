"""The report's answer where users look: the console's last lines and the sweep's parent run.

- :func:`answer_lines`: the lines of the ``## Answer`` section of ``summary.md``, which a
  sweep's console ends with (:mod:`reglab.sweeps.callbacks`).
- :func:`publish_to_parent`: the Answer as the parent run's description (the tag
  ``mlflow.note.content``, which the MLflow UI renders as markdown on the run page) and the
  whole report as one standalone page, ``report/report.html``, its figures inline (the MLflow
  artifact viewer shows an HTML artifact without the files beside it).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from markdown import markdown as render_markdown

ANSWER_HEADING = "## Answer"
NOTE_TAG = "mlflow.note.content"  # the run's description in the MLflow UI
NOTE_CHARS = 8000  # MLflow's longest tag value
NO_ANSWER = "None: the report has no Answer section (nothing to compare)."
CUT = "\n\n(the rest of the Answer is in the report)"
PAGE = "report.html"
ARTIFACT_PATH = "report"
STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; line-height: 1.45; color: #1f2328; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; }
th { background: #f6f8fa; }
code { background: #f6f8fa; padding: 0 3px; }
img { max-width: 100%; }
"""


def answer_lines(markdown: str) -> list[str]:
    """The non-blank lines of the ``## Answer`` section of a report's ``summary.md`` (after its
    heading, up to the next ``## `` heading); none when the report has no Answer (a sweep of
    one configuration compares nothing)."""
    return [line for line in _answer_section(markdown) if line.strip()]


def _answer_section(markdown: str) -> list[str]:
    """The ``## Answer`` section's lines as written (blank lines kept), without its heading."""
    lines = markdown.splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if line.strip() == ANSWER_HEADING), None)
    if start is None:
        return []
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    return lines[start:end]


def publish_to_parent(client, parent_run_id: str, directory: Path, markdown: str, files: list[str]) -> None:
    """Write ``directory / report.html`` (``markdown``, the text of ``summary.md``, as one page
    with the PNG figures among ``files`` embedded), log it to the run ``parent_run_id`` under
    ``report/`` and make the Answer that run's description (``client``: an ``MlflowClient``)."""
    page = Path(directory) / PAGE
    page.write_text(report_page(markdown, Path(directory), files), encoding="utf-8")
    client.log_artifact(parent_run_id, str(page), artifact_path=ARTIFACT_PATH)
    client.set_tag(parent_run_id, NOTE_TAG, note(markdown, Path(directory)))


def note(markdown: str, directory: Path) -> str:
    """The parent run's description: a first line naming the whole report (the UI shows a
    description's first lines, the rest behind "Show more"), then the Answer section as
    markdown; an Answer too long for MLflow's tag limit is cut at a line, the rest left to
    the report."""
    answer = "\n".join(_answer_section(markdown)).strip() or NO_ANSWER
    report = f"`{ARTIFACT_PATH}/{PAGE}` in Artifacts, and `{directory}`"
    first = f"**Answer** of this sweep (the whole report: {report})"
    room = NOTE_CHARS - len(first) - len(CUT) - 2
    if len(answer) > room:
        answer = answer[:room].rsplit("\n", 1)[0] + CUT
    return f"{first}\n\n{answer}"


def report_page(markdown: str, directory: Path, files: list[str]) -> str:
    """``markdown`` as a standalone HTML page (tables rendered); each PNG of ``files`` (in
    ``directory``) is embedded as a ``data:`` URI where the text shows it, else at the end."""
    body = render_markdown(markdown, extensions=["tables"])
    for name in (f for f in files if f.endswith(".png")):
        encoded = base64.b64encode((directory / name).read_bytes()).decode("ascii")
        source = f'src="data:image/png;base64,{encoded}"'
        reference = f'src="{html.escape(name)}"'
        if reference in body:
            body = body.replace(reference, source)
        else:
            body += f'\n<p><img alt="{html.escape(name)}" {source} /></p>'
    title = next((line[2:] for line in markdown.splitlines() if line.startswith("# ")), "reglab report")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )

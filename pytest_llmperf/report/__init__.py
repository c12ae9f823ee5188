"""Reports on results.json: self-contained HTML with plots, a Markdown summary
for CI job pages, and a JSON diff against a baseline run or baselines folder.

``build_report`` loads and compares; ``write_report`` renders the three files.
matplotlib is imported only when plots are drawn.
"""

from .build import Report, ReportFiles, build_report, write_report

__all__ = ["Report", "ReportFiles", "build_report", "write_report"]

"""Reports are a pure function of results/<run-id>/: nothing is measured at report time.

python -m harness.report results/<run-id>                          # -> reports/<run-id>/index.html
python -m harness.report results/<a> --compare results/<b>         # two runs side by side
python -m harness.report results/<run-id> --claims my-claims.yaml  # more claims for the ledger

data (records -> table) -> facts (questions asked of it) -> figures/, crossovers, ledger/,
summary, compare -> render (jinja2, templates/) -> one self-contained index.html.
"""

from harness.report.render import render

__all__ = ["render"]

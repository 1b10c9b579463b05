"""Reports are a pure function of results/<run-id>/: nothing is measured at report time.

python -m harness.report results/<run-id>            # -> reports/<run-id>/index.html
"""

from harness.report.render import render

__all__ = ["render"]

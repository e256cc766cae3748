"""The microscope tests share tests/viz/chromium_cdp.py (the browser driver) with the figure tests."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "viz"))

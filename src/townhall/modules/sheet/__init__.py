"""Sheets app (seed 000): workbooks edited together in the browser, formulas on both sides."""

"""Tests of the Sheets app."""

"""Exports of registry tables: CSV now, PDF with a later issue."""

"""The interchange file format: CSV and XLSX files with the columns of DESIGN.md."""

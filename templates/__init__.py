"""Jinja2 templates, CSS and JS of the HTML report (shipped in the wheel as pkgreport.templates)."""

"""What a user reads after a run: summary.json (headline figures) and the HTML report."""

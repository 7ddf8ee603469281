"""Report writers: the engine-agnostic model, the Excel workbook, the HTML report and the JSON summary."""

"""Excel due diligence checklists: templates, the workbook writer and the upload reader."""

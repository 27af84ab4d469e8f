"""Training: the shared loop (run), settings (config), logs, and one module per trainer."""

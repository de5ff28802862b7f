"""Dataset card templates (Jinja), shipped inside the package as `ssl4rl_data.cards`."""

"""One package per paper: ``model.py`` (the paper's idea), ``experiment.py`` (claims,
presets, the measuring run) and ``README.md`` (the paper's numbers beside ours)."""

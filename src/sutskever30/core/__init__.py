"""The shared, boring parts: config and presets, the run loop, results and claims, plots,
checkpoints, seeding and devices."""

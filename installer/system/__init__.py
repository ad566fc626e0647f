"""An installed system: configuring a new deployment, and updating or rolling back a disk."""

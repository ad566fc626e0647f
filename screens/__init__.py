"""The Textual screens of the interactive installer; they drive `installer` and nothing else."""

"""Container images: references, fetching with skopeo, OCI layouts and inspection."""

"""The composefs core: fs-verity digests, streaming layer application, dumps, object store."""

"""The composefs core: fs-verity digests, streaming layer application, dumps, object store.

Public entry points (DESIGN 3.2 and 4):
- `deploy.deploy_layers(root, layers, origin=...)`: the engine's hot path, a generator of events
  that returns a `deploy.Deployment`, published, or staged (`publish_now=False`) for the caller
  to finish and `deploy.publish` (or `deploy.discard`);
- `deploy.scan_layers(layers, keep=..., root=...)`: the merged tree without writing anything
  (inspect, the boot-support check); layers `from_record` are replayed from `root`'s records;
- `records.usable(root, diff_id)`: whether a layer can be rebuilt without fetching it;
- `tree.Tree`: the merged tree, a `TreeView` (`get`, `resolve`, `walk`, `open`, `read_bytes`...);
- `repo.Repository`, `fsverity.FsVerityHasher`, `fsverity.fsverity_digest_file`,
  `dump.write_dump`.
"""

"""The live installer medium's side of obelisk: what the boot menu chose, where the answer file
is, and the sessions the live system's service and consoles run (`obelisk live ...`)."""

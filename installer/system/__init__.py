"""An installed system: configuring a new deployment, and updating or rolling back a disk.

`configure` runs the steps on a new deployment in order (`settings`, `accounts`, `homes`, post
commands); `installed` opens an installed disk, updates it (carrying `/etc` over with
`etcmerge`) and rolls it back. Every path on the physical root is `installer.sysroot`'s.
"""

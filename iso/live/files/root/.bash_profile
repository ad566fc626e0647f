# obelisk live: each console's first login runs the session the boot menu chose (the installer,
# rescue, or nothing for "Shell"); leaving it, or a failed unattended install, leaves this shell.
[ -f ~/.bashrc ] && . ~/.bashrc
if [ -z "${OBELISK_LIVE_SESSION-}" ]; then
	export OBELISK_LIVE_SESSION=1
	obelisk live console
fi

#!/bin/sh
# Claude Code SessionStart hook of the faber-db plugin: when no faber-db binary of the plugin's
# version is ready, start building one in the background (one build at a time, its log in the
# plugin's data directory) and return at once, with a note for the user and the agent. Never
# blocks nor fails the session: the work is bin/faber-db's, in its "prepare" mode.
root=$(cd -P -- "$(dirname -- "$0")/.." && pwd)
FABER_DB_LAUNCHER_MODE=prepare sh "$root/bin/faber-db" </dev/null
exit 0

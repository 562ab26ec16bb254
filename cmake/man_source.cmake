# Turns docs/cli.md into go-md2man's input: a title block and a NAME
# section first, so `man squirrel` reads as a man page. Run with
# -DIN=<cli.md> -DOUT=<file> -DVERSION=<version>.
file(READ "${IN}" body)
string(REGEX REPLACE "^# [^\n]*\n" "" body "${body}")
file(WRITE "${OUT}" "% squirrel 1 \"\" \"squirrel ${VERSION}\" \"squirrel manual\"\n\n# NAME\n\nsquirrel - keep files safe across machines, disks and destinations, and prove it\n\n# DESCRIPTION\n${body}")

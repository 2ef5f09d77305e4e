#!/bin/sh
# Write the configuration reference doc/config.md from the schema, as
# printed by `mox config describe-static` and `describe-domains`.
# Usage: tools/gen-config-doc.sh path/to/mox > doc/config.md
set -eu
mox=${1:?usage: gen-config-doc.sh path/to/mox}
cat <<'HDR'
# Configuration reference

mox-c reads two files in one directory: `mox.conf` (static; read at start)
and `domains.conf` (domains, accounts and other dynamic settings; reloaded
when it changes, without a restart). Both are in sconf format: keys and
values separated by ": ", one tab of indent per level, lists as "- item"
lines, comments on their own lines starting with #. `mox config test`
checks both files and names file, line and field of every problem.

This reference is generated from the schema (`tools/gen-config-doc.sh`);
`mox config describe-static` and `mox config describe-domains` print the
same text. Our additions to mox's schema are `DNSResolvers`,
`WorkerPoolSize` and `Limits` in mox.conf.

## mox.conf

```
HDR
"$mox" config describe-static
cat <<'MID'
```

## domains.conf

```
MID
"$mox" config describe-domains
echo '```'

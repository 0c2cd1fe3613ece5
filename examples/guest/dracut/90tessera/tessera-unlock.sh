#!/bin/sh
# Runs in dracut's initqueue once devices settled: open every device named in TESSERA_DEVICES
# (space-separated) with the key the broker releases to this measured guest.
. /etc/tessera/unlock.env
for dev in $TESSERA_DEVICES; do
    name="luks-$(basename "$dev")"
    [ -e "/dev/mapper/$name" ] && continue
    tessera guest unlock-luks "$dev" --url "$TESSERA_URL" --resource "$TESSERA_RESOURCE" \
        ${TESSERA_CACERT:+--cacert "$TESSERA_CACERT"} --name "$name" ||
        warn "tessera: $dev not unlocked"
done

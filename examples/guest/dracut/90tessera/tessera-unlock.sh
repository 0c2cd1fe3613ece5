#!/bin/sh
# Runs in dracut's initqueue once devices settled: open every device named in TESSERA_DEVICES
# (space-separated) with the key the broker releases to this measured guest.
. /etc/tessera/unlock.env
# Evidence comes from configfs-tsm (/sys/kernel/config/tsm/report): load the guest drivers and
# mount configfs when nothing did yet.
modprobe -q tsm 2>/dev/null
modprobe -q sev-guest 2>/dev/null || modprobe -q tdx-guest 2>/dev/null
[ -d /sys/kernel/config/tsm ] || mount -t configfs configfs /sys/kernel/config 2>/dev/null
for dev in $TESSERA_DEVICES; do
    # The name unlock-luks gives it by default: luks-VALUE for a UUID=/LABEL=/PART*= tag (plain
    # values: unlock-luks escapes others as udev does), else luks- and the file name.
    case $dev in
    *=*) name="luks-${dev#*=}" ;;
    *) name="luks-$(basename "$dev")" ;;
    esac
    [ -e "/dev/mapper/$name" ] && continue
    tessera guest unlock-luks "$dev" --url "$TESSERA_URL" --resource "$TESSERA_RESOURCE" \
        ${TESSERA_CACERT:+--cacert "$TESSERA_CACERT"} --name "$name" ||
        warn "tessera: $dev not unlocked"
done

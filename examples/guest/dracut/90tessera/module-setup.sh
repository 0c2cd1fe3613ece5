#!/bin/bash
# dracut module: unlock the LUKS root (or any LUKS device) in the initramfs with a key released
# by attestation. Install: copy this folder to /usr/lib/dracut/modules.d/90tessera, put the
# settings in /etc/tessera/unlock.env, then `dracut -f`.

check() {
    require_binaries tessera cryptsetup || return 1
    return 255
}

depends() {
    echo crypt network
}

install() {
    inst_multiple tessera cryptsetup
    inst_simple /etc/tessera/unlock.env
    [[ -f /etc/tessera/kbs-ca.pem ]] && inst_simple /etc/tessera/kbs-ca.pem
    inst_hook initqueue/settled 90 "$moddir/tessera-unlock.sh"
}

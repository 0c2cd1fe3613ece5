#!/bin/bash
# dracut module: unlock the LUKS root (or any LUKS device) in the initramfs with a key released
# by attestation. Install: copy this folder to /usr/lib/dracut/modules.d/90tessera, put the
# settings in /etc/tessera/unlock.env, then `dracut -f`. The network must come up in the
# initramfs: add `rd.neednet=1` (and `ip=dhcp` or your `ip=` setting) to the kernel command line.

check() {
    require_binaries tessera cryptsetup || return 1
    return 255
}

depends() {
    echo crypt network
}

installkernel() {
    # The evidence interfaces, when they are modules: configfs-tsm and the guest drivers.
    hostonly='' instmods tsm sev-guest tdx-guest
}

install() {
    inst_multiple tessera cryptsetup
    inst_simple /etc/tessera/unlock.env
    [[ -f /etc/tessera/kbs-ca.pem ]] && inst_simple /etc/tessera/kbs-ca.pem
    inst_hook initqueue/settled 90 "$moddir/tessera-unlock.sh"
}

package tessera

/*
#include "tessera.h"
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// goEvidence is the C evidence callback: it finds the Go EvidenceFunc through the cgo.Handle in
// userdata and hands its evidence to the C buffer. A panic of the EvidenceFunc is recovered
// here and kept in the call, never unwound through the C and Rust frames below (undefined
// behaviour, tessera.h says); FetchSecret raises it again once the C call has returned.
//
//export goEvidence
func goEvidence(userdata unsafe.Pointer, reportData *C.uint8_t, reportDataLen C.size_t, buffer *C.tessera_evidence_buffer) (rc C.int) {
	h := cgo.Handle(*(*C.uintptr_t)(userdata))
	call, ok := h.Value().(*evidenceCall)
	if !ok {
		return 1
	}
	// Whether fn returned: recover() alone misses panic(nil) under go.mod's go 1.19.
	returned := false
	defer func() {
		if returned {
			return
		}
		call.panicked, call.didPanic = recover(), true
		rc = 4
	}()
	out, err := call.fn(C.GoBytes(unsafe.Pointer(reportData), C.int(reportDataLen)))
	returned = true
	if err != nil || len(out) == 0 {
		return 2
	}
	if C.tessera_evidence_buffer_set(buffer, (*C.uint8_t)(unsafe.Pointer(&out[0])), C.size_t(len(out))) != 0 {
		return 3
	}
	return 0
}

// evidenceCall is what the callback's handle holds: the function, and what it panicked with.
type evidenceCall struct {
	fn       EvidenceFunc
	didPanic bool
	panicked any
}

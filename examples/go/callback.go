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
// userdata and hands its evidence to the C buffer.
//
//export goEvidence
func goEvidence(userdata unsafe.Pointer, reportData *C.uint8_t, reportDataLen C.size_t, buffer *C.tessera_evidence_buffer) C.int {
	h := cgo.Handle(*(*C.uintptr_t)(userdata))
	evidence, ok := h.Value().(EvidenceFunc)
	if !ok {
		return 1
	}
	out, err := evidence(C.GoBytes(unsafe.Pointer(reportData), C.int(reportDataLen)))
	if err != nil || len(out) == 0 {
		return 2
	}
	if C.tessera_evidence_buffer_set(buffer, (*C.uint8_t)(unsafe.Pointer(&out[0])), C.size_t(len(out))) != 0 {
		return 3
	}
	return 0
}

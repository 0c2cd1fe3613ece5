// Package tessera is a cgo binding of Tessera's C API (libtessera_ffi, tessera.h): verify
// SEV-SNP and TDX/SGX evidence, decode it, and fetch a secret from a key broker with evidence
// from a Go callback.
//
// Build against the library with pkg-config (see the repository README, "C API"):
//
//	PKG_CONFIG_PATH=/usr/local/lib/pkgconfig go build
package tessera

/*
#cgo pkg-config: tessera
#include <stdlib.h>
#include "tessera.h"

extern int goEvidence(void *userdata, uint8_t *report_data, size_t report_data_len, tessera_evidence_buffer *evidence);

static int evidence_trampoline(void *userdata, const uint8_t *report_data, size_t report_data_len, tessera_evidence_buffer *evidence) {
	return goEvidence(userdata, (uint8_t *)report_data, report_data_len, evidence);
}

static tessera_result get_secret(const tessera_client *client, const char *tee, const char *resource, void *userdata, char *message, size_t message_len, tessera_secret **out) {
	return tessera_client_get_secret(client, tee, resource, NULL, evidence_trampoline, userdata, message, message_len, out);
}
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime/cgo"
	"time"
	"unsafe"
)

// Result codes of the C API used by callers of this package (see tessera.h for all).
const (
	ResultOK             = 0
	ResultVerifySNP      = 300
	ResultPolicyInvalid  = 400
	ResultPolicyRejected = 401
	ResultNotAppraised   = 402
	ResultBrokerDenied   = 602
)

// Verdict is a verification's verdict (tessera_verdict).
type Verdict uint32

const (
	// VerdictRejected: the evidence did not verify, or the policy was invalid or rejected it.
	VerdictRejected Verdict = C.TESSERA_VERDICT_REJECTED
	// VerdictAccepted: the evidence verified and the policy given passed. The only yes.
	VerdictAccepted Verdict = C.TESSERA_VERDICT_ACCEPTED
	// VerdictVerifiedUnappraised: the evidence verified, but no policy was given
	// (VerifyUnappraised): nothing it reports (debug mode, measurement, TCB) was appraised.
	VerdictVerifiedUnappraised Verdict = C.TESSERA_VERDICT_VERIFIED_UNAPPRAISED
)

func (v Verdict) String() string {
	switch v {
	case VerdictAccepted:
		return "accepted"
	case VerdictVerifiedUnappraised:
		return "verified-unappraised"
	default:
		return "rejected"
	}
}

// Error is a failed call: the C API's result code, its name and a message.
type Error struct {
	Code    uint32
	Name    string
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("tessera: %s (%d)", e.Name, e.Code)
	}
	return fmt.Sprintf("tessera: %s (%d): %s", e.Name, e.Code, e.Message)
}

func newError(code C.tessera_result, message string) error {
	name := C.tessera_result_name(C.uint32_t(code))
	e := &Error{Code: uint32(code), Message: message}
	if name != nil {
		e.Name = C.GoString(name)
	}
	return e
}

// Version is the C library's version.
func Version() string { return C.GoString(C.tessera_version()) }

func bytesPtr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0]))
}

// Verifier verifies evidence; safe for concurrent use. Close it when done.
type Verifier struct {
	p *C.tessera_verifier
}

// NewVerifier makes a verifier with the vendors' embedded roots and the given certificates
// (VCEKs, VLEKs, ASKs: DER or PEM) as endorsements.
func NewVerifier(certificates ...[]byte) (*Verifier, error) {
	var e *C.tessera_endorsements
	if rc := C.tessera_endorsements_new(&e); rc != 0 {
		return nil, newError(rc, "")
	}
	defer C.tessera_endorsements_free(e)
	for _, c := range certificates {
		if rc := C.tessera_endorsements_add_certificates(e, bytesPtr(c), C.size_t(len(c))); rc != 0 {
			return nil, newError(rc, "")
		}
	}
	var b *C.tessera_verifier_builder
	if rc := C.tessera_verifier_builder_new(&b); rc != 0 {
		return nil, newError(rc, "")
	}
	defer C.tessera_verifier_builder_free(b)
	if rc := C.tessera_verifier_builder_add_endorsements(b, e); rc != 0 {
		return nil, newError(rc, "")
	}
	v := &Verifier{}
	if rc := C.tessera_verifier_builder_build(b, &v.p); rc != 0 {
		return nil, newError(rc, "")
	}
	return v, nil
}

// Close frees the verifier.
func (v *Verifier) Close() {
	C.tessera_verifier_free(v.p)
	v.p = nil
}

// Result is a verification's outcome.
type Result struct {
	// Accepted is the one yes: the evidence verified AND the policy given passed. Never true
	// for VerifyUnappraised.
	Accepted bool
	// Verified says the evidence is authentic (signature, certificate chain, TCB checks),
	// whatever the policy said (true also when the policy rejected it). On its own it accepts
	// nothing: a debug guest running any measurement verifies.
	Verified bool
	// Verdict is VerdictAccepted, VerdictVerifiedUnappraised or VerdictRejected.
	Verdict      Verdict
	Code         uint32 // 0 only when accepted; 402 verified with no policy; else 2xx evidence, 3xx verification, 4xx policy
	Tee          string // snp, tdx, sgx or "" when unknown
	FailedCheck  string
	Message      string
	TcbStatus    string // TDX/SGX: Intel's status
	Claims       string // JSON
	Verification string // JSON
	Appraisal    string // JSON, with a policy
}

func goString(s *C.char) string {
	if s == nil {
		return ""
	}
	return C.GoString(s)
}

// Verify verifies evidence (any form) at time at and appraises it against policy (TOML or
// JSON). The policy is always given to the C API, an empty string included: an empty policy
// (an empty or unread file) is an invalid policy, never "no policy". Every byte of it is
// read: a NUL byte makes it an invalid policy, never a shorter one. Use VerifyUnappraised to
// verify without a policy.
//
// The error is for unusable arguments and for an invalid policy (an *Error with Code
// ResultPolicyInvalid); a rejection of the evidence is a Result with Accepted false.
func (v *Verifier) Verify(evidence []byte, at time.Time, policy string) (*Result, error) {
	// The policy's bytes and their length. Never (NULL, 0), which is no policy: C.CBytes
	// allocates with cgo's malloc, which never returns NULL, also for "" (an empty policy).
	cPolicy := C.CBytes([]byte(policy))
	defer C.free(cPolicy)
	r, err := v.verify(evidence, at, (*C.uint8_t)(cPolicy), C.size_t(len(policy)))
	if err == nil && r.Code == ResultPolicyInvalid {
		return nil, newError(C.tessera_result(r.Code), r.Message)
	}
	return r, err
}

// VerifyUnappraised verifies evidence at time at with no policy: it says whether the evidence
// is authentic (Result.Verified, Verdict VerdictVerifiedUnappraised), never that it is
// acceptable: Result.Accepted is always false, since nothing the evidence reports (debug mode,
// measurement, TCB) was appraised.
func (v *Verifier) VerifyUnappraised(evidence []byte, at time.Time) (*Result, error) {
	return v.verify(evidence, at, nil, 0)
}

func (v *Verifier) verify(evidence []byte, at time.Time, policy *C.uint8_t, policyLen C.size_t) (*Result, error) {
	if v.p == nil {
		return nil, errors.New("tessera: verifier closed")
	}
	var r *C.tessera_verification
	rc := C.tessera_verifier_verify(v.p, bytesPtr(evidence), C.size_t(len(evidence)), nil, C.int64_t(at.Unix()), policy, policyLen, &r)
	if rc != 0 {
		return nil, newError(rc, "")
	}
	defer C.tessera_verification_free(r)
	tees := map[C.tessera_tee]string{C.TESSERA_TEE_SNP: "snp", C.TESSERA_TEE_TDX: "tdx", C.TESSERA_TEE_SGX: "sgx"}
	verdict := Verdict(C.tessera_verification_verdict(r))
	return &Result{
		Accepted:     verdict == VerdictAccepted,
		Verified:     C.tessera_verification_claims_json(r) != nil, // claims only from verified evidence
		Verdict:      verdict,
		Code:         uint32(C.tessera_verification_result(r)),
		Tee:          tees[C.tessera_verification_tee(r)],
		FailedCheck:  goString(C.tessera_verification_failed_check(r)),
		Message:      goString(C.tessera_verification_message(r)),
		TcbStatus:    goString(C.tessera_verification_tcb_status(r)),
		Claims:       goString(C.tessera_verification_claims_json(r)),
		Verification: goString(C.tessera_verification_verification_json(r)),
		Appraisal:    goString(C.tessera_verification_appraisal_json(r)),
	}, nil
}

// Decode decodes evidence without verifying it: the JSON of `tessera show --json`.
func Decode(evidence []byte) (string, error) {
	var d *C.tessera_decoded
	if rc := C.tessera_decode(bytesPtr(evidence), C.size_t(len(evidence)), &d); rc != 0 {
		return "", newError(rc, "")
	}
	defer C.tessera_decoded_free(d)
	if rc := C.tessera_decoded_result(d); rc != 0 {
		return "", newError(rc, goString(C.tessera_decoded_message(d)))
	}
	return goString(C.tessera_decoded_json(d)), nil
}

// EvidenceFunc returns evidence (raw bytes or KBS evidence JSON) carrying reportData (64 bytes).
type EvidenceFunc func(reportData []byte) ([]byte, error)

// FetchSecret attests to the broker at url with evidence from evidence and returns the secret
// at resource (repo/type/tag). handshakeAttempts 0 means the default (5, one second apart).
// When evidence panics, FetchSecret panics with the same value after the C call returned.
func FetchSecret(url, tee, resource string, handshakeAttempts uint32, evidence EvidenceFunc) ([]byte, error) {
	cURL := C.CString(url)
	defer C.free(unsafe.Pointer(cURL))
	var client *C.tessera_client
	if rc := C.tessera_client_new(cURL, nil, 0, C.uint32_t(handshakeAttempts), &client); rc != 0 {
		return nil, newError(rc, "")
	}
	defer C.tessera_client_free(client)

	cTee, cResource := C.CString(tee), C.CString(resource)
	defer C.free(unsafe.Pointer(cTee))
	defer C.free(unsafe.Pointer(cResource))
	// The callback travels as a cgo.Handle stored in C memory (Go pointers may not be kept by C).
	call := &evidenceCall{fn: evidence}
	h := cgo.NewHandle(call)
	defer h.Delete()
	userdata := C.malloc(C.size_t(unsafe.Sizeof(C.uintptr_t(0))))
	defer C.free(userdata)
	*(*C.uintptr_t)(userdata) = C.uintptr_t(h)

	var message [512]C.char
	var secret *C.tessera_secret
	rc := C.get_secret(client, cTee, cResource, userdata, &message[0], C.size_t(len(message)), &secret)
	if call.didPanic {
		// The callback panicked; the C call has returned (refused), so the panic goes on here.
		if rc == 0 {
			C.tessera_secret_free(secret)
		}
		panic(call.panicked)
	}
	if rc != 0 {
		return nil, newError(rc, C.GoString(&message[0]))
	}
	defer C.tessera_secret_free(secret) // zeroizes the C copy
	return C.GoBytes(unsafe.Pointer(C.tessera_secret_data(secret)), C.int(C.tessera_secret_len(secret))), nil
}

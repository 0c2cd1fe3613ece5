package tessera

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The sample's verification time: 2022-09-25T00:55:28Z (examples/evidence/snp-milan).
var sampleAt = time.Unix(1664067328, 0)

func env(t *testing.T, name string) string {
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set (ffi/tests/run.sh sets it)", name)
	}
	return v
}

func sample(t *testing.T, name string) []byte {
	b, err := os.ReadFile(filepath.Join(env(t, "TESSERA_EXAMPLES"), "evidence", "snp-milan", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyAcceptsAndRejects(t *testing.T) {
	if Version() == "" {
		t.Fatal("no version")
	}
	report, vcek := sample(t, "report.bin"), sample(t, "vcek.der")
	v, err := NewVerifier(vcek)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	// No policy: verified, never accepted.
	r, err := v.VerifyUnappraised(report, sampleAt)
	if err != nil {
		t.Fatal(err)
	}
	if r.Accepted || !r.Verified || r.Verdict != VerdictVerifiedUnappraised || r.Code != ResultNotAppraised ||
		r.Tee != "snp" || !strings.Contains(r.Claims, `"report_data":"0102030405`) {
		t.Fatalf("not verified-unappraised: %+v", r)
	}

	// An empty policy (an empty or unread policy file) is an invalid policy, never no policy.
	var e *Error
	r, err = v.Verify(report, sampleAt, "")
	if !errors.As(err, &e) || e.Code != ResultPolicyInvalid || r != nil {
		t.Fatalf("an empty policy was not an error: %v %+v", err, r)
	}
	if _, err = v.Verify(report, sampleAt, "version = \"x\""); !errors.As(err, &e) || e.Code != ResultPolicyInvalid || e.Message == "" {
		t.Fatalf("an invalid policy was not an error: %v", err)
	}

	// The development policy passes; with another measurement pinned it rejects.
	dev, err := os.ReadFile(filepath.Join(env(t, "TESSERA_EXAMPLES"), "policies", "development.toml"))
	if err != nil {
		t.Fatal(err)
	}
	r, err = v.Verify(report, sampleAt, string(dev))
	if err != nil || !r.Accepted || !r.Verified || r.Verdict != VerdictAccepted || r.Code != ResultOK ||
		!strings.Contains(r.Appraisal, `"verdict":"pass"`) {
		t.Fatalf("the development policy did not pass: %v %+v", err, r)
	}

	bad := append([]byte(nil), report...)
	bad[0x2A0] ^= 1
	for _, verify := range []func() (*Result, error){
		func() (*Result, error) { return v.Verify(bad, sampleAt, string(dev)) },
		func() (*Result, error) { return v.VerifyUnappraised(bad, sampleAt) },
	} {
		r, err = verify()
		if err != nil {
			t.Fatal(err)
		}
		if r.Accepted || r.Verified || r.Verdict != VerdictRejected || r.Code != ResultVerifySNP ||
			!strings.Contains(r.FailedCheck, "signature") {
			t.Fatalf("a corrupted signature was not rejected as such: %+v", r)
		}
	}
	pinned := strings.Replace(string(dev), `measurement = "any"`, `measurement = ["`+strings.Repeat("00", 48)+`"]`, 1)
	r, err = v.Verify(report, sampleAt, pinned)
	if err != nil {
		t.Fatal(err)
	}
	if r.Accepted || !r.Verified || r.Verdict != VerdictRejected || r.Code != ResultPolicyRejected ||
		!strings.Contains(r.Message, "snp.measurement") {
		t.Fatalf("the policy did not reject: %+v", r)
	}

	// The whole policy is read: a NUL byte before a rule that rejects (the sample's guest
	// policy allows SMT) makes it an invalid policy, never its shorter, weaker first part.
	strict := "\n[snp.guest_policy]\nsmt = \"must-not\"\n"
	if r, err = v.Verify(report, sampleAt, string(dev)+strict); err != nil || r.Code != ResultPolicyRejected {
		t.Fatalf("the SMT rule did not reject: %v %+v", err, r)
	}
	if r, err = v.Verify(report, sampleAt, string(dev)+"\x00"+strict); !errors.As(err, &e) || e.Code != ResultPolicyInvalid || r != nil {
		t.Fatalf("a policy with a NUL byte was not an error: %v %+v", err, r)
	}
}

func TestDecode(t *testing.T) {
	json, err := Decode(sample(t, "report.bin"))
	if err != nil || !strings.Contains(json, `"verified":false`) {
		t.Fatalf("decode: %v %s", err, json)
	}
	var e *Error
	if _, err := Decode([]byte("nope")); !errors.As(err, &e) || e.Code/100 != 2 || e.Message == "" {
		t.Fatalf("not evidence: %v", err)
	}
}

// The test broker (ffi/tests/support/broker.rs): a real broker on loopback and a simulated
// SEV-SNP guest signing evidence for the REPORT_DATA written to its stdin.
func TestFetchSecret(t *testing.T) {
	cmd := exec.Command(env(t, "TESSERA_TEST_BROKER"))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); _ = cmd.Wait() }()
	lines := bufio.NewReader(stdout)
	banner := map[string]string{}
	for {
		line, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("the test broker did not start: %v", err)
		}
		line = strings.TrimSpace(line)
		if line == "ready" {
			break
		}
		if k, v, ok := strings.Cut(line, " "); ok {
			banner[k] = v
		}
	}
	evidence := func(reportData []byte) ([]byte, error) {
		if len(reportData) != 64 {
			return nil, fmt.Errorf("REPORT_DATA is %d bytes", len(reportData))
		}
		if _, err := fmt.Fprintf(stdin, "json %s\n", hex.EncodeToString(reportData)); err != nil {
			return nil, err
		}
		line, err := lines.ReadString('\n')
		return []byte(strings.TrimSpace(line)), err
	}

	secret, err := FetchSecret(banner["url"], "snp", banner["resource"], 1, evidence)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(secret) != banner["secret"] {
		t.Fatalf("secret %x, want %s", secret, banner["secret"])
	}

	// A panicking callback: the panic reaches the caller in Go, after the C call returned, and
	// the binding is usable afterwards.
	func() {
		defer func() {
			if r := recover(); r != "evidence panicked" {
				t.Fatalf("recovered %v", r)
			}
		}()
		_, _ = FetchSecret(banner["url"], "snp", banner["resource"], 1, func([]byte) ([]byte, error) {
			panic("evidence panicked")
		})
		t.Fatal("FetchSecret returned after its callback panicked")
	}()
	// panic(nil) too (go.mod says go 1.19: recover() then returns nil).
	func() {
		defer func() { _ = recover() }()
		_, _ = FetchSecret(banner["url"], "snp", banner["resource"], 1, func([]byte) ([]byte, error) {
			panic(nil)
		})
		t.Fatal("FetchSecret returned after its callback panicked with nil")
	}()

	var e *Error
	_, err = FetchSecret(banner["url"], "snp", banner["denied"], 1, evidence)
	if !errors.As(err, &e) || e.Code != ResultBrokerDenied || !strings.Contains(e.Message, "403") {
		t.Fatalf("denied resource: %v", err)
	}
}

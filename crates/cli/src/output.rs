//! Rendering results for people (text) and scripts (one JSON object).

use serde_json::{Value, json};

/// `println!` that does not panic when standard output cannot be written: a reader that stopped
/// early (`tessera show x | head`: a closed pipe) is not an error; any other failure (a full
/// disk under `> policy.toml`) is noted by [`note_stdout`], and the command exits 2.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        $crate::output::note_stdout(writeln!(std::io::stdout(), $($arg)*));
    }};
}

/// The first failure to write standard output, other than a closed pipe.
static STDOUT_FAILURE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Notes a write to standard output: a closed pipe is not an error (the reader has all it
/// wanted); the first other failure is kept for [`stdout_failure`].
pub(crate) fn note_stdout(written: std::io::Result<()>) {
    if let Err(e) = written
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        let mut failure = STDOUT_FAILURE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        failure.get_or_insert_with(|| e.to_string());
    }
}

/// Flushes standard output and says why it could not all be written, if it could not: then
/// what was printed is incomplete, and the command must not exit as if it were whole.
pub(crate) fn stdout_failure() -> Option<String> {
    note_stdout(std::io::Write::flush(&mut std::io::stdout()));
    STDOUT_FAILURE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}
use tessera_policy::Appraisal;
use tessera_snp::abi::{Product, SnpEvidence};
use tessera_snp::claims::{ReportClaims, TcbClaim};
use tessera_snp::{SnpError, Verified};

fn tcb_text(t: &TcbClaim) -> String {
    match &t.parts {
        Some(p) => {
            let fmc = p.fmc.map(|f| format!("fmc {f} ")).unwrap_or_default();
            format!(
                "{fmc}bl {} tee {} snp {} ucode {}  ({})",
                p.bootloader, p.tee, p.snp, p.microcode, t.raw
            )
        }
        None => format!("{} (product unknown)", t.raw),
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn print_claims(c: &ReportClaims) {
    let p = &c.policy;
    say!("  version        {}", c.version);
    say!(
        "  product        {}",
        c.product.map_or("unknown", Product::name)
    );
    say!("  measurement    {}", c.measurement);
    say!("  report_data    {}", c.report_data);
    say!("  host_data      {}", c.host_data);
    say!("  vmpl           {}", c.vmpl);
    say!("  guest_svn      {}", c.guest_svn);
    say!(
        "  policy         {} (debug {}, smt {}, migrate_ma {}, single_socket {}, abi >= {}.{})",
        p.raw,
        yes(p.debug_allowed),
        yes(p.smt_allowed),
        yes(p.migrate_ma),
        yes(p.single_socket),
        p.abi_major,
        p.abi_minor
    );
    say!(
        "  platform_info  {} (smt {}, tsme {}, ecc {}, ciphertext_hiding {})",
        c.platform_info.raw,
        yes(c.platform_info.smt_enabled),
        yes(c.platform_info.tsme_enabled),
        yes(c.platform_info.ecc_enabled),
        yes(c.platform_info.ciphertext_hiding_enabled)
    );
    say!("  reported_tcb   {}", tcb_text(&c.reported_tcb));
    say!("  current_tcb    {}", tcb_text(&c.current_tcb));
    say!("  committed_tcb  {}", tcb_text(&c.committed_tcb));
    say!("  launch_tcb     {}", tcb_text(&c.launch_tcb));
    say!(
        "  firmware       {} (committed {})",
        c.current_version,
        c.committed_version
    );
    say!(
        "  signing_key    {} (author_key_en {})",
        c.signing_key,
        yes(c.author_key_en)
    );
    say!("  id_key_digest  {}", c.id_key_digest);
    say!("  chip_id        {}", c.chip_id);
    if let Some(cpuid) = &c.cpuid {
        say!("  cpuid          {cpuid}");
    }
    if let (Some(l), Some(cur)) = (&c.launch_mit_vector, &c.current_mit_vector) {
        say!("  mitigations    launch {l} current {cur}");
    }
}

/// Print a successful verification, with the appraisal when a policy was given.
pub(crate) fn print_verified(
    v: &Verified<SnpEvidence>,
    kind: &str,
    appraisal: Option<&Appraisal>,
    as_json: bool,
) {
    let ver = v.verification();
    let claims = ReportClaims::new(v.report(), Some(ver.product));
    if as_json {
        let mut out = json!({
            "tee": "snp",
            "verdict": "pass",
            "evidence_kind": kind,
            "claims": claims,
            "verification": ver,
            "errors": [],
        });
        if let Some(a) = appraisal {
            crate::policy::extend_json(&mut out, a);
        }
        say!("{out}");
        return;
    }
    say!(
        "PASS  SEV-SNP {kind} verified ({}, signed by {})",
        ver.product.name(),
        ver.signer.name()
    );
    print_claims(&claims);
    let chain: Vec<&str> = ver
        .chain
        .iter()
        .map(|l| l.subject.rsplit("CN=").next().unwrap_or(&l.subject))
        .collect();
    say!("  chain          {}", chain.join("  <-  "));
    if let Some(csp) = &ver.vek.csp_id {
        say!("  vlek csp_id    {csp}");
    }
    say!(
        "  revocation     {}",
        if ver.revocation_checked {
            "checked (the ARK's CRL and the embedded revocations applied)"
        } else {
            "embedded revocations only (no ARK CRL given with --crl)"
        }
    );
    if ver.chip_id_masked {
        say!("  note           CHIP_ID is masked (all zeros): hwID not compared");
    }
    if ver.dangerous_test_root {
        say!("  WARNING        verified under a TEST root, not AMD's");
    }
    say!("  verified at    {}", ver.verified_at);
    if let Some(a) = appraisal {
        crate::policy::print_appraisal(a);
    }
}

/// A rejection in both of its forms: the one JSON object of `--json`, and the text for people.
pub(crate) struct Rejected {
    pub(crate) json: Value,
    /// Its lines, without the last line break.
    pub(crate) text: String,
}

impl Rejected {
    /// On standard output, as JSON or as text.
    pub(crate) fn print(&self, as_json: bool) {
        if as_json {
            say!("{}", self.json);
        } else {
            say!("{}", self.text);
        }
    }
}

/// The text of a failed check: `FAIL  CHECK check failed`, then each of `lines` indented. The
/// lines can quote the evidence (a certificate's subject, a field's value), anyone's bytes:
/// their control characters are written escaped, as an error's are, so that no escape
/// sequence reaches the operator's terminal.
pub(crate) fn failed_text(check: &str, lines: &[String]) -> String {
    let mut text = format!("FAIL  {check} check failed");
    for line in lines {
        text.push_str("\n  ");
        text.push_str(&crate::printable(line));
    }
    text
}

/// An SEV-SNP rejection (parse failure or failed check), with what to do about it (in JSON,
/// the error's `hint`).
pub(crate) fn snp_rejection(kind: Option<&str>, err: &SnpError, hint: Option<&str>) -> Rejected {
    let mut error = json!({
        "check": err.check(),
        "field": err.field(),
        "message": err.to_string(),
    });
    if let (Some(hint), Some(map)) = (hint, error.as_object_mut()) {
        map.insert(String::from("hint"), Value::from(hint));
    }
    let json = json!({
        "tee": "snp",
        "verdict": "fail",
        "evidence_kind": kind,
        "claims": Value::Null,
        "errors": [error],
    });
    let mut lines = vec![err.to_string()];
    lines.extend(hint.map(|hint| format!("hint: {hint}")));
    Rejected {
        json,
        text: failed_text(err.check(), &lines),
    }
}

/// A rejection that is neither an SEV-SNP nor a TDX check: evidence of no known form,
/// `--collateral` for evidence that is not a quote, missing endorsements.
pub(crate) fn failure(
    tee: Option<&str>,
    kind: Option<&str>,
    (check, field): (&str, &str),
    message: &str,
) -> Rejected {
    let json = json!({
        "tee": tee,
        "verdict": "fail",
        "evidence_kind": kind,
        "claims": Value::Null,
        "errors": [{ "check": check, "field": field, "message": message }],
    });
    Rejected {
        json,
        text: failed_text(check, &[message.to_owned()]),
    }
}

/// Print decoded evidence (unverified) for people; `--json` prints
/// [`tessera::Evidence::show_json`].
pub(crate) fn print_show(e: &SnpEvidence, kind: &str, product: Option<Product>) {
    let claims = ReportClaims::new(e.report(), product);
    say!("SEV-SNP {kind} (NOT verified: use `tessera verify`)");
    print_claims(&claims);
    if let Some(t) = e.certs() {
        for en in &t.entries {
            let c = json!({ "guid": en.guid.to_string(), "kind": format!("{:?}", en.kind()), "len": en.data.len() });
            say!("  cert table     {c}");
        }
    }
    if let SnpEvidence::Hcl(h) = e {
        let rt = String::from_utf8_lossy(h.runtime_data());
        say!("  hcl runtime    {} bytes", rt.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a rejection quotes from the evidence (here an ESC that would clear the screen) is
    /// written escaped in the text for people, in each of the rejection's printers; the JSON
    /// keeps it as it was (JSON escapes it itself).
    #[test]
    fn rejection_text_escapes_control_characters() {
        let hostile = "CN=\u{1b}[2Jevil\u{7}";
        let snp = snp_rejection(
            Some("report"),
            &SnpError::Reserved {
                field: "POLICY",
                detail: hostile.to_owned(),
            },
            Some(hostile),
        );
        let failed = failure(None, None, ("parse", "evidence"), hostile);
        let tdx = crate::tdx::rejection(
            "tdx",
            "quote",
            &tessera_tdx::TdxError::PckChain(hostile.to_owned()),
        );
        for rejected in [&snp, &failed, &tdx] {
            let text = &rejected.text;
            assert!(
                !text.chars().any(|c| c.is_control() && c != '\n'),
                "{text:?}"
            );
            assert!(text.contains("CN=\\u{1b}[2Jevil\\u{7}"), "{text}");
            assert!(
                rejected.json.to_string().contains("\\u001b[2J"),
                "{}",
                rejected.json
            );
        }
        assert!(snp.text.contains("\n  hint: CN=\\u{1b}"), "{}", snp.text);
    }
}

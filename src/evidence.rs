//! Telling which evidence a caller holds: every SEV-SNP and TDX/SGX form Tessera reads, raw bytes
//! or the JSON that KBS guests send, parsed into one [`Evidence`] (unverified).
//!
//! Forms, in the order [`Evidence::from_bytes`] tries them:
//!
//! | form ([`Form`])            | what it is |
//! |----------------------------|------------|
//! | [`Form::KbsSnpReportJson`] | `{"attestation_report": <sev-crate report JSON>, "cert_chain": [..] \| null}` (CoCo guests) |
//! | [`Form::KbsSnpReport`]     | `{"report": "<base64 of the raw report>", "cert_chain": [..] \| null}` (Tessera's guest) |
//! | [`Form::KbsQuote`]         | `{"quote": "<base64 quote>", "cc_eventlog": "<base64>" \| null}` (TDX and SGX guests) |
//! | [`Form::Quote`]            | a raw Intel DCAP quote (v3 SGX, v4/v5 TDX) |
//! | [`Form::SnpHcl`]           | an Azure HCL report (starts with `HCLA`) |
//! | [`Form::SnpReport`]        | a raw SEV-SNP `ATTESTATION_REPORT` (exactly 1184 bytes) |
//! | [`Form::SnpExtended`]      | a report followed by the GHCB certificate table |
//!
//! One more form is never detected: [`Form::SnpTsm`], a configfs-tsm `outblob` with its
//! `auxblob`, comes in two parts and is made only by [`Evidence::from_tsm`].
//!
//! The JSON forms are tried first only when the input's first non-blank byte is `{` (no raw form
//! starts with it). The `sev`-crate report JSON carries the report field by field; the raw 1184
//! bytes are rebuilt exactly (reserved bytes zero), so the signature verifies over what the
//! firmware signed. `cert_chain` entries are `{"cert_type": "VCEK"|"VLEK"|"ASK"|"ASVK"|"ARK",
//! "data": [DER bytes]}`.
//!
//! Inputs are bounded ([`MAX_EVIDENCE_LEN`], [`MAX_JSON_LEN`] and per-field bounds); nothing
//! here panics on untrusted input. When nothing matches, the error lists every form tried and
//! why each did not match.

use core::fmt;

use base64::Engine as _;
use serde_json::Value;
use tessera_snp::abi::{AttestationReport, CertKind, SnpEvidence};
use tessera_tdx::abi::Quote;

use crate::Tee;

/// Most bytes [`Evidence::from_bytes`] accepts (raw evidence or JSON).
pub const MAX_EVIDENCE_LEN: usize = 16 * 1024 * 1024;

/// Most bytes of evidence JSON accepted ([`Evidence::from_json`]); a TDX event log can make the
/// JSON several MiB, and the broker accepts 8 MiB attestation requests.
pub const MAX_JSON_LEN: usize = 8 * 1024 * 1024;

/// Most JSON values evidence text may hold to be parsed into a tree (a compact run of
/// [`crate::compact`] counted as the bytes it decodes to): real evidence holds a few dozen (a
/// quote and its event log as base64 strings, an SEV-SNP report's fields) to about 10,000
/// (SEV-SNP evidence with its certificates as arrays of numbers). A tree costs tens of bytes
/// per value, so 8 MiB of `[[],[],…]` or `[0,0,…]` would otherwise become hundreds of MB.
pub const MAX_EVIDENCE_JSON_VALUES: usize = 100_000;

/// Evidence JSON text parsed into a tree, when it holds at most [`MAX_EVIDENCE_JSON_VALUES`]
/// values (counted first, without parsing).
pub(crate) fn parse_json_bounded(text: &[u8]) -> Result<Value, EvidenceError> {
    if !crate::compact::json_values_at_most(text, MAX_EVIDENCE_JSON_VALUES) {
        return Err(unrecognized_json(&format!(
            "more than {MAX_EVIDENCE_JSON_VALUES} JSON values"
        )));
    }
    serde_json::from_slice(text).map_err(|e| unrecognized_json(&format!("not JSON: {e}")))
}

/// The form evidence came in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Form {
    /// A raw SEV-SNP report (1184 bytes).
    SnpReport,
    /// A raw SEV-SNP report followed by the certificate table.
    SnpExtended,
    /// A configfs-tsm report (`outblob`, and `auxblob` when present).
    SnpTsm,
    /// An Azure HCL report wrapping an SNP report and its runtime data.
    SnpHcl,
    /// KBS JSON with the `sev`-crate report JSON (`attestation_report`, `cert_chain`).
    KbsSnpReportJson,
    /// KBS JSON with the base64 raw report (`report`, `cert_chain`).
    KbsSnpReport,
    /// A raw Intel DCAP quote (TDX or SGX).
    Quote,
    /// KBS JSON with a base64 quote (`quote`, `cc_eventlog`).
    KbsQuote,
}

impl Form {
    /// A stable name for scripts and logs (`report`, `extended-report`, `configfs-tsm`,
    /// `azure-hcl`, `kbs-snp-report-json`, `kbs-snp-report`, `quote`, `kbs-quote`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::SnpReport => "report",
            Self::SnpExtended => "extended-report",
            Self::SnpTsm => "configfs-tsm",
            Self::SnpHcl => "azure-hcl",
            Self::KbsSnpReportJson => "kbs-snp-report-json",
            Self::KbsSnpReport => "kbs-snp-report",
            Self::Quote => "quote",
            Self::KbsQuote => "kbs-quote",
        }
    }

    /// How the form is described in errors.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::SnpReport => "SEV-SNP report (1184 bytes)",
            Self::SnpExtended => "SEV-SNP extended report (report + certificate table)",
            Self::SnpTsm => "configfs-tsm outblob/auxblob",
            Self::SnpHcl => "Azure HCL report",
            Self::KbsSnpReportJson => "KBS SNP JSON {attestation_report, cert_chain}",
            Self::KbsSnpReport => "KBS SNP JSON {report, cert_chain}",
            Self::Quote => "TDX/SGX DCAP quote",
            Self::KbsQuote => "KBS TDX/SGX JSON {quote, cc_eventlog}",
        }
    }
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One form tried during detection, and why it did not match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The form.
    pub form: Form,
    /// Why it did not match.
    pub reason: String,
}

/// The attempts of an [`EvidenceError::Unrecognized`], rendered `form (reason); ...`.
struct Attempts<'a>(&'a [Attempt]);

impl fmt::Display for Attempts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{} ({})", a.form.describe(), a.reason)?;
        }
        Ok(())
    }
}

/// Why bytes or JSON could not be read as evidence. Each variant names the form and field; none
/// says anything about authenticity (that is [`crate::Verifier::verify`]'s job).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvidenceError {
    /// The input (or one field of it) is larger than accepted: refused before parsing.
    #[error("{what} is {len} bytes, more than the {max} accepted")]
    TooLarge {
        /// The input or field.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// No form matched. Each attempt says why; likely not attestation evidence at all, or a
    /// damaged header.
    #[error("not evidence in any form Tessera reads; tried: {}", Attempts(.tried))]
    Unrecognized {
        /// Every form tried, in order.
        tried: Vec<Attempt>,
    },
    /// Recognised as an SEV-SNP form, but its bytes do not parse.
    #[error("{}: {source}", .form.describe())]
    Snp {
        /// The form.
        form: Form,
        /// The parse failure.
        source: tessera_snp::abi::ParseError,
    },
    /// Recognised as a DCAP quote, but it does not parse.
    #[error("{}: {source}", .form.describe())]
    Quote {
        /// The form.
        form: Form,
        /// The parse failure.
        source: tessera_tdx::abi::ParseError,
    },
    /// Recognised as a JSON form, but a field is missing, of the wrong type or out of range.
    #[error("{}: field `{field}`: {reason}", .form.describe())]
    Json {
        /// The form.
        form: Form,
        /// The field (`attestation_report.measurement`, `quote`).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The evidence is of another TEE than the caller named (KBS `/auth` said `snp`, the
    /// evidence is a TDX quote).
    #[error("the request names TEE {expected:?} but the evidence is {found} evidence")]
    WrongTee {
        /// What the caller named (cut to 16 characters).
        expected: String,
        /// What the evidence is.
        found: &'static str,
    },
    /// The caller named a TEE Tessera does not verify.
    #[error("TEE {0:?} is not one Tessera verifies (snp, tdx, sgx)")]
    UnsupportedTee(String),
}

impl EvidenceError {
    /// The check that failed, stable for scripts: `parse`, or `tee` for a TEE mismatch.
    #[must_use]
    pub fn check(&self) -> &'static str {
        match self {
            Self::WrongTee { .. } | Self::UnsupportedTee(_) => "tee",
            _ => "parse",
        }
    }

    /// The field or structure that could not be read (for a KBS JSON form, its member).
    #[must_use]
    pub fn field(&self) -> &str {
        match self {
            Self::TooLarge { what, .. } => what,
            Self::Unrecognized { .. } => "evidence",
            Self::Snp { source, .. } => source.field(),
            Self::Quote { source, .. } => source.field(),
            Self::Json { field, .. } => field,
            Self::WrongTee { .. } | Self::UnsupportedTee(_) => "tee",
        }
    }

    pub(crate) fn json(form: Form, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Json {
            form,
            field: field.into(),
            reason: cut(&reason.into(), 200),
        }
    }
}

/// `s` cut to at most `max` characters, control characters escaped (untrusted text in errors).
pub(crate) fn cut(s: &str, max: usize) -> String {
    let head: String = s.chars().take(max).collect();
    crate::text::escape_controls(&head, false)
}

/// What the evidence holds.
#[derive(Clone, Debug)]
pub(crate) enum Body {
    /// SEV-SNP evidence, and the certificates a KBS JSON form carried.
    Snp {
        evidence: SnpEvidence,
        cert_chain: Vec<(CertKind, Vec<u8>)>,
    },
    /// A DCAP quote, and the event log a KBS JSON form carried.
    Quote {
        quote: Box<Quote>,
        tee: Tee,
        cc_eventlog: Option<Vec<u8>>,
    },
}

/// Attestation evidence of any form Tessera reads, parsed and unverified. Make one with
/// [`Evidence::from_bytes`], [`Evidence::from_json`], [`Evidence::from_kbs`] or
/// [`Evidence::from_tsm`]; verify it with [`crate::Verifier::verify`].
///
/// What this type reports (REPORT_DATA, HOST_DATA, ...) is what the bytes say, not yet
/// vouched for by any signature.
#[derive(Clone, Debug)]
pub struct Evidence {
    pub(crate) body: Body,
    form: Form,
}

/// Whether `bytes` start like a DCAP quote header: version 3, 4 or 5 and attestation key type 2
/// (ECDSA P-256). An SEV-SNP report starts with a u32 version, so its bytes 2..4 are zero.
fn looks_like_quote(bytes: &[u8]) -> bool {
    matches!(bytes, [3..=5, 0, 2, 0, ..])
}

fn quote_tee(quote: &Quote) -> Tee {
    if quote.body().td().is_some() {
        Tee::Tdx
    } else {
        Tee::Sgx
    }
}

/// Evidence JSON that no KBS form can be read from at all (not JSON, say), for `reason`.
pub(crate) fn unrecognized_json(reason: &str) -> EvidenceError {
    EvidenceError::Unrecognized {
        tried: vec![Attempt {
            form: Form::KbsSnpReportJson,
            reason: cut(reason, 200),
        }],
    }
}

/// The TEE a KBS guest named in `/auth`: `snp`, `tdx` or `sgx`.
fn kbs_tee(tee: &str) -> Result<Tee, EvidenceError> {
    match tee {
        "snp" => Ok(Tee::Snp),
        "tdx" => Ok(Tee::Tdx),
        "sgx" => Ok(Tee::Sgx),
        other => Err(EvidenceError::UnsupportedTee(cut(other, 16))),
    }
}

impl Evidence {
    pub(crate) fn new(body: Body, form: Form) -> Self {
        Self { body, form }
    }

    /// Detect and parse evidence in any form of the module table (`tessera::Form`): JSON when the first
    /// non-blank byte is `{`, then a DCAP quote, an Azure HCL report, a raw or extended SNP
    /// report.
    ///
    /// # Errors
    /// [`EvidenceError::TooLarge`] over [`MAX_EVIDENCE_LEN`]; the JSON form's error for JSON;
    /// [`EvidenceError::Quote`] for bytes with a quote header that do not parse;
    /// [`EvidenceError::Unrecognized`], listing every form tried, otherwise.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EvidenceError> {
        if bytes.len() > MAX_EVIDENCE_LEN {
            return Err(EvidenceError::TooLarge {
                what: "evidence",
                len: bytes.len(),
                max: MAX_EVIDENCE_LEN,
            });
        }
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            return Self::from_json(bytes);
        }
        let mut tried = vec![Attempt {
            form: Form::KbsSnpReportJson,
            reason: String::from("JSON forms start with '{'"),
        }];
        if looks_like_quote(bytes) {
            return match Quote::parse(bytes) {
                Ok(quote) => Ok(Self::from_quote(quote, None, Form::Quote)),
                Err(source) => Err(EvidenceError::Quote {
                    form: Form::Quote,
                    source,
                }),
            };
        }
        tried.push(Attempt {
            form: Form::Quote,
            reason: match bytes {
                [v0, v1, k0, k1, ..] => format!(
                    "header version {} attestation key type {} (expected 3, 4 or 5 and 2)",
                    u16::from_le_bytes([*v0, *v1]),
                    u16::from_le_bytes([*k0, *k1])
                ),
                _ => format!("{} bytes, shorter than a quote header", bytes.len()),
            },
        });
        if tessera_snp::abi::HclReport::is_hcl(bytes) {
            return SnpEvidence::parse(bytes)
                .map(|e| Self::from_snp(e, Vec::new(), Form::SnpHcl))
                .map_err(|source| EvidenceError::Snp {
                    form: Form::SnpHcl,
                    source,
                });
        }
        tried.push(Attempt {
            form: Form::SnpHcl,
            reason: String::from("does not start with \"HCLA\""),
        });
        match SnpEvidence::parse(bytes) {
            Ok(e) => {
                let form = match e {
                    SnpEvidence::Extended { .. } => Form::SnpExtended,
                    _ => Form::SnpReport,
                };
                Ok(Self::from_snp(e, Vec::new(), form))
            }
            Err(e) => {
                let form = if bytes.len() > tessera_snp::abi::REPORT_SIZE {
                    Form::SnpExtended
                } else {
                    Form::SnpReport
                };
                tried.push(Attempt {
                    form,
                    reason: e.to_string(),
                });
                Err(EvidenceError::Unrecognized { tried })
            }
        }
    }

    /// A configfs-tsm report: `outblob` is the SNP report, `auxblob` (when the provider gave
    /// one) the certificate table.
    ///
    /// # Errors
    /// [`EvidenceError::TooLarge`], or [`EvidenceError::Snp`] when either part does not parse.
    pub fn from_tsm(outblob: &[u8], auxblob: Option<&[u8]>) -> Result<Self, EvidenceError> {
        let len = outblob.len() + auxblob.map_or(0, <[u8]>::len);
        if len > MAX_EVIDENCE_LEN {
            return Err(EvidenceError::TooLarge {
                what: "configfs-tsm outblob + auxblob",
                len,
                max: MAX_EVIDENCE_LEN,
            });
        }
        SnpEvidence::from_tsm(outblob, auxblob)
            .map(|e| Self::from_snp(e, Vec::new(), Form::SnpTsm))
            .map_err(|source| EvidenceError::Snp {
                form: Form::SnpTsm,
                source,
            })
    }

    /// Evidence JSON of any KBS form (SNP or TDX/SGX), as bytes.
    ///
    /// # Errors
    /// [`EvidenceError::TooLarge`] over [`MAX_JSON_LEN`]; [`EvidenceError::Unrecognized`] for
    /// input that is not JSON or no known JSON form; the form's error otherwise.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EvidenceError> {
        if bytes.len() > MAX_JSON_LEN {
            return Err(EvidenceError::TooLarge {
                what: "evidence JSON",
                len: bytes.len(),
                max: MAX_JSON_LEN,
            });
        }
        crate::kbs::decode(None, &parse_json_bounded(bytes)?)
    }

    /// The `primary_evidence` of a KBS `/attest` request, for the TEE the guest named in
    /// `/auth` (`snp`, `tdx` or `sgx`).
    ///
    /// # Errors
    /// [`EvidenceError::UnsupportedTee`] for another TEE name; [`EvidenceError::WrongTee`] when
    /// the JSON is evidence of another TEE; the form's error otherwise.
    pub fn from_kbs(tee: &str, primary_evidence: &Value) -> Result<Self, EvidenceError> {
        crate::kbs::decode(Some(kbs_tee(tee)?), primary_evidence)
    }

    /// [`Evidence::from_kbs`] of the `primary_evidence` as JSON text, parsed only when it holds
    /// at most [`MAX_EVIDENCE_JSON_VALUES`] values.
    ///
    /// # Errors
    /// As [`Evidence::from_kbs`]; [`EvidenceError::Unrecognized`] for text that is not JSON or
    /// holds too many values.
    pub fn from_kbs_text(tee: &str, primary_evidence: &str) -> Result<Self, EvidenceError> {
        let tee = kbs_tee(tee)?;
        crate::kbs::decode(Some(tee), &parse_json_bounded(primary_evidence.as_bytes())?)
    }

    /// [`Evidence::from_kbs`] of evidence kept in the compact form of [`crate::compact`]
    /// ([`crate::compact::encode_text`] of the `primary_evidence` text, or
    /// [`crate::compact::encode`] of its value): the same evidence, or the same error, as
    /// decoding the compact text back and calling [`Evidence::from_kbs`]. The SEV-SNP forms are
    /// read straight into their fields, several times faster than parsing the original's
    /// thousands of numbers.
    ///
    /// # Errors
    /// [`EvidenceError::UnsupportedTee`] for another TEE name; [`EvidenceError::Unrecognized`]
    /// for text that is not JSON or a malformed compact run; otherwise as
    /// [`Evidence::from_kbs`].
    pub fn from_kbs_compact(tee: &str, compact: &str) -> Result<Self, EvidenceError> {
        crate::kbs::decode_compact(kbs_tee(tee)?, compact)
    }

    pub(crate) fn from_snp(
        evidence: SnpEvidence,
        cert_chain: Vec<(CertKind, Vec<u8>)>,
        form: Form,
    ) -> Self {
        Self::new(
            Body::Snp {
                evidence,
                cert_chain,
            },
            form,
        )
    }

    pub(crate) fn from_quote(quote: Quote, cc_eventlog: Option<Vec<u8>>, form: Form) -> Self {
        let tee = quote_tee(&quote);
        Self::new(
            Body::Quote {
                quote: Box::new(quote),
                tee,
                cc_eventlog,
            },
            form,
        )
    }

    /// The form the evidence came in.
    #[must_use]
    pub fn form(&self) -> Form {
        self.form
    }

    /// The TEE: SEV-SNP, TDX or SGX.
    #[must_use]
    pub fn tee(&self) -> Tee {
        match &self.body {
            Body::Snp { .. } => Tee::Snp,
            Body::Quote { tee, .. } => *tee,
        }
    }

    /// REPORT_DATA (SEV-SNP) or REPORTDATA (TDX, SGX): the 64 bytes the workload chose.
    #[must_use]
    pub fn report_data(&self) -> &[u8; 64] {
        match &self.body {
            Body::Snp { evidence, .. } => evidence.report().report_data(),
            Body::Quote { quote, .. } => quote.report_data(),
        }
    }

    /// The field init-data is bound to: SEV-SNP HOST_DATA (32 bytes), TDX MR_CONFIG_ID
    /// (48 bytes); `None` for SGX.
    #[must_use]
    pub fn init_data_field(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Snp { evidence, .. } => Some(evidence.report().host_data()),
            Body::Quote { quote, .. } => quote.body().td().map(|td| &td.mr_config_id[..]),
        }
    }

    /// The signed evidence bytes: the 1184-byte SEV-SNP report (whatever form carried it, so
    /// the JSON and raw forms of one report are the same evidence), or the quote without
    /// trailing padding.
    #[must_use]
    pub fn signed_evidence(&self) -> Vec<u8> {
        match &self.body {
            Body::Snp { evidence, .. } => evidence.report().as_bytes().to_vec(),
            Body::Quote { quote, .. } => quote.to_bytes(),
        }
    }

    /// A stable digest for audit: lower-case hex SHA-384 of [`Self::signed_evidence`].
    #[must_use]
    pub fn digest(&self) -> String {
        tessera_pki::to_hex(&tessera_pki::sha384(&self.signed_evidence()))
    }

    /// The SEV-SNP evidence, for SNP.
    #[must_use]
    pub fn snp(&self) -> Option<&SnpEvidence> {
        match &self.body {
            Body::Snp { evidence, .. } => Some(evidence),
            Body::Quote { .. } => None,
        }
    }

    /// The SEV-SNP report, for SNP.
    #[must_use]
    pub fn snp_report(&self) -> Option<&AttestationReport> {
        self.snp().map(SnpEvidence::report)
    }

    /// The quote, for TDX and SGX.
    #[must_use]
    pub fn quote(&self) -> Option<&Quote> {
        match &self.body {
            Body::Quote { quote, .. } => Some(quote),
            Body::Snp { .. } => None,
        }
    }

    /// The CC event log a KBS TDX JSON carried (`cc_eventlog`), decoded; not verified (no RTMR
    /// replay is done).
    #[must_use]
    pub fn cc_eventlog(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Quote { cc_eventlog, .. } => cc_eventlog.as_deref(),
            Body::Snp { .. } => None,
        }
    }

    /// The evidence as the KBS JSON a CoCo guest sends: for SEV-SNP the `sev`-crate form
    /// `{"attestation_report": {..}, "cert_chain": [..] | null}` (the certificates of a KBS
    /// form's `cert_chain`, or of the certificate table), for a quote `{"quote": base64,
    /// "cc_eventlog": base64 | null}`. An Azure HCL report's runtime data is not carried, and a
    /// report with non-zero reserved bytes does not survive the `sev` form (the firmware writes
    /// zeros).
    #[must_use]
    pub fn to_kbs_json(&self) -> Value {
        use base64::engine::general_purpose::STANDARD;
        match &self.body {
            Body::Snp { evidence, .. } => serde_json::json!({
                "attestation_report": crate::kbs::sev_report_json_of(evidence.report()),
                "cert_chain": crate::kbs::cert_chain_json(&self.carried_certificates()),
            }),
            Body::Quote {
                quote, cc_eventlog, ..
            } => serde_json::json!({
                "quote": STANDARD.encode(quote.to_bytes()),
                "cc_eventlog": cc_eventlog.as_ref().map(|log| STANDARD.encode(log)),
            }),
        }
    }

    /// The decoded, unverified evidence as one JSON object: what `tessera show --json` prints
    /// and the C API's decode returns. SEV-SNP: `{"tee": "snp", "verified": false,
    /// "evidence_kind", "claims", "certificate_table", "hcl_runtime_data"}`; a quote:
    /// `{"tee", "verified": false, "claims"}`. `product` names the SEV-SNP product when the
    /// report does not (report versions before 3).
    #[must_use]
    pub fn show_json(&self, product: Option<tessera_snp::abi::Product>) -> Value {
        match &self.body {
            Body::Snp { evidence, .. } => {
                let claims = tessera_snp::claims::ReportClaims::new(evidence.report(), product);
                let certs: Vec<Value> = evidence
                    .certs()
                    .map(|t| {
                        t.entries
                            .iter()
                            .map(|en| {
                                serde_json::json!({
                                    "guid": en.guid.to_string(),
                                    "kind": format!("{:?}", en.kind()),
                                    "len": en.data.len(),
                                })
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let runtime_data = match evidence {
                    SnpEvidence::Hcl(h) => {
                        Some(String::from_utf8_lossy(h.runtime_data()).into_owned())
                    }
                    _ => None,
                };
                serde_json::json!({
                    "tee": "snp",
                    "verified": false,
                    "evidence_kind": self.form.name(),
                    "claims": claims,
                    "certificate_table": certs,
                    "hcl_runtime_data": runtime_data,
                })
            }
            Body::Quote { quote, .. } => {
                let claims = tessera_tdx::claims::QuoteClaims::new(quote);
                serde_json::json!({ "tee": claims.tee, "verified": false, "claims": claims })
            }
        }
    }

    /// The certificates that came with SEV-SNP evidence, with their kind: a KBS form's
    /// `cert_chain`, then the certificate table's entries (zero padding trimmed); none for a
    /// quote (its PCK chain is inside the signed quote).
    pub(crate) fn carried_certificates(&self) -> Vec<(CertKind, Vec<u8>)> {
        let Body::Snp {
            evidence,
            cert_chain,
        } = &self.body
        else {
            return Vec::new();
        };
        let mut certs = cert_chain.clone();
        if let Some(table) = evidence.certs() {
            certs.extend(
                table
                    .certificates()
                    .into_iter()
                    .map(|(kind, c)| (kind, c.der().to_vec())),
            );
        }
        certs
    }

    /// The DER certificates that came with the evidence (VCEK/VLEK, ASK/ASVK, ARK from a KBS
    /// `cert_chain` or a certificate table), unverified; empty for a quote. With
    /// [`Self::signed_evidence`], the raw form of what a guest collected.
    #[must_use]
    pub fn certificates(&self) -> Vec<Vec<u8>> {
        self.carried_certificates()
            .into_iter()
            .map(|(_, der)| der)
            .collect()
    }

    /// How many certificates a KBS SNP JSON form carried in `cert_chain`.
    #[must_use]
    pub fn cert_chain_len(&self) -> usize {
        match &self.body {
            Body::Snp { cert_chain, .. } => cert_chain.len(),
            Body::Quote { .. } => 0,
        }
    }
}

/// Standard base64, padding optional (guests pad; some tools do not). Text that could decode to
/// more than `max` bytes is [`EvidenceError::TooLarge`] naming `field`, its length and bound
/// counted in characters of base64.
pub(crate) fn decode_base64(
    form: Form,
    field: &'static str,
    text: &str,
    max: usize,
) -> Result<Vec<u8>, EvidenceError> {
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const ENGINE: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    // Refused before decoding, by the bytes the text decodes to (4 characters per 3 bytes,
    // padding not counted), so the error names decoded sizes as the bound is documented.
    let unpadded = text.trim_end_matches('=').len();
    let decoded = unpadded / 4 * 3 + (unpadded % 4).saturating_sub(1);
    if decoded > max {
        return Err(EvidenceError::TooLarge {
            what: field,
            len: decoded,
            max,
        });
    }
    ENGINE
        .decode(text)
        .map_err(|e| EvidenceError::json(form, field, format!("not standard base64: {e}")))
}

/// Fuzz harness: [`tsm_agrees_with_bytes`]; [`Evidence::from_bytes`] and
/// [`Evidence::from_json`] on the input, and on success the accessors; a raw form's signed
/// bytes parse back to the same report or quote.
#[doc(hidden)]
#[allow(clippy::panic)] // fuzz harness: an assertion failure is the finding
pub fn fuzz_evidence(data: &[u8]) {
    tsm_agrees_with_bytes(data);
    for parsed in [Evidence::from_bytes(data), Evidence::from_json(data)] {
        let Ok(e) = parsed else { continue };
        let _ = (e.tee(), e.report_data(), e.init_data_field(), e.digest());
        let signed = e.signed_evidence();
        match &e.body {
            Body::Snp { evidence, .. } => {
                assert_eq!(signed.len(), tessera_snp::abi::REPORT_SIZE);
                let again = AttestationReport::from_bytes(&signed);
                assert_eq!(again.as_ref(), Ok(evidence.report()));
            }
            Body::Quote { quote, .. } => {
                let again = Quote::parse(&signed);
                assert_eq!(again.as_ref(), Ok(quote.as_ref()));
            }
        }
    }
}

/// The SEV-SNP evidence `parsed` holds when it was read in `form`, with whether KBS
/// certificates came with it.
fn snp_in_form(
    parsed: &Result<Evidence, EvidenceError>,
    form: Form,
) -> Option<(SnpEvidence, bool)> {
    let e = parsed.as_ref().ok().filter(|e| e.form == form)?;
    match &e.body {
        Body::Snp {
            evidence,
            cert_chain,
        } => Some((evidence.clone(), !cert_chain.is_empty())),
        Body::Quote { .. } => None,
    }
}

/// Oracle (fuzz harness and tests): `data` split after the SNP report into a configfs-tsm
/// `outblob` and a non-empty `auxblob` reads through [`Evidence::from_tsm`] (form
/// [`Form::SnpTsm`]) as the same SEV-SNP evidence [`Evidence::from_bytes`] reads from `data`
/// as an extended report ([`Form::SnpExtended`]), and is refused exactly when `from_bytes`
/// reads no extended report; the `outblob` alone reads as `from_bytes` reads it as a bare
/// report ([`Form::SnpReport`]). Neither carries KBS certificates.
#[doc(hidden)]
#[allow(clippy::panic)] // oracle: an assertion failure is the finding
pub fn tsm_agrees_with_bytes(data: &[u8]) {
    let Some((out, aux)) = data.split_at_checked(tessera_snp::abi::REPORT_SIZE) else {
        assert!(Evidence::from_tsm(data, None).is_err());
        return;
    };
    let mut cases = vec![(None, out, Form::SnpReport)];
    if !aux.is_empty() {
        cases.push((Some(aux), data, Form::SnpExtended));
    }
    for (auxblob, joined, file_form) in cases {
        let read = Evidence::from_tsm(out, auxblob);
        let tsm = snp_in_form(&read, Form::SnpTsm);
        let file = snp_in_form(&Evidence::from_bytes(joined), file_form);
        assert_eq!(
            read.is_ok(),
            tsm.is_some(),
            "configfs-tsm evidence in another form or TEE"
        );
        assert!(!tsm.as_ref().is_some_and(|t| t.1) && !file.as_ref().is_some_and(|f| f.1));
        assert_eq!(tsm, file, "configfs-tsm and file forms disagree");
    }
}

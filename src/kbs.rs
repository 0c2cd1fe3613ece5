//! Decoding the evidence JSON that KBS guests send (PROTOCOL.md §5): the `sev`-crate SNP report
//! JSON with its `cert_chain`, Tessera's `{"report": base64}` form, and `{"quote", "cc_eventlog"}`.
//!
//! The `sev` crate (6.x) serializes its `AttestationReport` field by field: integers for
//! `version`, `guest_svn`, `policy`, `vmpl`, `sig_algo`, `plat_info`, `key_info` and the CPUID
//! bytes (`null` before report version 3), byte arrays as arrays of integers, each TCB as
//! `{"fmc": null|n, "bootloader", "tee", "snp", "microcode"}` (an FMC SPL means the Turin
//! layout), firmware versions as `{"major", "minor", "build"}`, the mitigation vectors (report
//! version 5) as integers or `null`, and the signature as `{"r": [72], "s": [72]}`. The raw
//! report is rebuilt in the one layout of `tessera_snp::abi::RawReport`, reserved bytes zero.
//! Unknown fields inside the report are refused (a field this decoder does not place would make
//! the signature fail for a reason no error could name); unknown top-level members are ignored.
//! The evidence, the report and each object inside it (TCBs, versions, signature, `cert_chain`
//! entries) must be JSON objects: serde's positional form of a struct (an array of its fields
//! in order) is refused.
//!
//! `certs` is taken as another name for `cert_chain` in both SEV-SNP forms: PROTOCOL.md §5
//! gives Tessera's raw-report form as `{"report": ..., "certs": ...}` (Tessera's guest itself
//! now sends `cert_chain`). Both names in one object are refused, so which list was meant is
//! never guessed.

use serde::Deserialize;
use serde_json::{Map, Value, json};
use tessera_snp::abi::{
    AttestationReport, CertKind, EcdsaSignature, Product, RawReport, SnpEvidence, TcbParts,
    TcbVersion,
};
use tessera_tdx::abi::Quote;
use zerocopy::FromZeros as _;
use zerocopy::little_endian::{U32, U64};

use crate::Tee;
use crate::evidence::{
    Attempt, Evidence, EvidenceError, Form, cut, decode_base64, unrecognized_json,
};

/// Most certificates accepted in a `cert_chain`.
pub const MAX_CERT_CHAIN_ENTRIES: usize = 16;
/// Most bytes of one `cert_chain` entry's `data`, checked on the decoded bytes whichever way
/// they were written (an array of byte values, or a compact `{"b64"}` run), by both the general
/// and the compact path.
pub const MAX_CERT_LEN: usize = 64 * 1024;
/// Most bytes of a decoded `quote`.
pub const MAX_QUOTE_LEN: usize = 1024 * 1024;
/// Most bytes of a decoded `report` (a raw SNP form: report, extended report or HCL report).
pub const MAX_REPORT_LEN: usize = 2 * 1024 * 1024;
/// Most bytes of a decoded `cc_eventlog`.
pub const MAX_EVENTLOG_LEN: usize = 6 * 1024 * 1024;

/// Decode KBS evidence JSON; `tee`, when given, is the TEE the guest named.
pub(crate) fn decode(tee: Option<Tee>, value: &Value) -> Result<Evidence, EvidenceError> {
    let Some(obj) = value.as_object() else {
        return Err(unrecognized_json("the JSON is not an object"));
    };
    let evidence = if obj.contains_key("attestation_report") {
        expect_tee(tee, "snp")?;
        sev_report_json(obj)?
    } else if obj.contains_key("report") {
        expect_tee(tee, "snp")?;
        raw_report_json(obj)?
    } else if obj.contains_key("quote") {
        if tee == Some(Tee::Snp) {
            return Err(wrong_tee(tee, "tdx or sgx"));
        }
        quote_json(obj)?
    } else {
        let keys: Vec<String> = obj.keys().take(8).map(|k| cut(k, 32)).collect();
        let reason = format!("no such member (members: {})", keys.join(", "));
        return Err(EvidenceError::Unrecognized {
            tried: vec![
                Attempt {
                    form: Form::KbsSnpReportJson,
                    reason: format!("`attestation_report`: {reason}"),
                },
                Attempt {
                    form: Form::KbsSnpReport,
                    reason: format!("`report`: {reason}"),
                },
                Attempt {
                    form: Form::KbsQuote,
                    reason: format!("`quote`: {reason}"),
                },
            ],
        });
    };
    if let Some(expected) = tee
        && expected != evidence.tee()
    {
        return Err(wrong_tee(tee, evidence.tee().as_str()));
    }
    Ok(evidence)
}

fn wrong_tee(expected: Option<Tee>, found: &'static str) -> EvidenceError {
    EvidenceError::WrongTee {
        expected: expected.map_or("", Tee::as_str).to_owned(),
        found,
    }
}

fn expect_tee(tee: Option<Tee>, found: &'static str) -> Result<(), EvidenceError> {
    match tee {
        Some(t) if t.as_str() != found => Err(wrong_tee(tee, found)),
        _ => Ok(()),
    }
}

/// `value`, which must be an object, as a `T`.
fn deserialize<'a, T: Deserialize<'a>>(
    form: Form,
    field: &str,
    value: &'a Value,
) -> Result<T, EvidenceError> {
    Obj::<T>::deserialize(value)
        .map(|o| o.0)
        .map_err(|e| EvidenceError::json(form, field, e.to_string()))
}

/// A `T` read only from a JSON object. A derived `Deserialize` of a struct also takes a
/// sequence, its fields by position (`[1, 2, 3, 4]` as a TCB), a form no guest sends and one
/// that would let the two decoders of [`decode_compact`] disagree; every struct of this module
/// is read through this wrapper (or [`object`]) so that only objects are.
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{MapAccess, Visitor, value::MapAccessDeserializer};
        struct Map<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Map<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Obj)
            }
        }
        d.deserialize_map(Map(std::marker::PhantomData))
    }
}

/// A struct member read through [`Obj`]: an object only.
fn object<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Obj::<T>::deserialize(d).map(|o| o.0)
}

/// `{"fmc": null|n, "bootloader", "tee", "snp", "microcode"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TcbJson {
    #[serde(default)]
    fmc: Option<u8>,
    bootloader: u8,
    tee: u8,
    snp: u8,
    microcode: u8,
}

impl TcbJson {
    /// The raw TCB_VERSION: Turin's layout when an FMC SPL is present, else Milan/Genoa's.
    fn encode(&self) -> U64 {
        let parts = TcbParts {
            fmc: self.fmc,
            bootloader: self.bootloader,
            tee: self.tee,
            snp: self.snp,
            microcode: self.microcode,
        };
        let product = if self.fmc.is_some() {
            Product::Turin
        } else {
            Product::Genoa
        };
        U64::new(parts.encode(product).0)
    }
}

/// `{"major", "minor", "build"}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionJson {
    major: u8,
    minor: u8,
    build: u8,
}

/// `{"r": [72 bytes], "s": [72 bytes]}` (little-endian, as in the report).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureJson<B> {
    r: B,
    s: B,
}

/// The `sev` crate's `AttestationReport` as serde writes it; `B` is a byte array's type.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SevReportJson<B = Vec<u8>> {
    version: u32,
    guest_svn: u32,
    policy: u64,
    family_id: B,
    image_id: B,
    vmpl: u32,
    sig_algo: u32,
    #[serde(deserialize_with = "object")]
    current_tcb: TcbJson,
    plat_info: u64,
    key_info: u32,
    report_data: B,
    measurement: B,
    host_data: B,
    id_key_digest: B,
    author_key_digest: B,
    report_id: B,
    report_id_ma: B,
    #[serde(deserialize_with = "object")]
    reported_tcb: TcbJson,
    #[serde(default)]
    cpuid_fam_id: Option<u8>,
    #[serde(default)]
    cpuid_mod_id: Option<u8>,
    #[serde(default)]
    cpuid_step: Option<u8>,
    chip_id: B,
    #[serde(deserialize_with = "object")]
    committed_tcb: TcbJson,
    #[serde(deserialize_with = "object")]
    current: VersionJson,
    #[serde(deserialize_with = "object")]
    committed: VersionJson,
    #[serde(deserialize_with = "object")]
    launch_tcb: TcbJson,
    #[serde(default)]
    launch_mit_vector: Option<u64>,
    #[serde(default)]
    current_mit_vector: Option<u64>,
    #[serde(deserialize_with = "object")]
    signature: SignatureJson<B>,
}

/// A byte array field of exactly `N` bytes.
fn exact<const N: usize>(field: &str, bytes: &[u8]) -> Result<[u8; N], EvidenceError> {
    <[u8; N]>::try_from(bytes).map_err(|_| {
        EvidenceError::json(
            Form::KbsSnpReportJson,
            format!("attestation_report.{field}"),
            format!("expected {N} bytes, got {}", bytes.len()),
        )
    })
}

impl<B: AsRef<[u8]>> SevReportJson<B> {
    /// The raw report, rebuilt byte for byte.
    fn to_raw(&self) -> Result<RawReport, EvidenceError> {
        let mut raw = RawReport::new_zeroed();
        raw.version = U32::new(self.version);
        raw.guest_svn = U32::new(self.guest_svn);
        raw.policy = U64::new(self.policy);
        raw.family_id = exact("family_id", self.family_id.as_ref())?;
        raw.image_id = exact("image_id", self.image_id.as_ref())?;
        raw.vmpl = U32::new(self.vmpl);
        raw.signature_algo = U32::new(self.sig_algo);
        raw.current_tcb = self.current_tcb.encode();
        raw.platform_info = U64::new(self.plat_info);
        raw.signer_info = U32::new(self.key_info);
        raw.report_data = exact("report_data", self.report_data.as_ref())?;
        raw.measurement = exact("measurement", self.measurement.as_ref())?;
        raw.host_data = exact("host_data", self.host_data.as_ref())?;
        raw.id_key_digest = exact("id_key_digest", self.id_key_digest.as_ref())?;
        raw.author_key_digest = exact("author_key_digest", self.author_key_digest.as_ref())?;
        raw.report_id = exact("report_id", self.report_id.as_ref())?;
        raw.report_id_ma = exact("report_id_ma", self.report_id_ma.as_ref())?;
        raw.reported_tcb = self.reported_tcb.encode();
        raw.cpuid_fam_id = self.cpuid_fam_id.unwrap_or(0);
        raw.cpuid_mod_id = self.cpuid_mod_id.unwrap_or(0);
        raw.cpuid_step = self.cpuid_step.unwrap_or(0);
        raw.chip_id = exact("chip_id", self.chip_id.as_ref())?;
        raw.committed_tcb = self.committed_tcb.encode();
        raw.current_build = self.current.build;
        raw.current_minor = self.current.minor;
        raw.current_major = self.current.major;
        raw.committed_build = self.committed.build;
        raw.committed_minor = self.committed.minor;
        raw.committed_major = self.committed.major;
        raw.launch_tcb = self.launch_tcb.encode();
        raw.launch_mit_vector = U64::new(self.launch_mit_vector.unwrap_or(0));
        raw.current_mit_vector = U64::new(self.current_mit_vector.unwrap_or(0));
        raw.signature = EcdsaSignature {
            r: exact("signature.r", self.signature.r.as_ref())?,
            s: exact("signature.s", self.signature.s.as_ref())?,
            reserved: [0; 368],
        };
        Ok(raw)
    }
}

/// One `cert_chain` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CertJson<B = Vec<u8>> {
    cert_type: String,
    data: B,
}

/// A `cert_chain` entry's `cert_type`.
fn cert_kind(name: &str) -> Option<CertKind> {
    Some(match name {
        "VCEK" => CertKind::Vcek,
        "VLEK" => CertKind::Vlek,
        "ASK" => CertKind::Ask,
        "ASVK" => CertKind::Asvk,
        "ARK" => CertKind::Ark,
        _ => return None,
    })
}

/// The `cert_chain` member, or `certs`, its other name (see the module doc): absent or `null` is
/// empty.
fn cert_chain(
    form: Form,
    obj: &Map<String, Value>,
) -> Result<Vec<(CertKind, Vec<u8>)>, EvidenceError> {
    let (name, value) = match (obj.get("cert_chain"), obj.get("certs")) {
        (Some(_), Some(_)) => {
            return Err(EvidenceError::json(
                form,
                "cert_chain",
                "both `cert_chain` and `certs` are present",
            ));
        }
        (Some(v), None) => ("cert_chain", v),
        (None, Some(v)) => ("certs", v),
        (None, None) => return Ok(Vec::new()),
    };
    let entries = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(a) => a,
        _ => return Err(EvidenceError::json(form, name, "is not an array or null")),
    };
    if entries.len() > MAX_CERT_CHAIN_ENTRIES {
        return Err(EvidenceError::json(
            form,
            name,
            format!("more than {MAX_CERT_CHAIN_ENTRIES} certificates"),
        ));
    }
    let mut out = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let field = format!("{name}[{i}]");
        // An object only (`deserialize`), so a positional entry cannot pass without its `data`
        // being measured; a byte each, it is no larger than the tree it was read from.
        let cert: CertJson = deserialize(form, &field, entry)?;
        if cert.data.len() > MAX_CERT_LEN {
            return Err(EvidenceError::TooLarge {
                what: "a cert_chain entry",
                len: cert.data.len(),
                max: MAX_CERT_LEN,
            });
        }
        let Some(kind) = cert_kind(&cert.cert_type) else {
            return Err(EvidenceError::json(
                form,
                format!("{field}.cert_type"),
                format!(
                    "{:?} is not VCEK, VLEK, ASK, ASVK or ARK",
                    cut(&cert.cert_type, 32)
                ),
            ));
        };
        if cert.data.is_empty() {
            return Err(EvidenceError::json(
                form,
                format!("{field}.data"),
                "is empty",
            ));
        }
        out.push((kind, cert.data));
    }
    Ok(out)
}

/// A byte array of the compact form ([`crate::compact`]): an array of byte values, or
/// `{"b64": "<base64>"}` (one member, a string), which is what [`crate::compact::decode`] turns
/// back into such an array.
struct CompactBytes(Vec<u8>);

impl AsRef<[u8]> for CompactBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl<'de> Deserialize<'de> for CompactBytes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::{Error, MapAccess, SeqAccess, Visitor};
        struct Bytes;
        impl<'de> Visitor<'de> for Bytes {
            type Value = CompactBytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of byte values or {\"b64\": base64}")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CompactBytes, A::Error> {
                // Bounded by the text: every element is at least one character.
                let mut out = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(CompactBytes(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CompactBytes, A::Error> {
                let key = map.next_key::<std::borrow::Cow<'de, str>>()?;
                if key.as_deref() != Some(crate::compact::KEY) {
                    return Err(A::Error::custom("not a compact run"));
                }
                let text = map.next_value::<std::borrow::Cow<'de, str>>()?;
                if map.next_key::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(A::Error::custom("not a compact run"));
                }
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(text.as_bytes())
                    .map(CompactBytes)
                    .map_err(|_| A::Error::custom("a compact run is not base64"))
            }
        }
        d.deserialize_any(Bytes)
    }
}

/// Whether a member is present at all (`null` included), its value skipped.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(d).map(|_| true)
}

/// A member that, when present, must hold a `T` (`null` included: it is then an error, where
/// `Option`'s own `Deserialize` would read it as absent).
fn required<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// The two SEV-SNP forms in compact text, `{"attestation_report": {...}, "cert_chain": [...] |
/// null}` (CoCo guests) and `{"report": "<base64>", "cert_chain": [...] | null}` (Tessera's
/// guest), read straight into their fields. Unknown members send the text to the general path:
/// they could hold what [`crate::compact::decode`] refuses (a run that is not base64, nesting
/// deeper than it walks), which this path would otherwise skip. Like the general path it reads
/// the evidence, the report, its TCBs, versions and signature and each `cert_chain` entry from
/// objects only ([`Obj`]), never from serde's positional array form.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnpCompact {
    #[serde(default, deserialize_with = "required")]
    attestation_report: Option<Obj<SevReportJson<CompactBytes>>>,
    #[serde(default, deserialize_with = "required")]
    report: Option<String>,
    #[serde(default, deserialize_with = "compact_certs")]
    cert_chain: Option<Vec<CertJson<CompactBytes>>>,
    /// `certs` beside `cert_chain` is an error the general path names.
    #[serde(default, deserialize_with = "present")]
    certs: bool,
}

/// The direct path's `cert_chain`: `null` (absent is the field's default) or an array of at
/// most [`MAX_CERT_CHAIN_ENTRIES`] objects, refused as soon as it holds one more, so no more
/// than that many entries are ever built.
fn compact_certs<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<CertJson<CompactBytes>>>, D::Error> {
    use serde::de::{Error, SeqAccess, Visitor};
    struct Entries;
    impl<'de> Visitor<'de> for Entries {
        type Value = Option<Vec<CertJson<CompactBytes>>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("null or an array of cert_chain entries")
        }
        fn visit_unit<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: serde::Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_seq(self)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(Obj(entry)) = seq.next_element::<Obj<CertJson<CompactBytes>>>()? {
                if out.len() == MAX_CERT_CHAIN_ENTRIES {
                    return Err(A::Error::custom("too many certificates"));
                }
                out.push(entry);
            }
            Ok(Some(out))
        }
    }
    d.deserialize_option(Entries)
}

/// The `cert_chain` entries of the direct path (at most [`MAX_CERT_CHAIN_ENTRIES`], by
/// [`compact_certs`]), under the other checks [`cert_chain`] makes; `None` where [`cert_chain`]
/// would refuse (the caller then lets the general path name the error).
fn checked_certs(entries: Vec<CertJson<CompactBytes>>) -> Option<Vec<(CertKind, Vec<u8>)>> {
    entries
        .into_iter()
        .map(|cert| {
            let kind = cert_kind(&cert.cert_type)?;
            let data = cert.data.0;
            (!data.is_empty() && data.len() <= MAX_CERT_LEN).then_some((kind, data))
        })
        .collect()
}

/// The direct path of [`decode_compact`]: `Some` only for evidence the general path accepts as
/// the same evidence; `None` for anything else, including every input the general path
/// refuses.
fn snp_compact(tee: Tee, text: &str) -> Option<Evidence> {
    if tee != Tee::Snp {
        return None;
    }
    // Duplicate members, unknown report fields, `null` and wrong types are all errors here.
    // Objects only (`Obj`), as `decode` takes them.
    let Obj(parsed) = serde_json::from_str::<Obj<SnpCompact>>(text).ok()?;
    if parsed.certs {
        return None;
    }
    // As in `decode`: `attestation_report` first, then `report`.
    let (evidence, form) = match (parsed.attestation_report, parsed.report) {
        (Some(Obj(sev)), _) => {
            let report = AttestationReport::from_raw(sev.to_raw().ok()?).ok()?;
            (SnpEvidence::Report(report), Form::KbsSnpReportJson)
        }
        (None, Some(text)) => {
            let form = Form::KbsSnpReport;
            let bytes = decode_base64(form, "report", &text, MAX_REPORT_LEN).ok()?;
            (SnpEvidence::parse(&bytes).ok()?, form)
        }
        (None, None) => return None,
    };
    let certs = checked_certs(parsed.cert_chain.unwrap_or_default())?;
    Some(Evidence::from_snp(evidence, certs, form))
}

/// Decode evidence from its compact text ([`crate::compact`]) for the TEE the guest named:
/// the SEV-SNP forms straight into their fields; anything else (and anything that path does not
/// accept) by parsing the text, [`crate::compact::decode`] and [`decode`], which accepts or
/// refuses it and names the reason. The two paths agree on every input of at most
/// [`crate::evidence::MAX_EVIDENCE_JSON_VALUES`] values (the `kbs_evidence_json` fuzz target
/// checks it, and `the_compact_path_decodes_as_the_general_path_does` in `tests/facade_sim.rs`
/// on the cases where they once differed). Above that count the general path refuses to build
/// the tree, while the direct path, which builds none, still accepts SEV-SNP evidence within
/// the bounds both paths apply (at most [`MAX_CERT_CHAIN_ENTRIES`] certificates of
/// [`MAX_CERT_LEN`] bytes each; the count takes a {"b64"} run, its key written plainly or with
/// escapes, as the values it stands for, so two 60 KB certificates exceed it): a difference in
/// what is accepted, never in what is decoded.
pub(crate) fn decode_compact(tee: Tee, text: &str) -> Result<Evidence, EvidenceError> {
    if let Some(evidence) = snp_compact(tee, text) {
        return Ok(evidence);
    }
    let value = crate::evidence::parse_json_bounded(text.as_bytes())?;
    let value = crate::compact::decode(value).ok_or_else(|| {
        unrecognized_json("compact form: a {\"b64\"} run is not base64, or it nests too deeply")
    })?;
    decode(Some(tee), &value)
}

/// `{"attestation_report": {...}, "cert_chain": [...] | null}`.
fn sev_report_json(obj: &Map<String, Value>) -> Result<Evidence, EvidenceError> {
    let form = Form::KbsSnpReportJson;
    let report_value = obj.get("attestation_report").unwrap_or(&Value::Null);
    let parsed: SevReportJson = deserialize(form, "attestation_report", report_value)?;
    let raw = parsed.to_raw()?;
    let report =
        AttestationReport::from_raw(raw).map_err(|source| EvidenceError::Snp { form, source })?;
    let certs = cert_chain(form, obj)?;
    Ok(Evidence::from_snp(SnpEvidence::Report(report), certs, form))
}

fn string_member<'a>(
    form: Form,
    obj: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, EvidenceError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(EvidenceError::json(form, name, "is not a string")),
    }
}

/// `{"report": "<base64>", "cert_chain": [...] | null}`.
fn raw_report_json(obj: &Map<String, Value>) -> Result<Evidence, EvidenceError> {
    let form = Form::KbsSnpReport;
    let text = string_member(form, obj, "report")?
        .ok_or_else(|| EvidenceError::json(form, "report", "is null"))?;
    let bytes = decode_base64(form, "report", text, MAX_REPORT_LEN)?;
    let evidence =
        SnpEvidence::parse(&bytes).map_err(|source| EvidenceError::Snp { form, source })?;
    let certs = cert_chain(form, obj)?;
    Ok(Evidence::from_snp(evidence, certs, form))
}

/// `{"quote": "<base64>", "cc_eventlog": "<base64>" | null}`.
fn quote_json(obj: &Map<String, Value>) -> Result<Evidence, EvidenceError> {
    let form = Form::KbsQuote;
    let text = string_member(form, obj, "quote")?
        .ok_or_else(|| EvidenceError::json(form, "quote", "is null"))?;
    let bytes = decode_base64(form, "quote", text, MAX_QUOTE_LEN)?;
    let quote = Quote::parse(&bytes).map_err(|source| EvidenceError::Quote { form, source })?;
    let eventlog = string_member(form, obj, "cc_eventlog")?
        .map(|t| decode_base64(form, "cc_eventlog", t, MAX_EVENTLOG_LEN))
        .transpose()?;
    Ok(Evidence::from_quote(quote, eventlog, form))
}

/// A TCB_VERSION as the `sev` crate writes it, in Turin's layout or Milan/Genoa's.
fn tcb_json(tcb: U64, turin: bool) -> Value {
    let product = if turin {
        Product::Turin
    } else {
        Product::Genoa
    };
    let parts = TcbVersion(tcb.get()).decode(product);
    json!({
        "fmc": parts.fmc,
        "bootloader": parts.bootloader,
        "tee": parts.tee,
        "snp": parts.snp,
        "microcode": parts.microcode,
    })
}

/// The `sev`-crate JSON of `report` (the inverse of the decoder for reports whose reserved
/// bytes are zero, as the firmware writes them).
pub(crate) fn sev_report_json_of(report: &AttestationReport) -> Value {
    let raw = report.raw();
    let version = raw.version.get();
    let turin = report.cpuid().and_then(Product::from_cpuid) == Some(Product::Turin);
    let since = |v: u32, x: u64| (version >= v).then_some(x);
    json!({
        "version": version,
        "guest_svn": raw.guest_svn.get(),
        "policy": raw.policy.get(),
        "family_id": raw.family_id,
        "image_id": raw.image_id,
        "vmpl": raw.vmpl.get(),
        "sig_algo": raw.signature_algo.get(),
        "current_tcb": tcb_json(raw.current_tcb, turin),
        "plat_info": raw.platform_info.get(),
        "key_info": raw.signer_info.get(),
        "report_data": raw.report_data.to_vec(),
        "measurement": raw.measurement.to_vec(),
        "host_data": raw.host_data,
        "id_key_digest": raw.id_key_digest.to_vec(),
        "author_key_digest": raw.author_key_digest.to_vec(),
        "report_id": raw.report_id,
        "report_id_ma": raw.report_id_ma,
        "reported_tcb": tcb_json(raw.reported_tcb, turin),
        "cpuid_fam_id": since(3, u64::from(raw.cpuid_fam_id)),
        "cpuid_mod_id": since(3, u64::from(raw.cpuid_mod_id)),
        "cpuid_step": since(3, u64::from(raw.cpuid_step)),
        "chip_id": raw.chip_id.to_vec(),
        "committed_tcb": tcb_json(raw.committed_tcb, turin),
        "current": {"major": raw.current_major, "minor": raw.current_minor, "build": raw.current_build},
        "committed": {"major": raw.committed_major, "minor": raw.committed_minor, "build": raw.committed_build},
        "launch_tcb": tcb_json(raw.launch_tcb, turin),
        "launch_mit_vector": since(5, raw.launch_mit_vector.get()),
        "current_mit_vector": since(5, raw.current_mit_vector.get()),
        "signature": {"r": raw.signature.r.to_vec(), "s": raw.signature.s.to_vec()},
    })
}

/// The `cert_chain` of `entries` (certificate kinds and bytes), `null` when empty.
pub(crate) fn cert_chain_json(entries: &[(CertKind, Vec<u8>)]) -> Value {
    if entries.is_empty() {
        return Value::Null;
    }
    Value::Array(
        entries
            .iter()
            .filter_map(|(kind, der)| {
                let name = match kind {
                    CertKind::Vcek => "VCEK",
                    CertKind::Vlek => "VLEK",
                    CertKind::Ask => "ASK",
                    CertKind::Asvk => "ASVK",
                    CertKind::Ark => "ARK",
                    _ => return None,
                };
                Some(json!({"cert_type": name, "data": der}))
            })
            .collect(),
    )
}

/// Fuzz harness: the KBS JSON decoders on the input as JSON, for no TEE and for each TEE name;
/// what decodes as the `sev` report JSON rebuilds a report that parses back to itself; what is
/// accepted carries at most [`MAX_CERT_CHAIN_ENTRIES`] `cert_chain` entries of at most
/// [`MAX_CERT_LEN`] bytes; the value count of the input read as compact text bounds the tree
/// its expansion makes.
#[doc(hidden)]
#[allow(clippy::panic)] // fuzz harness: an assertion failure is the finding
pub fn fuzz_kbs_json(data: &[u8]) {
    if data.len() > crate::evidence::MAX_JSON_LEN {
        return;
    }
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let plain = decode(None, &value);
    let text = std::str::from_utf8(data).ok();
    let compact = text.and_then(crate::compact::encode_text);
    // The input read as compact text decodes as its expansion does.
    let expanded = crate::compact::decode(value.clone());
    if let (Some(text), Some(expanded)) = (text, &expanded) {
        assert!(
            !crate::compact::json_values_at_most(text, json_nodes(expanded) - 1),
            "the value count misses part of the expansion"
        );
    }
    for tee in ["snp", "tdx", "sgx", "az-snp-vtpm"] {
        let general = Evidence::from_kbs(tee, &value);
        if let Ok(e) = &general {
            assert_eq!(e.tee().as_str(), tee);
            assert!(plain.is_ok());
            within_bounds(e);
        }
        if let (Some(text), Some(expanded)) = (text, &expanded) {
            for e in [
                Evidence::from_kbs_compact(tee, text),
                Evidence::from_kbs(tee, expanded),
            ]
            .iter()
            .flatten()
            {
                within_bounds(e);
            }
        }
        // The compact path decodes the encoded text exactly as the general path decodes the
        // value.
        if let Some(compact) = &compact {
            same_outcome(&Evidence::from_kbs_compact(tee, compact), &general);
        }
        if let (Some(text), Some(expanded)) = (text, &expanded) {
            same_outcome(
                &Evidence::from_kbs_compact(tee, text),
                &Evidence::from_kbs(tee, expanded),
            );
        }
    }
    if let Ok(e) = plain {
        let _ = (e.report_data(), e.init_data_field(), e.digest());
        if let Some(report) = e.snp_report() {
            let again = AttestationReport::from_bytes(report.as_bytes());
            assert_eq!(again.as_ref(), Ok(report));
        }
    }
}

/// Values and object keys in `v`, as [`crate::compact::json_values_at_most`] counts them.
fn json_nodes(v: &Value) -> usize {
    1 + match v {
        Value::Array(items) => items.iter().map(json_nodes).sum(),
        Value::Object(map) => map.values().map(|v| 1 + json_nodes(v)).sum(),
        _ => 0,
    }
}

/// Accepted evidence holds no more `cert_chain` entries, nor longer ones, than the bounds.
#[allow(clippy::panic)] // fuzz harness: an assertion failure is the finding
fn within_bounds(e: &Evidence) {
    let n = e.cert_chain_len();
    assert!(n <= MAX_CERT_CHAIN_ENTRIES, "{n} cert_chain entries");
    for (_, der) in e.carried_certificates().iter().take(n) {
        assert!(
            der.len() <= MAX_CERT_LEN,
            "a cert_chain entry of {} bytes",
            der.len()
        );
    }
}

/// The two decodings gave the same evidence (form, TEE, bytes, carried certificates and event
/// log: everything verification and its claims read), or the same error.
#[allow(clippy::panic)] // fuzz harness: an assertion failure is the finding
fn same_outcome(a: &Result<Evidence, EvidenceError>, b: &Result<Evidence, EvidenceError>) {
    match (a, b) {
        (Ok(a), Ok(b)) => assert!(
            a.form() == b.form()
                && a.tee() == b.tee()
                && a.digest() == b.digest()
                && a.snp_report().map(AttestationReport::as_bytes)
                    == b.snp_report().map(AttestationReport::as_bytes)
                && a.carried_certificates() == b.carried_certificates()
                && a.cc_eventlog() == b.cc_eventlog(),
            "the compact path decodes other evidence"
        ),
        (Err(a), Err(b)) => assert_eq!(a, b, "the compact path refuses differently"),
        (a, b) => panic!(
            "the compact path {} where the general path {}",
            if a.is_ok() { "accepts" } else { "refuses" },
            if b.is_ok() { "accepts" } else { "refuses" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The direct path stops reading `cert_chain` at the entry past the bound: what follows it
    /// is never read (a malformed 18th entry is not what the error names).
    #[test]
    fn the_direct_path_reads_no_more_certificates_than_the_bound() {
        let entry = r#"{"cert_type":"ARK","data":[48]}"#;
        let chain = |n: usize, tail: &str| {
            let mut entries = vec![entry; n];
            entries.extend([tail].iter().filter(|t| !t.is_empty()));
            format!(r#"{{"cert_chain":[{}]}}"#, entries.join(","))
        };
        let read = |text: &str| serde_json::from_str::<Obj<SnpCompact>>(text).map(|o| o.0);
        let ok = read(&chain(MAX_CERT_CHAIN_ENTRIES, "")).unwrap();
        assert_eq!(ok.cert_chain.map(|c| c.len()), Some(MAX_CERT_CHAIN_ENTRIES));
        let err = read(&chain(MAX_CERT_CHAIN_ENTRIES + 1, "\"not an entry\"")).err();
        assert!(
            err.as_ref()
                .is_some_and(|e| e.to_string().contains("too many certificates")),
            "{err:?}"
        );
        // Null is no chain; anything else that is not an array is refused.
        assert!(read(r#"{"cert_chain":null}"#).unwrap().cert_chain.is_none());
        assert!(read(r#"{"cert_chain":{}}"#).is_err());
    }
}

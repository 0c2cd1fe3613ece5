//! One fetched item as stored: the exact body and issuer chain the vendor sent, where and when
//! it came from, and how long it is valid — read from the item itself with the existing
//! parsers (tessera-pki, tessera-snp's VEK extensions, tessera-tdx's collateral).
//!
//! An entry is checked for *shape* (it parses, it is what was asked for: same hwID and TCB,
//! same FMSPC and TEE, same CA) whenever it is made, loaded or imported. It is never trusted:
//! signatures, chains and freshness at the verification time are the verifiers' job, and
//! entries from a cache go through them exactly like fresh ones.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tessera_pki::{Certificate, Crl, UnixTime, load_certificates, load_crls};
use tessera_snp::certs::{VekExtensions, VekKind};
use tessera_tdx::collateral::{EnclaveIdentityId, SIGNATURE_LEN, Signed, TcbInfoId};

use crate::CollateralError;
use crate::item::{IntelTee, Item, PckCa};
use crate::response::{self, HttpResponse, MAX_BODY_LEN};

/// The format tag of a stored entry.
pub const ENTRY_FORMAT: &str = "tessera-collateral-entry/1";
/// Most bytes accepted for one stored entry (body in hex plus metadata).
pub const MAX_ENTRY_LEN: usize = 3 * MAX_BODY_LEN;

/// A fetched item, checked for shape, with its validity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    item: Item,
    source: String,
    fetched_at: UnixTime,
    valid_until: UnixTime,
    valid_until_field: &'static str,
    body: Vec<u8>,
    issuer_chain: Option<String>,
}

/// The end of an entry's validity and the field that sets it.
struct Validity {
    until: UnixTime,
    field: &'static str,
}

impl Validity {
    fn new(until: UnixTime, field: &'static str) -> Self {
        Self { until, field }
    }

    /// The earlier of the two.
    fn min(self, other: Self) -> Self {
        if other.until < self.until {
            other
        } else {
            self
        }
    }

    fn of_certs(certs: &[Certificate]) -> Option<Self> {
        certs
            .iter()
            .map(|c| Self::new(c.not_after(), "notAfter"))
            .reduce(Self::min)
    }
}

/// The PCS `{"tcbInfo": {...}, "signature": ".."}` / `{"enclaveIdentity": ...}` envelope.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "tcbInfo", borrow, default)]
    tcb_info: Option<&'a RawValue>,
    #[serde(rename = "enclaveIdentity", borrow, default)]
    enclave_identity: Option<&'a RawValue>,
    #[serde(default)]
    signature: Option<String>,
}

pub(crate) fn signed_body<'a>(
    key: &str,
    body: &'a [u8],
    tcb: bool,
) -> Result<(&'a RawValue, [u8; SIGNATURE_LEN]), CollateralError> {
    let bad = |field, detail: String| CollateralError::response(key, field, detail);
    let envelope: Envelope<'a> =
        serde_json::from_slice(body).map_err(|e| bad("body", format!("JSON: {e}")))?;
    let (inner, name) = if tcb {
        (envelope.tcb_info, "tcbInfo")
    } else {
        (envelope.enclave_identity, "enclaveIdentity")
    };
    let inner = inner.ok_or_else(|| bad("body", format!("no {name}")))?;
    let signature = envelope
        .signature
        .as_deref()
        .and_then(|s| tessera_pki::from_hex(s.as_bytes()))
        .and_then(|s| <[u8; SIGNATURE_LEN]>::try_from(s).ok())
        .ok_or_else(|| bad("signature", String::from("not 64 bytes of hex")))?;
    Ok((inner, signature))
}

/// One CRL from DER, PEM or hex text (older PCCS keep hex).
pub(crate) fn one_crl(key: &str, body: &[u8]) -> Result<Crl, CollateralError> {
    let parsed = load_crls(body).or_else(|first| {
        let compact: Vec<u8> = body
            .iter()
            .copied()
            .filter(|b| !b.is_ascii_whitespace())
            .collect();
        tessera_pki::from_hex(&compact)
            .ok_or(first.clone())
            .and_then(|der| load_crls(&der))
            .map_err(|_| first)
    });
    let mut crls =
        parsed.map_err(|e| CollateralError::response(key, "body", format!("CRL: {e}")))?;
    match (crls.pop(), crls.is_empty()) {
        (Some(crl), true) => Ok(crl),
        _ => Err(CollateralError::response(
            key,
            "body",
            "not exactly one CRL",
        )),
    }
}

fn crl_validity(key: &str, crl: &Crl) -> Result<Validity, CollateralError> {
    crl.next_update()
        .map(|t| Validity::new(t, "nextUpdate"))
        .ok_or_else(|| CollateralError::response(key, "nextUpdate", "the CRL has none"))
}

fn issuer_chain(key: &str, chain: Option<&str>) -> Result<Vec<Certificate>, CollateralError> {
    let chain = chain.ok_or_else(|| CollateralError::response(key, "issuer chain", "missing"))?;
    let certs = load_certificates(chain.as_bytes())
        .map_err(|e| CollateralError::response(key, "issuer chain", e.to_string()))?;
    if certs.is_empty() {
        return Err(CollateralError::response(
            key,
            "issuer chain",
            "no certificate",
        ));
    }
    Ok(certs)
}

fn common_name(issuer: &str) -> Option<&str> {
    issuer
        .split(", ")
        .find_map(|part| part.trim().strip_prefix("CN="))
}

/// Check that `body` (and `chain`) is the item asked for; return how long it is valid.
fn check_shape(item: &Item, body: &[u8], chain: Option<&str>) -> Result<Validity, CollateralError> {
    let key = item.key();
    let key = key.as_str();
    let bad = |field, detail: &str| CollateralError::response(key, field, detail);
    if body.len() > MAX_BODY_LEN {
        return Err(bad("body", "larger than the limit"));
    }
    match item {
        Item::Vcek {
            product,
            hwid,
            fmc,
            bl,
            tee,
            snp,
            ucode,
        } => {
            let mut certs = load_certificates(body)
                .map_err(|e| CollateralError::response(key, "body", e.to_string()))?;
            let cert = match (certs.pop(), certs.is_empty()) {
                (Some(c), true) => c,
                _ => return Err(bad("body", "not exactly one certificate")),
            };
            let ext = VekExtensions::from_certificate(&cert)
                .map_err(|e| CollateralError::response(key, "VCEK extensions", e.to_string()))?;
            if ext.kind() != VekKind::Vcek {
                return Err(bad("VCEK extensions", "not a VCEK (no hwID)"));
            }
            if ext.hwid.as_deref().map(tessera_pki::to_hex).as_deref()
                != Some(hwid.to_ascii_lowercase().as_str())
            {
                return Err(bad("hwID", "not the hwID asked for"));
            }
            let t = ext.tcb;
            if (t.fmc, t.bootloader, t.tee, t.snp, t.microcode) != (*fmc, *bl, *tee, *snp, *ucode) {
                return Err(bad("TCB", "not the TCB asked for"));
            }
            if ext.product().is_some_and(|p| p != *product) {
                return Err(bad("productName", "not the product asked for"));
            }
            Ok(Validity::new(cert.not_after(), "notAfter"))
        }
        Item::AmdChain { .. } => {
            let certs = load_certificates(body)
                .map_err(|e| CollateralError::response(key, "body", e.to_string()))?;
            if !(1..=4).contains(&certs.len()) {
                return Err(bad("body", "not 1 to 4 certificates"));
            }
            Validity::of_certs(&certs).ok_or_else(|| bad("body", "no certificate"))
        }
        Item::AmdCrl { .. } => crl_validity(key, &one_crl(key, body)?),
        Item::TcbInfo { tee, fmspc, .. } => {
            let (inner, signature) = signed_body(key, body, true)?;
            let signed = Signed::tcb_info(inner.get().as_bytes().to_vec(), signature)
                .map_err(|e| CollateralError::response(key, "tcbInfo", e.to_string()))?;
            let info = signed.value();
            let want = match tee {
                IntelTee::Sgx => TcbInfoId::Sgx,
                IntelTee::Tdx => TcbInfoId::Tdx,
            };
            if info.id != want {
                return Err(bad("tcbInfo.id", "not the TEE asked for"));
            }
            if !tessera_pki::to_hex(&info.fmspc).eq_ignore_ascii_case(fmspc) {
                return Err(bad("tcbInfo.fmspc", "not the FMSPC asked for"));
            }
            let chain = issuer_chain(key, chain)?;
            let mut v = Validity::new(info.next_update, "nextUpdate");
            if let Some(c) = Validity::of_certs(&chain) {
                v = v.min(c);
            }
            Ok(v)
        }
        Item::QeIdentity { tee, .. } => {
            let (inner, signature) = signed_body(key, body, false)?;
            let signed = Signed::qe_identity(inner.get().as_bytes().to_vec(), signature)
                .map_err(|e| CollateralError::response(key, "enclaveIdentity", e.to_string()))?;
            let identity = signed.value();
            let want = match tee {
                IntelTee::Sgx => EnclaveIdentityId::Qe,
                IntelTee::Tdx => EnclaveIdentityId::TdQe,
            };
            if identity.id != want {
                return Err(bad("enclaveIdentity.id", "not the enclave asked for"));
            }
            let chain = issuer_chain(key, chain)?;
            let mut v = Validity::new(identity.next_update, "nextUpdate");
            if let Some(c) = Validity::of_certs(&chain) {
                v = v.min(c);
            }
            Ok(v)
        }
        Item::PckCrl { ca } => {
            let crl = one_crl(key, body)?;
            if PckCa::of_issuer(crl.issuer()) != Some(*ca) {
                return Err(bad("issuer", "not the CA asked for"));
            }
            let chain = issuer_chain(key, chain)?;
            let mut v = crl_validity(key, &crl)?;
            if let Some(c) = Validity::of_certs(&chain) {
                v = v.min(c);
            }
            Ok(v)
        }
        Item::RootCaCrl => {
            let crl = one_crl(key, body)?;
            if !common_name(crl.issuer()).is_some_and(|cn| cn.ends_with("SGX Root CA")) {
                return Err(bad("issuer", "not an SGX Root CA"));
            }
            crl_validity(key, &crl)
        }
    }
}

impl Entry {
    /// An entry from a vendor's 200 response to a request for `item` at `source`, received at
    /// `now`. For 429 and other statuses see [`response::classify`].
    ///
    /// # Errors
    /// As [`response::classify`] (a 429 becomes [`CollateralError::RateLimited`]), then as
    /// [`Entry::new`].
    pub fn from_response(
        item: &Item,
        source: &str,
        response: &HttpResponse,
        now: UnixTime,
    ) -> Result<Self, CollateralError> {
        match response::classify(item, response, now)? {
            response::Outcome::RateLimited { retry_after_secs } => {
                Err(CollateralError::RateLimited {
                    key: item.key(),
                    retry_at: UnixTime::from_secs(
                        now.as_secs()
                            .saturating_add(i64::try_from(retry_after_secs).unwrap_or(i64::MAX)),
                    ),
                })
            }
            response::Outcome::Ok { issuer_chain } => {
                let entry = Self::new(
                    item.clone(),
                    source,
                    now,
                    response.body.clone(),
                    issuer_chain,
                )?;
                entry.check_not_expired(now)?;
                Ok(entry)
            }
        }
    }

    /// An entry from its parts, checked for shape (see the [module documentation](self)).
    ///
    /// # Errors
    /// [`CollateralError::Item`] for a malformed item; [`CollateralError::Response`] when the
    /// body or chain does not parse or is not what `item` asks for.
    pub fn new(
        item: Item,
        source: &str,
        fetched_at: UnixTime,
        body: Vec<u8>,
        issuer_chain: Option<String>,
    ) -> Result<Self, CollateralError> {
        item.check()?;
        let validity = check_shape(&item, &body, issuer_chain.as_deref())?;
        Ok(Self {
            item,
            source: crate::error::sanitise(source, 2048),
            fetched_at,
            valid_until: validity.until,
            valid_until_field: validity.field,
            body,
            issuer_chain,
        })
    }

    /// [`CollateralError::Expired`] when the entry's validity ended at or before `now`.
    ///
    /// # Errors
    /// As said.
    pub fn check_not_expired(&self, now: UnixTime) -> Result<(), CollateralError> {
        if self.valid_until <= now {
            return Err(CollateralError::Expired {
                key: self.item.key(),
                field: self.valid_until_field,
                valid_until: self.valid_until,
                now,
            });
        }
        Ok(())
    }

    /// What was asked for.
    #[must_use]
    pub fn item(&self) -> &Item {
        &self.item
    }
    /// The URL it was fetched from.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.source
    }
    /// When it was fetched.
    #[must_use]
    pub fn fetched_at(&self) -> UnixTime {
        self.fetched_at
    }
    /// The end of its validity: VCEK notAfter, CRL nextUpdate, TCB info / identity
    /// nextUpdate, and for Intel items also the issuer chain's notAfter, whichever is first.
    #[must_use]
    pub fn valid_until(&self) -> UnixTime {
        self.valid_until
    }
    /// The field that sets [`Entry::valid_until`] (`notAfter` or `nextUpdate`).
    #[must_use]
    pub fn valid_until_field(&self) -> &'static str {
        self.valid_until_field
    }
    /// The body exactly as the vendor sent it.
    #[must_use]
    pub fn body(&self) -> &[u8] {
        &self.body
    }
    /// The issuer chain (PEM) from the response header, for Intel items.
    #[must_use]
    pub fn issuer_chain(&self) -> Option<&str> {
        self.issuer_chain.as_deref()
    }

    /// When to fetch it again: `refresh_before` seconds before it expires, but not before
    /// half its life since it was fetched.
    #[must_use]
    pub fn refresh_at(&self, refresh_before_secs: i64) -> UnixTime {
        let (from, until) = (self.fetched_at.as_secs(), self.valid_until.as_secs());
        let half = from.saturating_add(until.saturating_sub(from) / 2);
        UnixTime::from_secs(until.saturating_sub(refresh_before_secs).max(half))
    }

    /// The stored form (JSON).
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.stored()).unwrap_or_default()
    }

    pub(crate) fn stored(&self) -> StoredEntry {
        let (body_text, body_hex) = match core::str::from_utf8(&self.body) {
            Ok(text) => (Some(text.to_owned()), None),
            Err(_) => (None, Some(tessera_pki::to_hex(&self.body))),
        };
        StoredEntry {
            format: ENTRY_FORMAT.to_owned(),
            item: self.item.clone(),
            source: self.source.clone(),
            fetched_at: self.fetched_at.to_string(),
            valid_until: self.valid_until.to_string(),
            body_text,
            body_hex,
            issuer_chain: self.issuer_chain.clone(),
        }
    }

    /// An entry from its stored form, checked again for shape (a cache is not trusted).
    /// `name` names the file in errors.
    ///
    /// # Errors
    /// [`CollateralError::Format`] for malformed JSON; as [`Entry::new`].
    pub fn from_json(bytes: &[u8], name: &str) -> Result<Self, CollateralError> {
        let bad = |detail: String| CollateralError::Format {
            path: name.to_owned(),
            detail,
        };
        if bytes.len() > MAX_ENTRY_LEN {
            return Err(bad(String::from("larger than the limit")));
        }
        let stored: StoredEntry =
            serde_json::from_slice(bytes).map_err(|e| bad(format!("JSON: {e}")))?;
        Self::from_stored(stored, name)
    }

    fn from_stored(stored: StoredEntry, name: &str) -> Result<Self, CollateralError> {
        let bad = |detail: String| CollateralError::Format {
            path: name.to_owned(),
            detail,
        };
        if stored.format != ENTRY_FORMAT {
            return Err(bad(format!("format is not {ENTRY_FORMAT}")));
        }
        let fetched_at = UnixTime::parse_rfc3339(&stored.fetched_at)
            .map_err(|_| bad(String::from("fetched_at is not RFC 3339")))?;
        let body = match (stored.body_text, stored.body_hex) {
            (Some(text), None) => text.into_bytes(),
            (None, Some(hex)) => tessera_pki::from_hex(hex.as_bytes())
                .ok_or_else(|| bad(String::from("body_hex is not hex")))?,
            _ => return Err(bad(String::from("exactly one of body_text and body_hex"))),
        };
        // valid_until is recomputed from the item, not taken from the file.
        Self::new(
            stored.item,
            &stored.source,
            fetched_at,
            body,
            stored.issuer_chain,
        )
    }

    pub(crate) fn from_stored_entry(
        stored: StoredEntry,
        name: &str,
    ) -> Result<Self, CollateralError> {
        Self::from_stored(stored, name)
    }
}

/// The JSON form of an entry (also an element of a packed bundle).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StoredEntry {
    format: String,
    item: Item,
    source: String,
    fetched_at: String,
    /// For people reading the file; recomputed when loaded.
    valid_until: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body_hex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    issuer_chain: Option<String>,
}

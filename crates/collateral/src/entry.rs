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
use tessera_snp::abi::Product;
use tessera_snp::certs::{VekExtensions, VekKind};
use tessera_tdx::collateral::{EnclaveIdentityId, SIGNATURE_LEN, Signed, TcbInfoId};

use crate::CollateralError;
use crate::item::{IntelTee, Item, PckCa};
use crate::response::{self, HttpResponse, MAX_BODY_LEN};

/// The format tag of a stored entry.
pub const ENTRY_FORMAT: &str = "tessera-collateral-entry/1";
/// Most bytes accepted for one stored entry (body in hex plus metadata).
pub const MAX_ENTRY_LEN: usize = 3 * MAX_BODY_LEN;
/// At most how long after it was fetched an item that carries revocation or TCB status
/// ([`Item::carries_status`]: AMD CRLs; Intel TCB info, QE identity, PCK and Root CA CRLs) is
/// due for refresh: a day. Its own validity says how long it may be used, not how soon a newer
/// copy can appear: AMD's ARK CRLs run for about a year and Intel's items for about a month,
/// and a revocation or TCB recovery published meanwhile must reach an online cache within a
/// day, not a day before the held copy ends. See [`Entry::refresh_at`].
pub const STATUS_REFRESH_SECS: i64 = 86_400;

/// A fetched item, checked for shape, with its validity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    item: Item,
    source: String,
    fetched_at: UnixTime,
    valid_until: UnixTime,
    valid_until_field: &'static str,
    issued_at: UnixTime,
    body: Vec<u8>,
    issuer_chain: Option<String>,
}

/// The end of an entry's validity and the field that sets it.
struct Validity {
    until: UnixTime,
    field: &'static str,
    /// When the item itself was issued (CRL thisUpdate, TCB info / identity issueDate, the
    /// newest notBefore of certificates): what tells a newer copy from an older one.
    issued: UnixTime,
}

impl Validity {
    fn new(until: UnixTime, field: &'static str, issued: UnixTime) -> Self {
        Self {
            until,
            field,
            issued,
        }
    }

    /// The earlier end of the two; the issue time stays this one's (an issuer chain's
    /// certificates can end the item's validity, they do not date it).
    fn min(self, other: Self) -> Self {
        if other.until < self.until {
            Self {
                issued: self.issued,
                ..other
            }
        } else {
            self
        }
    }

    fn of_certs(certs: &[Certificate]) -> Option<Self> {
        let issued = certs.iter().map(Certificate::not_before).max()?;
        certs
            .iter()
            .map(|c| Self::new(c.not_after(), "notAfter", issued))
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
        .map(|t| Validity::new(t, "nextUpdate", crl.this_update()))
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

/// The common names (`CN=` parts) of a name written as `CN=..., O=...`, in order.
fn common_names(name: &str) -> impl Iterator<Item = &str> {
    name.split(", ")
        .filter_map(|part| part.trim().strip_prefix("CN="))
}

/// The first common name of a name written as `CN=..., O=...`.
pub(crate) fn common_name(name: &str) -> Option<&str> {
    common_names(name).next()
}

/// Whether `name` (a certificate's or CRL's issuer as text) is the ARK of `product`: its
/// common name is `ARK-<product>` (`ARK-Milan`, `ARK-Genoa`, `ARK-Turin`, as AMD names them
/// and as the simulator does). Every `CN=` part must say so, not only the first, so that a
/// value holding `, CN=...` can neither hide the real common name nor stand in for it.
fn is_ark_of(name: &str, product: Product) -> bool {
    let want = format!("ARK-{}", product.name());
    let mut names = common_names(name).peekable();
    names.peek().is_some() && names.all(|cn| cn == want)
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
            Ok(Validity::new(
                cert.not_after(),
                "notAfter",
                cert.not_before(),
            ))
        }
        Item::AmdChain { product, .. } => {
            let certs = load_certificates(body)
                .map_err(|e| CollateralError::response(key, "body", e.to_string()))?;
            if !(1..=4).contains(&certs.len()) {
                return Err(bad("body", "not 1 to 4 certificates"));
            }
            // Every certificate of a KDS chain (ASK or ASVK, and the ARK itself) is issued by
            // the product's ARK: another product's genuine chain is not this one's.
            if !certs.iter().all(|c| is_ark_of(c.issuer(), *product)) {
                return Err(bad(
                    "issuer",
                    &format!(
                        "a certificate not issued by ARK-{}, the root of the product asked for",
                        product.name()
                    ),
                ));
            }
            Validity::of_certs(&certs).ok_or_else(|| bad("body", "no certificate"))
        }
        Item::AmdCrl { product, .. } => {
            let crl = one_crl(key, body)?;
            // Another product's genuine CRL stored under this one's key would be taken as
            // this product's, and by newer-only could keep its real CRL out.
            if !is_ark_of(crl.issuer(), *product) {
                return Err(bad(
                    "issuer",
                    &format!(
                        "not issued by ARK-{}, the root of the product asked for",
                        product.name()
                    ),
                ));
            }
            crl_validity(key, &crl)
        }
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
            let mut v = Validity::new(info.next_update, "nextUpdate", info.issue_date);
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
            let mut v = Validity::new(identity.next_update, "nextUpdate", identity.issue_date);
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
        // Nothing genuine is issued after its validity ends (its own, or its issuer chain's:
        // such an item could verify at no time); it would be newer than every genuine copy,
        // which import and the cache keep out, while expired.
        if validity.issued > validity.until {
            return Err(CollateralError::response(
                &item.key(),
                validity.field,
                format!(
                    "issued {} after the end of its validity ({}, by its {} or its issuer chain)",
                    validity.issued, validity.until, validity.field
                ),
            ));
        }
        Ok(Self {
            item,
            source: crate::error::sanitise(source, 2048),
            fetched_at,
            valid_until: validity.until,
            valid_until_field: validity.field,
            issued_at: validity.issued,
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
    /// When the item itself was issued: CRL thisUpdate, TCB info / QE identity issueDate, a
    /// VCEK's (or the newest chain certificate's) notBefore. A copy issued earlier than the one
    /// held is older, whatever its own validity.
    #[must_use]
    pub fn issued_at(&self) -> UnixTime {
        self.issued_at
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

    /// When to fetch it again, judged at `now`, by an online cache: as
    /// [`Entry::refresh_at_by_expiry`], and for an item that carries revocation or TCB status
    /// ([`Item::carries_status`]) also no later than [`STATUS_REFRESH_SECS`] (a day) after it
    /// was fetched, so that a revocation or TCB recovery published while the held copy is
    /// still valid (an AMD CRL for about a year) reaches the cache within a day. Never after it
    /// expires. A VCEK or chain follows its expiry alone.
    ///
    /// `fetched_at` is what the cache file or bundle said (not trusted): a status item whose
    /// fetch time is after `now` (a clock ahead where it was fetched, or an edited file) is
    /// due at once, since how long ago it was fetched is unknown and a day from its stated
    /// time could be any length from now (fetching it again records a fetch time of this
    /// clock's).
    #[must_use]
    pub fn refresh_at(&self, refresh_before_secs: i64, now: UnixTime) -> UnixTime {
        let by_expiry = self.refresh_at_by_expiry(refresh_before_secs, now);
        if !self.item.carries_status() {
            return by_expiry;
        }
        let by_fetch = if self.fetched_at > now {
            now
        } else {
            UnixTime::from_secs(
                self.fetched_at
                    .as_secs()
                    .saturating_add(STATUS_REFRESH_SECS),
            )
        };
        by_expiry.min(by_fetch)
    }

    /// When it is due by its expiry alone, judged at `now`: `refresh_before` seconds before it
    /// expires, but not before half its life since it was fetched; never after it expires.
    /// What an offline cache (which can only read its directory again) and `collateral show`
    /// judge by; an online cache uses [`Entry::refresh_at`].
    /// `fetched_at` is what the cache file or bundle said (neither is trusted): with one after
    /// `now` (a clock ahead where it was fetched, or an edited file) there is no half-life
    /// floor, and one after the end of validity counts as the end, so no stored time keeps an
    /// entry from being due (or an expired one from being fetched again).
    #[must_use]
    pub fn refresh_at_by_expiry(&self, refresh_before_secs: i64, now: UnixTime) -> UnixTime {
        let until = self.valid_until.as_secs();
        let due = until.saturating_sub(refresh_before_secs);
        // A fetch time still to come says nothing of how long ago it was fetched: the
        // half-life floor (which keeps a short-lived copy from being fetched again at once)
        // does not apply.
        if self.fetched_at > now {
            return UnixTime::from_secs(due.min(until));
        }
        let from = self.fetched_at.as_secs().min(until);
        let half = from.saturating_add(until.saturating_sub(from) / 2);
        UnixTime::from_secs(due.max(half).min(until))
    }

    /// The stored form (JSON).
    #[must_use]
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(&self.stored()).unwrap_or_default()
    }

    pub(crate) fn stored(&self) -> StoredEntry {
        // Text only when JSON writes it at most twice as long (`\n` and `\"`); a body with other
        // control characters (`\u0001`: six bytes each) is stored in hex, so that the stored
        // form of any body a response may carry stays under MAX_ENTRY_LEN and loads again.
        let (body_text, body_hex) = match core::str::from_utf8(&self.body) {
            Ok(text)
                if !text
                    .chars()
                    .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) =>
            {
                (Some(text.to_owned()), None)
            }
            _ => (None, Some(tessera_pki::to_hex(&self.body))),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::{AmdSigner, UpdateType};
    use tessera_pki::to_pem;
    use tessera_snp::abi::Product;
    use tessera_snp::sim::{SimPki, VekSpec};
    use tessera_tdx::collateral::{CollateralBundle, TcbStatus};
    use tessera_tdx::sim::{CollateralSpec, PlatformSpec, QuoteSpec, SimPcs};

    const NOW: UnixTime = tessera_tdx::sim::SIM_VERIFY_AT;

    fn field_of(e: CollateralError) -> &'static str {
        match e {
            CollateralError::Response { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn amd_items_are_checked_against_the_request() {
        let pki = SimPki::new(Product::Milan).unwrap();
        let spec = VekSpec::vcek(Product::Milan);
        let vcek = pki.issue_vek(&spec).unwrap();
        let der = vcek.certificate().der().to_vec();
        let item = Item::vcek(Product::Milan, &spec.hwid, spec.tcb).unwrap();
        let entry = Entry::new(item.clone(), "u", NOW, der.clone(), None).unwrap();
        assert_eq!(entry.valid_until(), spec.not_after);
        assert_eq!(entry.valid_until_field(), "notAfter");
        // PEM is accepted too.
        let pem = to_pem("CERTIFICATE", &der).into_bytes();
        assert!(Entry::new(item.clone(), "u", NOW, pem, None).is_ok());

        let mut other_tcb = spec.tcb;
        other_tcb.snp += 1;
        let asked = Item::vcek(Product::Milan, &spec.hwid, other_tcb).unwrap();
        assert_eq!(
            field_of(Entry::new(asked, "u", NOW, der.clone(), None).unwrap_err()),
            "TCB"
        );
        let genoa = Item::vcek(Product::Genoa, &spec.hwid, spec.tcb).unwrap();
        assert_eq!(
            field_of(Entry::new(genoa, "u", NOW, der.clone(), None).unwrap_err()),
            "productName"
        );
        let vlek = pki
            .issue_vek(&VekSpec::vlek(Product::Milan, "aws"))
            .unwrap();
        let err = Entry::new(
            item.clone(),
            "u",
            NOW,
            vlek.certificate().der().to_vec(),
            None,
        )
        .unwrap_err();
        assert_eq!(field_of(err), "VCEK extensions");
        let two = [der.clone(), der.clone()].concat();
        assert_eq!(
            field_of(Entry::new(item.clone(), "u", NOW, two, None).unwrap_err()),
            "body"
        );
        assert_eq!(
            field_of(Entry::new(item.clone(), "u", NOW, b"<html>".to_vec(), None).unwrap_err()),
            "body"
        );

        let chain = Item::AmdChain {
            product: Product::Milan,
            signer: AmdSigner::Vcek,
        };
        let pems = to_pem("CERTIFICATE", pki.ask().der()) + &to_pem("CERTIFICATE", pki.ark().der());
        let e = Entry::new(chain.clone(), "u", NOW, pems.clone().into_bytes(), None).unwrap();
        assert_eq!(e.valid_until(), tessera_snp::sim::SIM_NOT_AFTER);
        // Control characters beside the PEM blocks (the PEM reader skips text between them):
        // stored in hex, so even a body at the response limit loads again from its stored form.
        let padded = pems.clone() + &"\u{1}".repeat(MAX_BODY_LEN - pems.len());
        let e = Entry::new(chain.clone(), "u", NOW, padded.into_bytes(), None).unwrap();
        let stored = e.to_json();
        assert!(stored.len() <= MAX_ENTRY_LEN, "{}", stored.len());
        assert_eq!(Entry::from_json(&stored, "f").unwrap(), e);
        let five = pems.repeat(3);
        assert_eq!(
            field_of(Entry::new(chain, "u", NOW, five.into_bytes(), None).unwrap_err()),
            "body"
        );

        let crl_item = Item::AmdCrl {
            product: Product::Milan,
            signer: AmdSigner::Vcek,
        };
        let next = UnixTime::from_secs(NOW.as_secs() + 100);
        let crl = pki.ark_crl(&[], NOW, next).unwrap();
        let e = Entry::new(crl_item.clone(), "u", NOW, crl.der().to_vec(), None).unwrap();
        assert_eq!(
            (e.valid_until(), e.valid_until_field()),
            (next, "nextUpdate")
        );
        let hex = tessera_pki::to_hex(crl.der()).into_bytes();
        assert_eq!(
            Entry::new(crl_item.clone(), "u", NOW, hex, None)
                .unwrap()
                .body()
                .len(),
            crl.der().len() * 2
        );
        let two = [crl.der(), crl.der()].concat();
        assert_eq!(
            field_of(Entry::new(crl_item.clone(), "u", NOW, two, None).unwrap_err()),
            "body"
        );
        // A CRL without nextUpdate has no end: refused (it could never be refreshed).
        let key = tessera_pki::builder::IssuerKey::generate_ec(tessera_pki::PublicKeyKind::EcP256)
            .unwrap();
        let endless = tessera_pki::builder::issue_crl(
            &tessera_pki::builder::CrlSpec {
                issuer: pki.ark().subject_der().to_vec(),
                this_update: NOW,
                next_update: None,
                revoked: Vec::new(),
            },
            &key,
        )
        .unwrap();
        assert_eq!(
            field_of(Entry::new(crl_item.clone(), "u", NOW, endless, None).unwrap_err()),
            "nextUpdate"
        );
        // Another product's genuine CRL and chain (issued by ARK-Genoa) are not Milan's: under
        // Milan's keys they are refused by their issuer, under Genoa's taken.
        let genoa_pki = SimPki::new(Product::Genoa).unwrap();
        let genoa_crl = genoa_pki.ark_crl(&[], NOW, next).unwrap().der().to_vec();
        assert_eq!(
            field_of(Entry::new(crl_item, "u", NOW, genoa_crl.clone(), None).unwrap_err()),
            "issuer"
        );
        let genoa_crl_item = Item::AmdCrl {
            product: Product::Genoa,
            signer: AmdSigner::Vcek,
        };
        assert!(Entry::new(genoa_crl_item, "u", NOW, genoa_crl, None).is_ok());
        let genoa_pems = to_pem("CERTIFICATE", genoa_pki.ask().der())
            + &to_pem("CERTIFICATE", genoa_pki.ark().der());
        let milan_chain = Item::AmdChain {
            product: Product::Milan,
            signer: AmdSigner::Vcek,
        };
        for body in [
            genoa_pems.clone(),
            // One of them is enough: Milan's ASK beside Genoa's ARK.
            to_pem("CERTIFICATE", pki.ask().der()) + &to_pem("CERTIFICATE", genoa_pki.ark().der()),
        ] {
            assert_eq!(
                field_of(
                    Entry::new(milan_chain.clone(), "u", NOW, body.into_bytes(), None).unwrap_err()
                ),
                "issuer"
            );
        }
        let genoa_chain = Item::AmdChain {
            product: Product::Genoa,
            signer: AmdSigner::Vlek,
        };
        let genoa_vlek_pems = to_pem("CERTIFICATE", genoa_pki.asvk().der())
            + &to_pem("CERTIFICATE", genoa_pki.ark().der());
        assert!(Entry::new(genoa_chain, "u", NOW, genoa_vlek_pems.into_bytes(), None).is_ok());

        // Expiry at arrival.
        assert!(e.check_not_expired(NOW).is_ok());
        assert!(matches!(
            e.check_not_expired(next),
            Err(CollateralError::Expired {
                field: "nextUpdate",
                ..
            })
        ));
        // Refresh by expiry: a day before, but not before half its life.
        assert_eq!(
            e.refresh_at_by_expiry(86_400, NOW),
            UnixTime::from_secs(NOW.as_secs() + 50)
        );
        assert_eq!(
            e.refresh_at_by_expiry(10, NOW),
            UnixTime::from_secs(NOW.as_secs() + 90)
        );
        // A stored fetch time after the end of validity (a damaged or forged cache file or
        // bundle) does not make the entry fresh past its end; nor does a negative margin.
        let late = Entry::new(
            e.item().clone(),
            "u",
            UnixTime::from_secs(next.as_secs() + 1_000_000),
            crl.der().to_vec(),
            None,
        )
        .unwrap();
        assert_eq!(late.refresh_at_by_expiry(10, late.fetched_at()), next);
        assert_eq!(late.refresh_at_by_expiry(86_400, late.fetched_at()), next);
        assert_eq!(e.refresh_at_by_expiry(-1_000, NOW), next);
        // A stored fetch time after `now` but before the end (a clock ahead where it was
        // fetched) counts as `now`: it does not put off the refresh to half of what is left
        // after it.
        let ahead = Entry::new(
            e.item().clone(),
            "u",
            UnixTime::from_secs(NOW.as_secs() + 98),
            crl.der().to_vec(),
            None,
        )
        .unwrap();
        assert_eq!(
            ahead.refresh_at_by_expiry(10, NOW),
            e.refresh_at_by_expiry(10, NOW)
        );
        // Due a day before its end (here: at once) where a copy fetched now waits for half
        // its life.
        assert_eq!(
            e.refresh_at_by_expiry(86_400, NOW),
            UnixTime::from_secs(NOW.as_secs() + 50)
        );
        assert!(ahead.refresh_at_by_expiry(86_400, NOW) <= NOW);
        // Once that time has come, the floor applies again.
        assert_eq!(
            ahead.refresh_at_by_expiry(10, UnixTime::from_secs(NOW.as_secs() + 98)),
            UnixTime::from_secs(NOW.as_secs() + 99)
        );
        // Online, a CRL whose life is shorter than a day is due by its expiry all the same
        // (fetched at or before `now`); one whose stated fetch time is still to come is due at
        // once (how long ago it was fetched is unknown); never after its end.
        for (margin, at) in [(86_400, NOW), (10, NOW), (-1_000, NOW)] {
            assert_eq!(e.refresh_at(margin, at), e.refresh_at_by_expiry(margin, at));
        }
        assert_eq!(late.refresh_at(10, late.fetched_at()), next);
        assert_eq!(ahead.refresh_at(10, NOW), NOW);
        assert!(ahead.refresh_at(86_400, NOW) <= NOW);
        assert_eq!(
            ahead.refresh_at(10, UnixTime::from_secs(NOW.as_secs() + 98)),
            UnixTime::from_secs(NOW.as_secs() + 99)
        );
    }

    /// An item carrying revocation or TCB status is due online at most a day after it was
    /// fetched, whatever its validity (AMD's ARK CRLs run for a year: by expiry alone a
    /// revocation would reach an online cache only a day before the held copy ends); a VCEK or
    /// chain is due by its expiry alone.
    #[test]
    fn status_items_are_due_a_day_after_they_were_fetched() {
        const DAY: i64 = STATUS_REFRESH_SECS;
        assert_eq!(DAY, 86_400);
        let at = |secs: i64| UnixTime::from_secs(NOW.as_secs() + secs);
        let pki = SimPki::new(Product::Milan).unwrap();
        let year = at(365 * DAY);
        let crl = pki.ark_crl(&[], at(-DAY), year).unwrap();
        let item = Item::AmdCrl {
            product: Product::Milan,
            signer: AmdSigner::Vcek,
        };
        let fetched =
            |t: UnixTime| Entry::new(item.clone(), "u", t, crl.der().to_vec(), None).unwrap();
        let e = fetched(NOW);
        assert!(item.carries_status());
        // By expiry alone: a day before its end, almost a year on.
        assert_eq!(e.refresh_at_by_expiry(86_400, NOW), at(364 * DAY));
        // Online: a day after it was fetched, judged at any time before that.
        for now in [NOW, at(3600), at(DAY - 1)] {
            assert_eq!(e.refresh_at(86_400, now), at(DAY));
            assert!(e.refresh_at(86_400, now) <= at(DAY));
        }
        // Past that day it is due (the cache asks again); fetched again, it waits a day more.
        assert!(e.refresh_at(86_400, at(DAY + 1)) <= at(DAY + 1));
        assert_eq!(
            fetched(at(DAY + 1)).refresh_at(86_400, at(DAY + 1)),
            at(2 * DAY + 1)
        );
        // A copy fetched long ago (an imported bundle's) is due at once.
        let old = fetched(at(-30 * DAY));
        assert!(old.refresh_at(86_400, NOW) <= NOW);
        // Never after its end: a CRL ending within the day is due by its expiry.
        let short = pki.ark_crl(&[], at(-DAY), at(3600)).unwrap();
        let short = Entry::new(item.clone(), "u", NOW, short.der().to_vec(), None).unwrap();
        assert_eq!(short.refresh_at(86_400, NOW), at(1800));
        assert!(short.refresh_at(-1_000_000, NOW) <= at(3600));

        // Intel's status items too (TCB info and QE identity, PCK and Root CA CRLs).
        let Intel { bundle, .. } = intel();
        let chain = Some(bundle.tcb_info_issuer_chain.clone());
        let fmspc = [0x00, 0x80, 0x6f, 0x05, 0x00, 0x00];
        let tcb = Item::tcb_info(IntelTee::Tdx, fmspc, UpdateType::Standard);
        let qe = Item::QeIdentity {
            tee: IntelTee::Tdx,
            update: UpdateType::Standard,
        };
        let pck = tessera_pki::from_hex(bundle.pck_crl.as_deref().unwrap().as_bytes()).unwrap();
        let root =
            tessera_pki::from_hex(bundle.root_ca_crl.as_deref().unwrap().as_bytes()).unwrap();
        let intel_entries = [
            Entry::new(tcb, "u", NOW, tcb_body(bundle), chain.clone()).unwrap(),
            Entry::new(qe, "u", NOW, qe_body(bundle), chain.clone()).unwrap(),
            Entry::new(
                Item::PckCrl {
                    ca: PckCa::Platform,
                },
                "u",
                NOW,
                pck,
                bundle.pck_crl_issuer_chain.clone(),
            )
            .unwrap(),
            Entry::new(Item::RootCaCrl, "u", NOW, root, None).unwrap(),
        ];
        for e in &intel_entries {
            assert!(e.item().carries_status(), "{}", e.item());
            assert!(e.valid_until() > at(2 * DAY), "{}", e.item());
            assert_eq!(e.refresh_at(86_400, NOW), at(DAY), "{}", e.item());
        }

        // A VCEK and a chain carry no status: due by their expiry alone, as before.
        let spec = VekSpec::vcek(Product::Milan);
        let vcek = pki.issue_vek(&spec).unwrap();
        let vcek_item = Item::vcek(Product::Milan, &spec.hwid, spec.tcb).unwrap();
        let chain_item = Item::AmdChain {
            product: Product::Milan,
            signer: AmdSigner::Vcek,
        };
        let pems = to_pem("CERTIFICATE", pki.ask().der()) + &to_pem("CERTIFICATE", pki.ark().der());
        for (item, body) in [
            (vcek_item, vcek.certificate().der().to_vec()),
            (chain_item, pems.into_bytes()),
        ] {
            assert!(!item.carries_status());
            for fetched_at in [at(-30 * DAY), NOW, at(3600)] {
                let e = Entry::new(item.clone(), "u", fetched_at, body.clone(), None).unwrap();
                assert!(e.valid_until() > at(2 * DAY));
                for now in [NOW, at(DAY + 1)] {
                    assert_eq!(
                        e.refresh_at(86_400, now),
                        e.refresh_at_by_expiry(86_400, now),
                        "{item}"
                    );
                    assert!(e.refresh_at(86_400, now) > at(2 * DAY), "{item}");
                }
            }
        }
    }

    struct Intel {
        bundle: CollateralBundle,
        processor: CollateralBundle,
        sgx: CollateralBundle,
    }

    fn intel() -> &'static Intel {
        static ONCE: std::sync::OnceLock<Intel> = std::sync::OnceLock::new();
        ONCE.get_or_init(make_intel)
    }

    fn make_intel() -> Intel {
        let sim = SimPcs::new().unwrap();
        let platform = PlatformSpec::default();
        let spec = CollateralSpec::matching(&platform, &QuoteSpec::tdx(), TcbStatus::UpToDate);
        let mut processor = spec.clone();
        processor.processor_ca_crl = true;
        let sgx = CollateralSpec::matching(&platform, &QuoteSpec::sgx(), TcbStatus::UpToDate);
        let parse =
            |s: &CollateralSpec| serde_json::from_str(&sim.collateral_json(s).unwrap()).unwrap();
        Intel {
            bundle: parse(&spec),
            processor: parse(&processor),
            sgx: parse(&sgx),
        }
    }

    fn tcb_body(b: &CollateralBundle) -> Vec<u8> {
        format!(
            "{{\"tcbInfo\":{},\"signature\":\"{}\"}}",
            b.tcb_info, b.tcb_info_signature
        )
        .into_bytes()
    }

    fn qe_body(b: &CollateralBundle) -> Vec<u8> {
        format!(
            "{{\"enclaveIdentity\":{},\"signature\":\"{}\"}}",
            b.qe_identity, b.qe_identity_signature
        )
        .into_bytes()
    }

    #[test]
    fn intel_items_are_checked_against_the_request() {
        let Intel {
            bundle,
            processor,
            sgx,
        } = intel();
        let chain = Some(bundle.tcb_info_issuer_chain.clone());
        let fmspc = [0x00, 0x80, 0x6f, 0x05, 0x00, 0x00];
        let tdx_tcb = Item::tcb_info(IntelTee::Tdx, fmspc, UpdateType::Standard);
        let e = Entry::new(tdx_tcb.clone(), "u", NOW, tcb_body(bundle), chain.clone()).unwrap();
        assert_eq!(e.valid_until(), tessera_tdx::sim::SIM_NEXT_UPDATE);
        let sgx_tcb = Item::tcb_info(IntelTee::Sgx, fmspc, UpdateType::Standard);
        let err = Entry::new(sgx_tcb, "u", NOW, tcb_body(bundle), chain.clone()).unwrap_err();
        assert_eq!(field_of(err), "tcbInfo.id");
        let other = Item::tcb_info(IntelTee::Tdx, [1; 6], UpdateType::Standard);
        assert_eq!(
            field_of(Entry::new(other, "u", NOW, tcb_body(bundle), chain.clone()).unwrap_err()),
            "tcbInfo.fmspc"
        );
        assert_eq!(
            field_of(Entry::new(tdx_tcb.clone(), "u", NOW, tcb_body(bundle), None).unwrap_err()),
            "issuer chain"
        );
        // A chain header that holds no certificate (empty, or PEM of something else).
        for nothing in [
            "",
            "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n",
        ] {
            let e = Entry::new(
                tdx_tcb.clone(),
                "u",
                NOW,
                tcb_body(bundle),
                Some(nothing.to_owned()),
            );
            assert_eq!(field_of(e.unwrap_err()), "issuer chain", "{nothing:?}");
        }
        let no_sig =
            format!("{{\"tcbInfo\":{},\"signature\":\"00\"}}", bundle.tcb_info).into_bytes();
        assert_eq!(
            field_of(Entry::new(tdx_tcb.clone(), "u", NOW, no_sig, chain.clone()).unwrap_err()),
            "signature"
        );
        assert_eq!(
            field_of(
                Entry::new(tdx_tcb.clone(), "u", NOW, qe_body(bundle), chain.clone()).unwrap_err()
            ),
            "body"
        );
        let dup = format!(
            "{{\"tcbInfo\":{0},\"tcbInfo\":{0},\"signature\":\"{1}\"}}",
            bundle.tcb_info, bundle.tcb_info_signature
        );
        assert!(Entry::new(tdx_tcb, "u", NOW, dup.into_bytes(), chain.clone()).is_err());

        let td_qe = Item::QeIdentity {
            tee: IntelTee::Tdx,
            update: UpdateType::Standard,
        };
        assert!(Entry::new(td_qe.clone(), "u", NOW, qe_body(bundle), chain.clone()).is_ok());
        let qe = Item::QeIdentity {
            tee: IntelTee::Sgx,
            update: UpdateType::Standard,
        };
        assert_eq!(
            field_of(Entry::new(qe.clone(), "u", NOW, qe_body(bundle), chain.clone()).unwrap_err()),
            "enclaveIdentity.id"
        );
        assert!(Entry::new(qe, "u", NOW, qe_body(sgx), chain.clone()).is_ok());

        let crl = |b: &CollateralBundle| {
            tessera_pki::from_hex(b.pck_crl.as_deref().unwrap().as_bytes()).unwrap()
        };
        let pck_chain = bundle.pck_crl_issuer_chain.clone();
        let platform = Item::PckCrl {
            ca: PckCa::Platform,
        };
        assert!(Entry::new(platform.clone(), "u", NOW, crl(bundle), pck_chain.clone()).is_ok());
        assert_eq!(
            field_of(
                Entry::new(
                    platform.clone(),
                    "u",
                    NOW,
                    crl(processor),
                    pck_chain.clone()
                )
                .unwrap_err()
            ),
            "issuer"
        );
        assert!(
            Entry::new(
                Item::PckCrl {
                    ca: PckCa::Processor
                },
                "u",
                NOW,
                crl(processor),
                processor.pck_crl_issuer_chain.clone()
            )
            .is_ok()
        );
        assert_eq!(
            field_of(Entry::new(platform, "u", NOW, crl(bundle), None).unwrap_err()),
            "issuer chain"
        );

        let root =
            tessera_pki::from_hex(bundle.root_ca_crl.as_deref().unwrap().as_bytes()).unwrap();
        assert!(Entry::new(Item::RootCaCrl, "u", NOW, root, None).is_ok());
        assert_eq!(
            field_of(Entry::new(Item::RootCaCrl, "u", NOW, crl(bundle), None).unwrap_err()),
            "issuer"
        );
    }

    /// The update schedule is not in the body: the same signed TCB info and QE identity are
    /// taken under a standard or an early key alike (what the README says of a bundle's
    /// `-early` entries: taken on trust).
    #[test]
    fn the_update_schedule_is_not_read_from_the_body() {
        let Intel { bundle, .. } = intel();
        let chain = Some(bundle.tcb_info_issuer_chain.clone());
        for update in [UpdateType::Standard, UpdateType::Early] {
            let tcb = Item::tcb_info(IntelTee::Tdx, [0x00, 0x80, 0x6f, 0x05, 0x00, 0x00], update);
            assert!(Entry::new(tcb, "u", NOW, tcb_body(bundle), chain.clone()).is_ok());
            let qe = Item::QeIdentity {
                tee: IntelTee::Tdx,
                update,
            };
            assert!(Entry::new(qe, "u", NOW, qe_body(bundle), chain.clone()).is_ok());
        }
    }

    #[test]
    fn stored_form_round_trips_and_is_rechecked() {
        let Intel { bundle, .. } = intel();
        let root =
            tessera_pki::from_hex(bundle.root_ca_crl.as_deref().unwrap().as_bytes()).unwrap();
        let der_entry = Entry::new(Item::RootCaCrl, "http://x/rootcacrl", NOW, root, None).unwrap();
        let json = der_entry.to_json();
        assert!(String::from_utf8_lossy(&json).contains("\"body_hex\""));
        assert_eq!(Entry::from_json(&json, "f").unwrap(), der_entry);
        let item = Item::tcb_info(
            IntelTee::Tdx,
            [0x00, 0x80, 0x6f, 0x05, 0x00, 0x00],
            UpdateType::Early,
        );
        let text_entry = Entry::new(
            item,
            "u",
            NOW,
            tcb_body(bundle),
            Some(bundle.tcb_info_issuer_chain.clone()),
        )
        .unwrap();
        let json = text_entry.to_json();
        assert!(String::from_utf8_lossy(&json).contains("\"body_text\""));
        assert_eq!(Entry::from_json(&json, "f").unwrap(), text_entry);

        let mut v: serde_json::Value = serde_json::from_slice(&der_entry.to_json()).unwrap();
        // valid_until in the file is not believed.
        v["valid_until"] = serde_json::json!("2999-01-01T00:00:00Z");
        let back = Entry::from_json(&serde_json::to_vec(&v).unwrap(), "f").unwrap();
        assert_eq!(back.valid_until(), der_entry.valid_until());
        let reject = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut w = v.clone();
            edit(&mut w);
            Entry::from_json(&serde_json::to_vec(&w).unwrap(), "f").unwrap_err()
        };
        assert!(matches!(
            reject(&|w| w["format"] = serde_json::json!("other/1")),
            CollateralError::Format { .. }
        ));
        assert!(matches!(
            reject(&|w| w["body_text"] = serde_json::json!("x")),
            CollateralError::Format { .. }
        ));
        assert!(matches!(
            reject(&|w| w["body_hex"] = serde_json::json!("zz")),
            CollateralError::Format { .. }
        ));
        assert!(matches!(
            reject(&|w| w["fetched_at"] = serde_json::json!("yesterday")),
            CollateralError::Format { .. }
        ));
        assert!(matches!(
            reject(&|w| w["extra"] = serde_json::json!(1)),
            CollateralError::Format { .. }
        ));
        assert!(matches!(
            reject(&|w| w["item"] = serde_json::json!({"kind": "pck_crl", "ca": "platform"})),
            CollateralError::Response {
                field: "issuer",
                ..
            }
        ));
        assert!(matches!(
            Entry::from_json(&vec![b' '; MAX_ENTRY_LEN + 1], "f"),
            Err(CollateralError::Format { .. })
        ));
    }

    #[test]
    fn fuzz_harness_takes_real_responses() {
        let Intel { bundle, .. } = intel();
        let chain = bundle
            .tcb_info_issuer_chain
            .replace('\n', "%0A")
            .replace(' ', "%20")
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        let mut input = vec![0u8];
        input.extend_from_slice(format!("TCB-Info-Issuer-Chain: {chain}\n\n").as_bytes());
        input.extend_from_slice(&tcb_body(bundle));
        // Selector 0 asks TDX TCB info for 00806F050000, which this is; the harness round-trips it.
        let response = HttpResponse {
            status: 200,
            headers: vec![(String::from("TCB-Info-Issuer-Chain"), chain)],
            body: tcb_body(bundle),
        };
        let item = Item::tcb_info(
            IntelTee::Tdx,
            [0x00, 0x80, 0x6f, 0x05, 0x00, 0x00],
            UpdateType::Standard,
        );
        assert!(Entry::from_response(&item, "u", &response, NOW).is_ok());
        assert!(
            crate::fuzz_pcs_response(&input),
            "the harness reaches the round trip"
        );
        // Selector 2 asks the TD QE identity, which TCB info is not: refused before the round
        // trip.
        input[0] = 2;
        assert!(!crate::fuzz_pcs_response(&input));
    }

    proptest::proptest! {
        /// Arbitrary headers and bodies for every item kind: errors, never panics.
        #[test]
        fn responses_never_panic(
            selector in 0u8..16,
            head in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..1024),
        ) {
            let mut input = vec![selector];
            input.extend_from_slice(&head);
            input.extend_from_slice(b"\n\n");
            input.extend_from_slice(&body);
            crate::fuzz_pcs_response(&input);
        }

        /// Real TCB info with a few bytes changed: rejected or accepted, never a panic.
        #[test]
        fn mutated_tcb_info_never_panics(
            edits in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()), 1..4),
        ) {
            let Intel { bundle, .. } = intel();
            let mut body = tcb_body(bundle);
            for (at, value) in &edits {
                let i = at.index(body.len());
                body[i] = *value;
            }
            let item = Item::tcb_info(IntelTee::Tdx, [0x00, 0x80, 0x6f, 0x05, 0x00, 0x00], UpdateType::Standard);
            let _ = Entry::new(item, "u", NOW, body, Some(bundle.tcb_info_issuer_chain.clone()));
        }
    }
}

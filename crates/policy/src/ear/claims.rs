//! The EAR claims-set: typed claims, their JSON (JWT) and CBOR (CWT) forms, and strict parsing
//! of both. Names and keys are listed once, in [`label`].

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ciborium::Value as Cbor;
use serde_json::{Map, Number, Value as Json};
use tessera_pki::UnixTime;

use super::vector::{CLAIM_NAMES, Status, TrustVector, status_of};
use super::{CPU_SUBMOD, EAR_PROFILE, TokenError};
use crate::Appraisal;

/// Deepest nesting accepted in `ear.veraison.annotated-evidence` (the object itself counts 1).
pub const MAX_EVIDENCE_DEPTH: usize = 64;

/// Claim names (JWT) and keys (CWT), draft-fv-rats-ear-05 §3, §3.1, §4.5 and §9.1; the
/// registered JWT/CWT claims from RFC 7519 §4.1 / RFC 8392 §3.1 and the EAT claims from
/// RFC 9711 §4.
pub(crate) mod label {
    /// A claim's JSON name and CBOR key.
    pub(crate) struct Label {
        pub(crate) json: &'static str,
        pub(crate) cbor: i64,
    }

    const fn l(json: &'static str, cbor: i64) -> Label {
        Label { json, cbor }
    }

    /// `eat_profile` (RFC 9711 §4.3.2; CWT 265).
    pub(crate) const PROFILE: Label = l("eat_profile", 265);
    /// `iat` (RFC 7519 §4.1.6; CWT 6).
    pub(crate) const IAT: Label = l("iat", 6);
    /// `exp` (RFC 7519 §4.1.4; CWT 4).
    pub(crate) const EXP: Label = l("exp", 4);
    /// `nbf` (RFC 7519 §4.1.5; CWT 5): never issued, honoured when present.
    pub(crate) const NBF: Label = l("nbf", 5);
    /// `eat_nonce` (RFC 9711 §4.1; CWT 10).
    pub(crate) const NONCE: Label = l("eat_nonce", 10);
    /// `ear.verifier-id` (draft-fv-rats-ear-05 §9.1.5: 1004).
    pub(crate) const VERIFIER_ID: Label = l("ear.verifier-id", 1004);
    /// `developer` inside `ear.verifier-id` (CBOR 0, per the draft's CBOR examples).
    pub(crate) const DEVELOPER: Label = l("developer", 0);
    /// `build` inside `ear.verifier-id` (CBOR 1).
    pub(crate) const BUILD: Label = l("build", 1);
    /// `submods` (RFC 9711 §4.2.18; CWT 266).
    pub(crate) const SUBMODS: Label = l("submods", 266);
    /// `ear.status` (§9.1.1: 1000).
    pub(crate) const STATUS: Label = l("ear.status", 1000);
    /// `ear.trustworthiness-vector` (§9.1.2: 1001).
    pub(crate) const VECTOR: Label = l("ear.trustworthiness-vector", 1001);
    /// `ear.appraisal-policy-id` (§9.1.4: 1003).
    pub(crate) const POLICY_ID: Label = l("ear.appraisal-policy-id", 1003);
    /// `ear.veraison.annotated-evidence` (§4.5, private-use -70000).
    pub(crate) const ANNOTATED_EVIDENCE: Label = l("ear.veraison.annotated-evidence", -70000);
}

/// `ear.verifier-id`: the software that appraised the evidence (draft-ietf-rats-ar4si §2.2.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierId {
    /// The organization responsible for the build.
    pub developer: String,
    /// The build of the verifier.
    pub build: String,
}

impl VerifierId {
    /// `{developer: "tessera", build: "tessera <version>"}`.
    #[must_use]
    pub fn tessera() -> Self {
        Self {
            developer: String::from("tessera"),
            build: format!("tessera {}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// `eat_nonce`: 8 to 64 bytes the relying party chose (RFC 9711 §4.1). JSON carries it as
/// unpadded base64url (RFC 9711 §7.2.2 binary data), CBOR as a byte string. Arrays of nonces are
/// not supported.
#[derive(Clone, PartialEq, Eq)]
pub struct Nonce(Vec<u8>);

impl Nonce {
    /// Fewest bytes.
    pub const MIN_LEN: usize = 8;
    /// Most bytes.
    pub const MAX_LEN: usize = 64;

    /// A nonce of `bytes`.
    ///
    /// # Errors
    /// [`TokenError::Claims`] (`eat_nonce`) when `bytes` is shorter than 8 or longer than 64.
    pub fn new(bytes: &[u8]) -> Result<Self, TokenError> {
        if (Self::MIN_LEN..=Self::MAX_LEN).contains(&bytes.len()) {
            Ok(Self(bytes.to_vec()))
        } else {
            Err(claim(label::NONCE.json, "must be 8 to 64 bytes"))
        }
    }

    /// The bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl core::fmt::Debug for Nonce {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Nonce({})", hex::encode(&self.0))
    }
}

/// One `EAR-appraisal`: the result for one attester (draft-fv-rats-ear-05 §3.1, plus the
/// Veraison extension of §4.5 that Trustee's KBS reads). Made only from an [`Appraisal`] or
/// by verifying a token: the fields are private.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submod {
    /// `ear.status`: the overall tier; never more trusting than the worst vector entry.
    pub(crate) status: Status,
    /// `ear.trustworthiness-vector`; when present it has at least one entry.
    pub(crate) trust_vector: Option<TrustVector>,
    /// `ear.appraisal-policy-id`: the policy's `id`.
    pub(crate) appraisal_policy_id: Option<String>,
    /// `ear.veraison.annotated-evidence`: the TEE claims as a JSON object (non-empty, at most
    /// [`MAX_EVIDENCE_DEPTH`] deep). Trustee's KBS finds the TEE public key at
    /// `runtime_data_claims/tee-pubkey` inside it.
    pub(crate) annotated_evidence: Option<Map<String, Json>>,
}

impl Submod {
    /// `ear.status`: the overall tier; never more trusting than the worst vector entry.
    #[must_use]
    pub fn status(&self) -> Status {
        self.status
    }

    /// `ear.trustworthiness-vector`; when present it has at least one entry.
    #[must_use]
    pub fn trust_vector(&self) -> Option<&TrustVector> {
        self.trust_vector.as_ref()
    }

    /// `ear.appraisal-policy-id`: the policy's `id`.
    #[must_use]
    pub fn appraisal_policy_id(&self) -> Option<&str> {
        self.appraisal_policy_id.as_deref()
    }

    /// `ear.veraison.annotated-evidence`: the TEE claims (and the runtime-data claims, see
    /// [`EarClaims::with_runtime_data_claims`]).
    #[must_use]
    pub fn annotated_evidence(&self) -> Option<&Map<String, Json>> {
        self.annotated_evidence.as_ref()
    }
}

/// An EAR claims-set (draft-fv-rats-ear-05 §3). `eat_profile` is always [`EAR_PROFILE`], so it
/// is not a field; `exp` is required here although the draft makes it optional, because a
/// relying party must be able to tell when a result stops counting.
///
/// Made only by [`EarClaims::from_appraisal`] (from an [`Appraisal`], which only appraisal of
/// verified evidence makes) or by verifying a token ([`super::verify_jwt`],
/// [`super::verify_cwt`]): the fields are private, so no caller can write an affirming result
/// by hand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EarClaims {
    /// `iat`: when the result was issued.
    pub(crate) iat: UnixTime,
    /// `exp`: the result is not accepted at or after this time.
    pub(crate) exp: UnixTime,
    /// `eat_nonce`: the relying party's nonce, echoed for freshness.
    pub(crate) nonce: Option<Nonce>,
    /// `ear.verifier-id`.
    pub(crate) verifier_id: VerifierId,
    /// `submods`: one appraisal per attester (Tessera issues one, [`CPU_SUBMOD`]); never empty.
    pub(crate) submods: BTreeMap<String, Submod>,
}

/// The member of `ear.veraison.annotated-evidence` holding the runtime-data claims (Trustee's
/// name), where the KBS finds `tee-pubkey`.
pub const RUNTIME_DATA_CLAIMS: &str = "runtime_data_claims";

/// Claims parsed from a token, with the one time claim that is honoured but not kept.
pub(crate) struct Parsed {
    pub(crate) claims: EarClaims,
    pub(crate) nbf: Option<UnixTime>,
}

fn claim(name: &str, reason: &'static str) -> TokenError {
    TokenError::Claims {
        claim: name.to_owned(),
        reason,
    }
}

fn missing(name: &str) -> TokenError {
    claim(name, "missing")
}

/// A claim inside a submod, named for errors (`submods.cpu0.ear.status`); the untrusted submod
/// name is escaped and cut to 32 characters.
fn sub_claim(submod: &str, name: &str, reason: &'static str) -> TokenError {
    let shown: String = submod
        .chars()
        .take(32)
        .flat_map(char::escape_debug)
        .collect();
    let claim = if name.is_empty() {
        format!("submods.{shown}")
    } else {
        format!("submods.{shown}.{name}")
    };
    TokenError::Claims { claim, reason }
}

impl EarClaims {
    /// The claims for `appraisal`, issued at `iat` for `ttl_secs` seconds, with one submod
    /// [`CPU_SUBMOD`] (`cpu0`, where Trustee's KBS looks):
    ///
    /// - `ear.trustworthiness-vector` from [`TrustVector::from_appraisal`];
    /// - `ear.status` contraindicated when the verdict is fail, otherwise the worst tier of the
    ///   vector: warning when the policy accepted a platform Intel flags (a TCB status other than
    ///   `UpToDate`, advisories, components behind), affirming otherwise;
    /// - `ear.appraisal-policy-id` the policy's `id` (omitted when empty);
    /// - `ear.veraison.annotated-evidence` `annotated_evidence` (omitted when `None` or empty —
    ///   the draft's privacy considerations ask that it can be left out);
    /// - `ear.verifier-id` [`VerifierId::tessera`].
    ///
    /// `exp` is `iat + ttl_secs`, saturating.
    #[must_use]
    pub fn from_appraisal(
        appraisal: &Appraisal,
        annotated_evidence: Option<Map<String, Json>>,
        iat: UnixTime,
        ttl_secs: u64,
        nonce: Option<Nonce>,
    ) -> Self {
        let vector = TrustVector::from_appraisal(appraisal);
        let status = status_of(appraisal, &vector);
        let ttl = i64::try_from(ttl_secs).unwrap_or(i64::MAX);
        let submod = Submod {
            status,
            trust_vector: Some(vector),
            appraisal_policy_id: Some(appraisal.policy_id.clone()).filter(|id| !id.is_empty()),
            annotated_evidence: annotated_evidence.filter(|m| !m.is_empty()),
        };
        Self {
            iat,
            exp: UnixTime::from_secs(iat.as_secs().saturating_add(ttl)),
            nonce,
            verifier_id: VerifierId::tessera(),
            submods: BTreeMap::from([(CPU_SUBMOD.to_owned(), submod)]),
        }
    }

    /// The `cpu0` appraisal, if any.
    #[must_use]
    pub fn cpu(&self) -> Option<&Submod> {
        self.submods.get(CPU_SUBMOD)
    }

    /// `iat`: when the result was issued.
    #[must_use]
    pub fn iat(&self) -> UnixTime {
        self.iat
    }

    /// `exp`: the result is not accepted at or after this time.
    #[must_use]
    pub fn exp(&self) -> UnixTime {
        self.exp
    }

    /// `eat_nonce`: the relying party's nonce, echoed for freshness.
    #[must_use]
    pub fn nonce(&self) -> Option<&Nonce> {
        self.nonce.as_ref()
    }

    /// `ear.verifier-id`.
    #[must_use]
    pub fn verifier_id(&self) -> &VerifierId {
        &self.verifier_id
    }

    /// `submods`: one appraisal per attester; never empty.
    #[must_use]
    pub fn submods(&self) -> &BTreeMap<String, Submod> {
        &self.submods
    }

    /// Carry the runtime-data claims (PROTOCOL.md §6: the KBS `runtime-data`, with the TEE public
    /// key as `tee-pubkey`) at
    /// `/submods/cpu0/ear.veraison.annotated-evidence/runtime_data_claims`, replacing any there.
    /// Nothing else changes: the status, the trustworthiness vector and the policy id stay what
    /// the appraisal made them. Without a `cpu0` submod (a parsed token of another issuer) the
    /// claims are returned unchanged.
    #[must_use]
    pub fn with_runtime_data_claims(mut self, runtime_data: Json) -> Self {
        if let Some(cpu) = self.submods.get_mut(CPU_SUBMOD) {
            cpu.annotated_evidence
                .get_or_insert_with(Map::new)
                .insert(RUNTIME_DATA_CLAIMS.to_owned(), runtime_data);
        }
        self
    }

    /// Lower `ear.status` to `warning` in every submod whose trustworthiness vector has no
    /// `configuration` or no `executables` claim: its policy appraised the guest's
    /// configuration (debug, migration, ...) or its code not at all, so a relying party that
    /// reads only the status must not take the result for an approval of the workload (an
    /// appraisal that checked nothing but the evidence's genuineness is otherwise
    /// `affirming`). Only `affirming` changes (`none` asserts nothing already); a valid
    /// `affirming` has no claim worse than affirming, so `warning` still validates. The vector
    /// is unchanged.
    #[must_use]
    pub fn warning_unless_workload_appraised(mut self) -> Self {
        for submod in self.submods.values_mut() {
            let appraised = submod
                .trust_vector
                .is_some_and(|v| v.configuration.is_some() && v.executables.is_some());
            if !appraised && submod.status == Status::Affirming {
                submod.status = Status::Warning;
            }
        }
        self
    }

    /// The runtime-data claims carried, if any (see [`Self::with_runtime_data_claims`]).
    #[must_use]
    pub fn runtime_data_claims(&self) -> Option<&Json> {
        self.cpu()?
            .annotated_evidence
            .as_ref()?
            .get(RUNTIME_DATA_CLAIMS)
    }

    /// The claims-set as JSON, as a JWT carries it.
    #[must_use]
    pub fn to_json(&self) -> Json {
        let mut top = Map::new();
        top.insert(label::PROFILE.json.into(), EAR_PROFILE.into());
        top.insert(label::IAT.json.into(), self.iat.as_secs().into());
        top.insert(label::EXP.json.into(), self.exp.as_secs().into());
        if let Some(n) = &self.nonce {
            top.insert(
                label::NONCE.json.into(),
                URL_SAFE_NO_PAD.encode(&n.0).into(),
            );
        }
        let mut vid = Map::new();
        vid.insert(
            label::DEVELOPER.json.into(),
            self.verifier_id.developer.clone().into(),
        );
        vid.insert(
            label::BUILD.json.into(),
            self.verifier_id.build.clone().into(),
        );
        top.insert(label::VERIFIER_ID.json.into(), Json::Object(vid));
        let submods = self
            .submods
            .iter()
            .map(|(name, s)| (name.clone(), s.to_json()))
            .collect();
        top.insert(label::SUBMODS.json.into(), Json::Object(submods));
        Json::Object(top)
    }

    /// The claims as [`Self::to_json`] writes them, serialized from borrowed fields (no copy of
    /// the annotated evidence into a fresh `Value`).
    pub(crate) fn json_view(&self) -> impl serde::Serialize + '_ {
        JsonView(self)
    }

    /// The checks every claims-set meets, issued or parsed: at least one submod; per submod a
    /// status no more trusting than its vector, a non-empty vector, and non-empty annotated
    /// evidence within the depth bound.
    pub(crate) fn validate(&self) -> Result<(), TokenError> {
        if self.submods.is_empty() {
            return Err(claim(
                label::SUBMODS.json,
                "must hold at least one appraisal",
            ));
        }
        for (name, s) in &self.submods {
            if let Some(v) = &s.trust_vector {
                if v.is_empty() {
                    return Err(sub_claim(name, label::VECTOR.json, "is empty"));
                }
                if !s.status.allowed_with(v.worst_tier()) {
                    return Err(sub_claim(
                        name,
                        label::STATUS.json,
                        "is more trusting than the worst trustworthiness claim",
                    ));
                }
            }
            if let Some(ev) = &s.annotated_evidence {
                if ev.is_empty() {
                    return Err(sub_claim(name, label::ANNOTATED_EVIDENCE.json, "is empty"));
                }
                if !ev
                    .values()
                    .all(|v| json_depth_ok(v, MAX_EVIDENCE_DEPTH - 1))
                {
                    return Err(sub_claim(
                        name,
                        label::ANNOTATED_EVIDENCE.json,
                        "is nested too deeply",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The claims-set as a CBOR map with the draft's integer keys, as a CWT carries it. Call
    /// after [`Self::validate`] (which bounds the nesting this recurses over).
    pub(crate) fn to_cbor(&self) -> Result<Cbor, TokenError> {
        let mut top = vec![
            (int(label::PROFILE.cbor), Cbor::Text(EAR_PROFILE.to_owned())),
            (int(label::IAT.cbor), int(self.iat.as_secs())),
            (int(label::EXP.cbor), int(self.exp.as_secs())),
        ];
        if let Some(n) = &self.nonce {
            top.push((int(label::NONCE.cbor), Cbor::Bytes(n.0.clone())));
        }
        top.push((
            int(label::VERIFIER_ID.cbor),
            Cbor::Map(vec![
                (
                    int(label::DEVELOPER.cbor),
                    Cbor::Text(self.verifier_id.developer.clone()),
                ),
                (
                    int(label::BUILD.cbor),
                    Cbor::Text(self.verifier_id.build.clone()),
                ),
            ]),
        ));
        let mut submods = Vec::with_capacity(self.submods.len());
        for (name, s) in &self.submods {
            submods.push((Cbor::Text(name.clone()), s.to_cbor(name)?));
        }
        top.push((int(label::SUBMODS.cbor), Cbor::Map(submods)));
        Ok(Cbor::Map(top))
    }

    /// Parse a JWT claims-set. Unknown claims are ignored (draft §4: "A receiver MUST ignore any
    /// unknown claim"); known claims must have the draft's types.
    pub(crate) fn from_json(value: &Json) -> Result<Parsed, TokenError> {
        let top = value.as_object().ok_or(TokenError::Format {
            what: "the claims-set is not a JSON object",
        })?;
        let profile = top
            .get(label::PROFILE.json)
            .ok_or_else(|| missing(label::PROFILE.json))?;
        if profile.as_str() != Some(EAR_PROFILE) {
            return Err(claim(label::PROFILE.json, "is not the EAR profile"));
        }
        let time = |name: &'static str| -> Result<Option<UnixTime>, TokenError> {
            top.get(name)
                .map(|v| {
                    v.as_i64().map(UnixTime::from_secs).ok_or_else(|| {
                        claim(
                            name,
                            "is not an integer NumericDate (floating point is refused)",
                        )
                    })
                })
                .transpose()
        };
        let iat = time(label::IAT.json)?.ok_or_else(|| missing(label::IAT.json))?;
        let exp = time(label::EXP.json)?.ok_or_else(|| missing(label::EXP.json))?;
        let nbf = time(label::NBF.json)?;
        let nonce = match top.get(label::NONCE.json) {
            None => None,
            Some(Json::String(s)) => {
                let bytes = URL_SAFE_NO_PAD
                    .decode(s)
                    .map_err(|_| claim(label::NONCE.json, "is not unpadded base64url"))?;
                Some(Nonce::new(&bytes)?)
            }
            Some(_) => {
                return Err(claim(
                    label::NONCE.json,
                    "is not a string (arrays of nonces are not supported)",
                ));
            }
        };
        let vid = top
            .get(label::VERIFIER_ID.json)
            .ok_or_else(|| missing(label::VERIFIER_ID.json))?
            .as_object()
            .ok_or_else(|| claim(label::VERIFIER_ID.json, "is not an object"))?;
        let vid_text = |l: &label::Label| {
            vid.get(l.json)
                .and_then(Json::as_str)
                .map(str::to_owned)
                .ok_or_else(|| claim(label::VERIFIER_ID.json, "needs text developer and build"))
        };
        let verifier_id = VerifierId {
            developer: vid_text(&label::DEVELOPER)?,
            build: vid_text(&label::BUILD)?,
        };
        let subs = top
            .get(label::SUBMODS.json)
            .ok_or_else(|| missing(label::SUBMODS.json))?
            .as_object()
            .ok_or_else(|| claim(label::SUBMODS.json, "is not an object"))?;
        let mut submods = BTreeMap::new();
        for (name, s) in subs {
            submods.insert(name.clone(), Submod::from_json(name, s)?);
        }
        let claims = Self {
            iat,
            exp,
            nonce,
            verifier_id,
            submods,
        };
        claims.validate()?;
        Ok(Parsed { claims, nbf })
    }

    /// Parse a CWT claims-set (a CBOR map with integer keys). Unknown keys are ignored, repeated
    /// keys refused.
    pub(crate) fn from_cbor(value: &Cbor) -> Result<Parsed, TokenError> {
        let entries = value.as_map().ok_or(TokenError::Format {
            what: "the claims-set is not a CBOR map",
        })?;
        let top = int_keyed(entries, "claims-set")?;
        let get = |l: &label::Label| top.get(&l.cbor).copied();
        let profile = get(&label::PROFILE).ok_or_else(|| missing(label::PROFILE.json))?;
        if profile.as_text() != Some(EAR_PROFILE) {
            return Err(claim(label::PROFILE.json, "is not the EAR profile"));
        }
        let time = |l: &label::Label| -> Result<Option<UnixTime>, TokenError> {
            get(l)
                .map(|v| {
                    cbor_i64(v).map(UnixTime::from_secs).ok_or_else(|| {
                        claim(
                            l.json,
                            "is not an integer NumericDate (floating point is refused)",
                        )
                    })
                })
                .transpose()
        };
        let iat = time(&label::IAT)?.ok_or_else(|| missing(label::IAT.json))?;
        let exp = time(&label::EXP)?.ok_or_else(|| missing(label::EXP.json))?;
        let nbf = time(&label::NBF)?;
        let nonce = match get(&label::NONCE) {
            None => None,
            Some(Cbor::Bytes(b)) => Some(Nonce::new(b)?),
            Some(_) => {
                return Err(claim(
                    label::NONCE.json,
                    "is not a byte string (arrays of nonces are not supported)",
                ));
            }
        };
        let vid_entries = get(&label::VERIFIER_ID)
            .ok_or_else(|| missing(label::VERIFIER_ID.json))?
            .as_map()
            .ok_or_else(|| claim(label::VERIFIER_ID.json, "is not a map"))?;
        let vid = int_keyed(vid_entries, label::VERIFIER_ID.json)?;
        let vid_text = |l: &label::Label| {
            vid.get(&l.cbor)
                .and_then(|v| v.as_text())
                .map(str::to_owned)
                .ok_or_else(|| claim(label::VERIFIER_ID.json, "needs text developer and build"))
        };
        let verifier_id = VerifierId {
            developer: vid_text(&label::DEVELOPER)?,
            build: vid_text(&label::BUILD)?,
        };
        let subs = get(&label::SUBMODS)
            .ok_or_else(|| missing(label::SUBMODS.json))?
            .as_map()
            .ok_or_else(|| claim(label::SUBMODS.json, "is not a map"))?;
        let mut submods = BTreeMap::new();
        for (k, s) in subs {
            let name = k
                .as_text()
                .ok_or_else(|| claim(label::SUBMODS.json, "has a label that is not text"))?;
            let sub = Submod::from_cbor(name, s)?;
            if submods.insert(name.to_owned(), sub).is_some() {
                return Err(claim(label::SUBMODS.json, "repeats a label"));
            }
        }
        let claims = Self {
            iat,
            exp,
            nonce,
            verifier_id,
            submods,
        };
        claims.validate()?;
        Ok(Parsed { claims, nbf })
    }
}

impl serde::Serialize for EarClaims {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl Submod {
    fn to_json(&self) -> Json {
        let mut m = Map::new();
        m.insert(label::STATUS.json.into(), self.status.as_str().into());
        if let Some(v) = self.trust_vector.filter(|v| !v.is_empty()) {
            let vector: Map<String, Json> = CLAIM_NAMES
                .iter()
                .zip(v.entries())
                .filter_map(|(name, value)| value.map(|x| ((*name).to_owned(), x.into())))
                .collect();
            m.insert(label::VECTOR.json.into(), Json::Object(vector));
        }
        if let Some(id) = &self.appraisal_policy_id {
            m.insert(label::POLICY_ID.json.into(), id.clone().into());
        }
        if let Some(ev) = self.annotated_evidence.as_ref().filter(|e| !e.is_empty()) {
            m.insert(
                label::ANNOTATED_EVIDENCE.json.into(),
                Json::Object(ev.clone()),
            );
        }
        Json::Object(m)
    }

    fn to_cbor(&self, name: &str) -> Result<Cbor, TokenError> {
        let mut m = vec![(int(label::STATUS.cbor), int(self.status.value()))];
        if let Some(v) = self.trust_vector.filter(|v| !v.is_empty()) {
            let vector = (0i64..)
                .zip(v.entries())
                .filter_map(|(key, value)| value.map(|x| (int(key), int(x))))
                .collect();
            m.push((int(label::VECTOR.cbor), Cbor::Map(vector)));
        }
        if let Some(id) = &self.appraisal_policy_id {
            m.push((int(label::POLICY_ID.cbor), Cbor::Text(id.clone())));
        }
        if let Some(ev) = self.annotated_evidence.as_ref().filter(|e| !e.is_empty()) {
            let ev = json_object_to_cbor(ev, MAX_EVIDENCE_DEPTH).ok_or_else(|| {
                sub_claim(name, label::ANNOTATED_EVIDENCE.json, "is nested too deeply")
            })?;
            m.push((int(label::ANNOTATED_EVIDENCE.cbor), ev));
        }
        Ok(Cbor::Map(m))
    }

    fn from_json(name: &str, value: &Json) -> Result<Self, TokenError> {
        let m = value
            .as_object()
            .ok_or_else(|| sub_claim(name, "", "is not an object"))?;
        let status = m
            .get(label::STATUS.json)
            .ok_or_else(|| sub_claim(name, label::STATUS.json, "missing"))?
            .as_str()
            .and_then(Status::from_name)
            .ok_or_else(|| sub_claim(name, label::STATUS.json, "is not a trust tier name"))?;
        let trust_vector = match m.get(label::VECTOR.json) {
            None => None,
            Some(v) => {
                let entries = v
                    .as_object()
                    .ok_or_else(|| sub_claim(name, label::VECTOR.json, "is not an object"))?;
                let mut vector = TrustVector::default();
                for (k, x) in entries {
                    let slot = CLAIM_NAMES
                        .iter()
                        .position(|c| c == k)
                        .and_then(|i| vector.slot(i))
                        .ok_or_else(|| {
                            sub_claim(name, label::VECTOR.json, "has an unknown claim")
                        })?;
                    let x = x
                        .as_i64()
                        .and_then(|x| i8::try_from(x).ok())
                        .ok_or_else(|| {
                            sub_claim(name, label::VECTOR.json, "has a value outside -128..=127")
                        })?;
                    *slot = Some(x);
                }
                Some(vector)
            }
        };
        let appraisal_policy_id = match m.get(label::POLICY_ID.json) {
            None => None,
            Some(Json::String(s)) => Some(s.clone()),
            Some(_) => return Err(sub_claim(name, label::POLICY_ID.json, "is not text")),
        };
        let annotated_evidence = match m.get(label::ANNOTATED_EVIDENCE.json) {
            None => None,
            Some(Json::Object(o)) => Some(o.clone()),
            Some(_) => {
                return Err(sub_claim(
                    name,
                    label::ANNOTATED_EVIDENCE.json,
                    "is not an object",
                ));
            }
        };
        Ok(Self {
            status,
            trust_vector,
            appraisal_policy_id,
            annotated_evidence,
        })
    }

    fn from_cbor(name: &str, value: &Cbor) -> Result<Self, TokenError> {
        let entries = value
            .as_map()
            .ok_or_else(|| sub_claim(name, "", "is not a map"))?;
        let m = int_keyed(entries, label::SUBMODS.json)?;
        let get = |l: &label::Label| m.get(&l.cbor).copied();
        let status =
            get(&label::STATUS).ok_or_else(|| sub_claim(name, label::STATUS.json, "missing"))?;
        let status = cbor_i64(status)
            .and_then(Status::from_value)
            .ok_or_else(|| sub_claim(name, label::STATUS.json, "is not 0, 2, 32 or 96"))?;
        let trust_vector = match get(&label::VECTOR) {
            None => None,
            Some(v) => {
                let entries = v
                    .as_map()
                    .ok_or_else(|| sub_claim(name, label::VECTOR.json, "is not a map"))?;
                let keyed = int_keyed(entries, label::VECTOR.json)?;
                let mut vector = TrustVector::default();
                for (key, x) in keyed {
                    let slot = usize::try_from(key)
                        .ok()
                        .and_then(|k| vector.slot(k))
                        .ok_or_else(|| {
                            sub_claim(name, label::VECTOR.json, "has an unknown claim")
                        })?;
                    let x = cbor_i64(x)
                        .and_then(|x| i8::try_from(x).ok())
                        .ok_or_else(|| {
                            sub_claim(name, label::VECTOR.json, "has a value outside -128..=127")
                        })?;
                    *slot = Some(x);
                }
                Some(vector)
            }
        };
        let appraisal_policy_id = match get(&label::POLICY_ID) {
            None => None,
            Some(Cbor::Text(s)) => Some(s.clone()),
            Some(_) => return Err(sub_claim(name, label::POLICY_ID.json, "is not text")),
        };
        let annotated_evidence = match get(&label::ANNOTATED_EVIDENCE) {
            None => None,
            Some(v) => match cbor_to_json(v, MAX_EVIDENCE_DEPTH) {
                Some(Json::Object(o)) => Some(o),
                _ => {
                    return Err(sub_claim(
                        name,
                        label::ANNOTATED_EVIDENCE.json,
                        "is not a JSON-compatible map (text keys, no tags or byte strings, \
                         bounded depth)",
                    ));
                }
            },
        };
        Ok(Self {
            status,
            trust_vector,
            appraisal_policy_id,
            annotated_evidence,
        })
    }
}

fn int(v: impl Into<ciborium::value::Integer>) -> Cbor {
    Cbor::Integer(v.into())
}

fn cbor_i64(v: &Cbor) -> Option<i64> {
    v.as_integer().and_then(|i| i64::try_from(i).ok())
}

/// The integer-keyed entries of a CBOR map; other keys (unknown claims) are skipped, a repeated
/// integer key is refused.
fn int_keyed<'a>(
    entries: &'a [(Cbor, Cbor)],
    what: &str,
) -> Result<BTreeMap<i64, &'a Cbor>, TokenError> {
    let mut out = BTreeMap::new();
    for (k, v) in entries {
        if let Some(key) = cbor_i64(k)
            && out.insert(key, v).is_some()
        {
            return Err(claim(what, "repeats a key"));
        }
    }
    Ok(out)
}

/// Whether `v` nests no more than `left` containers deep.
fn json_depth_ok(v: &Json, left: usize) -> bool {
    match v {
        Json::Array(a) => left > 0 && a.iter().all(|x| json_depth_ok(x, left - 1)),
        Json::Object(o) => left > 0 && o.values().all(|x| json_depth_ok(x, left - 1)),
        _ => true,
    }
}

fn json_object_to_cbor(o: &Map<String, Json>, left: usize) -> Option<Cbor> {
    let left = left.checked_sub(1)?;
    o.iter()
        .map(|(k, v)| Some((Cbor::Text(k.clone()), json_to_cbor(v, left)?)))
        .collect::<Option<Vec<_>>>()
        .map(Cbor::Map)
}

/// JSON to CBOR, at most `left` containers deep: integers stay integers, other numbers become
/// floats.
fn json_to_cbor(v: &Json, left: usize) -> Option<Cbor> {
    Some(match v {
        Json::Null => Cbor::Null,
        Json::Bool(b) => Cbor::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                int(i)
            } else if let Some(u) = n.as_u64() {
                int(u)
            } else {
                Cbor::Float(n.as_f64()?)
            }
        }
        Json::String(s) => Cbor::Text(s.clone()),
        Json::Array(a) => {
            let left = left.checked_sub(1)?;
            Cbor::Array(
                a.iter()
                    .map(|x| json_to_cbor(x, left))
                    .collect::<Option<_>>()?,
            )
        }
        Json::Object(o) => json_object_to_cbor(o, left)?,
    })
}

/// CBOR to JSON, at most `left` containers deep. Only what JSON can say is accepted: text map
/// keys (each once), integers within i64/u64, finite floats; byte strings, tags and simple values
/// are refused.
fn cbor_to_json(v: &Cbor, left: usize) -> Option<Json> {
    Some(match v {
        Cbor::Null => Json::Null,
        Cbor::Bool(b) => Json::Bool(*b),
        Cbor::Integer(i) => {
            let i = i128::from(*i);
            if let Ok(x) = i64::try_from(i) {
                Json::from(x)
            } else {
                Json::from(u64::try_from(i).ok()?)
            }
        }
        Cbor::Float(f) => Json::Number(Number::from_f64(*f)?),
        Cbor::Text(s) => Json::String(s.clone()),
        Cbor::Array(a) => {
            let left = left.checked_sub(1)?;
            Json::Array(
                a.iter()
                    .map(|x| cbor_to_json(x, left))
                    .collect::<Option<_>>()?,
            )
        }
        Cbor::Map(m) => {
            let left = left.checked_sub(1)?;
            let mut o = Map::new();
            for (k, x) in m {
                if o.insert(k.as_text()?.to_owned(), cbor_to_json(x, left)?)
                    .is_some()
                {
                    return None;
                }
            }
            Json::Object(o)
        }
        _ => return None,
    })
}

/// Read one CBOR item that fills `bytes` exactly.
pub(crate) fn read_cbor(bytes: &[u8]) -> Result<Cbor, TokenError> {
    let mut rest = bytes;
    let value: Cbor = ciborium::de::from_reader(&mut rest).map_err(|_| TokenError::Format {
        what: "the claims-set is not CBOR",
    })?;
    if !rest.is_empty() {
        return Err(TokenError::Format {
            what: "bytes after the CBOR claims-set",
        });
    }
    Ok(value)
}

/// [`EarClaims`] serialized as [`EarClaims::to_json`] would be, field by field. Object keys come
/// out sorted by their bytes, as `serde_json::Map` (without `preserve_order`) sorts them, so
/// both give the same text.
struct JsonView<'a>(&'a EarClaims);

/// A JSON member value of [`JsonView`].
enum Member<'a> {
    Str(&'a str),
    String(String),
    Int(i64),
    VerifierId(&'a VerifierId),
    Submods(&'a BTreeMap<String, Submod>),
    Vector(BTreeMap<&'static str, i8>),
    Object(&'a Map<String, Json>),
}

impl serde::Serialize for Member<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        match self {
            Self::Str(v) => s.serialize_str(v),
            Self::String(v) => s.serialize_str(v),
            Self::Int(v) => s.serialize_i64(*v),
            Self::VerifierId(v) => sorted_object(
                s,
                vec![
                    (label::DEVELOPER.json, Member::Str(&v.developer)),
                    (label::BUILD.json, Member::Str(&v.build)),
                ],
            ),
            Self::Submods(submods) => {
                let mut m = s.serialize_map(Some(submods.len()))?;
                for (name, sub) in *submods {
                    m.serialize_entry(name, &SubmodView(sub))?;
                }
                m.end()
            }
            Self::Vector(v) => v.serialize(s),
            Self::Object(v) => v.serialize(s),
        }
    }
}

/// Writes `members` as an object with its keys in byte order.
fn sorted_object<S: serde::Serializer>(
    s: S,
    mut members: Vec<(&str, Member<'_>)>,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap as _;
    members.sort_by(|a, b| a.0.cmp(b.0));
    let mut m = s.serialize_map(Some(members.len()))?;
    for (k, v) in &members {
        m.serialize_entry(k, v)?;
    }
    m.end()
}

impl serde::Serialize for JsonView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let c = self.0;
        let mut members = vec![
            (label::PROFILE.json, Member::Str(EAR_PROFILE)),
            (label::IAT.json, Member::Int(c.iat.as_secs())),
            (label::EXP.json, Member::Int(c.exp.as_secs())),
            (label::VERIFIER_ID.json, Member::VerifierId(&c.verifier_id)),
            (label::SUBMODS.json, Member::Submods(&c.submods)),
        ];
        if let Some(n) = &c.nonce {
            members.push((
                label::NONCE.json,
                Member::String(URL_SAFE_NO_PAD.encode(&n.0)),
            ));
        }
        sorted_object(s, members)
    }
}

/// One [`Submod`] as `Submod::to_json` writes it.
struct SubmodView<'a>(&'a Submod);

impl serde::Serialize for SubmodView<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sub = self.0;
        let mut members = vec![(label::STATUS.json, Member::Str(sub.status.as_str()))];
        if let Some(v) = sub.trust_vector.filter(|v| !v.is_empty()) {
            let vector = CLAIM_NAMES
                .iter()
                .zip(v.entries())
                .filter_map(|(name, value)| value.map(|x| (*name, x)))
                .collect();
            members.push((label::VECTOR.json, Member::Vector(vector)));
        }
        if let Some(id) = &sub.appraisal_policy_id {
            members.push((label::POLICY_ID.json, Member::Str(id)));
        }
        if let Some(ev) = sub.annotated_evidence.as_ref().filter(|e| !e.is_empty()) {
            members.push((label::ANNOTATED_EVIDENCE.json, Member::Object(ev)));
        }
        sorted_object(s, members)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sample() -> EarClaims {
        let vector = TrustVector {
            instance_identity: Some(2),
            hardware: Some(32),
            ..TrustVector::default()
        };
        let evidence = json!({
            "snp": {"measurement": "ab", "n": 1, "f": 1.5, "neg": -3, "big": u64::MAX},
            "runtime_data_claims": {"tee-pubkey": {"kty": "EC", "crv": "P-256"}},
            "list": [null, true, "x", [1, [2]]]
        });
        let Json::Object(evidence) = evidence else {
            unreachable!()
        };
        EarClaims {
            iat: UnixTime::from_secs(1_700_000_000),
            exp: UnixTime::from_secs(1_700_000_300),
            nonce: Some(Nonce::new(&[7; 32]).unwrap()),
            verifier_id: VerifierId::tessera(),
            submods: BTreeMap::from([(
                CPU_SUBMOD.to_owned(),
                Submod {
                    status: Status::Warning,
                    trust_vector: Some(vector),
                    appraisal_policy_id: Some("prod".into()),
                    annotated_evidence: Some(evidence),
                },
            )]),
        }
    }

    #[test]
    fn json_shape_and_round_trip() {
        let c = sample();
        let j = c.to_json();
        assert_eq!(j["eat_profile"], EAR_PROFILE);
        assert_eq!(j["iat"], 1_700_000_000);
        assert_eq!(j["exp"], 1_700_000_300);
        assert_eq!(j["eat_nonce"], URL_SAFE_NO_PAD.encode([7u8; 32]));
        assert_eq!(j["ear.verifier-id"]["developer"], "tessera");
        let cpu = &j["submods"]["cpu0"];
        assert_eq!(cpu["ear.status"], "warning");
        assert_eq!(
            cpu["ear.trustworthiness-vector"],
            json!({"instance-identity": 2, "hardware": 32})
        );
        assert_eq!(cpu["ear.appraisal-policy-id"], "prod");
        assert_eq!(
            j.pointer(
                "/submods/cpu0/ear.veraison.annotated-evidence/runtime_data_claims/tee-pubkey/kty"
            ),
            Some(&json!("EC"))
        );
        let back = EarClaims::from_json(&j).unwrap();
        assert_eq!(back.claims, c);
        assert_eq!(back.nbf, None);
    }

    #[test]
    fn a_result_that_appraised_no_workload_is_at_most_a_warning() {
        let with = |status: Status, vector: TrustVector| {
            let mut c = sample();
            let cpu = c.submods.get_mut(CPU_SUBMOD).unwrap();
            cpu.status = status;
            cpu.trust_vector = Some(vector);
            c.warning_unless_workload_appraised()
                .cpu()
                .unwrap()
                .status()
        };
        let genuine_only = TrustVector {
            instance_identity: Some(2),
            hardware: Some(2),
            ..TrustVector::default()
        };
        let code_only = TrustVector {
            executables: Some(3),
            ..genuine_only
        };
        let config_only = TrustVector {
            configuration: Some(2),
            ..genuine_only
        };
        let workload = TrustVector {
            configuration: Some(2),
            ..code_only
        };
        for v in [genuine_only, code_only, config_only] {
            assert_eq!(with(Status::Affirming, v), Status::Warning, "{v:?}");
            assert_eq!(with(Status::None, v), Status::None, "{v:?}");
            assert_eq!(with(Status::Warning, v), Status::Warning, "{v:?}");
            // Never raised.
            assert_eq!(
                with(Status::Contraindicated, v),
                Status::Contraindicated,
                "{v:?}"
            );
        }
        assert_eq!(with(Status::Affirming, workload), Status::Affirming);
        assert_eq!(with(Status::Warning, workload), Status::Warning);
        // The result still validates: a warning is never more trusting than its vector.
        let mut c = sample();
        c.submods.get_mut(CPU_SUBMOD).unwrap().status = Status::Affirming;
        c.submods.get_mut(CPU_SUBMOD).unwrap().trust_vector = Some(genuine_only);
        let c = c.warning_unless_workload_appraised();
        assert!(c.validate().is_ok());
        assert_eq!(c.to_json()["submods"]["cpu0"]["ear.status"], "warning");
    }

    #[test]
    fn cbor_shape_and_round_trip() {
        let c = sample();
        let v = c.to_cbor().unwrap();
        let top = int_keyed(v.as_map().unwrap(), "t").unwrap();
        assert_eq!(top[&265].as_text(), Some(EAR_PROFILE));
        assert_eq!(cbor_i64(top[&6]), Some(1_700_000_000));
        assert_eq!(cbor_i64(top[&4]), Some(1_700_000_300));
        assert_eq!(top[&10].as_bytes().map(Vec::len), Some(32));
        let vid = int_keyed(top[&1004].as_map().unwrap(), "v").unwrap();
        assert_eq!(vid[&0].as_text(), Some("tessera"));
        let subs = top[&266].as_map().unwrap();
        assert_eq!(subs[0].0.as_text(), Some("cpu0"));
        let cpu = int_keyed(subs[0].1.as_map().unwrap(), "s").unwrap();
        assert_eq!(cbor_i64(cpu[&1000]), Some(32));
        let vector = int_keyed(cpu[&1001].as_map().unwrap(), "tv").unwrap();
        assert_eq!(vector.len(), 2);
        assert_eq!(cbor_i64(vector[&0]), Some(2));
        assert_eq!(cbor_i64(vector[&4]), Some(32));
        assert_eq!(cpu[&1003].as_text(), Some("prod"));
        assert!(cpu[&-70000].as_map().is_some());
        let back = EarClaims::from_cbor(&v).unwrap();
        assert_eq!(back.claims, c);
    }

    #[test]
    fn strict_claims() {
        let good = sample().to_json();
        let reject = |edit: &dyn Fn(&mut Json), what: &str| {
            let mut j = good.clone();
            edit(&mut j);
            let err = EarClaims::from_json(&j)
                .err()
                .unwrap_or_else(|| panic!("{what}"));
            assert!(
                matches!(err, TokenError::Claims { .. } | TokenError::Format { .. }),
                "{what}: {err:?}"
            );
        };
        reject(
            &|j| j["eat_profile"] = json!("tag:github.com,2023:veraison/ea"),
            "profile",
        );
        reject(&|j| j["iat"] = json!(1.7e9), "float iat");
        reject(&|j| j["exp"] = json!("1700000300"), "text exp");
        reject(
            &|j| {
                j.as_object_mut().unwrap().remove("exp");
            },
            "no exp",
        );
        reject(&|j| j["eat_nonce"] = json!("AAAA"), "short nonce");
        reject(
            &|j| j["eat_nonce"] = json!("AAAAAAAAAAAAAAAAAAA="),
            "padded nonce",
        );
        reject(&|j| j["submods"] = json!({}), "no submods");
        reject(
            &|j| j["submods"]["cpu0"]["ear.status"] = json!("great"),
            "status name",
        );
        reject(
            &|j| j["submods"]["cpu0"]["ear.status"] = json!("affirming"),
            "status vs vector",
        );
        reject(
            &|j| j["submods"]["cpu0"]["ear.trustworthiness-vector"] = json!({}),
            "empty vector",
        );
        reject(
            &|j| j["submods"]["cpu0"]["ear.trustworthiness-vector"]["hardware"] = json!(128),
            "vector range",
        );
        reject(
            &|j| j["submods"]["cpu0"]["ear.trustworthiness-vector"]["speed"] = json!(2),
            "vector claim",
        );
        reject(
            &|j| j["submods"]["cpu0"]["ear.veraison.annotated-evidence"] = json!([1]),
            "evidence",
        );
        reject(
            &|j| j["ear.verifier-id"] = json!({"developer": "x"}),
            "verifier id",
        );
        // Unknown claims are ignored.
        let mut j = good.clone();
        j["iss"] = json!("someone");
        j["submods"]["cpu0"]["ear.veraison.policy-claims"] = json!({"a": 1});
        assert_eq!(EarClaims::from_json(&j).unwrap().claims, sample());
    }

    #[test]
    fn evidence_depth_is_bounded() {
        let mut deep = json!(1);
        for _ in 0..MAX_EVIDENCE_DEPTH {
            deep = json!([deep]);
        }
        let mut c = sample();
        let sub = c.submods.get_mut(CPU_SUBMOD).unwrap();
        let mut ev = Map::new();
        ev.insert("deep".into(), deep.clone());
        sub.annotated_evidence = Some(ev);
        assert!(c.validate().is_err());
        assert!(c.to_cbor().is_err());
        // One level less fits.
        let Json::Array(inner) = deep else {
            unreachable!()
        };
        let mut ev = Map::new();
        ev.insert("deep".into(), inner[0].clone());
        c.submods.get_mut(CPU_SUBMOD).unwrap().annotated_evidence = Some(ev);
        c.validate().unwrap();
        let back = EarClaims::from_cbor(&c.to_cbor().unwrap()).unwrap();
        assert_eq!(back.claims, c);
    }

    #[test]
    fn cbor_refusals() {
        let v = sample().to_cbor().unwrap();
        let Cbor::Map(mut top) = v else {
            unreachable!()
        };
        // A repeated key.
        let mut dup = top.clone();
        dup.push((int(6), int(1)));
        assert!(EarClaims::from_cbor(&Cbor::Map(dup)).is_err());
        // A float time.
        let mut float = top.clone();
        for (k, v) in &mut float {
            if cbor_i64(k) == Some(6) {
                *v = Cbor::Float(1.7e9);
            }
        }
        assert!(EarClaims::from_cbor(&Cbor::Map(float)).is_err());
        // Unknown keys are ignored.
        top.push((int(-80000), Cbor::Text("x".into())));
        top.push((Cbor::Text("iss".into()), Cbor::Text("x".into())));
        assert_eq!(
            EarClaims::from_cbor(&Cbor::Map(top)).unwrap().claims,
            sample()
        );
        assert!(cbor_to_json(&Cbor::Bytes(vec![1]), 4).is_none());
        assert!(cbor_to_json(&Cbor::Tag(1, Box::new(int(1))), 4).is_none());
        assert!(cbor_to_json(&Cbor::Float(f64::NAN), 4).is_none());
        assert!(read_cbor(&[0xa0, 0x00]).is_err());
    }
}

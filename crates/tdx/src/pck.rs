//! The SGX extensions of a PCK certificate (OID 1.2.840.113741.1.13.1): PPID, TCB, PCE-ID,
//! FMSPC, SGX type and, for Platform CA certificates, platform instance id and configuration.
//!
//! Specification: Intel "SGX PCK Certificate and CRL Profile Specification", section "Intel
//! SGX PCK Certificate" → "Intel SGX Extensions". The extension value is a SEQUENCE of
//! `SEQUENCE { OID, value }`:
//!
//! | OID suffix | field | type |
//! |---|---|---|
//! | .1 | PPID | OCTET STRING (16) |
//! | .2 | TCB: `.2.1`..`.2.16` SGX TCB component SVNs, `.2.17` PCESVN, `.2.18` CPUSVN | SEQUENCE of `SEQUENCE { OID, INTEGER (0..255) / INTEGER (0..65535) / OCTET STRING (16) }` |
//! | .3 | PCE-ID | OCTET STRING (2) |
//! | .4 | FMSPC | OCTET STRING (6) |
//! | .5 | SGX type: 0 Standard, 1 Scalable, 2 Scalable with Integrity | ENUMERATED |
//! | .6 | Platform instance id (Platform CA certificates only) | OCTET STRING (16) |
//! | .7 | Configuration (Platform CA only): `.7.1` dynamic platform, `.7.2` cached keys, `.7.3` SMT enabled | SEQUENCE of `SEQUENCE { OID, BOOLEAN }` |
//!
//! PPID, all 18 TCB items, PCE-ID, FMSPC and SGX type are required; .6 and .7 (and each
//! configuration flag) are optional. OIDs this table does not list are ignored; a listed OID
//! twice, a wrong tag, a wrong length or an out-of-range integer is an error. Integers and
//! booleans must be DER (minimal, `0x00`/`0xFF`).
//!
//! [`PckExtensions::to_der`] writes the same structure (fields in the table's order), for the
//! simulator's fake PCK certificates.

use core::fmt;

use tessera_pki::der;

use crate::abi::HexBytes;

/// OID of the SGX extensions, dotted.
pub const OID_SGX_EXTENSIONS: &str = "1.2.840.113741.1.13.1";

/// DER contents of [`OID_SGX_EXTENSIONS`]; every field's OID is this plus one-byte arcs.
const SGX_EXTENSIONS_OID_DER: [u8; 9] = [0x2A, 0x86, 0x48, 0x86, 0xF8, 0x4D, 0x01, 0x0D, 0x01];

const TAG_BOOLEAN: u8 = 0x01;
const TAG_INTEGER: u8 = 0x02;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_OID: u8 = 0x06;
const TAG_ENUMERATED: u8 = 0x0A;
const TAG_SEQUENCE: u8 = 0x30;

const F_EXTENSION: &str = "SGX extensions (1.2.840.113741.1.13.1)";
const F_PPID: &str = "PPID (1.2.840.113741.1.13.1.1)";
const F_TCB: &str = "TCB (1.2.840.113741.1.13.1.2)";
const F_PCESVN: &str = "PCESVN (1.2.840.113741.1.13.1.2.17)";
const F_CPUSVN: &str = "CPUSVN (1.2.840.113741.1.13.1.2.18)";
const F_PCE_ID: &str = "PCE-ID (1.2.840.113741.1.13.1.3)";
const F_FMSPC: &str = "FMSPC (1.2.840.113741.1.13.1.4)";
const F_SGX_TYPE: &str = "SGX type (1.2.840.113741.1.13.1.5)";
const F_PLATFORM_INSTANCE_ID: &str = "platform instance id (1.2.840.113741.1.13.1.6)";
const F_CONFIGURATION: &str = "configuration (1.2.840.113741.1.13.1.7)";
const F_DYNAMIC_PLATFORM: &str = "dynamic platform (1.2.840.113741.1.13.1.7.1)";
const F_CACHED_KEYS: &str = "cached keys (1.2.840.113741.1.13.1.7.2)";
const F_SMT_ENABLED: &str = "SMT enabled (1.2.840.113741.1.13.1.7.3)";
const F_COMP_SVN: [&str; 16] = [
    "SGX TCB comp01 SVN (1.2.840.113741.1.13.1.2.1)",
    "SGX TCB comp02 SVN (1.2.840.113741.1.13.1.2.2)",
    "SGX TCB comp03 SVN (1.2.840.113741.1.13.1.2.3)",
    "SGX TCB comp04 SVN (1.2.840.113741.1.13.1.2.4)",
    "SGX TCB comp05 SVN (1.2.840.113741.1.13.1.2.5)",
    "SGX TCB comp06 SVN (1.2.840.113741.1.13.1.2.6)",
    "SGX TCB comp07 SVN (1.2.840.113741.1.13.1.2.7)",
    "SGX TCB comp08 SVN (1.2.840.113741.1.13.1.2.8)",
    "SGX TCB comp09 SVN (1.2.840.113741.1.13.1.2.9)",
    "SGX TCB comp10 SVN (1.2.840.113741.1.13.1.2.10)",
    "SGX TCB comp11 SVN (1.2.840.113741.1.13.1.2.11)",
    "SGX TCB comp12 SVN (1.2.840.113741.1.13.1.2.12)",
    "SGX TCB comp13 SVN (1.2.840.113741.1.13.1.2.13)",
    "SGX TCB comp14 SVN (1.2.840.113741.1.13.1.2.14)",
    "SGX TCB comp15 SVN (1.2.840.113741.1.13.1.2.15)",
    "SGX TCB comp16 SVN (1.2.840.113741.1.13.1.2.16)",
];

/// Why a PCK certificate's SGX extensions could not be read. Each variant names the field
/// (with its OID).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PckError {
    /// The certificate has no SGX extensions (it is not a PCK certificate: a CA certificate,
    /// or the wrong certificate of the chain).
    #[error("certificate has no SGX extensions ({OID_SGX_EXTENSIONS}): not a PCK certificate")]
    MissingExtension,
    /// The DER is not the structure the profile defines (truncated, wrong tag, bytes after a
    /// value, non-minimal integer, boolean other than 0x00/0xFF).
    #[error("{field}: malformed DER")]
    Malformed {
        /// The field (or container) being read.
        field: &'static str,
    },
    /// A required field is absent.
    #[error("{field}: missing")]
    Missing {
        /// The field.
        field: &'static str,
    },
    /// A field appears twice.
    #[error("{field}: appears more than once")]
    Duplicate {
        /// The field.
        field: &'static str,
    },
    /// An OCTET STRING of the wrong length.
    #[error("{field}: expected {expected} bytes, got {actual}")]
    Length {
        /// The field.
        field: &'static str,
        /// The length the profile fixes.
        expected: usize,
        /// The length found.
        actual: usize,
    },
    /// An integer that is negative or larger than the field allows (SVNs 0..=255, PCESVN
    /// 0..=65535, SGX type within 64 bits).
    #[error("{field}: integer out of range")]
    OutOfRange {
        /// The field.
        field: &'static str,
    },
}

/// The SGX type (`.5`, ENUMERATED).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SgxType {
    /// 0: Standard.
    Standard,
    /// 1: Scalable.
    Scalable,
    /// 2: Scalable with Integrity.
    ScalableWithIntegrity,
    /// Any other value (kept, so a verifier can say which).
    Unknown(u64),
}

impl SgxType {
    /// The ENUMERATED value.
    pub fn value(self) -> u64 {
        match self {
            Self::Standard => 0,
            Self::Scalable => 1,
            Self::ScalableWithIntegrity => 2,
            Self::Unknown(v) => v,
        }
    }
}

impl From<u64> for SgxType {
    fn from(v: u64) -> Self {
        match v {
            0 => Self::Standard,
            1 => Self::Scalable,
            2 => Self::ScalableWithIntegrity,
            other => Self::Unknown(other),
        }
    }
}

/// The platform configuration (`.7`, Platform CA certificates only); each flag is optional.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub struct PlatformConfiguration {
    /// `.7.1`: the platform can be extended with additional packages.
    pub dynamic_platform: Option<bool>,
    /// `.7.2`: the platform's root keys are cached by the SGX registration backend.
    pub cached_keys: Option<bool>,
    /// `.7.3`: simultaneous multithreading is enabled.
    pub smt_enabled: Option<bool>,
}

/// The TCB the PCK certificate was issued for (`.2`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PckTcb {
    /// SGX TCB comp01..comp16 SVNs (`.2.1` .. `.2.16`), compared with the TCB info's
    /// `sgxtcbcomponents`.
    pub comp_svn: [u8; 16],
    /// PCESVN (`.2.17`).
    pub pce_svn: u16,
    /// CPUSVN (`.2.18`).
    pub cpu_svn: [u8; 16],
}

impl fmt::Debug for PckTcb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PckTcb")
            .field("comp_svn", &self.comp_svn)
            .field("pce_svn", &self.pce_svn)
            .field("cpu_svn", &HexBytes(&self.cpu_svn))
            .finish()
    }
}

/// The SGX extensions of a PCK certificate, decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct PckExtensions {
    /// PPID (`.1`): the platform provisioning id.
    pub ppid: [u8; 16],
    /// TCB (`.2`).
    pub tcb: PckTcb,
    /// PCE-ID (`.3`).
    pub pce_id: [u8; 2],
    /// FMSPC (`.4`): family-model-stepping-platform-custom SKU, the key of the TCB info.
    pub fmspc: [u8; 6],
    /// SGX type (`.5`).
    pub sgx_type: SgxType,
    /// Platform instance id (`.6`), Platform CA certificates only.
    pub platform_instance_id: Option<[u8; 16]>,
    /// Configuration (`.7`), Platform CA certificates only.
    pub configuration: Option<PlatformConfiguration>,
}

impl fmt::Debug for PckExtensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PckExtensions")
            .field("ppid", &HexBytes(&self.ppid))
            .field("tcb", &self.tcb)
            .field("pce_id", &HexBytes(&self.pce_id))
            .field("fmspc", &HexBytes(&self.fmspc))
            .field("sgx_type", &self.sgx_type)
            .field(
                "platform_instance_id",
                &self.platform_instance_id.as_ref().map(|id| HexBytes(id)),
            )
            .field("configuration", &self.configuration)
            .finish()
    }
}

/// One `SEQUENCE { OID, value }` of an SGX extension list.
struct Entry<'a> {
    /// The OID's arcs after [`OID_SGX_EXTENSIONS`] as DER bytes (one byte per arc below 128),
    /// or `None` for an OID outside the SGX extensions.
    suffix: Option<&'a [u8]>,
    /// The value's tag.
    tag: u8,
    /// The value's contents.
    value: &'a [u8],
}

/// The entries of a `SEQUENCE OF SEQUENCE { OID, value }` whose contents are `list`.
fn entries<'a>(mut list: &'a [u8], field: &'static str) -> Result<Vec<Entry<'a>>, PckError> {
    let malformed = PckError::Malformed { field };
    let mut out = Vec::new();
    while !list.is_empty() {
        let (tag, item, rest) = der::take_tlv(list).ok_or(malformed.clone())?;
        list = rest;
        if tag != TAG_SEQUENCE {
            return Err(malformed);
        }
        let (oid_tag, oid, value) = der::take_tlv(item).ok_or(malformed.clone())?;
        if oid_tag != TAG_OID {
            return Err(malformed);
        }
        let (tag, value, after) = der::take_tlv(value).ok_or(malformed.clone())?;
        if !after.is_empty() {
            return Err(malformed);
        }
        out.push(Entry {
            suffix: oid.strip_prefix(SGX_EXTENSIONS_OID_DER.as_slice()),
            tag,
            value,
        });
    }
    Ok(out)
}

/// Stores `value` in an empty `slot`, or reports the field as duplicated.
fn set_once<T>(slot: &mut Option<T>, value: T, field: &'static str) -> Result<(), PckError> {
    if slot.is_some() {
        return Err(PckError::Duplicate { field });
    }
    *slot = Some(value);
    Ok(())
}

/// An OCTET STRING of exactly `N` bytes.
fn octets<const N: usize>(entry: &Entry<'_>, field: &'static str) -> Result<[u8; N], PckError> {
    if entry.tag != TAG_OCTET_STRING {
        return Err(PckError::Malformed { field });
    }
    entry.value.try_into().map_err(|_| PckError::Length {
        field,
        expected: N,
        actual: entry.value.len(),
    })
}

/// A non-negative DER INTEGER (or ENUMERATED, per `tag`) that fits in a `u64`.
fn unsigned(entry: &Entry<'_>, tag: u8, field: &'static str) -> Result<u64, PckError> {
    if entry.tag != tag {
        return Err(PckError::Malformed { field });
    }
    let content = entry.value;
    match content {
        [] => return Err(PckError::Malformed { field }),
        [0, next, ..] if *next < 0x80 => return Err(PckError::Malformed { field }),
        [first, ..] if *first >= 0x80 => return Err(PckError::OutOfRange { field }),
        _ => {}
    }
    let digits = match content {
        [0, rest @ ..] if !rest.is_empty() => rest,
        all => all,
    };
    if digits.len() > 8 {
        return Err(PckError::OutOfRange { field });
    }
    Ok(digits
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// A DER BOOLEAN.
fn boolean(entry: &Entry<'_>, field: &'static str) -> Result<bool, PckError> {
    match (entry.tag, entry.value) {
        (TAG_BOOLEAN, [0x00]) => Ok(false),
        (TAG_BOOLEAN, [0xFF]) => Ok(true),
        _ => Err(PckError::Malformed { field }),
    }
}

impl PckExtensions {
    /// Decodes the SGX extensions of `cert` (a PCK certificate, the leaf of the chain a
    /// quote carries).
    ///
    /// # Errors
    ///
    /// [`PckError::MissingExtension`] when `cert` has no SGX extensions; the errors of
    /// [`Self::parse`].
    pub fn from_certificate(cert: &tessera_pki::Certificate) -> Result<Self, PckError> {
        let ext = cert
            .extension(OID_SGX_EXTENSIONS)
            .ok_or(PckError::MissingExtension)?;
        Self::parse(&ext.value)
    }

    /// Decodes the extension value (the contents of `extnValue`: the outer SEQUENCE).
    ///
    /// # Errors
    ///
    /// [`PckError::Malformed`] for DER that is not the profile's structure;
    /// [`PckError::Missing`] for an absent required field; [`PckError::Duplicate`];
    /// [`PckError::Length`] for an OCTET STRING of the wrong size; [`PckError::OutOfRange`]
    /// for an integer the field cannot hold.
    pub fn parse(ext_value: &[u8]) -> Result<Self, PckError> {
        let list = der::expect_tlv(ext_value, TAG_SEQUENCE)
            .ok_or(PckError::Malformed { field: F_EXTENSION })?;
        let mut ppid = None;
        let mut tcb = None;
        let mut pce_id = None;
        let mut fmspc = None;
        let mut sgx_type = None;
        let mut platform_instance_id = None;
        let mut configuration = None;
        for entry in entries(list, F_EXTENSION)? {
            match entry.suffix {
                Some([1]) => set_once(&mut ppid, octets(&entry, F_PPID)?, F_PPID)?,
                Some([2]) => set_once(&mut tcb, Self::parse_tcb(&entry)?, F_TCB)?,
                Some([3]) => set_once(&mut pce_id, octets(&entry, F_PCE_ID)?, F_PCE_ID)?,
                Some([4]) => set_once(&mut fmspc, octets(&entry, F_FMSPC)?, F_FMSPC)?,
                Some([5]) => {
                    let value = unsigned(&entry, TAG_ENUMERATED, F_SGX_TYPE)?;
                    set_once(&mut sgx_type, SgxType::from(value), F_SGX_TYPE)?;
                }
                Some([6]) => set_once(
                    &mut platform_instance_id,
                    octets(&entry, F_PLATFORM_INSTANCE_ID)?,
                    F_PLATFORM_INSTANCE_ID,
                )?,
                Some([7]) => set_once(
                    &mut configuration,
                    Self::parse_configuration(&entry)?,
                    F_CONFIGURATION,
                )?,
                _ => {}
            }
        }
        Ok(Self {
            ppid: ppid.ok_or(PckError::Missing { field: F_PPID })?,
            tcb: tcb.ok_or(PckError::Missing { field: F_TCB })?,
            pce_id: pce_id.ok_or(PckError::Missing { field: F_PCE_ID })?,
            fmspc: fmspc.ok_or(PckError::Missing { field: F_FMSPC })?,
            sgx_type: sgx_type.ok_or(PckError::Missing { field: F_SGX_TYPE })?,
            platform_instance_id,
            configuration,
        })
    }

    fn parse_tcb(entry: &Entry<'_>) -> Result<PckTcb, PckError> {
        if entry.tag != TAG_SEQUENCE {
            return Err(PckError::Malformed { field: F_TCB });
        }
        let mut comps: [Option<u8>; 16] = [None; 16];
        let mut pce_svn = None;
        let mut cpu_svn = None;
        for item in entries(entry.value, F_TCB)? {
            let Some([2, arc]) = item.suffix else {
                continue;
            };
            match *arc {
                17 => {
                    let v = unsigned(&item, TAG_INTEGER, F_PCESVN)?;
                    let v =
                        u16::try_from(v).map_err(|_| PckError::OutOfRange { field: F_PCESVN })?;
                    set_once(&mut pce_svn, v, F_PCESVN)?;
                }
                18 => set_once(&mut cpu_svn, octets(&item, F_CPUSVN)?, F_CPUSVN)?,
                n => {
                    let index = usize::from(n).wrapping_sub(1);
                    if let (Some(slot), Some(field)) = (comps.get_mut(index), F_COMP_SVN.get(index))
                    {
                        let v = unsigned(&item, TAG_INTEGER, field)?;
                        let v = u8::try_from(v).map_err(|_| PckError::OutOfRange { field })?;
                        set_once(slot, v, field)?;
                    }
                }
            }
        }
        let mut comp_svn = [0u8; 16];
        for ((out, comp), field) in comp_svn.iter_mut().zip(comps).zip(F_COMP_SVN) {
            *out = comp.ok_or(PckError::Missing { field })?;
        }
        Ok(PckTcb {
            comp_svn,
            pce_svn: pce_svn.ok_or(PckError::Missing { field: F_PCESVN })?,
            cpu_svn: cpu_svn.ok_or(PckError::Missing { field: F_CPUSVN })?,
        })
    }

    fn parse_configuration(entry: &Entry<'_>) -> Result<PlatformConfiguration, PckError> {
        if entry.tag != TAG_SEQUENCE {
            return Err(PckError::Malformed {
                field: F_CONFIGURATION,
            });
        }
        let mut config = PlatformConfiguration::default();
        for item in entries(entry.value, F_CONFIGURATION)? {
            let (slot, field) = match item.suffix {
                Some([7, 1]) => (&mut config.dynamic_platform, F_DYNAMIC_PLATFORM),
                Some([7, 2]) => (&mut config.cached_keys, F_CACHED_KEYS),
                Some([7, 3]) => (&mut config.smt_enabled, F_SMT_ENABLED),
                _ => continue,
            };
            set_once(slot, boolean(&item, field)?, field)?;
        }
        Ok(config)
    }

    /// The extension value (the contents of `extnValue`), fields in the profile's order;
    /// `PckExtensions::parse(&x.to_der()) == Ok(x)`.
    pub fn to_der(&self) -> Vec<u8> {
        let field = |arcs: &[u8], value: &[u8]| -> Vec<u8> {
            let oid = der::tlv(TAG_OID, &[SGX_EXTENSIONS_OID_DER.as_slice(), arcs].concat());
            der::seq(&[&oid, value])
        };
        let mut tcb: Vec<Vec<u8>> = Vec::with_capacity(18);
        for (arc, svn) in (1u8..).zip(self.tcb.comp_svn) {
            tcb.push(field(&[2, arc], &der::uint_u64(u64::from(svn))));
        }
        tcb.push(field(&[2, 17], &der::uint_u64(u64::from(self.tcb.pce_svn))));
        tcb.push(field(&[2, 18], &der::octets(&self.tcb.cpu_svn)));
        let tcb_refs: Vec<&[u8]> = tcb.iter().map(Vec::as_slice).collect();

        let mut sgx_type = der::uint_u64(self.sgx_type.value());
        if let Some(tag) = sgx_type.first_mut() {
            *tag = TAG_ENUMERATED;
        }

        let mut fields = vec![
            field(&[1], &der::octets(&self.ppid)),
            field(&[2], &der::seq(&tcb_refs)),
            field(&[3], &der::octets(&self.pce_id)),
            field(&[4], &der::octets(&self.fmspc)),
            field(&[5], &sgx_type),
        ];
        if let Some(id) = &self.platform_instance_id {
            fields.push(field(&[6], &der::octets(id)));
        }
        if let Some(config) = &self.configuration {
            let flags: Vec<Vec<u8>> = [
                (1u8, config.dynamic_platform),
                (2, config.cached_keys),
                (3, config.smt_enabled),
            ]
            .into_iter()
            .filter_map(|(arc, flag)| flag.map(|v| field(&[7, arc], &der::boolean(v))))
            .collect();
            let flag_refs: Vec<&[u8]> = flags.iter().map(Vec::as_slice).collect();
            fields.push(field(&[7], &der::seq(&flag_refs)));
        }
        let refs: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
        der::seq(&refs)
    }
}

/// Fuzz harness: `PckExtensions::parse`; on success `to_der` parses back to the same value.
#[doc(hidden)]
#[allow(clippy::panic)] // fuzz harness: an assertion failure is the finding
pub fn fuzz_pck_extensions(data: &[u8]) {
    if let Ok(ext) = PckExtensions::parse(data) {
        let der = ext.to_der();
        assert_eq!(PckExtensions::parse(&der).as_ref(), Ok(&ext));
        let _ = format!("{ext:?}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abi::quote::tests::{quote_cases, read_quote, vectors_dir};
    use proptest::prelude::*;

    fn sample() -> PckExtensions {
        PckExtensions {
            ppid: [0x85; 16],
            tcb: PckTcb {
                comp_svn: [6, 6, 2, 2, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0],
                pce_svn: 11,
                cpu_svn: [6, 6, 2, 2, 3, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0],
            },
            pce_id: [0, 0],
            fmspc: [0x00, 0x80, 0x6F, 0x05, 0x00, 0x00],
            sgx_type: SgxType::Scalable,
            platform_instance_id: Some([0x63; 16]),
            configuration: Some(PlatformConfiguration {
                dynamic_platform: Some(true),
                cached_keys: Some(false),
                smt_enabled: Some(true),
            }),
        }
    }

    /// The SGX extension value with `edit` applied to its list of fields (each a DER
    /// `SEQUENCE { OID, value }`).
    fn edited(edit: impl FnOnce(&mut Vec<Vec<u8>>)) -> Vec<u8> {
        let der = sample().to_der();
        let mut list = der::expect_tlv(&der, 0x30).unwrap();
        let mut fields = Vec::new();
        while let Some((_, _, rest)) = der::take_tlv(list) {
            fields.push(list[..list.len() - rest.len()].to_vec());
            list = rest;
        }
        edit(&mut fields);
        let refs: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
        der::seq(&refs)
    }

    fn oid(arcs: &[u8]) -> Vec<u8> {
        der::tlv(0x06, &[SGX_EXTENSIONS_OID_DER.as_slice(), arcs].concat())
    }

    #[cfg_attr(
        not(tessera_vectors),
        ignore = "needs the real-hardware vectors (TESSERA_VECTORS)"
    )]
    #[test]
    fn real_pck_certificates() {
        let mut checked = 0;
        let mut platform_ca = 0;
        for case in quote_cases() {
            let name = case.file.display().to_string();
            let quote = read_quote(&case.file);
            let chain = quote
                .signature_data()
                .certification
                .pck_certificates()
                .unwrap();
            let leaf = chain.first().unwrap();
            let ext =
                PckExtensions::from_certificate(leaf).unwrap_or_else(|e| panic!("{name}: {e}"));
            let fmspc = case.facts["fmspc"].as_str().unwrap();
            assert_eq!(tessera_pki::to_hex(&ext.fmspc), fmspc, "{name}: FMSPC");
            // The encoder writes Intel's structure byte for byte.
            let value = &leaf.extension(OID_SGX_EXTENSIONS).unwrap().value;
            assert_eq!(ext.to_der().as_slice(), &value[..], "{name}: to_der");
            assert_eq!(PckExtensions::parse(&ext.to_der()), Ok(ext.clone()));
            // Platform CA certificates carry .6 and .7; Processor CA ones do not.
            let by_platform_ca = leaf.issuer().contains("Platform CA");
            assert_eq!(ext.platform_instance_id.is_some(), by_platform_ca, "{name}");
            assert_eq!(ext.configuration.is_some(), by_platform_ca, "{name}");
            platform_ca += usize::from(by_platform_ca);
            assert!(
                matches!(ext.sgx_type, SgxType::Standard | SgxType::Scalable),
                "{name}"
            );
            // The intermediate and root are not PCK certificates.
            for ca in &chain[1..] {
                assert_eq!(
                    PckExtensions::from_certificate(ca),
                    Err(PckError::MissingExtension)
                );
            }
            checked += 1;
        }
        if vectors_dir().is_some() {
            assert!(checked >= 21, "only {checked} PCK certificates checked");
            assert!(
                platform_ca >= 1 && platform_ca < checked,
                "{platform_ca} of {checked}"
            );
        }
    }

    #[test]
    fn encoding_matches_the_profile() {
        let der = sample().to_der();
        assert_eq!(PckExtensions::parse(&der), Ok(sample()));
        // PPID entry: SEQUENCE { OID .1, OCTET STRING (16) }.
        let list = der::expect_tlv(&der, 0x30).unwrap();
        let (_, first, _) = der::take_tlv(list).unwrap();
        let (_, oid_body, value) = der::take_tlv(first).unwrap();
        assert_eq!(
            der::tlv(0x06, oid_body),
            der::oid("1.2.840.113741.1.13.1.1").unwrap()
        );
        assert_eq!(der::expect_tlv(value, 0x04), Some(&[0x85u8; 16][..]));
        let minimal = PckExtensions {
            platform_instance_id: None,
            configuration: None,
            sgx_type: SgxType::Unknown(300),
            ..sample()
        };
        assert_eq!(PckExtensions::parse(&minimal.to_der()), Ok(minimal));
        assert!(format!("{:?}", sample()).contains("00806f050000"));
    }

    #[test]
    fn missing_and_duplicate_fields() {
        // Field index: 0 PPID, 1 TCB, 2 PCE-ID, 3 FMSPC, 4 SGX type, 5 .6, 6 .7.
        for (index, field) in [
            (0, F_PPID),
            (1, F_TCB),
            (2, F_PCE_ID),
            (3, F_FMSPC),
            (4, F_SGX_TYPE),
        ] {
            let der = edited(|f| {
                f.remove(index);
            });
            assert_eq!(PckExtensions::parse(&der), Err(PckError::Missing { field }));
        }
        let der = edited(|f| {
            f.truncate(5);
        });
        let ext = PckExtensions::parse(&der).unwrap();
        assert_eq!((ext.platform_instance_id, ext.configuration), (None, None));
        let der = edited(|f| {
            let ppid = f[0].clone();
            f.push(ppid);
        });
        assert_eq!(
            PckExtensions::parse(&der),
            Err(PckError::Duplicate { field: F_PPID })
        );
    }

    #[test]
    fn unknown_oids_ignored() {
        let der = edited(|f| {
            f.insert(2, der::seq(&[&oid(&[8]), &der::octets(b"future")]));
            f.push(der::seq(&[&der::oid("1.2.3.4").unwrap(), &der::null()]));
        });
        assert_eq!(PckExtensions::parse(&der), Ok(sample()));
    }

    #[test]
    fn wrong_lengths_tags_and_ranges() {
        let der = edited(|f| f[0] = der::seq(&[&oid(&[1]), &der::octets(&[1; 15])]));
        assert_eq!(
            PckExtensions::parse(&der),
            Err(PckError::Length {
                field: F_PPID,
                expected: 16,
                actual: 15
            })
        );
        let der = edited(|f| f[3] = der::seq(&[&oid(&[4]), &der::octets(&[0; 7])]));
        assert!(matches!(
            PckExtensions::parse(&der),
            Err(PckError::Length { field: F_FMSPC, .. })
        ));
        // SGX type as INTEGER instead of ENUMERATED.
        let der = edited(|f| f[4] = der::seq(&[&oid(&[5]), &der::uint_u64(1)]));
        assert_eq!(
            PckExtensions::parse(&der),
            Err(PckError::Malformed { field: F_SGX_TYPE })
        );
        // Configuration flag that is not a DER boolean.
        let bad_flag = der::seq(&[&oid(&[7, 3]), &der::tlv(0x01, &[1])]);
        let der = edited(|f| f[6] = der::seq(&[&oid(&[7]), &der::seq(&[&bad_flag])]));
        assert_eq!(
            PckExtensions::parse(&der),
            Err(PckError::Malformed {
                field: F_SMT_ENABLED
            })
        );
        // Trailing garbage after the extension value.
        let mut der = sample().to_der();
        der.push(0);
        assert!(matches!(
            PckExtensions::parse(&der),
            Err(PckError::Malformed { .. })
        ));
    }

    /// A TCB entry list with component `arc` set to the DER integer `value`.
    fn tcb_with(arc: u8, value: Vec<u8>) -> Vec<u8> {
        let tcb = sample().tcb;
        let mut items = Vec::new();
        for (a, svn) in (1u8..).zip(tcb.comp_svn) {
            let v = if a == arc {
                value.clone()
            } else {
                der::uint_u64(u64::from(svn))
            };
            items.push(der::seq(&[&oid(&[2, a]), &v]));
        }
        let pce = if arc == 17 {
            value.clone()
        } else {
            der::uint_u64(11)
        };
        items.push(der::seq(&[&oid(&[2, 17]), &pce]));
        items.push(der::seq(&[&oid(&[2, 18]), &der::octets(&tcb.cpu_svn)]));
        let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
        edited(|f| f[1] = der::seq(&[&oid(&[2]), &der::seq(&refs)]))
    }

    #[test]
    fn tcb_integers_checked() {
        assert_eq!(PckExtensions::parse(&tcb_with(0, vec![])), Ok(sample()));
        assert_eq!(
            PckExtensions::parse(&tcb_with(5, der::uint_u64(256))),
            Err(PckError::OutOfRange {
                field: F_COMP_SVN[4]
            })
        );
        assert_eq!(
            PckExtensions::parse(&tcb_with(5, der::tlv(0x02, &[0xFF]))),
            Err(PckError::OutOfRange {
                field: F_COMP_SVN[4]
            })
        );
        assert_eq!(
            PckExtensions::parse(&tcb_with(5, der::tlv(0x02, &[0x00, 0x05]))),
            Err(PckError::Malformed {
                field: F_COMP_SVN[4]
            })
        );
        assert_eq!(
            PckExtensions::parse(&tcb_with(16, der::tlv(0x02, &[]))),
            Err(PckError::Malformed {
                field: F_COMP_SVN[15]
            })
        );
        let ext = PckExtensions::parse(&tcb_with(5, der::uint_u64(200))).unwrap();
        assert_eq!(ext.tcb.comp_svn[4], 200);
        assert_eq!(
            PckExtensions::parse(&tcb_with(17, der::uint_u64(65_536))),
            Err(PckError::OutOfRange { field: F_PCESVN })
        );
        let ext = PckExtensions::parse(&tcb_with(17, der::uint_u64(65_535))).unwrap();
        assert_eq!(ext.tcb.pce_svn, 65_535);
    }

    #[test]
    fn tcb_items_required_once() {
        let tcb = sample().tcb;
        let mut items: Vec<Vec<u8>> = (1u8..)
            .zip(tcb.comp_svn)
            .map(|(a, svn)| der::seq(&[&oid(&[2, a]), &der::uint_u64(u64::from(svn))]))
            .collect();
        items.push(der::seq(&[&oid(&[2, 17]), &der::uint_u64(11)]));
        let with = |items: &[Vec<u8>]| {
            let refs: Vec<&[u8]> = items.iter().map(Vec::as_slice).collect();
            let tcb = der::seq(&[&oid(&[2]), &der::seq(&refs)]);
            PckExtensions::parse(&edited(|f| f[1] = tcb))
        };
        assert_eq!(with(&items), Err(PckError::Missing { field: F_CPUSVN }));
        let mut dup = items.clone();
        dup.push(items[6].clone());
        assert_eq!(
            with(&dup),
            Err(PckError::Duplicate {
                field: F_COMP_SVN[6]
            })
        );
        let mut missing = items.clone();
        missing.remove(9);
        assert_eq!(
            with(&missing),
            Err(PckError::Missing {
                field: F_COMP_SVN[9]
            })
        );
    }

    #[test]
    fn not_a_sequence() {
        assert_eq!(
            PckExtensions::parse(&[0x04, 0x00]),
            Err(PckError::Malformed { field: F_EXTENSION })
        );
        assert!(PckExtensions::parse(&[]).is_err());
    }

    fn arb_extensions() -> impl Strategy<Value = PckExtensions> {
        let config = proptest::option::of(
            (
                proptest::option::of(any::<bool>()),
                proptest::option::of(any::<bool>()),
                proptest::option::of(any::<bool>()),
            )
                .prop_map(|(d, c, s)| PlatformConfiguration {
                    dynamic_platform: d,
                    cached_keys: c,
                    smt_enabled: s,
                }),
        );
        (
            any::<[u8; 16]>(),
            any::<([u8; 16], u16, [u8; 16])>(),
            any::<[u8; 2]>(),
            any::<[u8; 6]>(),
            any::<u64>(),
            proptest::option::of(any::<[u8; 16]>()),
            config,
        )
            .prop_map(
                |(ppid, (comp_svn, pce_svn, cpu_svn), pce_id, fmspc, t, id, configuration)| {
                    PckExtensions {
                        ppid,
                        tcb: PckTcb {
                            comp_svn,
                            pce_svn,
                            cpu_svn,
                        },
                        pce_id,
                        fmspc,
                        sgx_type: SgxType::from(t % 4),
                        platform_instance_id: id,
                        configuration,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn der_round_trip(ext in arb_extensions()) {
            let der = ext.to_der();
            prop_assert_eq!(PckExtensions::parse(&der), Ok(ext));
            fuzz_pck_extensions(&der);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
            fuzz_pck_extensions(&bytes);
        }

        #[test]
        fn mutated_der_never_panics(
            ext in arb_extensions(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            let mut der = ext.to_der();
            for (at, value) in flips {
                let i = at.index(der.len());
                der[i] = value;
            }
            fuzz_pck_extensions(&der);
        }
    }
}

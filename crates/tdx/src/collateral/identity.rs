//! Enclave identity (QE, QvE, TD QE) version 2: the signed JSON body inside `"enclaveIdentity"`.
//!
//! Schema: Intel SGX and TDX DCAP PCS API v4, "Enclave Identity V2" (`GET /sgx|tdx/certification/
//! v4/qe/identity`): `id`, `version`, `issueDate`, `nextUpdate`, `tcbEvaluationDataNumber`,
//! `miscselect`, `miscselectMask`, `attributes`, `attributesMask`, `mrsigner`, `isvprodid`,
//! `tcbLevels[{tcb:{isvsvn}, tcbDate, tcbStatus, advisoryIDs?}]`. Unknown fields are ignored.

use core::fmt;

use tessera_pki::UnixTime;

use super::error::quote;
use super::json::{Obj, parse_strict};
use super::{
    CollateralError, MAX_ADVISORY_IDS, MAX_BODY_LEN, MAX_TCB_LEVELS, TcbStatus, check_body_len,
};

const ITEM: &str = "qe_identity";

/// Which enclave an identity describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EnclaveIdentityId {
    /// The SGX Quoting Enclave (`"QE"`), which signs SGX quotes.
    Qe,
    /// The Quote Verification Enclave (`"QVE"`).
    Qve,
    /// The TDX Quoting Enclave (`"TD_QE"`), which signs TDX quotes.
    TdQe,
}

impl EnclaveIdentityId {
    /// Intel's name (`"QE"`, `"QVE"`, `"TD_QE"`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Qe => "QE",
            Self::Qve => "QVE",
            Self::TdQe => "TD_QE",
        }
    }

    fn parse(s: &str) -> Result<Self, CollateralError> {
        match s {
            "QE" => Ok(Self::Qe),
            "QVE" => Ok(Self::Qve),
            "TD_QE" => Ok(Self::TdQe),
            other => Err(CollateralError::UnknownId {
                item: ITEM,
                id: quote(other),
                detail: "expected QE, QVE or TD_QE",
            }),
        }
    }
}

impl fmt::Display for EnclaveIdentityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One level of an enclave identity or of a TDX module identity: the first level (in the order
/// given) whose `isvsvn` is at most the enclave's ISVSVN applies.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IsvTcbLevel {
    /// `tcb.isvsvn`.
    pub isvsvn: u16,
    /// `tcbDate`.
    pub tcb_date: UnixTime,
    /// `tcbStatus`.
    pub tcb_status: TcbStatus,
    /// `advisoryIDs` (empty when absent).
    pub advisory_ids: Vec<String>,
}

impl IsvTcbLevel {
    /// Read one `{tcb:{isvsvn}, tcbDate, tcbStatus, advisoryIDs?}` level.
    ///
    /// An enclave's level (the QE's, a TDX module's) is `UpToDate`, `OutOfDate` or `Revoked`
    /// (Intel's schema); any other status is refused rather than left out of the convergence
    /// with the platform's status.
    pub(crate) fn from_json(level: &Obj<'_, '_>) -> Result<Self, CollateralError> {
        let tcb_status = level.status("tcbStatus")?;
        if !matches!(
            tcb_status,
            TcbStatus::UpToDate | TcbStatus::OutOfDate | TcbStatus::Revoked
        ) {
            return Err(level.error(
                "tcbStatus",
                "an enclave TCB level is UpToDate, OutOfDate or Revoked",
            ));
        }
        Ok(Self {
            isvsvn: level.obj("tcb")?.uint("isvsvn")?,
            tcb_date: level.date("tcbDate")?,
            tcb_status,
            advisory_ids: level.opt_strings("advisoryIDs", MAX_ADVISORY_IDS)?,
        })
    }

    /// Read the non-empty `tcbLevels` array of `obj`.
    pub(crate) fn list_from_json(obj: &Obj<'_, '_>) -> Result<Vec<Self>, CollateralError> {
        let levels = obj.array("tcbLevels", MAX_TCB_LEVELS)?;
        if levels.is_empty() {
            return Err(obj.error("tcbLevels", "must not be empty"));
        }
        levels
            .objects()
            .map(|level| Self::from_json(&level?))
            .collect()
    }
}

/// A parsed enclave identity, version 2.
///
/// Byte fields are kept in the order the hex text is written, which is the order of the bytes in
/// the enclave's REPORT. `miscselect` and `miscselectMask` are 4 bytes of hex in REPORT byte
/// order, so they are read as little-endian `u32`s, like the REPORT's own `MISCSELECT` (Intel's
/// QVL, `EnclaveReportVerifier::vectorToUint32`, swaps the hex bytes the same way): a QE report
/// matches when `(report.misc_select & miscselect_mask) == miscselect`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EnclaveIdentity {
    /// `id`.
    pub id: EnclaveIdentityId,
    /// `version` (always 2).
    pub version: u32,
    /// `issueDate`.
    pub issue_date: UnixTime,
    /// `nextUpdate`.
    pub next_update: UnixTime,
    /// `tcbEvaluationDataNumber`.
    pub tcb_evaluation_data_number: u32,
    /// `miscselect`, little-endian (see the type's documentation).
    pub miscselect: u32,
    /// `miscselectMask`, little-endian.
    pub miscselect_mask: u32,
    /// `attributes` (16 bytes, REPORT order).
    pub attributes: [u8; 16],
    /// `attributesMask`.
    pub attributes_mask: [u8; 16],
    /// `mrsigner`.
    pub mrsigner: [u8; 32],
    /// `isvprodid`.
    pub isvprodid: u16,
    /// `tcbLevels`, in the order given (non-empty).
    pub tcb_levels: Vec<IsvTcbLevel>,
}

impl EnclaveIdentity {
    /// Parse the signed body: the JSON object inside `"enclaveIdentity"`, exactly as signed.
    ///
    /// # Errors
    /// [`CollateralError::Json`] for malformed JSON, [`CollateralError::TooLarge`] past
    /// [`MAX_BODY_LEN`] bytes or too many levels,
    /// [`CollateralError::UnsupportedVersion`] unless `version` is 2,
    /// [`CollateralError::UnknownId`], [`CollateralError::MissingField`],
    /// [`CollateralError::Hex`], [`CollateralError::UnknownStatus`] or
    /// [`CollateralError::Field`] naming the field at fault.
    pub fn parse_json(body: &[u8]) -> Result<Self, CollateralError> {
        check_body_len(ITEM, body, MAX_BODY_LEN)?;
        let value = parse_strict(ITEM, body)?;
        let root = Obj::root(ITEM, &value)?;
        let version = root.u64("version")?;
        if version != 2 {
            return Err(CollateralError::UnsupportedVersion {
                item: ITEM,
                version,
                supported: "2",
            });
        }
        let id = EnclaveIdentityId::parse(root.str("id")?)?;
        Ok(Self {
            id,
            version: 2,
            issue_date: root.date("issueDate")?,
            next_update: root.date("nextUpdate")?,
            tcb_evaluation_data_number: root.uint("tcbEvaluationDataNumber")?,
            miscselect: u32::from_le_bytes(root.hex::<4>("miscselect")?),
            miscselect_mask: u32::from_le_bytes(root.hex::<4>("miscselectMask")?),
            attributes: root.hex("attributes")?,
            attributes_mask: root.hex("attributesMask")?,
            mrsigner: root.hex("mrsigner")?,
            isvprodid: root.uint("isvprodid")?,
            tcb_levels: IsvTcbLevel::list_from_json(&root)?,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// An edit of a sample body.
    type Mutation = fn(&mut Value);

    /// A valid TD QE identity body, as Intel publishes it.
    pub(crate) fn sample() -> Value {
        json!({
            "id": "TD_QE", "version": 2,
            "issueDate": "2025-06-04T09:40:18Z", "nextUpdate": "2025-07-04T09:40:18Z",
            "tcbEvaluationDataNumber": 17,
            "miscselect": "00000000", "miscselectMask": "FFFFFFFF",
            "attributes": "11000000000000000000000000000000",
            "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
            "mrsigner": "DC9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF6340C82E0E54A8C5",
            "isvprodid": 2,
            "tcbLevels": [
                {"tcb": {"isvsvn": 4}, "tcbDate": "2024-03-13T00:00:00Z", "tcbStatus": "UpToDate"},
                {"tcb": {"isvsvn": 2}, "tcbDate": "2023-08-09T00:00:00Z", "tcbStatus": "OutOfDate",
                 "advisoryIDs": ["INTEL-SA-00837"]}
            ]
        })
    }

    fn parse(v: &Value) -> Result<EnclaveIdentity, CollateralError> {
        EnclaveIdentity::parse_json(&serde_json::to_vec(v).unwrap())
    }

    fn with(f: impl FnOnce(&mut Value)) -> Result<EnclaveIdentity, CollateralError> {
        let mut v = sample();
        f(&mut v);
        parse(&v)
    }

    #[test]
    fn parses_a_td_qe_identity() {
        let id = parse(&sample()).unwrap();
        assert_eq!(id.id, EnclaveIdentityId::TdQe);
        assert_eq!(id.version, 2);
        assert_eq!(id.issue_date.to_string(), "2025-06-04T09:40:18Z");
        assert_eq!(id.tcb_evaluation_data_number, 17);
        assert_eq!(id.miscselect, 0);
        assert_eq!(id.miscselect_mask, u32::MAX);
        assert_eq!(id.attributes[0], 0x11);
        assert_eq!(
            id.attributes_mask[..8],
            [0xFB, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        assert_eq!(id.mrsigner[0], 0xDC);
        assert_eq!(id.isvprodid, 2);
        assert_eq!(id.tcb_levels.len(), 2);
        assert_eq!(id.tcb_levels[1].isvsvn, 2);
        assert_eq!(id.tcb_levels[1].tcb_status, TcbStatus::OutOfDate);
        assert_eq!(id.tcb_levels[1].advisory_ids, ["INTEL-SA-00837"]);
        assert!(id.tcb_levels[0].advisory_ids.is_empty());
    }

    #[test]
    fn ids_and_unknown_fields() {
        for (text, id) in [
            ("QE", EnclaveIdentityId::Qe),
            ("QVE", EnclaveIdentityId::Qve),
            ("TD_QE", EnclaveIdentityId::TdQe),
        ] {
            let got = with(|v| {
                v["id"] = json!(text);
                v["someFutureField"] = json!({"x": [1, 2]});
            })
            .unwrap();
            assert_eq!(got.id, id);
            assert_eq!(id.as_str(), text);
            assert_eq!(id.to_string(), text);
        }
        for bad in ["qe", "TDQE", "", "QAE"] {
            assert!(matches!(
                with(|v| v["id"] = json!(bad)),
                Err(CollateralError::UnknownId { .. })
            ));
        }
    }

    /// The hex text is in REPORT byte order: `01000000` is MISCSELECT bit 0 (the value 1), the
    /// same value a REPORT holding bytes `01 00 00 00` gives as a little-endian u32.
    #[test]
    fn miscselect_is_read_in_report_byte_order() {
        let id = with(|v| {
            v["miscselect"] = json!("01000000");
            v["miscselectMask"] = json!("FF0000f0");
        })
        .unwrap();
        assert_eq!(id.miscselect, 1);
        assert_eq!(id.miscselect_mask, 0xF000_00FF);
        let report_misc_select = u32::from_le_bytes([0x01, 0x00, 0x00, 0x00]);
        assert_eq!(report_misc_select & id.miscselect_mask, id.miscselect);
    }

    #[test]
    fn rejects_wrong_versions() {
        for version in [json!(1), json!(3), json!(0)] {
            assert!(matches!(
                with(|v| v["version"] = version.clone()),
                Err(CollateralError::UnsupportedVersion { .. })
            ));
        }
        assert!(matches!(
            with(|v| v["version"] = json!("2")),
            Err(CollateralError::Field { .. })
        ));
    }

    #[test]
    fn rejects_wrong_hex_lengths() {
        for (field, bad) in [
            ("miscselect", "000000"),
            ("miscselectMask", "FFFFFFFFFF"),
            ("attributes", "11"),
            ("attributesMask", "FBFFFFFFFFFFFFFF00000000000000"),
            (
                "mrsigner",
                "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
            ),
            (
                "mrsigner",
                "XC9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF6340C82E0E54A8C5",
            ),
        ] {
            let err = with(|v| v[field] = json!(bad)).unwrap_err();
            assert!(
                matches!(&err, CollateralError::Hex { field: f, .. } if f == field),
                "{field}: {err}"
            );
        }
    }

    #[test]
    fn rejects_missing_fields() {
        for field in [
            "id",
            "version",
            "issueDate",
            "nextUpdate",
            "tcbEvaluationDataNumber",
            "miscselect",
            "miscselectMask",
            "attributes",
            "attributesMask",
            "mrsigner",
            "isvprodid",
            "tcbLevels",
        ] {
            let err = with(|v| {
                v.as_object_mut().unwrap().remove(field);
            })
            .unwrap_err();
            assert!(
                matches!(&err, CollateralError::MissingField { field: f, .. } if f == field),
                "{field}: {err}"
            );
            let err = with(|v| v[field] = Value::Null).unwrap_err();
            assert!(matches!(err, CollateralError::MissingField { .. }));
        }
        let err = with(|v| {
            v["tcbLevels"][1].as_object_mut().unwrap().remove("tcbDate");
        })
        .unwrap_err();
        assert_eq!(
            err,
            CollateralError::MissingField {
                item: "qe_identity",
                field: String::from("tcbLevels[1].tcbDate")
            }
        );
    }

    #[test]
    fn rejects_bad_levels_and_values() {
        let cases: [(Mutation, &str); 9] = [
            (|v| v["tcbLevels"] = json!([]), "tcbLevels"),
            // A platform-only status on an enclave's level.
            (
                |v| v["tcbLevels"][0]["tcbStatus"] = json!("SWHardeningNeeded"),
                "tcbLevels[0].tcbStatus",
            ),
            (
                |v| v["tcbLevels"][0]["tcbStatus"] = json!("ConfigurationNeeded"),
                "tcbLevels[0].tcbStatus",
            ),
            (
                |v| v["tcbLevels"][0]["tcb"]["isvsvn"] = json!(65536),
                "tcbLevels[0].tcb.isvsvn",
            ),
            (
                |v| v["tcbLevels"][0]["tcb"]["isvsvn"] = json!(-1),
                "tcbLevels[0].tcb.isvsvn",
            ),
            (|v| v["isvprodid"] = json!(1.5), "isvprodid"),
            (|v| v["issueDate"] = json!("2025-06-04"), "issueDate"),
            (
                |v| v["tcbLevels"][0]["advisoryIDs"] = json!([1]),
                "tcbLevels[0].advisoryIDs[0]",
            ),
            (
                |v| v["tcbEvaluationDataNumber"] = json!(1u64 << 32),
                "tcbEvaluationDataNumber",
            ),
        ];
        for (mutate, field) in cases {
            let err = with(mutate).unwrap_err();
            assert!(
                matches!(&err, CollateralError::Field { field: f, .. } if f == field),
                "{field}: {err}"
            );
        }
        assert_eq!(
            with(|v| v["tcbLevels"][1]["tcbStatus"] = json!("Fine")).unwrap_err(),
            CollateralError::UnknownStatus {
                item: "qe_identity",
                status: String::from("Fine")
            }
        );
        let many: Vec<Value> = (0..=MAX_TCB_LEVELS)
            .map(|_| sample()["tcbLevels"][0].clone())
            .collect();
        assert!(matches!(
            with(|v| v["tcbLevels"] = Value::Array(many)),
            Err(CollateralError::TooLarge { .. })
        ));
        assert!(matches!(
            EnclaveIdentity::parse_json(&vec![b' '; MAX_BODY_LEN + 1]),
            Err(CollateralError::TooLarge { .. })
        ));
        assert!(matches!(
            EnclaveIdentity::parse_json(b"[]"),
            Err(CollateralError::Field { .. })
        ));
    }
}

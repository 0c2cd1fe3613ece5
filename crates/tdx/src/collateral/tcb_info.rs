//! TCB info versions 2 and 3: the signed JSON body inside `"tcbInfo"`.
//!
//! Schemas: Intel SGX and TDX DCAP PCS API v3/v4, "TCB Info V2" (SGX only: no `id`; levels
//! `tcb:{sgxtcbcomp01svn..sgxtcbcomp16svn, pcesvn}`) and "TCB Info V3" (`id` `SGX` or `TDX`;
//! levels `tcb:{sgxtcbcomponents[16]{svn,category?,type?}, pcesvn, tdxtcbcomponents[16]?}`;
//! TDX adds `tdxModule` and `tdxModuleIdentities`). Both carry `issueDate`, `nextUpdate`,
//! `fmspc`, `pceId`, `tcbType`, `tcbEvaluationDataNumber` and levels with `tcbDate`,
//! `tcbStatus` and `advisoryIDs?`. Unknown fields are ignored (Intel adds fields); the
//! structural rules follow Intel's QVL parser (`TcbInfo.cpp`): `tcbType` 0, non-empty
//! `tcbLevels`, `tdxModule` required for TDX and forbidden for SGX, `tdxModuleIdentities`
//! non-empty when present.
//!
//! Levels are kept in the order given: the TCB status rules walk them in that order.

use core::fmt;

use tessera_pki::UnixTime;

use super::error::quote;
use super::json::{Obj, parse_strict};
use super::{
    CollateralError, IsvTcbLevel, MAX_BODY_LEN, MAX_MODULE_IDENTITIES, MAX_TCB_LEVELS, TcbStatus,
    check_body_len,
};

const ITEM: &str = "tcb_info";

/// Number of SGX (and TDX) TCB components in a level.
pub const TCB_COMPONENTS: usize = 16;

/// Which TEE a TCB info describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TcbInfoId {
    /// SGX (`"SGX"`, or any version 2 TCB info, which has no `id`).
    Sgx,
    /// TDX (`"TDX"`, version 3 only).
    Tdx,
}

impl TcbInfoId {
    /// Intel's name (`"SGX"`, `"TDX"`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sgx => "SGX",
            Self::Tdx => "TDX",
        }
    }
}

impl fmt::Display for TcbInfoId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One TCB component of a level: its minimum SVN and, in version 3, what it is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcbComponent {
    /// `svn`.
    pub svn: u8,
    /// `category` (e.g. `"BIOS"`, `"OS/VMM"`), when given.
    pub category: Option<String>,
    /// `type` (e.g. `"Early Microcode Update"`, `"TDX Module"`), when given.
    pub kind: Option<String>,
}

/// One TCB level: the minimum component SVNs and the status a platform at or above them has.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TcbLevel {
    /// The 16 SGX TCB components (CPUSVN order).
    pub sgx_components: [TcbComponent; TCB_COMPONENTS],
    /// `pcesvn`.
    pub pce_svn: u16,
    /// The 16 TDX TCB components (TEE_TCB_SVN order); present in every level of a TDX TCB info
    /// and absent for SGX.
    pub tdx_components: Option<Vec<TcbComponent>>,
    /// `tcbDate`.
    pub tcb_date: UnixTime,
    /// `tcbStatus`.
    pub tcb_status: TcbStatus,
    /// `advisoryIDs` (empty when absent).
    pub advisory_ids: Vec<String>,
}

/// `tdxModule`: the signer and attributes of TDX modules of version 0 (TEE_TCB_SVN\[1\] = 0).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TdxModule {
    /// `mrsigner` (MRSIGNERSEAM).
    pub mrsigner: [u8; 48],
    /// `attributes` (SEAMATTRIBUTES).
    pub attributes: [u8; 8],
    /// `attributesMask`.
    pub attributes_mask: [u8; 8],
}

/// One entry of `tdxModuleIdentities`: a TDX module version (`id` `TDX_%02X` of
/// TEE_TCB_SVN\[1\]) with its signer and levels by ISVSVN (TEE_TCB_SVN\[0\]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TdxModuleIdentity {
    /// `id`, e.g. `"TDX_03"`.
    pub id: String,
    /// `mrsigner`.
    pub mrsigner: [u8; 48],
    /// `attributes`.
    pub attributes: [u8; 8],
    /// `attributesMask`.
    pub attributes_mask: [u8; 8],
    /// `tcbLevels`, in the order given (non-empty).
    pub tcb_levels: Vec<IsvTcbLevel>,
}

/// A parsed TCB info (version 2 or 3).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TcbInfo {
    /// `id` (version 2: [`TcbInfoId::Sgx`]).
    pub id: TcbInfoId,
    /// `version`: 2 or 3.
    pub version: u32,
    /// `issueDate`.
    pub issue_date: UnixTime,
    /// `nextUpdate`.
    pub next_update: UnixTime,
    /// `fmspc`.
    pub fmspc: [u8; 6],
    /// `pceId`.
    pub pce_id: [u8; 2],
    /// `tcbType` (always 0).
    pub tcb_type: u32,
    /// `tcbEvaluationDataNumber`.
    pub tcb_evaluation_data_number: u32,
    /// `tdxModule` (TDX only, and then always present).
    pub tdx_module: Option<TdxModule>,
    /// `tdxModuleIdentities` (TDX only; empty when absent).
    pub tdx_module_identities: Vec<TdxModuleIdentity>,
    /// `tcbLevels`, in the order given (non-empty).
    pub tcb_levels: Vec<TcbLevel>,
}

impl TcbInfo {
    /// Parse the signed body: the JSON object inside `"tcbInfo"`, exactly as signed.
    ///
    /// # Errors
    /// [`CollateralError::Json`] for malformed JSON, [`CollateralError::TooLarge`] past
    /// [`MAX_BODY_LEN`] bytes or too many levels,
    /// [`CollateralError::UnsupportedVersion`] unless `version` is 2 or 3,
    /// [`CollateralError::UnknownId`] for an `id` other than `SGX`/`TDX` (or `TDX` in version 2),
    /// [`CollateralError::UnsupportedTcbType`] unless `tcbType` is 0,
    /// [`CollateralError::MissingField`], [`CollateralError::Hex`],
    /// [`CollateralError::UnknownStatus`] or [`CollateralError::Field`] naming the field.
    pub fn parse_json(body: &[u8]) -> Result<Self, CollateralError> {
        check_body_len(ITEM, body, MAX_BODY_LEN)?;
        let value = parse_strict(ITEM, body)?;
        let root = Obj::root(ITEM, &value)?;
        let version = root.u64("version")?;
        let id = match (version, root.opt_str("id")?) {
            // Version 2 has no id; tolerate a redundant "SGX".
            (2, None | Some("SGX")) => TcbInfoId::Sgx,
            (2, Some(other)) => {
                return Err(CollateralError::UnknownId {
                    item: ITEM,
                    id: quote(other),
                    detail: "TCB info version 2 is SGX only",
                });
            }
            (3, Some("SGX")) => TcbInfoId::Sgx,
            (3, Some("TDX")) => TcbInfoId::Tdx,
            (3, None) => {
                return Err(CollateralError::MissingField {
                    item: ITEM,
                    field: String::from("id"),
                });
            }
            (3, Some(other)) => {
                return Err(CollateralError::UnknownId {
                    item: ITEM,
                    id: quote(other),
                    detail: "expected SGX or TDX",
                });
            }
            (other, _) => {
                return Err(CollateralError::UnsupportedVersion {
                    item: ITEM,
                    version: other,
                    supported: "2, 3",
                });
            }
        };
        let tcb_type = root.u64("tcbType")?;
        if tcb_type != 0 {
            return Err(CollateralError::UnsupportedTcbType { tcb_type });
        }
        let (tdx_module, tdx_module_identities) = match id {
            TcbInfoId::Sgx => {
                for key in ["tdxModule", "tdxModuleIdentities"] {
                    if root.has(key) {
                        return Err(root.error(key, "not allowed in SGX TCB info"));
                    }
                }
                (None, Vec::new())
            }
            TcbInfoId::Tdx => (
                Some(module_from_json(&root.obj("tdxModule")?)?),
                module_identities_from_json(&root)?,
            ),
        };
        let levels = root.array("tcbLevels", MAX_TCB_LEVELS)?;
        if levels.is_empty() {
            return Err(root.error("tcbLevels", "must not be empty"));
        }
        let tcb_levels = levels
            .objects()
            .map(|level| level_from_json(&level?, version, id))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            id,
            version: if version == 2 { 2 } else { 3 },
            issue_date: root.date("issueDate")?,
            next_update: root.date("nextUpdate")?,
            fmspc: root.hex("fmspc")?,
            pce_id: root.hex("pceId")?,
            tcb_type: 0,
            tcb_evaluation_data_number: root.uint("tcbEvaluationDataNumber")?,
            tdx_module,
            tdx_module_identities,
            tcb_levels,
        })
    }
}

fn module_from_json(obj: &Obj<'_, '_>) -> Result<TdxModule, CollateralError> {
    Ok(TdxModule {
        mrsigner: obj.hex("mrsigner")?,
        attributes: obj.hex("attributes")?,
        attributes_mask: obj.hex("attributesMask")?,
    })
}

fn module_identities_from_json(
    root: &Obj<'_, '_>,
) -> Result<Vec<TdxModuleIdentity>, CollateralError> {
    const KEY: &str = "tdxModuleIdentities";
    if !root.has(KEY) {
        return Ok(Vec::new());
    }
    let entries = root.array(KEY, MAX_MODULE_IDENTITIES)?;
    if entries.is_empty() {
        return Err(root.error(KEY, "must not be empty when present"));
    }
    entries
        .objects()
        .map(|obj| {
            let obj = obj?;
            let module = module_from_json(&obj)?;
            Ok(TdxModuleIdentity {
                id: obj.str("id")?.to_owned(),
                mrsigner: module.mrsigner,
                attributes: module.attributes,
                attributes_mask: module.attributes_mask,
                tcb_levels: IsvTcbLevel::list_from_json(&obj)?,
            })
        })
        .collect()
}

fn level_from_json(
    level: &Obj<'_, '_>,
    version: u64,
    id: TcbInfoId,
) -> Result<TcbLevel, CollateralError> {
    let tcb = level.obj("tcb")?;
    let (sgx_components, tdx_components) = if version == 2 {
        let mut components: [TcbComponent; TCB_COMPONENTS] = Default::default();
        for (i, c) in components.iter_mut().enumerate() {
            c.svn = tcb.uint(&format!("sgxtcbcomp{:02}svn", i + 1))?;
        }
        (components, None)
    } else {
        let sgx = components_from_json(&tcb, "sgxtcbcomponents")?;
        let tdx = match id {
            TcbInfoId::Tdx => Some(Vec::from(components_from_json(&tcb, "tdxtcbcomponents")?)),
            TcbInfoId::Sgx => None,
        };
        (sgx, tdx)
    };
    Ok(TcbLevel {
        sgx_components,
        pce_svn: tcb.uint("pcesvn")?,
        tdx_components,
        tcb_date: level.date("tcbDate")?,
        tcb_status: level.status("tcbStatus")?,
        advisory_ids: level.opt_strings("advisoryIDs", super::MAX_ADVISORY_IDS)?,
    })
}

fn components_from_json(
    tcb: &Obj<'_, '_>,
    key: &str,
) -> Result<[TcbComponent; TCB_COMPONENTS], CollateralError> {
    // The bound only limits the work before the exact count is checked.
    let entries = tcb.array(key, 4 * TCB_COMPONENTS)?;
    if entries.len() != TCB_COMPONENTS {
        return Err(tcb.error(
            key,
            format!(
                "expected {TCB_COMPONENTS} components, got {}",
                entries.len()
            ),
        ));
    }
    let mut components: [TcbComponent; TCB_COMPONENTS] = Default::default();
    for (slot, c) in components.iter_mut().zip(entries.objects()) {
        let c = c?;
        *slot = TcbComponent {
            svn: c.uint("svn")?,
            category: c.opt_str("category")?.map(str::to_owned),
            kind: c.opt_str("type")?.map(str::to_owned),
        };
    }
    Ok(components)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// An edit of a sample body.
    type Mutation = fn(&mut Value);

    fn component(svn: u8, category: Option<&str>, kind: Option<&str>) -> Value {
        let mut c = json!({ "svn": svn });
        if let Some(cat) = category {
            c["category"] = json!(cat);
        }
        if let Some(k) = kind {
            c["type"] = json!(k);
        }
        c
    }

    fn components(first: &[Value]) -> Value {
        let mut all: Vec<Value> = first.to_vec();
        all.resize(TCB_COMPONENTS, json!({"svn": 0}));
        Value::Array(all)
    }

    /// A valid TDX TCB info body (v3) in Intel's layout.
    pub(crate) fn sample_tdx() -> Value {
        let module = json!({
            "mrsigner": "0".repeat(96), "attributes": "0000000000000000",
            "attributesMask": "FFFFFFFFFFFFFFFF"
        });
        let mut identity = module.clone();
        identity["id"] = json!("TDX_03");
        identity["tcbLevels"] = json!([
            {"tcb": {"isvsvn": 3}, "tcbDate": "2024-03-13T00:00:00Z", "tcbStatus": "UpToDate"}
        ]);
        json!({
            "id": "TDX", "version": 3,
            "issueDate": "2025-06-04T09:51:38Z", "nextUpdate": "2025-07-04T09:51:38Z",
            "fmspc": "00806f050000", "pceId": "0000", "tcbType": 0,
            "tcbEvaluationDataNumber": 17,
            "tdxModule": module,
            "tdxModuleIdentities": [identity],
            "tcbLevels": [{
                "tcb": {
                    "sgxtcbcomponents": components(&[
                        component(7, Some("BIOS"), Some("Early Microcode Update")),
                        component(7, Some("OS/VMM"), None),
                    ]),
                    "pcesvn": 11,
                    "tdxtcbcomponents": components(&[
                        component(5, Some("OS/VMM"), Some("TDX Module")),
                    ]),
                },
                "tcbDate": "2024-03-13T00:00:00Z", "tcbStatus": "UpToDate"
            }, {
                "tcb": {
                    "sgxtcbcomponents": components(&[component(6, None, None)]),
                    "pcesvn": 11,
                    "tdxtcbcomponents": components(&[component(3, None, None)]),
                },
                "tcbDate": "2023-08-09T00:00:00Z", "tcbStatus": "OutOfDate",
                "advisoryIDs": ["INTEL-SA-00960", "INTEL-SA-00982"]
            }]
        })
    }

    /// A valid SGX TCB info body, version 2.
    pub(crate) fn sample_v2() -> Value {
        let mut tcb = serde_json::Map::new();
        for i in 1..=TCB_COMPONENTS {
            tcb.insert(format!("sgxtcbcomp{i:02}svn"), json!(i));
        }
        tcb.insert(String::from("pcesvn"), json!(13));
        json!({
            "version": 2,
            "issueDate": "2024-05-02T02:44:30Z", "nextUpdate": "2024-06-01T02:44:30Z",
            "fmspc": "00606A000000", "pceId": "0000", "tcbType": 0,
            "tcbEvaluationDataNumber": 16,
            "tcbLevels": [{"tcb": tcb, "tcbDate": "2023-08-09T00:00:00Z",
                           "tcbStatus": "SWHardeningNeeded", "advisoryIDs": ["INTEL-SA-00615"]}]
        })
    }

    fn parse(v: &Value) -> Result<TcbInfo, CollateralError> {
        TcbInfo::parse_json(&serde_json::to_vec(v).unwrap())
    }

    fn with(f: impl FnOnce(&mut Value)) -> Result<TcbInfo, CollateralError> {
        let mut v = sample_tdx();
        f(&mut v);
        parse(&v)
    }

    fn field_error(result: Result<TcbInfo, CollateralError>, field: &str) {
        match result {
            Err(
                CollateralError::Field { field: f, .. } | CollateralError::Hex { field: f, .. },
            ) if f == field => {}
            other => panic!("{field}: {other:?}"),
        }
    }

    #[test]
    fn parses_tdx_v3() {
        let info = parse(&sample_tdx()).unwrap();
        assert_eq!(info.id, TcbInfoId::Tdx);
        assert_eq!(info.version, 3);
        assert_eq!(info.fmspc, [0x00, 0x80, 0x6f, 0x05, 0x00, 0x00]);
        assert_eq!(info.pce_id, [0, 0]);
        assert_eq!(info.tcb_type, 0);
        assert_eq!(info.tcb_evaluation_data_number, 17);
        assert_eq!(info.next_update.to_string(), "2025-07-04T09:51:38Z");
        let module = info.tdx_module.as_ref().unwrap();
        assert_eq!(module.attributes_mask, [0xff; 8]);
        assert_eq!(info.tdx_module_identities.len(), 1);
        assert_eq!(info.tdx_module_identities[0].id, "TDX_03");
        assert_eq!(info.tdx_module_identities[0].tcb_levels[0].isvsvn, 3);
        assert_eq!(info.tcb_levels.len(), 2);
        let top = &info.tcb_levels[0];
        assert_eq!(top.sgx_components[0].svn, 7);
        assert_eq!(top.sgx_components[0].category.as_deref(), Some("BIOS"));
        assert_eq!(
            top.sgx_components[0].kind.as_deref(),
            Some("Early Microcode Update")
        );
        assert_eq!(top.sgx_components[1].kind, None);
        assert_eq!(top.pce_svn, 11);
        let tdx = top.tdx_components.as_ref().unwrap();
        assert_eq!(tdx.len(), TCB_COMPONENTS);
        assert_eq!(tdx[0].svn, 5);
        assert_eq!(top.tcb_status, TcbStatus::UpToDate);
        assert_eq!(
            info.tcb_levels[1].advisory_ids,
            ["INTEL-SA-00960", "INTEL-SA-00982"]
        );
    }

    #[test]
    fn parses_sgx_v2_and_v3() {
        let info = parse(&sample_v2()).unwrap();
        assert_eq!(info.id, TcbInfoId::Sgx);
        assert_eq!(info.version, 2);
        assert_eq!(info.fmspc, [0x00, 0x60, 0x6a, 0, 0, 0]);
        let level = &info.tcb_levels[0];
        let svns: Vec<u8> = level.sgx_components.iter().map(|c| c.svn).collect();
        assert_eq!(svns, (1..=16).collect::<Vec<u8>>());
        assert!(level.sgx_components.iter().all(|c| c.category.is_none()));
        assert_eq!(level.pce_svn, 13);
        assert_eq!(level.tdx_components, None);
        assert_eq!(level.tcb_status, TcbStatus::SwHardeningNeeded);
        assert!(info.tdx_module.is_none() && info.tdx_module_identities.is_empty());

        // An SGX v3 TCB info: no module, and tdxtcbcomponents (if any) are not read.
        let v3 = with(|v| {
            v["id"] = json!("SGX");
            let o = v.as_object_mut().unwrap();
            o.remove("tdxModule");
            o.remove("tdxModuleIdentities");
        })
        .unwrap();
        assert_eq!(v3.id, TcbInfoId::Sgx);
        assert!(v3.tcb_levels.iter().all(|l| l.tdx_components.is_none()));
        // A redundant "SGX" id in version 2 is tolerated.
        let mut v2 = sample_v2();
        v2["id"] = json!("SGX");
        assert_eq!(parse(&v2).unwrap().id, TcbInfoId::Sgx);
    }

    #[test]
    fn tdx_module_identities_are_optional() {
        let info = with(|v| {
            v.as_object_mut().unwrap().remove("tdxModuleIdentities");
        })
        .unwrap();
        assert!(info.tdx_module_identities.is_empty());
        field_error(
            with(|v| v["tdxModuleIdentities"] = json!([])),
            "tdxModuleIdentities",
        );
    }

    #[test]
    fn unknown_fields_are_ignored_and_hex_is_case_insensitive() {
        let info = with(|v| {
            v["fmspc"] = json!("00806F050000");
            v["someNewField"] = json!({"nested": [1, 2, 3]});
            v["tcbLevels"][0]["tcb"]["newComponentList"] = json!([]);
            v["tcbLevels"][0]["tcb"]["sgxtcbcomponents"][3]["newAttr"] = json!(true);
        })
        .unwrap();
        assert_eq!(info.fmspc, [0x00, 0x80, 0x6f, 0x05, 0x00, 0x00]);
    }

    #[test]
    fn rejects_wrong_hex_lengths() {
        let cases: [(Mutation, &str); 6] = [
            (|v| v["fmspc"] = json!("00806f0500"), "fmspc"),
            (|v| v["fmspc"] = json!("00806f05000000"), "fmspc"),
            (|v| v["pceId"] = json!("000"), "pceId"),
            (
                |v| v["tdxModule"]["mrsigner"] = json!("00"),
                "tdxModule.mrsigner",
            ),
            (
                |v| v["tdxModuleIdentities"][0]["attributesMask"] = json!("FFFF"),
                "tdxModuleIdentities[0].attributesMask",
            ),
            (|v| v["pceId"] = json!("zz00"), "pceId"),
        ];
        for (mutate, field) in cases {
            let err = with(mutate).unwrap_err();
            assert!(
                matches!(&err, CollateralError::Hex { field: f, .. } if f == field),
                "{field}: {err}"
            );
        }
    }

    #[test]
    fn rejects_unknown_ids_and_versions() {
        for bad in ["SEV", "tdx", ""] {
            assert!(matches!(
                with(|v| v["id"] = json!(bad)),
                Err(CollateralError::UnknownId { .. })
            ));
        }
        // TDX needs version 3.
        assert!(matches!(
            with(|v| v["version"] = json!(2)),
            Err(CollateralError::UnknownId { .. })
        ));
        for version in [0, 1, 4] {
            assert_eq!(
                with(|v| v["version"] = json!(version)).unwrap_err(),
                CollateralError::UnsupportedVersion {
                    item: "tcb_info",
                    version,
                    supported: "2, 3"
                }
            );
        }
        let err = with(|v| {
            v.as_object_mut().unwrap().remove("id");
        })
        .unwrap_err();
        assert!(matches!(err, CollateralError::MissingField { field, .. } if field == "id"));
    }

    #[test]
    fn rejects_tcb_type_1() {
        assert_eq!(
            with(|v| v["tcbType"] = json!(1)).unwrap_err(),
            CollateralError::UnsupportedTcbType { tcb_type: 1 }
        );
    }

    #[test]
    fn rejects_missing_fields() {
        for field in [
            "version",
            "issueDate",
            "nextUpdate",
            "fmspc",
            "pceId",
            "tcbType",
            "tcbEvaluationDataNumber",
            "tcbLevels",
            "tdxModule",
        ] {
            let err = with(|v| {
                v.as_object_mut().unwrap().remove(field);
            })
            .unwrap_err();
            assert!(
                matches!(&err, CollateralError::MissingField { field: f, .. } if f == field),
                "{field}: {err}"
            );
        }
        for (path, field) in [
            (&["tcbLevels", "0", "tcb"][..], "pcesvn"),
            (&["tcbLevels", "0", "tcb"], "tdxtcbcomponents"),
            (&["tcbLevels", "1", "tcb"], "sgxtcbcomponents"),
            (&["tcbLevels", "1"], "tcbDate"),
            (&["tcbLevels", "1"], "tcbStatus"),
            (&["tdxModule"], "attributes"),
            (&["tdxModuleIdentities", "0"], "id"),
            (&["tdxModuleIdentities", "0"], "tcbLevels"),
        ] {
            let err = with(|v| {
                let mut target = v;
                for p in path {
                    target = match p.parse::<usize>() {
                        Ok(i) => &mut target[i],
                        Err(_) => &mut target[*p],
                    };
                }
                target.as_object_mut().unwrap().remove(field);
            })
            .unwrap_err();
            let expected = path
                .iter()
                .fold(String::new(), |acc, p| match p.parse::<usize>() {
                    Ok(i) => format!("{acc}[{i}]"),
                    Err(_) if acc.is_empty() => (*p).to_owned(),
                    Err(_) => format!("{acc}.{p}"),
                })
                + "."
                + field;
            assert_eq!(
                err,
                CollateralError::MissingField {
                    item: "tcb_info",
                    field: expected
                }
            );
        }
        // Version 2: every one of the 16 numbered components is required.
        let mut v2 = sample_v2();
        v2["tcbLevels"][0]["tcb"]
            .as_object_mut()
            .unwrap()
            .remove("sgxtcbcomp16svn");
        assert_eq!(
            parse(&v2).unwrap_err(),
            CollateralError::MissingField {
                item: "tcb_info",
                field: String::from("tcbLevels[0].tcb.sgxtcbcomp16svn")
            }
        );
    }

    #[test]
    fn rejects_structural_violations() {
        let cases: [(Mutation, &str); 10] = [
            (|v| v["tcbLevels"] = json!([]), "tcbLevels"),
            (
                |v| {
                    v["tcbLevels"][0]["tcb"]["sgxtcbcomponents"] =
                        components(&[]).as_array().unwrap()[..15].into()
                },
                "tcbLevels[0].tcb.sgxtcbcomponents",
            ),
            (
                |v| {
                    let mut c = components(&[]);
                    c.as_array_mut().unwrap().push(json!({"svn": 0}));
                    v["tcbLevels"][1]["tcb"]["tdxtcbcomponents"] = c;
                },
                "tcbLevels[1].tcb.tdxtcbcomponents",
            ),
            (
                |v| v["tcbLevels"][0]["tcb"]["sgxtcbcomponents"][2]["svn"] = json!(256),
                "tcbLevels[0].tcb.sgxtcbcomponents[2].svn",
            ),
            (
                |v| v["tcbLevels"][0]["tcb"]["pcesvn"] = json!(65536),
                "tcbLevels[0].tcb.pcesvn",
            ),
            (
                |v| v["tcbLevels"][1]["tcbDate"] = json!("yesterday"),
                "tcbLevels[1].tcbDate",
            ),
            (|v| v["tdxModule"] = json!("x"), "tdxModule"),
            (
                |v| v["tcbLevels"][0]["tcb"]["sgxtcbcomponents"][0]["category"] = json!(7),
                "tcbLevels[0].tcb.sgxtcbcomponents[0].category",
            ),
            (
                |v| v["tcbLevels"][0]["advisoryIDs"] = json!("INTEL-SA-1"),
                "tcbLevels[0].advisoryIDs",
            ),
            (
                |v| v["tcbEvaluationDataNumber"] = json!(-3),
                "tcbEvaluationDataNumber",
            ),
        ];
        for (mutate, field) in cases {
            field_error(with(mutate), field);
        }
        // SGX TCB info must not carry TDX module data.
        field_error(with(|v| v["id"] = json!("SGX")), "tdxModule");
        field_error(
            with(|v| {
                v["id"] = json!("SGX");
                v.as_object_mut().unwrap().remove("tdxModule");
            }),
            "tdxModuleIdentities",
        );
        assert_eq!(
            with(|v| v["tcbLevels"][1]["tcbStatus"] = json!("Unknown")).unwrap_err(),
            CollateralError::UnknownStatus {
                item: "tcb_info",
                status: String::from("Unknown")
            }
        );
    }

    #[test]
    fn enforces_size_bounds() {
        let level = sample_tdx()["tcbLevels"][0].clone();
        let err =
            with(|v| v["tcbLevels"] = Value::Array(vec![level; MAX_TCB_LEVELS + 1])).unwrap_err();
        assert!(matches!(
            err,
            CollateralError::TooLarge {
                limit: MAX_TCB_LEVELS,
                ..
            }
        ));
        let mut body = serde_json::to_vec(&sample_tdx()).unwrap();
        body.resize(MAX_BODY_LEN + 1, b' ');
        assert!(matches!(
            TcbInfo::parse_json(&body),
            Err(CollateralError::TooLarge { .. })
        ));
        let long = "A".repeat(super::super::MAX_STRING_LEN + 1);
        field_error(
            with(|v| v["tcbLevels"][0]["advisoryIDs"] = json!([long])),
            "tcbLevels[0].advisoryIDs[0]",
        );
    }

    #[test]
    fn rejects_non_json_and_wrapped_bodies() {
        for bad in [&b""[..], b"null", b"[]", b"{\"tcbInfo\":{}}", b"\x00\x01"] {
            assert!(TcbInfo::parse_json(bad).is_err());
        }
        let wrapped = json!({"tcbInfo": sample_tdx(), "signature": "00"});
        assert!(matches!(
            parse(&wrapped),
            Err(CollateralError::MissingField { .. })
        ));
    }
}

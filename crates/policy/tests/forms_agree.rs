//! The policy loaders agree: the example policies, mutated (a value replaced, a member
//! dropped, a member added), written as JSON and as TOML, load to the same policy or are both
//! refused; an accepted policy round-trips through `to_toml` and its JSON form, and
//! `from_text` picks the loader the text's first character names.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{Map, Value};
use tessera_policy::Policy;

/// Each example policy as a generic tree: as written, and as the loaded policy serializes
/// (every default spelled out).
fn examples() -> &'static [Value] {
    static TREES: OnceLock<Vec<Value>> = OnceLock::new();
    TREES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/policies");
        let mut trees = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let ext = path.extension().and_then(|e| e.to_str());
            if !matches!(ext, Some("toml" | "json")) {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let tree: Value = if ext == Some("toml") {
                serde_json::to_value(toml::from_str::<toml::Table>(&text).unwrap()).unwrap()
            } else {
                serde_json::from_str(&text).unwrap()
            };
            let p = Policy::from_text(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            trees.push(tree);
            trees.push(serde_json::to_value(&p).unwrap());
        }
        assert!(trees.len() >= 8, "examples missing from {}", dir.display());
        trees
    })
}

/// Values a policy field may hold or nearly hold.
fn value() -> impl Strategy<Value = Value> {
    let words = prop::sample::select(vec![
        "any",
        "must",
        "must-not",
        "required",
        "if-given",
        "vcek",
        "vlek",
        "UpToDate",
        "OutOfDate",
        "SWHardeningNeeded",
        "ConfigurationNeeded",
        "milan",
        "genoa",
        "turin",
        "1.55",
        "0x1f",
        "sept_ve_disable",
        "debug",
        "",
        "7d",
        "30s",
    ]);
    let scalar = prop_oneof![
        any::<bool>().prop_map(Value::from),
        (-2i64..300).prop_map(Value::from),
        any::<u32>().prop_map(Value::from),
        words.prop_map(Value::from),
        (
            prop::sample::select(vec![0usize, 2, 16, 32, 40, 64, 96, 128]),
            any::<u8>()
        )
            .prop_map(|(n, b)| Value::from(format!("{b:02x}").repeat(n / 2))),
    ];
    prop_oneof![
        4 => scalar.clone(),
        1 => prop::collection::vec(scalar.clone(), 0..3).prop_map(Value::from),
        1 => Just(serde_json::json!({"file": "refs/tdx-mrtd.txt"})),
        1 => prop::collection::btree_map("[a-z_]{1,12}", scalar, 0..3)
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, Value),
    Remove(usize),
    Add(usize, String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), value()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        1 => any::<usize>().prop_map(Mutation::Remove),
        1 => (any::<usize>(), "[a-z_]{1,12}", value()).prop_map(|(i, k, v)| Mutation::Add(i, k, v)),
    ]
}

/// Every node's path (object keys and array indexes as strings).
fn paths(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(at.clone());
    let children: Vec<(String, &Value)> = match v {
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => Vec::new(),
    };
    for (k, c) in children {
        at.push(k);
        paths(c, at, out);
        at.pop();
    }
}

fn lookup<'a>(v: &'a Value, path: &[String]) -> &'a Value {
    path.iter().fold(v, |v, k| match v {
        Value::Object(m) => &m[k],
        Value::Array(a) => &a[k.parse::<usize>().unwrap()],
        _ => unreachable!(),
    })
}

fn node<'a>(v: &'a mut Value, path: &[String]) -> &'a mut Value {
    path.iter().fold(v, |v, k| match v {
        Value::Object(m) => m.get_mut(k).unwrap(),
        Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
        _ => unreachable!(),
    })
}

fn apply(tree: &mut Value, m: Mutation) {
    let mut all = Vec::new();
    paths(tree, &mut Vec::new(), &mut all);
    match m {
        Mutation::Replace(i, v) => {
            let p = &all[i % all.len()];
            if !p.is_empty() {
                *node(tree, p) = v;
            }
        }
        Mutation::Remove(i) => {
            let p = &all[i % all.len()];
            if let Some((last, parent)) = p.split_last() {
                match node(tree, parent) {
                    Value::Object(m) => {
                        m.remove(last);
                    }
                    Value::Array(a) => {
                        a.remove(last.parse::<usize>().unwrap());
                    }
                    _ => unreachable!(),
                }
            }
        }
        Mutation::Add(i, k, v) => {
            let objects: Vec<&Vec<String>> = all
                .iter()
                .filter(|p| matches!(lookup(tree, p), Value::Object(_)))
                .collect();
            let p = objects[i % objects.len()].clone();
            if let Value::Object(m) = node(tree, &p) {
                m.insert(k, v);
            }
        }
    }
}

/// Both loaders' results agree, and an accepted policy round-trips through both forms.
fn loaders_agree(tree: &Value) -> Result<bool, TestCaseError> {
    let json = serde_json::to_string_pretty(tree).unwrap();
    let Ok(toml_text) = toml::to_string(tree) else {
        // Not expressible in TOML (a mixed array of tables and values, say).
        return Ok(false);
    };
    let j = Policy::from_json_str(&json);
    let t = Policy::from_toml_str(&toml_text);
    prop_assert_eq!(
        j.is_ok(),
        t.is_ok(),
        "JSON {:?} vs TOML {:?}\n{}\n{}",
        j,
        t,
        json,
        toml_text
    );
    prop_assert_eq!(Policy::from_text(&json).ok(), j.as_ref().ok().cloned());
    prop_assert_eq!(Policy::from_text(&toml_text).ok(), t.as_ref().ok().cloned());
    if let (Ok(j), Ok(t)) = (j, t) {
        prop_assert_eq!(&j, &t, "{}\n{}", json, toml_text);
        let back = Policy::from_toml_str(&j.to_toml().unwrap()).unwrap();
        prop_assert_eq!(&back, &j);
        let back = Policy::from_json_str(&serde_json::to_string(&j).unwrap()).unwrap();
        prop_assert_eq!(&back, &j);
        return Ok(true);
    }
    Ok(false)
}

#[test]
fn every_example_loads_the_same_from_both_forms() {
    for tree in examples() {
        assert!(loaders_agree(tree).unwrap(), "{tree}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn mutated_examples_load_alike_from_json_and_toml(
        which in any::<usize>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let mut tree = examples()[which % examples().len()].clone();
        for m in mutations {
            apply(&mut tree, m);
        }
        loaders_agree(&tree)?;
    }
}

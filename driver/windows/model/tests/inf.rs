//! The INF must agree with the driver: interface reference strings = PcRegisterSubdevice
//! names, categories = the filters' KS categories, hardware ID and file name = the
//! installer's. A mismatch makes the endpoint silently not appear on Windows.
use hardmute_windows_model::guid::*;
use hardmute_windows_model::miniport::*;
use std::collections::{BTreeSet, HashMap};

const INF: &str = include_str!("../../../../installer/windows/hardmute.inf");

fn strip(line: &str) -> &str {
    line.split(';').next().unwrap().trim()
}

fn strings() -> HashMap<String, String> {
    let mut in_strings = false;
    let mut map = HashMap::new();
    for line in INF.lines().map(strip) {
        if line.starts_with('[') {
            in_strings = line.eq_ignore_ascii_case("[Strings]");
        } else if in_strings {
            if let Some((k, v)) = line.split_once('=') {
                map.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
            }
        }
    }
    map
}

fn expand(s: &str, strings: &HashMap<String, String>) -> String {
    let s = s.trim();
    match s.strip_prefix('%').and_then(|x| x.strip_suffix('%')) {
        Some(key) => strings
            .get(key)
            .unwrap_or_else(|| panic!("undefined string %{key}%"))
            .clone(),
        None => s.to_string(),
    }
}

fn guid_string(g: &Guid) -> String {
    format!(
        "{{{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{}}}",
        g.data1,
        g.data2,
        g.data3,
        g.data4[0],
        g.data4[1],
        g.data4[2..]
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<String>()
    )
}

#[test]
fn interfaces_match_the_registered_subdevices_and_their_categories() {
    let strings = strings();
    let mut by_ref: HashMap<String, BTreeSet<String>> = HashMap::new();
    for line in INF.lines().map(strip) {
        if let Some(rest) = line.strip_prefix("AddInterface") {
            let fields: Vec<_> = rest.trim_start_matches([' ', '=']).split(',').collect();
            let category = expand(fields[0], &strings).to_uppercase();
            let reference = expand(fields[1], &strings);
            by_ref.entry(reference).or_default().insert(category);
        }
    }
    let set = |gs: &[Guid]| gs.iter().map(guid_string).collect::<BTreeSet<_>>();
    assert_eq!(by_ref.len(), 2, "{by_ref:?}");
    assert_eq!(
        by_ref[WAVE_SUBDEVICE_NAME],
        set(&[KSCATEGORY_AUDIO, KSCATEGORY_CAPTURE, KSCATEGORY_REALTIME])
    );
    assert_eq!(
        by_ref[TOPOLOGY_SUBDEVICE_NAME],
        set(&[KSCATEGORY_AUDIO, KSCATEGORY_TOPOLOGY])
    );
}

#[test]
fn hardware_id_class_and_binary_match() {
    let lines: Vec<&str> = INF.lines().map(strip).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(&format!(", {HARDWARE_ID}"))),
        "models line names {HARDWARE_ID}"
    );
    assert!(lines.iter().any(|l| l.replace(' ', "") == "Class=MEDIA"));
    assert!(lines.iter().any(|l| l
        .replace(' ', "")
        .eq_ignore_ascii_case("ClassGuid={4d36e96c-e325-11ce-bfc1-08002be10318}")));
    assert!(lines
        .iter()
        .any(|l| l.replace(' ', "") == format!("ServiceBinary=%13%\\{DRIVER_FILE}")));
    assert!(lines.contains(&DRIVER_FILE), "CopyFiles lists the driver");
}

//! Shards and merging: `--shard K/N` slices partition any host list exactly and do not
//! depend on the machine; the shards' reports merged equal the unsharded report (hosts,
//! summaries), and mixed commands, schemas, overlapping or missing shards are refused.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use report::shard::{shard_of, stable_hash};
use report::{merge, parse_shard, shard, Document, MergeError, Shard};

fn fixture() -> Document {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/repair-lab60-seed4.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The report shard `k` of `n` would have written (its own summaries and timings).
fn shard_doc(doc: &Document, k: usize, n: usize, elapsed_ms: u64, peak: usize) -> Document {
    let names: Vec<String> = doc.hosts.iter().map(|r| r.host.clone()).collect();
    let hosts: Vec<_> = shard(&names, k, n)
        .into_iter()
        .map(|i| doc.hosts[i].clone())
        .collect();
    let (summary, remaining) = report::view::recount(&hosts, doc.remaining.is_some());
    Document {
        schema: doc.schema.clone(),
        command: doc.command.clone(),
        summary,
        remaining,
        elapsed_ms,
        peak_concurrency: peak,
        concurrency: None,
        shard: Shard::new(k, n),
        hosts,
    }
}

#[test]
fn merged_shards_equal_the_unsharded_report() {
    let doc = fixture();
    for n in [1, 2, 3, 7] {
        let shards: Vec<Document> = (1..=n)
            .map(|k| shard_doc(&doc, k, n, 1000 + k as u64 * 10, 5))
            .collect();
        assert_eq!(
            shards.iter().map(|d| d.hosts.len()).sum::<usize>(),
            doc.hosts.len()
        );
        // Any order of the shard files.
        let mut reversed = shards.clone();
        reversed.reverse();
        for input in [shards, reversed] {
            let merged = merge(input).unwrap();
            let mut want = doc.clone();
            want.hosts.sort_by(|a, b| a.host.cmp(&b.host));
            assert_eq!(
                serde_json::to_value(&merged.hosts).unwrap(),
                serde_json::to_value(&want.hosts).unwrap()
            );
            assert_eq!(merged.summary, doc.summary, "n={n}");
            assert_eq!(merged.remaining, doc.remaining, "n={n}");
            assert_eq!(merged.command, doc.command);
            assert_eq!(merged.schema, doc.schema);
            assert_eq!(merged.elapsed_ms, 1000 + n as u64 * 10, "the longest shard");
            assert_eq!(
                merged.peak_concurrency,
                5 * n,
                "the shards ran side by side"
            );
            // And it renders as the unsharded report does (timings aside).
            let mut same = doc.clone();
            same.elapsed_ms = merged.elapsed_ms;
            same.peak_concurrency = merged.peak_concurrency;
            for f in report::FileFormat::ALL {
                assert_eq!(report::render(f, &merged), report::render(f, &same), "{f}");
            }
        }
    }
}

#[test]
fn merging_a_check_keeps_remaining_absent() {
    let mut doc = fixture();
    doc.command = "check".into();
    doc.remaining = None;
    for r in &mut doc.hosts {
        r.plan = None;
        r.repair = None;
    }
    let merged = merge(vec![
        shard_doc(&doc, 1, 2, 1, 1),
        shard_doc(&doc, 2, 2, 1, 1),
    ])
    .unwrap();
    assert_eq!(merged.remaining, None);
    assert_eq!(merged.summary, doc.summary);
}

#[test]
fn mixed_commands_schemas_and_duplicates_are_refused() {
    let doc = fixture();
    let a = shard_doc(&doc, 1, 2, 1, 1);
    let b = shard_doc(&doc, 2, 2, 1, 1);

    let mut plan = b.clone();
    plan.command = "plan".into();
    match merge(vec![a.clone(), plan]) {
        Err(MergeError::CommandMismatch {
            expected,
            found,
            index: 1,
        }) => assert_eq!((expected.as_str(), found.as_str()), ("repair", "plan")),
        other => panic!("expected CommandMismatch, got {other:?}"),
    }

    let mut newer = b.clone();
    newer.schema = "trustsweep.report/3".into();
    assert!(matches!(
        merge(vec![a.clone(), newer]),
        Err(MergeError::SchemaMismatch { index: 1, .. })
    ));

    let mut overlap = b.clone();
    overlap.hosts.push(a.hosts[0].clone());
    let err = merge(vec![a.clone(), overlap]).unwrap_err();
    assert_eq!(
        err,
        MergeError::DuplicateHost {
            host: a.hosts[0].host.clone()
        }
    );
    assert!(err.to_string().contains(&a.hosts[0].host));

    // The same shard twice: the first host of it is named.
    let first = doc
        .hosts
        .iter()
        .map(|r| r.host.clone())
        .filter(|h| shard_of(h, 2) == 1)
        .min()
        .unwrap();
    let err = merge(vec![a.clone(), a.clone()]).unwrap_err();
    assert_eq!(
        err,
        MergeError::OverlappingShards {
            shard: Shard::new(1, 2).unwrap(),
            first: 0,
            second: 1
        }
    );
    assert_eq!(
        err.to_string(),
        "reports 1 and 2 are both shard 1/2: the shards overlap"
    );
    // Reports that name no shard (of earlier versions): the host in both is named.
    let mut untagged = a;
    untagged.shard = None;
    assert_eq!(
        merge(vec![untagged.clone(), untagged]).unwrap_err(),
        MergeError::DuplicateHost { host: first }
    );
    assert_eq!(merge(Vec::new()).unwrap_err(), MergeError::NoReports);
}

#[test]
fn missing_and_mismatched_shards_are_refused() {
    let doc = fixture();
    let of4: Vec<Document> = (1..=4).map(|k| shard_doc(&doc, k, 4, 1, 1)).collect();
    // Shards 2 and 4 of 4 missing.
    let err = merge(vec![of4[0].clone(), of4[2].clone()]).unwrap_err();
    assert_eq!(
        err,
        MergeError::MissingShards {
            missing: vec![2, 4],
            n: 4
        }
    );
    let text = err.to_string();
    assert!(
        text.starts_with("shards 2/4, 4/4 of the sweep have no report"),
        "{text}"
    );
    // One missing: named in the singular.
    let err = merge(of4[..3].to_vec()).unwrap_err().to_string();
    assert!(
        err.starts_with("shard 4/4 of the sweep has no report"),
        "{err}"
    );
    // Shards of different N sliced the fleet differently.
    let err = merge(vec![of4[0].clone(), shard_doc(&doc, 2, 3, 1, 1)]).unwrap_err();
    assert_eq!(
        err,
        MergeError::ShardCountMismatch {
            expected: 4,
            found: 3,
            index: 1
        }
    );
    assert!(
        err.to_string().contains("shard of 3, the first of 4"),
        "{err}"
    );
    // A whole-fleet report among shards.
    let mut whole = doc.clone();
    whole.shard = None;
    assert_eq!(
        merge(vec![of4[0].clone(), whole.clone()]).unwrap_err(),
        MergeError::NotAShard { index: 1 }
    );
    assert_eq!(
        merge(vec![whole, of4[0].clone()]).unwrap_err(),
        MergeError::NotAShard { index: 1 }
    );
    // All four: the merged report is the whole fleet again.
    let merged = merge(of4).unwrap();
    assert_eq!(merged.shard, None);
    assert_eq!(merged.hosts.len(), doc.hosts.len());
}

#[test]
fn a_report_says_which_shard_it_swept() {
    let doc = shard_doc(&fixture(), 2, 3, 1, 1);
    let json = serde_json::to_value(&doc).unwrap();
    assert_eq!(json["shard"], serde_json::json!({"k": 2, "n": 3}));
    let back: Document = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back.shard, Shard::new(2, 3));
    // Validated on the way in.
    let mut bad = json;
    bad["shard"] = serde_json::json!({"k": 4, "n": 3});
    assert!(serde_json::from_value::<Document>(bad).is_err());
    // A whole fleet's report has none.
    let mut whole = fixture();
    whole.shard = None;
    assert!(serde_json::to_value(&whole).unwrap().get("shard").is_none());
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("ws{i:05}.corp.example")).collect()
}

#[test]
fn shards_partition_the_hosts_exactly() {
    let lab: Vec<String> = fixture().hosts.iter().map(|r| r.host.clone()).collect();
    for hosts in [lab, names(1000), Vec::new(), vec!["only".to_string()]] {
        for n in 1..=9 {
            let mut seen = vec![0usize; hosts.len()];
            for k in 1..=n {
                let slice = shard(&hosts, k, n);
                assert!(slice.windows(2).all(|w| w[0] < w[1]), "in inventory order");
                for i in slice {
                    seen[i] += 1;
                }
            }
            assert!(
                seen.iter().all(|&c| c == 1),
                "n={n}: every host exactly once"
            );
        }
    }
}

#[test]
fn shards_are_balanced_and_stable() {
    let hosts = names(1000);
    for n in [2, 4, 8] {
        for k in 1..=n {
            let len = shard(&hosts, k, n).len();
            let mean = 1000 / n;
            assert!(
                len * 10 >= mean * 7 && len * 10 <= mean * 13,
                "shard {k}/{n} has {len} hosts"
            );
        }
    }
    // Pinned values: the same on every machine and Rust version (FNV-1a + fmix64).
    // (Worked out independently of this code, from the FNV-1a and fmix64 definitions.)
    assert_eq!(stable_hash(""), 0xefd0_1f60_ba99_2926);
    assert_eq!(stable_hash("ws0001.lab.test"), 0xecb3_ce6a_5a5c_063e);
    assert_eq!(stable_hash("dc1"), 0x334b_be5d_ac6a_5e39);
    let pinned: Vec<usize> = ["ws0001.lab.test", "ws0002.lab.test", "dc1", "A", "a"]
        .iter()
        .map(|h| shard_of(h, 4))
        .collect();
    assert_eq!(pinned, PINNED_SHARDS_OF_4);
    // DNS names ignore ASCII case; so do shards.
    assert_eq!(
        shard_of("WS0001.LAB.TEST", 7),
        shard_of("ws0001.lab.test", 7)
    );
    // Adding hosts never moves the others.
    let before = shard(&hosts[..500], 2, 3);
    let after = shard(&hosts, 2, 3);
    assert_eq!(
        before,
        after.into_iter().filter(|&i| i < 500).collect::<Vec<_>>()
    );
}

const PINNED_SHARDS_OF_4: [usize; 5] = [3, 2, 2, 4, 4];

#[test]
fn shard_specs_are_validated() {
    assert_eq!(parse_shard("1/4").unwrap(), Shard::new(1, 4).unwrap());
    assert_eq!(parse_shard(" 4/4 ").unwrap().to_string(), "4/4");
    assert_eq!("2/3".parse::<Shard>().unwrap().k(), 2);
    for bad in [
        "0/4", "5/4", "4", "a/b", "1/0", "0/0", "-1/4", "1/4/2", "", "/",
    ] {
        assert!(parse_shard(bad).is_err(), "{bad} accepted");
    }
    assert!(shard(&names(10), 0, 4).is_empty());
    assert!(shard(&names(10), 5, 4).is_empty());
    let one = parse_shard("1/1").unwrap();
    assert_eq!(one.select(&names(10)), (0..10).collect::<Vec<_>>());
}

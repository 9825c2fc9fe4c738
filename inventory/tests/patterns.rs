#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `--limit` patterns: each operator, combinations, Ansible's order of evaluation.

mod common;

use common::{load_text, names};
use inventory::{Inventory, Pattern};

fn fleet() -> Inventory {
    load_text(
        "fleet.ini",
        "[atlanta]\nws0001.lab.test\nws0002.lab.test\nsrv01.lab.test\n\n[raleigh]\nws0010.lab.test\nws0002.lab.test\n\n[webservers]\nsrv01.lab.test\nweb02.lab.test\n\n[southeast:children]\natlanta\nraleigh\n\n[other]\nmail.example.com\n",
    )
    .unwrap()
}

#[track_caller]
fn limit(inv: &Inventory, p: &str) -> Vec<String> {
    let pat = Pattern::parse(p).unwrap_or_else(|e| panic!("{e}"));
    let limited = inv.limit(&pat);
    // `matches` agrees with `limit` here (no host is named like a group).
    let by_host: Vec<&str> = inv
        .hosts
        .iter()
        .filter(|h| pat.matches(h))
        .map(|h| h.name.as_str())
        .collect();
    assert_eq!(names(&limited), by_host, "{p}");
    names(&limited).into_iter().map(String::from).collect()
}

#[test]
fn names_groups_globs_all() {
    let inv = fleet();
    let all: Vec<String> = names(&inv).into_iter().map(String::from).collect();
    assert_eq!(limit(&inv, "all"), all);
    assert_eq!(limit(&inv, "*"), all);
    assert_eq!(limit(&inv, "ws0002.lab.test"), ["ws0002.lab.test"]);
    assert_eq!(
        limit(&inv, "WS0002.LAB.TEST"),
        ["ws0002.lab.test"],
        "names ignore case"
    );
    assert_eq!(
        limit(&inv, "raleigh"),
        ["ws0002.lab.test", "ws0010.lab.test"],
        "inventory order kept"
    );
    assert_eq!(
        limit(&inv, "southeast").len(),
        4,
        "a parent group holds its children's hosts"
    );
    assert_eq!(
        limit(&inv, "ws00*"),
        ["ws0001.lab.test", "ws0002.lab.test", "ws0010.lab.test"]
    );
    assert_eq!(
        limit(&inv, "ws000?.lab.test"),
        ["ws0001.lab.test", "ws0002.lab.test"]
    );
    assert_eq!(limit(&inv, "ws000[!1]*"), ["ws0002.lab.test"]);
    assert_eq!(limit(&inv, "*.example.com"), ["mail.example.com"]);
    assert_eq!(
        limit(&inv, "atl*"),
        ["ws0001.lab.test", "ws0002.lab.test", "srv01.lab.test"],
        "globs match group names"
    );
    assert_eq!(
        limit(&inv, "~ws00(01|10)"),
        ["ws0001.lab.test", "ws0010.lab.test"]
    );
    assert_eq!(
        limit(&inv, "~lab"),
        Vec::<String>::new(),
        "a regex matches from the start"
    );
    assert_eq!(
        limit(&inv, "~(?i)WEB"),
        ["srv01.lab.test", "web02.lab.test"]
    );
    assert_eq!(limit(&inv, "nosuchhost"), Vec::<String>::new());
    assert_eq!(limit(&inv, "ungrouped"), Vec::<String>::new());
}

#[test]
fn union_intersection_exclusion() {
    let inv = fleet();
    assert_eq!(
        limit(&inv, "raleigh:webservers"),
        [
            "ws0002.lab.test",
            "srv01.lab.test",
            "ws0010.lab.test",
            "web02.lab.test"
        ]
    );
    assert_eq!(
        limit(&inv, "raleigh,webservers"),
        limit(&inv, "raleigh:webservers")
    );
    assert_eq!(limit(&inv, "atlanta:&raleigh"), ["ws0002.lab.test"]);
    assert_eq!(
        limit(&inv, "atlanta:!raleigh"),
        ["ws0001.lab.test", "srv01.lab.test"]
    );
    assert_eq!(limit(&inv, "webservers:&atlanta"), ["srv01.lab.test"]);
    assert_eq!(
        limit(&inv, "southeast:!ws0002*:!srv*"),
        ["ws0001.lab.test", "ws0010.lab.test"]
    );
    assert_eq!(
        limit(&inv, "southeast:&ws*:&raleigh"),
        ["ws0002.lab.test", "ws0010.lab.test"]
    );
    // Only exclusions or intersections: they apply to all hosts.
    assert_eq!(
        limit(&inv, "!southeast"),
        ["web02.lab.test", "mail.example.com"]
    );
    assert_eq!(
        limit(&inv, "&webservers"),
        ["srv01.lab.test", "web02.lab.test"]
    );
    // Spaces around terms are ignored, empty terms skipped.
    assert_eq!(
        limit(&inv, " raleigh , : webservers :& atlanta "),
        ["ws0002.lab.test", "srv01.lab.test"]
    );
}

#[test]
fn order_of_evaluation_is_ansibles() {
    let inv = fleet();
    // Unions first, then intersections, then exclusions, wherever they are written.
    let expected = ["ws0001.lab.test"];
    for p in [
        "atlanta:webservers:&southeast:!srv01*:!ws0002*",
        "!ws0002*:&southeast:atlanta:!srv01*:webservers",
        "&southeast:!srv01*:webservers:!ws0002*:atlanta",
    ] {
        assert_eq!(limit(&inv, p), expected, "{p}");
    }
    // An exclusion written first still removes hosts a later union adds.
    assert_eq!(
        limit(&inv, "!ws0001*:atlanta"),
        ["ws0002.lab.test", "srv01.lab.test"]
    );
    // An intersection written first still narrows a later union.
    assert_eq!(
        limit(&inv, "&raleigh:atlanta:webservers"),
        ["ws0002.lab.test"]
    );
}

#[test]
fn a_name_that_is_a_group_selects_the_group() {
    // As in Ansible: when a plain name matches a group, host names are not tried.
    let inv = load_text("g.ini", "[web]\nweb01\n[db]\nweb\n").unwrap();
    let p = Pattern::parse("web").unwrap();
    assert_eq!(names(&inv.limit(&p)), ["web01"]);
    // Judging by the host alone, `matches` cannot know there is a group called web.
    assert!(p.matches(&inv.hosts[1]));
    // A glob tries both.
    assert_eq!(
        names(&inv.limit(&Pattern::parse("web*").unwrap())),
        ["web01", "web"]
    );
}

#[test]
fn bad_patterns_say_what_is_wrong() {
    let e = |p: &str| Pattern::parse(p).unwrap_err().to_string();
    assert_eq!(
        e(""),
        "bad host pattern '': it names no hosts: give host names, group names or globs (like 'ws00*' or 'webservers:!atlanta')"
    );
    assert_eq!(
        e(" : , "),
        "bad host pattern ' : , ': it names no hosts: give host names, group names or globs (like 'ws00*' or 'webservers:!atlanta')"
    );
    assert_eq!(e("web:&"), "bad host pattern 'web:&': '&' must be followed by a host or group name (as in webservers:&atlanta)");
    assert_eq!(e("web:!"), "bad host pattern 'web:!': '!' must be followed by a host or group name (as in webservers:!atlanta)");
    assert_eq!(
        e("web:&!db"),
        "bad host pattern 'web:&!db': '&!db' has two operators: use ':&name' to intersect or ':!name' to exclude, one per term"
    );
    assert_eq!(
        e("ws0[1-3"),
        "bad host pattern 'ws0[1-3': unclosed '[' in '[1-3': a glob class looks like ws0[1-3]"
    );
    assert_eq!(e("web servers"), "bad host pattern 'web servers': 'web servers' contains a space: separate names with ',' or ':'");
    assert_eq!(
        e("~"),
        "bad host pattern '~': '~' must be followed by a regular expression (as in ~ws0[0-9]+)"
    );
    assert!(
        e("~ws(")
            .starts_with("bad host pattern '~ws(': '~ws(' is not a valid regular expression: "),
        "{}",
        e("~ws(")
    );
    let p: Pattern = "webservers:!atlanta".parse().unwrap();
    assert_eq!(p.to_string(), "webservers:!atlanta");
    assert_eq!(p.as_str(), "webservers:!atlanta");
}

#[test]
fn ipv6_and_brackets() {
    let inv = load_text("v6", "fe80::1\n10.0.0.1\n").unwrap();
    assert_eq!(
        names(&inv.limit(&Pattern::parse("fe80::1").unwrap())),
        ["fe80::1"]
    );
    assert_eq!(
        names(&inv.limit(&Pattern::parse("10.0.0.[0-9]").unwrap())),
        ["10.0.0.1"]
    );
}

#[test]
fn regex_error_text() {
    let e = Pattern::parse("~ws(").unwrap_err();
    assert_eq!(
        e.message,
        "'~ws(' is not a valid regular expression: unclosed group"
    );
}

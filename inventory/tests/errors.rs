#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Malformed inventories: every message names the file and 1-based line, says what is
//! wrong and what to write. The messages are asserted exactly.

mod common;

use common::{load_err, load_text};

#[track_caller]
fn err(name: &str, text: &str, expected: &str) {
    assert_eq!(load_err(name, text), expected, "for {name}:\n{text}");
}

#[test]
fn ini_section_errors() {
    err(
        "a.ini",
        "[web servers]\nhost1\n",
        "a.ini:1: invalid section header '[web servers]': write [group], [group:vars] or [group:children]; group names cannot contain spaces, ':' or ']'",
    );
    err(
        "b.ini",
        "[web]\nhost1\n\n[web:var]\nx=1\n",
        "b.ini:4: section [web:var] has unknown type 'var': write [web], [web:vars] or [web:children]",
    );
    err(
        "c.ini",
        "[web]\nhost1\n[atlnta:vars]\nntp=ntp.example.com\n",
        "c.ini:3: [atlnta:vars] sets variables of group 'atlnta', which is not defined: add a [atlnta] section or list it under a [parent:children] section, or fix the name",
    );
    err(
        "d.ini",
        "[usa:children]\nsouth east\n",
        "d.ini:2: expected one group name per line in [usa:children], got 'south east'",
    );
    err(
        "e.ini",
        "[a:children]\nb\n[b:children]\na\n",
        "e.ini:1: group 'a' is its own ancestor (a is in b, b is in a): remove one of these children links",
    );
}

#[test]
fn ini_variable_errors() {
    err(
        "v.ini",
        "[atlanta]\nhost1\nntp_server=ntp.atlanta.example.com\n",
        "v.ini:3: 'ntp_server=ntp.atlanta.example.com' is a variable, but [atlanta] lists hosts: put group variables under [atlanta:vars], or write them after a host name on its line (host1 ntp_server=ntp.atlanta.example.com)",
    );
    err(
        "w.ini",
        "ansible_user=Administrator\n[web]\nhost1\n",
        "w.ini:1: 'ansible_user=Administrator' is a variable outside any section: put variables for every host under [all:vars], or write them after a host name on its line (host1 ansible_user=Administrator)",
    );
    err(
        "z.ini",
        "[web]\nhost1\nansible_password=hunter2\n",
        "z.ini:3: 'ansible_password=********' is a variable, but [web] lists hosts: put group variables under [web:vars], or write them after a host name on its line (host1 ansible_password=********)",
    );
    err(
        "x.ini",
        "[web]\nhost1 ansible_user Administrator\n",
        "x.ini:2: expected key=value after the host name, got 'ansible_user': quote values that contain spaces (key=\"a b\")",
    );
    err(
        "y.ini",
        "[web]\nhost1\n[web:vars]\nntp_server\n",
        "y.ini:4: expected key=value in [web:vars], got 'ntp_server'",
    );
    err(
        "q.ini",
        "[web]\nhost1 ansible_password=\"s3cret\n",
        "q.ini:2: unclosed double quote on this line: close it with \"",
    );
    err(
        "p.ini",
        "[web]\nhost1 ansible_port=nope\n",
        "p.ini:2: host 'host1': ansible_port must be a number from 1 to 65535, got \"nope\"",
    );
    err(
        "g.ini",
        "[web]\nhost1\n[web:vars]\nansible_port=70000\n",
        "g.ini:4: group 'web': ansible_port must be a number from 1 to 65535, got 70000",
    );
    err(
        "s.ini",
        "[web]\nhost1 ansible_winrm_scheme=htps\n",
        "s.ini:2: host 'host1': ansible_winrm_scheme must be http or https, got \"htps\"",
    );
    err(
        "c.ini",
        "[web:vars]\nansible_winrm_server_cert_validation=no\n[web]\nhost1\n",
        "c.ini:2: group 'web': ansible_winrm_server_cert_validation must be validate or ignore, got \"no\"",
    );
}

#[test]
fn bad_ranges() {
    err(
        "r1.ini",
        "[ws]\nws[10:2].lab.test\n",
        "r1.ini:2: bad host range '[10:2]' in 'ws[10:2].lab.test': the start is after the end (write [2:10])",
    );
    err(
        "r2.ini",
        "[ws]\nws[01:100].lab.test\n",
        "r2.ini:2: bad host range '[01:100]' in 'ws[01:100].lab.test': start and end must have the same number of digits when zero-padded (write [001:100])",
    );
    err(
        "r3.ini",
        "[ws]\nws[1:05]\n",
        "r3.ini:2: bad host range '[1:05]' in 'ws[1:05]': start and end must have the same number of digits when zero-padded (write [01:05])",
    );
    err("r4.ini", "[ws]\nws[a:5]\n", "r4.ini:2: bad host range '[a:5]' in 'ws[a:5]': use numbers ([01:20]) or single letters ([a:f])");
    err("r5.ini", "[ws]\nws[1:2:3:4]\n", "r5.ini:2: bad host range '[1:2:3:4]' in 'ws[1:2:3:4]': write [start:end] or [start:end:step]");
    err("r6.ini", "[ws]\nws[1:9:0]\n", "r6.ini:2: bad host range '[1:9:0]' in 'ws[1:9:0]': the step must be a whole number of at least 1");
    err(
        "r7.ini",
        "[ws]\nws[1:]\n",
        "r7.ini:2: bad host range '[1:]' in 'ws[1:]': the end is missing (write [start:end])",
    );
    err(
        "r8.ini",
        "[ws]\nws[01:20\n",
        "r8.ini:2: unclosed '[' in 'ws[01:20': host ranges look like ws[01:20]",
    );
    err(
        "r9.ini",
        "[ws]\nws[f:a]\n",
        "r9.ini:2: bad host range '[f:a]' in 'ws[f:a]': the start is after the end (write [a:f])",
    );
    err(
        "r10.ini",
        "[ws]\nws[0:9999999]\n",
        "r10.ini:2: 'ws[0:9999999]' makes 10000000 hosts, more than 100000: split the range",
    );
    err(
        "r.yml",
        "all:\n  children:\n    ws:\n      hosts:\n        ws[10:2].lab.test:\n",
        "r.yml:5: bad host range '[10:2]' in 'ws[10:2].lab.test': the start is after the end (write [2:10])",
    );
}

#[test]
fn ports() {
    err(
        "p1",
        "ws1:abc\n",
        "p1:1: bad port 'abc' in 'ws1:abc': a port is a number from 1 to 65535",
    );
    err(
        "p2",
        "ws1:0\n",
        "p2:1: bad port '0' in 'ws1:0': a port is a number from 1 to 65535",
    );
    err(
        "p3",
        "ws1:\n",
        "p3:1: 'ws1:' ends with ':': write the port after it (ws1:5986) or remove the ':'",
    );
    err("p4", "ws1:1:2\n", "p4:1: 'ws1:1:2' has more than one ':': write host:port, and IPv6 addresses in brackets ([fe80::1]:5986)");
    err(
        "dup.ini",
        "[a]\nws1:5985\n[b]\nws1:5986\n",
        "dup.ini:4: host 'ws1' is given port 5986 here but port 5985 on line 2: a host has one port; fix one of them, or give the other listener its own name with ansible_host",
    );
    err(
        "dup.yml",
        "a:\n  hosts:\n    ws1:\n      ansible_port: 5985\nb:\n  hosts:\n    ws1:5986:\n",
        "dup.yml:7: host 'ws1' is given port 5986 here but port 5985 on line 4: a host has one port; fix one of them, or give the other listener its own name with ansible_host",
    );
    err(
        "dup.txt",
        "ws1:5985\nws2\nws1:5986\n",
        "dup.txt:3: host 'ws1' is given port 5986 here but port 5985 on line 1: a host has one port; fix one of them, or give the other listener its own name with ansible_host",
    );
    // The same port twice, or a port only once, is fine.
    let inv = load_text("same.ini", "[a]\nws1:5985\n[b]\nws1:5985\n[c]\nws1\n").unwrap();
    assert_eq!(inv.hosts[0].port, Some(5985));
    assert_eq!(inv.hosts[0].groups, ["all", "a", "b", "c"]);
}

#[test]
fn plain_list_errors() {
    err(
        "hosts.txt",
        "ws1\nws2 ws3\n",
        "hosts.txt:2: expected one host per line (name or name:port), got 'ws2 ws3': put each host on its own line",
    );
}

#[test]
fn csv_errors() {
    err(
        "h.csv",
        "host,address\nws1,10.0.0.1\n",
        "h.csv:1: the header row has no 'name' column (it has: host, address): the first row must name the columns, with 'name' for the host names",
    );
    err(
        "p.csv",
        "name,port\nws1,5985\nws2,http\n",
        "p.csv:3: bad port 'http': a port is a number from 1 to 65535",
    );
    err(
        "n.csv",
        "name,address\nws1,10.0.0.1\n,10.0.0.2\n",
        "n.csv:3: this row has no name: every row needs a host name in the 'name' column",
    );
    err(
        "f.csv",
        "name,address\nws1,10.0.0.1,extra\n",
        "f.csv:2: this row has 3 fields but the header has 2: quote values that contain commas (\"a,b\")",
    );
    err(
        "d.csv",
        "name,address,ansible_host\nws1,a,b\n",
        "d.csv:1: columns 'address' and 'ansible_host' say the same thing: keep one",
    );
    err(
        "c.csv",
        "name,port\nws1,5985\nws1,5986\n",
        "c.csv:3: host 'ws1' is given port 5986 here but port 5985 on line 2: a host has one port; fix one of them, or give the other listener its own name with ansible_host",
    );
}

#[test]
fn yaml_errors_have_lines() {
    err(
        "l.yml",
        "all:\n  children:\n    web:\n      hosts:\n        - ws1\n",
        "l.yml:4: hosts of group 'web' must be a mapping (host name: variables), not a list: write 'ws1:' instead of '- ws1'",
    );
    err(
        "k.yml",
        "all:\n  children:\n    web:\n      host:\n        ws1:\n",
        "k.yml:4: group 'web' has an unknown key 'host': only hosts:, vars: and children: are allowed",
    );
    err(
        "p.yml",
        "all:\n  vars:\n    ansible_user: x\n  children:\n    web:\n      vars:\n        ansible_port: https\n",
        "p.yml:7: group 'web': ansible_port must be a number from 1 to 65535, got \"https\"",
    );
    err(
        "h.yml",
        "all:\n  hosts:\n    ws1:\n    ws2:\n      ansible_winrm_scheme: ftp\n",
        "h.yml:5: host 'ws2': ansible_winrm_scheme must be http or https, got \"ftp\"",
    );
    err(
        "g.yml",
        "all:\n  children:\n    web:\n      ws1:\n",
        "g.yml:4: group 'web' has an unknown key 'ws1': only hosts:, vars: and children: are allowed",
    );
    err(
        "c.yml",
        "a:\n  children:\n    b:\n      children:\n        a:\n",
        "c.yml:1: group 'a' is its own ancestor (a is in b, b is in a): remove one of these children links",
    );
    err(
        "t.yml",
        "all:\n  hosts:\n    ws1:\n  hosts:\n    ws2:\n",
        "t.yml:2: not valid YAML: all: duplicate entry with key \"hosts\" at line 2 column 3",
    );
    err(
        "s.yml",
        "- ws1\n- ws2\n",
        "s.yml:1: an inventory must be a mapping of groups, starting with 'all:'",
    );
    err(
        "u.yml",
        "all:\n  children:\n    web:\n      hosts:\n        ws1:\n      children:\n        all:\n",
        "u.yml:7: 'all' cannot be a child of 'web': every group is already inside 'all'",
    );
}

#[test]
fn empty_files_are_empty_inventories() {
    for (name, text) in [
        ("e.yml", ""),
        ("e.ini", ""),
        ("e.csv", ""),
        ("e", ""),
        ("c", "# nothing yet\n\n"),
        ("c.yml", "---\n# nothing yet\n"),
        ("c.ini", "; nothing\n[web]\n"),
        ("h.csv", "name,address\n"),
    ] {
        let inv = load_text(name, text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(inv.hosts.is_empty(), "{name}");
    }
}

#[test]
fn unreadable_file() {
    let d = common::tmpdir("missing");
    let p = d.join("nope.yml");
    let e = inventory::load(&p).unwrap_err().to_string();
    assert!(
        e.starts_with(&format!("cannot read inventory {}: ", p.display())),
        "{e}"
    );
}

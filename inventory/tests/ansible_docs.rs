#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The examples of Ansible's "How to build your inventory" page (and of the `ini`
//! inventory plugin's documentation), in INI and in YAML, read as Ansible reads them.

mod common;

use common::{host, in_group, load_text, names};
use inventory::Inventory;

/// Name, address, port, sorted groups and vars as text: what must agree between formats.
type Shape = (
    String,
    String,
    Option<u16>,
    Vec<String>,
    Vec<(String, String)>,
);

fn shape(inv: &Inventory) -> Vec<Shape> {
    inv.hosts
        .iter()
        .map(|h| {
            let mut g = h.groups.clone();
            g.sort();
            let vars = h
                .vars
                .keys()
                .map(|k| (k.clone(), h.var(k).unwrap_or_default()))
                .collect();
            (h.name.clone(), h.address.clone(), h.port, g, vars)
        })
        .collect()
}

const BASIC_INI: &str = "mail.example.com

[webservers]
foo.example.com
bar.example.com

[dbservers]
one.example.com
two.example.com
three.example.com
";

const BASIC_YAML: &str = "ungrouped:
  hosts:
    mail.example.com:
webservers:
  hosts:
    foo.example.com:
    bar.example.com:
dbservers:
  hosts:
    one.example.com:
    two.example.com:
    three.example.com:
";

/// The same inventory as older versions of the page wrote it, under `all:`.
const BASIC_YAML_ALL: &str = "all:
  hosts:
    mail.example.com:
  children:
    webservers:
      hosts:
        foo.example.com:
        bar.example.com:
    dbservers:
      hosts:
        one.example.com:
        two.example.com:
        three.example.com:
";

#[test]
fn basic_inventory_ini_and_yaml() {
    let ini = load_text("hosts", BASIC_INI).unwrap();
    assert_eq!(
        names(&ini),
        [
            "mail.example.com",
            "foo.example.com",
            "bar.example.com",
            "one.example.com",
            "two.example.com",
            "three.example.com"
        ]
    );
    // Default groups: mail.example.com is in all and ungrouped; two.example.com in all and dbservers.
    assert_eq!(host(&ini, "mail.example.com").groups, ["all", "ungrouped"]);
    assert_eq!(host(&ini, "two.example.com").groups, ["all", "dbservers"]);
    assert_eq!(
        in_group(&ini, "webservers"),
        ["foo.example.com", "bar.example.com"]
    );
    assert_eq!(in_group(&ini, "all").len(), 6);
    let yaml = load_text("hosts.yml", BASIC_YAML).unwrap();
    let yaml_all = load_text("hosts.yaml", BASIC_YAML_ALL).unwrap();
    assert_eq!(shape(&ini), shape(&yaml));
    assert_eq!(shape(&ini), shape(&yaml_all));
    // Detected by content too, without an extension.
    assert_eq!(shape(&load_text("inv", BASIC_YAML).unwrap()), shape(&ini));
}

const WHAT_WHERE_WHEN: &str = "ungrouped:
  hosts:
    mail.example.com:
webservers:
  hosts:
    foo.example.com:
    bar.example.com:
dbservers:
  hosts:
    one.example.com:
    two.example.com:
    three.example.com:
east:
  hosts:
    foo.example.com:
    one.example.com:
    two.example.com:
west:
  hosts:
    bar.example.com:
    three.example.com:
prod:
  hosts:
    foo.example.com:
    one.example.com:
    two.example.com:
test:
  hosts:
    bar.example.com:
    three.example.com:
";

const PARENT_CHILD: &str = "ungrouped:
  hosts:
    mail.example.com:
webservers:
  hosts:
    foo.example.com:
    bar.example.com:
dbservers:
  hosts:
    one.example.com:
    two.example.com:
    three.example.com:
east:
  hosts:
    foo.example.com:
    one.example.com:
    two.example.com:
west:
  hosts:
    bar.example.com:
    three.example.com:
prod:
  children:
    east:
test:
  children:
    west:
";

#[test]
fn hosts_in_multiple_groups_and_parent_groups() {
    let flat = load_text("www.yml", WHAT_WHERE_WHEN).unwrap();
    let mut one = host(&flat, "one.example.com").groups.clone();
    one.sort();
    assert_eq!(one, ["all", "dbservers", "east", "prod"]);
    // "There will only be one instance of a host": listed three times, kept once, in first-seen order.
    assert_eq!(flat.hosts.len(), 6);
    let nested = load_text("pc.yml", PARENT_CHILD).unwrap();
    assert_eq!(shape(&flat), shape(&nested));
    // Child groups are deeper than their parents, so they come later (they win).
    assert_eq!(
        host(&nested, "one.example.com").groups,
        ["all", "dbservers", "prod", "east"]
    );
}

#[test]
fn ranges_from_the_docs() {
    let ini = load_text("r.ini", "[webservers]\nwww[01:50].example.com\n").unwrap();
    assert_eq!(ini.hosts.len(), 50);
    assert_eq!(ini.hosts[0].name, "www01.example.com");
    assert_eq!(ini.hosts[8].name, "www09.example.com");
    assert_eq!(ini.hosts[49].name, "www50.example.com");
    let yaml = load_text(
        "r.yml",
        "# ...\n  webservers:\n    hosts:\n      www[01:50].example.com:\n",
    )
    .unwrap();
    assert_eq!(shape(&ini), shape(&yaml));

    // The stride: www01, www03, ..., www49, but not www00, www02 or www50.
    let ini = load_text("s.ini", "[webservers]\nwww[01:50:2].example.com\n").unwrap();
    let n = names(&ini);
    assert_eq!(n.len(), 25);
    assert_eq!(n.first(), Some(&"www01.example.com"));
    assert_eq!(n.get(1), Some(&"www03.example.com"));
    assert_eq!(n.last(), Some(&"www49.example.com"));
    assert!(!n.contains(&"www02.example.com") && !n.contains(&"www50.example.com"));
    let yaml = load_text(
        "s.yml",
        "  webservers:\n    hosts:\n      www[01:50:2].example.com:\n",
    )
    .unwrap();
    assert_eq!(shape(&ini), shape(&yaml));

    let ini = load_text("a.ini", "[databases]\ndb-[a:f].example.com\n").unwrap();
    assert_eq!(
        names(&ini),
        [
            "db-a.example.com",
            "db-b.example.com",
            "db-c.example.com",
            "db-d.example.com",
            "db-e.example.com",
            "db-f.example.com"
        ]
    );
    assert!(ini.hosts.iter().all(|h| h.groups == ["all", "databases"]));
}

#[test]
fn host_variables() {
    let ini = load_text(
        "hv.ini",
        "[atlanta]\nhost1 http_port=80 maxRequestsPerChild=808\nhost2 http_port=303 maxRequestsPerChild=909\n",
    )
    .unwrap();
    let yaml = load_text(
        "hv.yml",
        "atlanta:\n  hosts:\n    host1:\n      http_port: 80\n      maxRequestsPerChild: 808\n    host2:\n      http_port: 303\n      maxRequestsPerChild: 909\n",
    )
    .unwrap();
    assert_eq!(shape(&ini), shape(&yaml));
    // Inline INI values are Python literals: numbers stay numbers, as in YAML.
    assert_eq!(
        host(&ini, "host2").vars["http_port"],
        serde_json::json!(303)
    );
    assert_eq!(ini.hosts[0].vars, yaml.hosts[0].vars);

    let inv = load_text("port", "badwolf.example.com:5309\n").unwrap();
    assert_eq!(host(&inv, "badwolf.example.com").port, Some(5309));
    assert_eq!(
        host(&inv, "badwolf.example.com").address,
        "badwolf.example.com"
    );

    let inv = load_text(
        "targets",
        "[targets]\n\nlocalhost              ansible_connection=local\nother1.example.com     ansible_connection=ssh        ansible_user=myuser\nother2.example.com     ansible_connection=ssh        ansible_user=myotheruser\n",
    )
    .unwrap();
    assert_eq!(
        host(&inv, "localhost").var("ansible_connection").as_deref(),
        Some("local")
    );
    assert_eq!(
        host(&inv, "other2.example.com").user().as_deref(),
        Some("myotheruser")
    );
}

#[test]
fn inventory_aliases() {
    let ini = load_text(
        "alias",
        "jumper ansible_port=5555 ansible_host=192.0.2.50\n",
    )
    .unwrap();
    let yaml = load_text(
        "alias.yml",
        "# ...\n  hosts:\n    jumper:\n      ansible_port: 5555\n      ansible_host: 192.0.2.50\n",
    );
    // The docs' YAML snippet is part of a larger file; whole, it sits under a group.
    assert!(yaml.is_err());
    let yaml = load_text(
        "alias.yml",
        "all:\n  hosts:\n    jumper:\n      ansible_port: 5555\n      ansible_host: 192.0.2.50\n",
    )
    .unwrap();
    let j = host(&ini, "jumper");
    assert_eq!((j.address.as_str(), j.port), ("192.0.2.50", Some(5555)));
    assert_eq!(shape(&ini), shape(&yaml));
}

#[test]
fn group_variables() {
    let ini = load_text(
        "gv.ini",
        "[atlanta]\nhost1\nhost2\n\n[atlanta:vars]\nntp_server=ntp.atlanta.example.com\nproxy=proxy.atlanta.example.com\n",
    )
    .unwrap();
    let yaml = load_text(
        "gv.yml",
        "atlanta:\n  hosts:\n    host1:\n    host2:\n  vars:\n    ntp_server: ntp.atlanta.example.com\n    proxy: proxy.atlanta.example.com\n",
    )
    .unwrap();
    assert_eq!(shape(&ini), shape(&yaml));
    assert_eq!(
        host(&ini, "host2").var("proxy").as_deref(),
        Some("proxy.atlanta.example.com")
    );
}

const SOUTHEAST_INI: &str = "[atlanta]
host1
host2

[raleigh]
host2
host3

[southeast:children]
atlanta
raleigh

[southeast:vars]
some_server=foo.southeast.example.com
halon_system_timeout=30
self_destruct_countdown=60
escape_pods=2

[usa:children]
southeast
northeast
southwest
northwest
";

const SOUTHEAST_YAML: &str = "usa:
  children:
    southeast:
      children:
        atlanta:
          hosts:
            host1:
            host2:
        raleigh:
          hosts:
            host2:
            host3:
      vars:
        some_server: foo.southeast.example.com
        halon_system_timeout: 30
        self_destruct_countdown: 60
        escape_pods: 2
    northeast:
    northwest:
    southwest:
";

#[test]
fn groups_of_groups_with_vars() {
    // northeast, southwest and northwest have no section of their own: accepted as empty groups.
    let ini = load_text("se.ini", SOUTHEAST_INI).unwrap();
    let yaml = load_text("se.yml", SOUTHEAST_YAML).unwrap();
    assert_eq!(names(&ini), ["host1", "host2", "host3"]);
    assert_eq!(shape(&ini), shape(&yaml));
    assert_eq!(
        host(&ini, "host2").groups,
        ["all", "usa", "southeast", "atlanta", "raleigh"]
    );
    assert_eq!(host(&ini, "host3").var("escape_pods").as_deref(), Some("2"));
    assert_eq!(in_group(&yaml, "usa"), ["host1", "host2", "host3"]);
}

#[test]
fn merge_order_and_group_priority() {
    // Same level: ASCII order, b_group wins ...
    let yaml = "a_group:\n  hosts:\n    h:\n  vars:\n    testvar: a\nb_group:\n  hosts:\n    h:\n  vars:\n    testvar: b\n";
    assert_eq!(
        host(&load_text("m.yml", yaml).unwrap(), "h")
            .var("testvar")
            .as_deref(),
        Some("b")
    );
    // ... unless a_group has a higher ansible_group_priority.
    let yaml = "a_group:\n  hosts:\n    h:\n  vars:\n    testvar: a\n    ansible_group_priority: 10\nb_group:\n  hosts:\n    h:\n  vars:\n    testvar: b\n";
    let inv = load_text("p.yml", yaml).unwrap();
    let h = host(&inv, "h");
    assert_eq!(h.var("testvar").as_deref(), Some("a"));
    assert_eq!(
        h.var("ansible_group_priority"),
        None,
        "a setting of the group, not a variable"
    );
    assert_eq!(h.groups, ["all", "b_group", "a_group"]);
}

#[test]
fn the_winning_definition_is_the_origin_at_every_level() {
    // Three groups at one depth, a nested one below them, and the host itself: each
    // variable's value and origin come from its last definition in precedence order.
    let yaml = "\
a_group:
  hosts:
    h:
  vars:
    one: a
    two: a
    three: a
b_group:
  hosts:
    h:
  vars:
    one: b
    two: b
  children:
    c_child:
      hosts:
        h:
      vars:
        two: c
c_group:
  hosts:
    h:
  vars:
    one: c
    four: c
";
    let inv = load_text("w.yml", yaml).unwrap();
    let h = host(&inv, "h");
    let at = |name: &str| (h.origins[name].scope.as_str(), h.origins[name].line);
    // Same depth: ASCII order, the last group wins and is the origin.
    assert_eq!(h.var("one").as_deref(), Some("c"));
    assert_eq!(at("one"), ("c_group", 24));
    // Deeper wins over shallower, whatever the names.
    assert_eq!(h.var("two").as_deref(), Some("c"));
    assert_eq!(at("two"), ("c_child", 19));
    // Defined once: that one.
    assert_eq!(h.var("three").as_deref(), Some("a"));
    assert_eq!(at("three"), ("a_group", 7));
    assert_eq!(at("four"), ("c_group", 25));
}

const INI_PLUGIN_EXAMPLE_1: &str = "# fmt: ini
# Example 1
[web]
host1
host2 ansible_port=222 # defined inline, interpreted as an integer

[web:vars]
http_port=8080 # all members of 'web' will inherit these
myvar=23 # defined in a :vars section, interpreted as a string

[web:children] # child groups will automatically add their hosts to parent group
apache
nginx

[apache]
tomcat1
tomcat2 myvar=34 # host specific vars override group vars
tomcat3 mysecret=\"'03#pa33w0rd'\" # proper quoting to prevent value changes

[nginx]
jenkins1

[nginx:vars]
has_java = True # vars in child groups override same in parent

[all:vars]
has_java = False # 'all' is 'top' parent
";

#[test]
fn ini_plugin_example_1() {
    let inv = load_text("ex1", INI_PLUGIN_EXAMPLE_1).unwrap();
    assert_eq!(
        names(&inv),
        ["host1", "host2", "tomcat1", "tomcat2", "tomcat3", "jenkins1"]
    );
    assert_eq!(host(&inv, "host2").port, Some(222));
    assert_eq!(
        host(&inv, "host2").vars["ansible_port"],
        serde_json::json!(222)
    );
    assert_eq!(
        host(&inv, "tomcat1").var("http_port").as_deref(),
        Some("8080")
    );
    assert_eq!(host(&inv, "host1").var("myvar").as_deref(), Some("23"));
    assert_eq!(host(&inv, "tomcat2").var("myvar").as_deref(), Some("34"));
    assert_eq!(
        host(&inv, "tomcat3").var("mysecret").as_deref(),
        Some("03#pa33w0rd")
    );
    assert_eq!(
        host(&inv, "jenkins1").vars["has_java"],
        serde_json::json!(true)
    );
    assert_eq!(
        host(&inv, "tomcat1").vars["has_java"],
        serde_json::json!(false)
    );
    assert_eq!(host(&inv, "jenkins1").groups, ["all", "web", "nginx"]);
}

const INI_PLUGIN_EXAMPLE_2: &str = "# Example 2
host1 # this is 'ungrouped'

# both hosts have same IP but diff ports, also 'ungrouped'
host2 ansible_host=127.0.0.1 ansible_port=44
host3 ansible_host=127.0.0.1 ansible_port=45

[g1]
host4

[g2]
host4 # same host as above, but member of 2 groups, will inherit vars from both
      # inventory hostnames are unique
";

#[test]
fn ini_plugin_example_2() {
    let inv = load_text("ex2", INI_PLUGIN_EXAMPLE_2).unwrap();
    assert_eq!(names(&inv), ["host1", "host2", "host3", "host4"]);
    assert_eq!(in_group(&inv, "ungrouped"), ["host1", "host2", "host3"]);
    let (h2, h3) = (host(&inv, "host2"), host(&inv, "host3"));
    assert_eq!((h2.address.as_str(), h2.port), ("127.0.0.1", Some(44)));
    assert_eq!((h3.address.as_str(), h3.port), ("127.0.0.1", Some(45)));
    assert_eq!(host(&inv, "host4").groups, ["all", "g1", "g2"]);
}

#[test]
fn the_lab_inventory_still_loads() {
    let text = "# trustsweep lab inventory (Ansible YAML). Lab secrets only: never reuse them.
all:
  vars:
    ansible_connection: winrm
    ansible_winrm_transport: ntlm
    ansible_winrm_scheme: http
    trustsweep_domain: 'lab.test'
    trustsweep_repair_user: 'LAB\\svc-repair'
    trustsweep_repair_password: 'R3pair!'
  children:
    lab_members:
      hosts:
        'ws0001.lab.test':
          ansible_host: '127.10.0.1'
          ansible_port: 5985
          ansible_user: 'Administrator'
          ansible_password: 'L0cal''s'
";
    let inv = inventory::parse_yaml(text, std::path::Path::new("<lab inventory>")).unwrap();
    let h = host(&inv, "ws0001.lab.test");
    assert_eq!((h.address.as_str(), h.port), ("127.10.0.1", Some(5985)));
    assert_eq!(h.repair_user().as_deref(), Some("LAB\\svc-repair"));
    assert_eq!(h.scheme().as_deref(), Some("http"));
    use secrecy::ExposeSecret;
    assert_eq!(h.password().unwrap().expose_secret(), "L0cal's");
    assert_eq!(h.repair_password().unwrap().expose_secret(), "R3pair!");
}

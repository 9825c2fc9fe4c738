//! What a host's probe prints, read back (`playbooks::probe`): the probe's `ts.` lines and
//! sections, `nltest /sc_query`, `/sc_verify`, `/dclist`, `/dsgetdc` text (real captures in
//! `testdata/windows-output/`), `Test-ComputerSecureChannel` output, NETLOGON events, SIDs
//! and FILETIMEs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use playbooks::probe::{
    filetime_utc, machine_sid, parse_dclist, parse_dsgetdc, parse_nltest, parse_probe,
    parse_tcsc_output, unix_utc, NetlogonEvent,
};
use playbooks::remote::CommandOutput;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let nltest = parse_nltest(&text);
    let _ = nltest.evidence("nltest /sc_verify:lab.test");
    let _ = nltest.is_success();
    let dclist = parse_dclist(&text);
    let _ = dclist.pdc();
    let _ = parse_tcsc_output(&text);
    let locator = parse_dsgetdc(&text);
    let _ = locator.found();
    let _ = locator.evidence("nltest /dsgetdc");
    if let Some(event) = NetlogonEvent::parse(&text) {
        let _ = event.evidence();
    }
    let _ = machine_sid(&text);
    if let Some(bytes) = data.first_chunk::<8>() {
        let _ = filetime_utc(u64::from_le_bytes(*bytes));
        let _ = unix_utc(i64::from_le_bytes(*bytes));
    }
    let output = CommandOutput {
        stdout: text.to_string(),
        stderr: text.to_string(),
        exit_code: 0,
    };
    if let Ok(probe) = parse_probe(&output) {
        let _ = probe.evidence();
        let _ = probe.channel_ok();
        let _ = probe.stored_ok();
        let _ = probe.domain_key();
        let _ = probe.trusted_dc();
        let _ = probe.pdc();
    }
});

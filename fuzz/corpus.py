#!/usr/bin/env python3
"""Builds fuzz/corpus/<target>/ from the repository's captures (testdata/, winrm/testdata/,
playbooks/scripts/, and ../shared/fixtures when present) and the hand seeds in fuzz/seeds/.

Run by scripts/fuzz before fuzzing; the corpus is not committed (fuzz/.gitignore). Files
are named by content hash, so running it again adds nothing twice. Each target's seed
framing (a leading mode byte, a NUL between parts) matches its fuzz_targets/<name>.rs.
"""
import base64
import hashlib
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FUZZ = ROOT / "fuzz"
CORPUS = FUZZ / "corpus"
SHARED = ROOT.parent / "shared" / "fixtures"

NTLM_DIRS = [ROOT / "winrm/testdata/ntlm", SHARED / "ntlm"]
WINRM_DIRS = [ROOT / "winrm/testdata/winrm", SHARED / "winrm"]
OUTPUT_DIRS = [ROOT / "testdata/windows-output", SHARED / "windows-output"]


def files(dirs, pattern):
    for d in dirs:
        if d.is_dir():
            yield from sorted(d.rglob(pattern))


def hexfile(path):
    text = re.sub(r"[^0-9a-fA-F]", "", path.read_text())
    return bytes.fromhex(text)


def put(target, data):
    out = CORPUS / target
    out.mkdir(parents=True, exist_ok=True)
    (out / hashlib.sha1(data).hexdigest()).write_bytes(data)


def main():
    # Hand seeds.
    seeds = FUZZ / "seeds"
    if seeds.is_dir():
        for d in sorted(p for p in seeds.iterdir() if p.is_dir()):
            for f in sorted(d.iterdir()):
                put(d.name, f.read_bytes())

    # NTLM messages (MS-NLMP 4.2 examples, pyspnego captures).
    for f in files(NTLM_DIRS, "*.hex"):
        msg = hexfile(f)
        kind = msg[8:9]
        if kind == b"\x02":
            put("ntlm_client", msg)
        elif kind == b"\x01":
            put("ntlm_server", b"\x00" + msg)
        elif kind == b"\x03":
            for mode in (b"\x01", b"\x02", b"\x03"):
                put("ntlm_server", mode + msg)

    # Encrypted framing: the DERIVED body, raw (mode 0) and its header part (mode 2).
    ct = b'multipart/encrypted;protocol="application/HTTP-SPNEGO-session-encrypted";boundary="Encrypted Boundary"'
    for f in files(WINRM_DIRS, "*.hex"):
        body = hexfile(f)
        put("wsmv_framing", b"\x00" + ct + b"\x00" + body)
    header = (
        b"\tContent-Type: application/HTTP-SPNEGO-session-encrypted\r\n"
        b"\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=64"
    )
    put("wsmv_framing", b"\x02" + header + b"\x00--Encrypted Boundary--\r\n")

    # SOAP: responses and faults to the client target, requests to the listener target,
    # a round trip of each envelope through the framing; CLIXML from stderr streams.
    for f in files(WINRM_DIRS, "*.xml"):
        data = f.read_bytes()
        name = f.name.lower()
        if "request" in name:
            put("soap_request", data)
        else:
            put("soap_response", data)
        if len(data) < 4096:
            put("wsmv_framing", b"\x01" + data)
        for m in re.finditer(rb'<rsp:Stream[^>]*Name="stderr"[^>]*>([^<]+)<', data):
            try:
                put("clixml", base64.b64decode(m.group(1)))
            except ValueError:
                pass
        text = data.decode("utf-8", "replace")
        for m in re.finditer(r"<rsp:Arguments>([^<]+)</rsp:Arguments>", text):
            put("clixml", m.group(1).encode())

    # Windows command output: nltest, Test-ComputerSecureChannel, events.
    outputs = {}
    for f in files(OUTPUT_DIRS, "*.txt"):
        outputs.setdefault(f.name, f.read_bytes())
    for data in outputs.values():
        put("probe_output", data)
    # A whole probe answer (playbooks/scripts/probe.ps1's shape) around real captures.
    def section(name, fname):
        return b"--- " + name + b"\r\n" + outputs.get(fname, b"") + b"\r\n--- end\r\n"

    probe = (
        b"ts.name=WS0001\r\nts.domain=lab.test\r\nts.part_of_domain=True\r\n"
        b"ts.domain_role=1\r\nts.user=lab\\administrator\r\n"
        b"ts.admin_sid=S-1-5-21-2127521184-1604012920-1887927527-500\r\n"
        b"ts.tcsc=False\r\nts.tcsc_error=The secure channel is broken\r\n   second line\r\n"
        b"ts.sc_query_exit=0\r\n"
        + section(b"sc_query", "nltest_sc_query_ok.txt")
        + b"ts.sc_verify_exit=1787\r\n"
        + section(b"sc_verify", "nltest_sc_verify_broken_1787.txt")
        + section(b"dsgetdc", "nltest_dsgetdc_ok.txt")
        + section(b"dsgetdc_pdc", "nltest_dsgetdc_ok.txt")
        + b"ts.event=5719|133500000000000000|LAB|%%1311\r\n"
        b"ts.event=3210|133500000000000000|LAB|DC01\r\n"
    )
    put("probe_output", probe)

    # The lab's PowerShell: the playbooks' own scripts.
    for f in files([ROOT / "playbooks/scripts"], "*.ps1"):
        put("lab_ps_parser", f.read_bytes())

    for d in sorted(CORPUS.iterdir()):
        print(f"corpus {d.name}: {sum(1 for _ in d.iterdir())} inputs", file=sys.stderr)


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# samba-dc.sh - a throwaway Samba AD DC on loopback for trustsweep's Active Directory tests.
#
#   scripts/samba-dc.sh [OPTIONS] start    install Samba (once), provision a fresh lab.test domain,
#                                          start dc1 (and dc2), seed it, print the facts
#   scripts/samba-dc.sh stop               stop the DCs this lab started (by their PID files)
#   scripts/samba-dc.sh status             say what runs
#   scripts/samba-dc.sh clean              stop, then delete the lab directory
#   scripts/samba-dc.sh replicate DEST SRC force replication of the domain NC from SRC to DEST
#                                          (dc1|dc2), as `samba-tool drs replicate` does
#
# Options:
#   --maximum-runtime SECS  samba exits by itself after SECS (default 3600): a safety net
#   --watch-pid PID         stop the lab once PID (and every other watcher) has exited
#
# Environment:
#   SAMBA_LAB_DIR   where everything lives (default: <workspace>/target/samba-lab)
#   LAB_COMPUTERS   computer accounts in OU=Workstations (default 1100: more than one page)
#   LAB_WITH_DC2    1 = also join a second DC, dc2 on 127.0.0.11 (default 0)
#
# `start` reuses a lab that is already running with the same shape (a second test binary
# joins it) and otherwise provisions a new one from nothing: the data is throwaway.
# Nothing global changes: each DC runs in a private mount namespace (unshare -m) whose
# /etc/hosts, /etc/resolv.conf and /run/samba are lab files; the DCs bind 127.0.0.10 and
# 127.0.0.11 only (no interface or route is added); no DNS forwarder, so no traffic
# leaves loopback. Needs root (apt-get, unshare, mounts).
#
# The facts a test needs are written to $SAMBA_LAB_DIR/facts.env (KEY=VALUE, one a line)
# and printed. Seeded data:
#   OU=Workstations,DC=lab,DC=test  WS0001..WS<N>; WS0001..WS0050 with password
#                                   MachinePw-WSnnnn-1!, the rest pre-staged without one;
#                                   disabled: every 250th (WS0250, WS0500, ...)
#   LAPS schema (ms-Mcs-AdmPwd, msLAPS-Password and their expiration times, confidential)
#   WS0002 legacy LAPS (ms-Mcs-AdmPwd), WS0003 Windows LAPS (msLAPS-Password JSON),
#   WS0004 no LAPS at all
#   users laps-reader (delegated read of both LAPS attributes on the OU's computers) and
#   helpdesk (an ordinary domain user), both with password LabUser-Passw0rd!
#   OU=TrustsweepLab,DC=lab,DC=test  empty: the trustsweep lab keeps its member hosts'
#                                   computer accounts there (--lab-samba)
#   user tsrepair (password LabUser-Passw0rd!) with the Reset Password right delegated on
#   the computers of OU=TrustsweepLab (what Reset-ComputerMachinePassword's -Credential
#   and a DC-side "Reset Account" need), plus write access to userAccountControl (the
#   usual "enable/disable computer accounts" delegation, what `repair --allow-enable`
#   needs). The Reset Password extended right alone lets it replace unicodePwd (the DC
#   sets pwdLastSet itself) but not write userAccountControl (checked: rc 50).
# "old password allowed period = 0": an administrative reset takes effect at once (Samba's
# default, 60, keeps accepting the previous password for an hour after a change or a reset,
# simple binds included, checked on 4.17; Microsoft documents that a computer account reset
# on the DC stays broken until the member rejoins).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
LAB=${SAMBA_LAB_DIR:-$ROOT/target/samba-lab}
COMPUTERS=${LAB_COMPUTERS:-1100}
PW_ACCOUNTS=50
WITH_DC2=${LAB_WITH_DC2:-0}
MAX_RUNTIME=3600
WATCH_PID=

REALM=LAB.TEST NETBIOS=LAB DNSDOM=lab.test BASE=DC=lab,DC=test
OU="OU=Workstations,$BASE"
LAB_OU="OU=TrustsweepLab,$BASE"
RESET_PASSWORD_RIGHT=00299570-246d-11d0-a768-00aa006e0529
ADMIN_PW='LabAdm1n!Passw0rd'
USER_PW='LabUser-Passw0rd!'
declare -A IP=([dc1]=127.0.0.10 [dc2]=127.0.0.11)
PKGS=(samba samba-ad-dc samba-ad-provision winbind krb5-user ldap-utils ldb-tools)
ETC=$LAB/etc
COMPUTER_CLASS_GUID=bf967a86-0de6-11d0-a285-00aa003049e2
# schemaIDGUID of the userAccountControl attribute (read from the provisioned schema).
UAC_ATTRIBUTE_GUID=bf967a68-0de6-11d0-a285-00aa003049e2

T0=$(date +%s%3N)
log() { printf '[samba-dc %5ss] %s\n' "$(( ($(date +%s%3N) - T0) / 1000 ))" "$*" >&2; }
die() { printf 'samba-dc.sh: %s\n' "$*" >&2; exit 1; }
ms() { echo $(( $(date +%s%3N) - $1 )); }

# ----------------------------------------------------------------------------- install
install_packages() {
    if command -v samba >/dev/null && command -v samba-tool >/dev/null && command -v ldapmodify >/dev/null \
        && command -v kinit >/dev/null && command -v ldbsearch >/dev/null \
        && [ -d /usr/share/samba/setup/ad-schema ]; then
        return
    fi
    command -v apt-get >/dev/null || die "Samba is not installed and there is no apt-get to install it (install: ${PKGS[*]})"
    local t; t=$(date +%s%3N)
    mkdir -p "$LAB"
    # Package scripts would start smbd/nmbd/samba-ad-dc on every interface through
    # invoke-rc.d; a policy-rc.d that answers 101 forbids that while we install.
    local policy=/usr/sbin/policy-rc.d made=0
    if [ ! -e $policy ]; then printf '#!/bin/sh\nexit 101\n' > $policy; chmod 755 $policy; made=1; fi
    local rc=0
    { DEBIAN_FRONTEND=noninteractive apt-get update -q \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PKGS[@]}"; } \
        >"$LAB/apt.log" 2>&1 || rc=$?
    if [ $made = 1 ]; then rm -f $policy; fi
    if [ $rc != 0 ]; then tail -25 "$LAB/apt.log" >&2; die "apt-get install ${PKGS[*]} failed (log: $LAB/apt.log)"; fi
    log "installed ${PKGS[*]} in $(ms "$t") ms ($(samba --version))"
}

# ----------------------------------------------------------------------------- lab files
write_etc() {
    mkdir -p "$ETC/tls"
    : > "$ETC/empty.conf"
    printf '127.0.0.1\tlocalhost\n127.0.0.10\tdc1.%s dc1\n127.0.0.11\tdc2.%s dc2\n' $DNSDOM $DNSDOM > "$ETC/hosts"
    printf 'search %s\nnameserver 127.0.0.10\n' $DNSDOM > "$ETC/resolv.conf"
    cat > "$ETC/krb5.conf" <<EOF
[libdefaults]
	default_realm = $REALM
	dns_lookup_realm = false
	dns_lookup_kdc = false
	rdns = false
	dns_canonicalize_hostname = false
	udp_preference_limit = 0
[realms]
	$REALM = {
		kdc = ${IP[dc1]}
		admin_server = ${IP[dc1]}
		kpasswd_server = ${IP[dc1]}
	}
[domain_realm]
	.$DNSDOM = $REALM
	$DNSDOM = $REALM
EOF
    # Samba's self-made certificate has no subjectAltName, which rustls refuses: our own
    # CA signs a server certificate valid for both DC names and addresses.
    (cd "$ETC/tls"
     openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
         -subj "/CN=trustsweep samba-lab CA" -keyout ca.key -out ca.pem \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
     openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=dc1.$DNSDOM" \
         -keyout key.pem -out dc.csr 2>/dev/null
     {
         echo "subjectAltName=DNS:dc1.$DNSDOM,DNS:dc2.$DNSDOM,DNS:$DNSDOM,IP:${IP[dc1]},IP:${IP[dc2]}"
         echo "basicConstraints=CA:FALSE"
         echo "keyUsage=critical,digitalSignature,keyEncipherment"
         echo "extendedKeyUsage=serverAuth"
     } > ext.cnf
     openssl x509 -req -in dc.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 7 -extfile ext.cnf \
         -out cert.pem 2>/dev/null
     chmod 600 key.pem ca.key; rm -f dc.csr)
}

# Run a command in DC $1's private mount namespace.
in_ns() {
    local dir=$LAB/$1; shift
    mkdir -p "$dir/run-samba" /run/samba
    unshare -m --propagation private bash -c '
        mount --bind "$0/hosts" /etc/hosts && mount --bind "$0/resolv.conf" /etc/resolv.conf &&
        mount --bind "$1/run-samba" /run/samba && shift && exec "$@"' "$ETC" "$dir" "$@"
}

dc_options() {
    local dir=$LAB/$1
    printf '%s\n' \
        --option="interfaces = ${IP[$1]}/8" --option="bind interfaces only = yes" \
        --option="server services = -nbt -wrepl -ntp_signd" \
        --option="log file = $dir/log/log.%m" --option="pid directory = $dir/run" \
        --option="ncalrpc dir = $dir/run/ncalrpc" \
        --option="ntp signd socket directory = $dir/run/ntp_signd" \
        --option="tls keyfile = $ETC/tls/key.pem" --option="tls certfile = $ETC/tls/cert.pem" \
        --option="tls cafile = $ETC/tls/ca.pem" \
        --option="dsdb:schema update allowed = true" \
        --option="ldb:nosync = true"
}

# Drop the DNS forwarder; replicate only when asked (tests force it), so that a
# difference between the DCs stays visible until then.
finish_conf() {
    local conf=$LAB/$1/etc/smb.conf
    sed -i '/dns forwarder/d' "$conf"
    sed -i '/\[global\]/a\	dreplsrv:periodic_interval = 86400\n\tdreplsrv:periodic_startup_interval = 86400\n\tdreplsrv:notify_interval = 86400\n\told password allowed period = 0' "$conf"
}

provision_dc1() {
    local dir=$LAB/dc1 t opts
    mkdir -p "$dir/log" "$dir/run"; t=$(date +%s%3N)
    mapfile -t opts < <(dc_options dc1)
    samba-tool domain provision -s "$ETC/empty.conf" --targetdir="$dir" \
        --realm=$REALM --domain=$NETBIOS --server-role=dc --dns-backend=SAMBA_INTERNAL \
        --adminpass="$ADMIN_PW" --host-name=dc1 --host-ip=${IP[dc1]} "${opts[@]}" \
        >"$dir/log/provision.log" 2>&1 || { tail -30 "$dir/log/provision.log" >&2; die "provisioning dc1 failed"; }
    finish_conf dc1
    log "dc1 provisioned in $(ms "$t") ms"
}

join_dc2() {
    local dir=$LAB/dc2 t opts
    mkdir -p "$dir/log" "$dir/run"; t=$(date +%s%3N)
    mapfile -t opts < <(dc_options dc2)
    in_ns dc2 samba-tool domain join $DNSDOM DC -s "$ETC/empty.conf" --targetdir="$dir" \
        --server=dc1.$DNSDOM -U "$NETBIOS\\Administrator%$ADMIN_PW" --dns-backend=SAMBA_INTERNAL \
        --option="netbios name = DC2" "${opts[@]}" >"$dir/log/join.log" 2>&1 \
        || { tail -30 "$dir/log/join.log" >&2; die "joining dc2 failed"; }
    finish_conf dc2
    # samba_dnsupdate skips loopback addresses: register dc2 (A and _msdcs CNAME) by hand,
    # or dc1 cannot find it as a replication partner.
    local guid
    guid=$(ldbsearch -H "$dir/private/sam.ldb" -s base \
        -b "CN=NTDS Settings,CN=DC2,CN=Servers,CN=Default-First-Site-Name,CN=Sites,CN=Configuration,$BASE" \
        objectGUID 2>/dev/null | awk '/^objectGUID:/{print $2}')
    [ -n "$guid" ] || die "dc2 joined but its NTDS Settings object has no objectGUID"
    in_ns dc2 samba-tool dns add ${IP[dc1]} $DNSDOM dc2 A ${IP[dc2]} -s "$ETC/empty.conf" \
        -U "$NETBIOS\\Administrator%$ADMIN_PW" >/dev/null
    in_ns dc2 samba-tool dns add ${IP[dc1]} _msdcs.$DNSDOM "$guid" CNAME dc2.$DNSDOM -s "$ETC/empty.conf" \
        -U "$NETBIOS\\Administrator%$ADMIN_PW" >/dev/null
    log "dc2 joined in $(ms "$t") ms"
}

# ----------------------------------------------------------------------------- run
pid_of() { cat "$LAB/$1/run/samba.pid" 2>/dev/null; }
running() { local p; p=$(pid_of "$1") && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

start_dc() {
    local dc=$1 dir=$LAB/$1 ip=${IP[$1]} t end
    t=$(date +%s%3N)
    # fd 9 holds the lab lock: the daemon must not inherit it.
    in_ns "$dc" samba -D -s "$dir/etc/smb.conf" --maximum-runtime="$MAX_RUNTIME" \
        </dev/null >>"$dir/log/samba.out" 2>&1 9>&-
    end=$(( $(date +%s) + 90 ))
    # Ready means: an LDAPS simple bind whose certificate verifies against our CA.
    until LDAPTLS_CACERT=$ETC/tls/ca.pem ldapsearch -LLL -x -o nettimeout=5 -H "ldaps://$ip" \
            -D "Administrator@$DNSDOM" -w "$ADMIN_PW" -b "$BASE" -s base dn >/dev/null 2>&1; do
        if [ "$(date +%s)" -ge $end ]; then
            tail -20 "$dir/log/log.samba" >&2 2>/dev/null || true
            die "$dc did not answer an LDAPS bind on $ip:636 within 90 s (logs: $dir/log)"
        fi
        sleep 0.2
    done
    log "$dc up (pid $(pid_of "$dc")) in $(ms "$t") ms"
}

stop_dc() {
    local dc=$1 dir=$LAB/$1 p f q
    p=$(pid_of "$dc") || return 0
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
        kill -TERM "$p" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
        # smbd and winbindd follow the samba master; make sure, by our own PID files only.
        for f in "$dir/run/smbd.pid" "$dir/run/winbindd.pid"; do
            q=$(cat "$f" 2>/dev/null) || continue
            for _ in $(seq 1 30); do kill -0 "$q" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$q" 2>/dev/null && kill -KILL "$q" 2>/dev/null || true
        done
        log "$dc (pid $p) stopped"
    fi
    rm -f "$dir/run/samba.pid"
}

stop_all() { stop_dc dc2; stop_dc dc1; rm -rf "$LAB/owners"; }

# ----------------------------------------------------------------------------- seed
LDAP_ADMIN=()
ldap_admin_init() {
    export LDAPTLS_CACERT=$ETC/tls/ca.pem
    LDAP_ADMIN=(-x -H "ldaps://${IP[dc1]}" -D "Administrator@$DNSDOM" -w "$ADMIN_PW")
}

utf16_b64() { printf '"%s"' "$1" | iconv -f UTF-8 -t UTF-16LE | base64 -w0; }

seed_schema() {
    local t; t=$(date +%s%3N)
    # The LAPS attributes with their published OIDs; searchFlags 904 = confidential (0x80)
    # + never audit + RODC-filtered, as Microsoft's schema extensions set them.
    ldapmodify "${LDAP_ADMIN[@]}" >"$LAB/log/schema.log" 2>&1 <<EOF || { cat "$LAB/log/schema.log" >&2; die "LAPS schema extension failed"; }
dn: CN=ms-Mcs-AdmPwd,CN=Schema,CN=Configuration,$BASE
changetype: add
objectClass: attributeSchema
lDAPDisplayName: ms-Mcs-AdmPwd
attributeID: 1.2.840.113556.1.8000.2554.50051.45980.28112.18903.35903.6685103.1224907.2.1
attributeSyntax: 2.5.5.5
oMSyntax: 19
isSingleValued: TRUE
searchFlags: 904

dn: CN=ms-Mcs-AdmPwdExpirationTime,CN=Schema,CN=Configuration,$BASE
changetype: add
objectClass: attributeSchema
lDAPDisplayName: ms-Mcs-AdmPwdExpirationTime
attributeID: 1.2.840.113556.1.8000.2554.50051.45980.28112.18903.35903.6685103.1224907.2.2
attributeSyntax: 2.5.5.16
oMSyntax: 65
isSingleValued: TRUE
searchFlags: 0

dn: CN=ms-LAPS-Password,CN=Schema,CN=Configuration,$BASE
changetype: add
objectClass: attributeSchema
lDAPDisplayName: msLAPS-Password
attributeID: 1.2.840.113556.1.6.44.1.2
attributeSyntax: 2.5.5.5
oMSyntax: 19
isSingleValued: TRUE
searchFlags: 904

dn: CN=ms-LAPS-PasswordExpirationTime,CN=Schema,CN=Configuration,$BASE
changetype: add
objectClass: attributeSchema
lDAPDisplayName: msLAPS-PasswordExpirationTime
attributeID: 1.2.840.113556.1.6.44.1.1
attributeSyntax: 2.5.5.16
oMSyntax: 65
isSingleValued: TRUE
searchFlags: 0

dn:
changetype: modify
add: schemaUpdateNow
schemaUpdateNow: 1
-

dn: CN=Computer,CN=Schema,CN=Configuration,$BASE
changetype: modify
add: mayContain
mayContain: ms-Mcs-AdmPwd
mayContain: ms-Mcs-AdmPwdExpirationTime
mayContain: msLAPS-Password
mayContain: msLAPS-PasswordExpirationTime
-

dn:
changetype: modify
add: schemaUpdateNow
schemaUpdateNow: 1
-
EOF
    log "LAPS schema extension in $(ms "$t") ms"
}

# Read one attribute of one object from dc1's database (ldbsearch prints GUIDs and SIDs
# as strings).
ldb_attr() { # dn attr
    ldbsearch -H "$LAB/dc1/private/sam.ldb" -s base -b "$1" "$2" 2>/dev/null | awk -v a="$2:" '$1==a{print $2; exit}'
}

seed_ou_and_users() {
    local t; t=$(date +%s%3N)
    ldapadd "${LDAP_ADMIN[@]}" >/dev/null <<EOF
dn: $OU
objectClass: organizationalUnit
ou: Workstations

dn: CN=laps-reader,CN=Users,$BASE
objectClass: user
sAMAccountName: laps-reader
userPrincipalName: laps-reader@$DNSDOM
userAccountControl: 512
unicodePwd:: $(utf16_b64 "$USER_PW")

dn: CN=helpdesk,CN=Users,$BASE
objectClass: user
sAMAccountName: helpdesk
userPrincipalName: helpdesk@$DNSDOM
userAccountControl: 512
unicodePwd:: $(utf16_b64 "$USER_PW")
EOF
    # Delegate the read of both LAPS passwords to laps-reader on the OU's computers, as
    # Set-AdmPwdReadPasswordPermission / Set-LapsADReadPasswordPermission do: read
    # property plus control access (what confidential attributes need) on the attribute,
    # inherited by computer objects. Set before the computers exist, so plain inheritance
    # gives it to each of them.
    local sid g_legacy g_windows
    sid=$(ldb_attr "CN=laps-reader,CN=Users,$BASE" objectSid)
    g_legacy=$(ldb_attr "CN=ms-Mcs-AdmPwd,CN=Schema,CN=Configuration,$BASE" schemaIDGUID)
    g_windows=$(ldb_attr "CN=ms-LAPS-Password,CN=Schema,CN=Configuration,$BASE" schemaIDGUID)
    [ -n "$sid" ] && [ -n "$g_legacy" ] && [ -n "$g_windows" ] \
        || die "cannot read laps-reader's SID or the LAPS schemaIDGUIDs (sid='$sid' legacy='$g_legacy' windows='$g_windows')"
    samba-tool dsacl set -H "$LAB/dc1/private/sam.ldb" --objectdn="$OU" \
        --sddl="(OA;CIIO;RPCR;$g_legacy;$COMPUTER_CLASS_GUID;$sid)(OA;CIIO;RPCR;$g_windows;$COMPUTER_CLASS_GUID;$sid)" \
        >"$LAB/log/dsacl.log" 2>&1 || { cat "$LAB/log/dsacl.log" >&2; die "delegating LAPS read to laps-reader failed"; }
    log "OU, users laps-reader/helpdesk and LAPS delegation in $(ms "$t") ms"
    t=$(date +%s%3N)
    ldapadd "${LDAP_ADMIN[@]}" >/dev/null <<EOF
dn: $LAB_OU
objectClass: organizationalUnit
ou: TrustsweepLab

dn: CN=tsrepair,CN=Users,$BASE
objectClass: user
sAMAccountName: tsrepair
userPrincipalName: tsrepair@$DNSDOM
userAccountControl: 512
unicodePwd:: $(utf16_b64 "$USER_PW")
EOF
    # Reset Password (the extended right) on the computer objects of the lab OU, inherited,
    # as "Delegate Control > Reset password" on computer objects sets it. Only that: a
    # reset needs no property write (pwdLastSet is the DC's), so none is granted.
    sid=$(ldb_attr "CN=tsrepair,CN=Users,$BASE" objectSid)
    [ -n "$sid" ] || die "cannot read tsrepair's SID"
    samba-tool dsacl set -H "$LAB/dc1/private/sam.ldb" --objectdn="$LAB_OU" \
        --sddl="(OA;CIIO;CR;$RESET_PASSWORD_RIGHT;$COMPUTER_CLASS_GUID;$sid)(OA;CIIO;WP;$UAC_ATTRIBUTE_GUID;$COMPUTER_CLASS_GUID;$sid)" \
        >"$LAB/log/dsacl-tsrepair.log" 2>&1 || { cat "$LAB/log/dsacl-tsrepair.log" >&2; die "delegating Reset Password to tsrepair failed"; }
    log "OU=TrustsweepLab and user tsrepair (Reset Password and userAccountControl delegated) in $(ms "$t") ms"
}

seed_computers() {
    local t; t=$(date +%s%3N)
    # One LDIF, one connection. Every 250th account is disabled (ACCOUNTDISABLE 0x2).
    # Password hashing (Kerberos keys) costs the DC ~20 ms an account, so only the first
    # $PW_ACCOUNTS get a password (MachinePw-WSnnnn-1!); the rest are pre-staged accounts
    # without one (PASSWD_NOTREQD 0x20), as AD allows: 1100 accounts take ~9 s, not ~30 s.
    python3 - "$COMPUTERS" "$OU" "$DNSDOM" "$PW_ACCOUNTS" > "$LAB/computers.ldif" <<'EOF'
import base64, sys
n, ou, dom, with_pw = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
out = []
for i in range(1, n + 1):
    name = "WS%04d" % i
    fqdn = "%s.%s" % (name.lower(), dom)
    uac = 4096 | (2 if i % 250 == 0 else 0) | (0 if i <= with_pw else 0x20)
    entry = ("dn: CN=%s,%s\nobjectClass: computer\nsAMAccountName: %s$\nuserAccountControl: %d\n"
             "dNSHostName: %s\nservicePrincipalName: HOST/%s\nservicePrincipalName: HOST/%s\n"
             "operatingSystem: Windows 11 Enterprise\noperatingSystemVersion: 10.0 (22631)\n"
             % (name, ou, name, uac, fqdn, fqdn, name))
    if i <= with_pw:
        pw = base64.b64encode(('"MachinePw-%s-1!"' % name).encode("utf-16-le")).decode()
        entry += "unicodePwd:: %s\n" % pw
    out.append(entry)
sys.stdout.write("\n".join(out))
EOF
    ldapadd "${LDAP_ADMIN[@]}" -f "$LAB/computers.ldif" >/dev/null
    log "$COMPUTERS computer accounts in $(ms "$t") ms"
}

seed_laps() {
    local t; t=$(date +%s%3N)
    # Expiration times: 2030-01-01 as FILETIME. Windows LAPS' "t" is the update time as
    # hexadecimal FILETIME.
    ldapmodify "${LDAP_ADMIN[@]}" >/dev/null <<EOF
dn: CN=WS0002,$OU
changetype: modify
replace: ms-Mcs-AdmPwd
ms-Mcs-AdmPwd: Legacy-Laps-0002!
-
replace: ms-Mcs-AdmPwdExpirationTime
ms-Mcs-AdmPwdExpirationTime: 135379296000000000
-

dn: CN=WS0003,$OU
changetype: modify
replace: msLAPS-Password
msLAPS-Password: {"n":"LapsAdmin","t":"1dbe1d1a2b3c4d5","p":"Windows-Laps-0003!"}
-
replace: msLAPS-PasswordExpirationTime
msLAPS-PasswordExpirationTime: 135379296000000000
-
EOF
    log "LAPS values in $(ms "$t") ms"
}

# ----------------------------------------------------------------------------- facts
write_facts() {
    local f=$LAB/facts.env
    {
        echo "LAB_DIR=$LAB"
        echo "LAB_REALM=$REALM"
        echo "LAB_DNS_DOMAIN=$DNSDOM"
        echo "LAB_BASE_DN=$BASE"
        echo "LAB_OU=$OU"
        echo "LAB_LAB_OU=$LAB_OU"
        echo "LAB_SCRIPT=$HERE/samba-dc.sh"
        echo "LAB_DC1_URL=ldaps://dc1.$DNSDOM"
        echo "LAB_DC1_ADDR=${IP[dc1]}"
        if [ "$WITH_DC2" = 1 ]; then echo "LAB_DC2_URL=ldaps://dc2.$DNSDOM"; echo "LAB_DC2_ADDR=${IP[dc2]}"; fi
        echo "LAB_CA_FILE=$ETC/tls/ca.pem"
        echo "LAB_KRB5_CONFIG=$ETC/krb5.conf"
        echo "LAB_ADMIN_USER=Administrator@$DNSDOM"
        echo "LAB_ADMIN_PASSWORD=$ADMIN_PW"
        echo "LAB_LAPS_READER=laps-reader@$DNSDOM"
        echo "LAB_NON_READER=helpdesk@$DNSDOM"
        echo "LAB_REPAIR_USER=tsrepair@$DNSDOM"
        echo "LAB_USER_PASSWORD=$USER_PW"
        echo "LAB_COMPUTERS=$COMPUTERS"
        echo "LAB_DISABLED=$(for ((i = 250; i <= COMPUTERS; i += 250)); do printf 'WS%04d ' $i; done | sed 's/ $//')"
        echo "LAB_MACHINE_PASSWORD_FORMAT=MachinePw-{NAME}-1!"
        echo "LAB_ACCOUNTS_WITH_PASSWORD=$PW_ACCOUNTS"
    } > "$f.tmp"
    mv "$f.tmp" "$f"
    chmod 600 "$f"
}

print_facts() {
    cat <<EOF
== samba lab: $REALM ($BASE)
   dc1         ldaps://dc1.$DNSDOM (${IP[dc1]}:636), StartTLS on :389, KDC ${IP[dc1]}:88
$( [ "$WITH_DC2" = 1 ] && echo "   dc2         ldaps://dc2.$DNSDOM (${IP[dc2]}:636), replica of dc1" )
   CA          $ETC/tls/ca.pem   (names resolve only inside the lab: connect to the address)
   krb5.conf   $ETC/krb5.conf
   computers   $COMPUTERS in $OU
   facts       $LAB/facts.env (credentials included; mode 600)
   stop        $0 stop
EOF
}

# ----------------------------------------------------------------------------- watchdog
# Stops the lab when every registered owner process has gone.
ensure_watchdog() {
    mkdir -p "$LAB/owners"
    : > "$LAB/owners/$WATCH_PID"
    local w; w=$(cat "$LAB/watchdog.pid" 2>/dev/null || true)
    if [ -n "$w" ] && kill -0 "$w" 2>/dev/null; then return; fi
    (
        trap '' HUP
        while sleep 1; do
            alive=0
            for o in "$LAB"/owners/*; do
                [ -e "$o" ] || continue
                if kill -0 "${o##*/}" 2>/dev/null; then alive=1; else rm -f "$o"; fi
            done
            if [ $alive = 0 ]; then
                exec 9>"$LAB/.lock"; flock 9
                # an owner may have registered while we took the lock
                if compgen -G "$LAB/owners/*" >/dev/null; then exec 9>&-; continue; fi
                stop_dc dc2; stop_dc dc1; rm -f "$LAB/watchdog.pid"; exit 0
            fi
        done
    ) </dev/null >>"$LAB/watchdog.log" 2>&1 9>&- &
    echo $! > "$LAB/watchdog.pid"
    disown || true
}

# ----------------------------------------------------------------------------- main
ARGS=()
while [ $# -gt 0 ]; do
    case $1 in
        --maximum-runtime) MAX_RUNTIME=${2:?--maximum-runtime needs seconds}; shift 2 ;;
        --maximum-runtime=*) MAX_RUNTIME=${1#*=}; shift ;;
        --watch-pid) WATCH_PID=${2:?--watch-pid needs a PID}; shift 2 ;;
        --watch-pid=*) WATCH_PID=${1#*=}; shift ;;
        -h|--help) sed -n '2,48p' "$0"; exit 0 ;;
        *) ARGS+=("$1"); shift ;;
    esac
done
set -- "${ARGS[@]}"

case ${1:-} in
    start)
        [ "$(id -u)" = 0 ] || die "needs root: apt-get, unshare -m and bind mounts (running as uid $(id -u))"
        mkdir -p "$LAB"
        unshare -m --propagation private true 2>/dev/null \
            || die "cannot make a private mount namespace (unshare -m): needs CAP_SYS_ADMIN (in a container: --privileged or --cap-add SYS_ADMIN)"
        install_packages
        exec 9>"$LAB/.lock"; flock 9
        shape="v3 computers=$COMPUTERS dc2=$WITH_DC2"
        if running dc1 && { [ "$WITH_DC2" = 0 ] || running dc2; } \
            && [ "$(cat "$LAB/shape" 2>/dev/null)" = "$shape" ] && [ -s "$LAB/facts.env" ]; then
            log "lab already running ($shape): reusing it"
        else
            stop_all
            rm -rf "${LAB:?}"/{dc1,dc2,etc,log,facts.env,shape,computers.ldif}
            mkdir -p "$LAB/log"
            write_etc
            provision_dc1
            start_dc dc1
            ldap_admin_init
            seed_schema
            seed_ou_and_users
            seed_computers
            seed_laps
            if [ "$WITH_DC2" = 1 ]; then join_dc2; start_dc dc2; fi
            echo "$shape" > "$LAB/shape"
            write_facts
            log "lab ready in $(ms "$T0") ms"
        fi
        if [ -n "$WATCH_PID" ]; then ensure_watchdog; fi
        print_facts ;;
    stop)
        mkdir -p "$LAB"; exec 9>"$LAB/.lock"; flock 9
        stop_all ;;
    clean)
        mkdir -p "$LAB"; exec 9>"$LAB/.lock"; flock 9
        stop_all
        rm -rf "${LAB:?}"/{dc1,dc2,etc,log,facts.env,shape,computers.ldif,apt.log,watchdog.log,watchdog.pid}
        log "lab state removed" ;;
    status)
        for dc in dc1 dc2; do
            if running $dc; then echo "$dc: running (pid $(pid_of $dc), ${IP[$dc]})"; else echo "$dc: stopped"; fi
        done ;;
    replicate)
        dest=${2:?replicate DEST SRC} src=${3:?replicate DEST SRC}
        [ -n "${IP[$dest]:-}" ] && [ -n "${IP[$src]:-}" ] || die "replicate: DEST and SRC are dc1 or dc2"
        in_ns "$dest" samba-tool drs replicate "$dest.$DNSDOM" "$src.$DNSDOM" "$BASE" -s "$ETC/empty.conf" \
            -U "$NETBIOS\\Administrator%$ADMIN_PW" ;;
    *)
        echo "usage: $0 [--maximum-runtime SECS] [--watch-pid PID] start|stop|status|clean|replicate DEST SRC" >&2
        exit 2 ;;
esac

$ProgressPreference = 'SilentlyContinue'
$cs = Get-CimInstance -ClassName Win32_ComputerSystem
$domain = $cs.Domain
Write-Output "ts.name=$($cs.Name)"
Write-Output "ts.domain=$domain"
Write-Output "ts.part_of_domain=$($cs.PartOfDomain)"
Write-Output "ts.domain_role=$($cs.DomainRole)"
Write-Output "ts.user=$(whoami.exe)"
$admin = Get-CimInstance -ClassName Win32_UserAccount -Filter "LocalAccount=True AND SID LIKE 'S-1-5-21-%-500'"
Write-Output "ts.admin_sid=$($admin.SID)"
if ($cs.PartOfDomain -and $cs.DomainRole -lt 4) {
    $tcsc = Test-ComputerSecureChannel -ErrorAction SilentlyContinue -ErrorVariable tcscErr
    Write-Output "ts.tcsc=$tcsc"
    Write-Output "ts.tcsc_error=$tcscErr"
    $out = nltest.exe "/sc_query:$domain" 2>&1
    Write-Output "ts.sc_query_exit=$LASTEXITCODE"
    Write-Output '--- sc_query'
    $out
    Write-Output '--- end'
    $out = nltest.exe "/sc_verify:$domain" 2>&1
    Write-Output "ts.sc_verify_exit=$LASTEXITCODE"
    Write-Output '--- sc_verify'
    $out
    Write-Output '--- end'
    $out = nltest.exe "/dsgetdc:$domain" /force 2>&1
    Write-Output '--- dsgetdc'
    $out
    Write-Output '--- end'
    $out = nltest.exe "/dsgetdc:$domain" /pdc 2>&1
    Write-Output '--- dsgetdc_pdc'
    $out
    Write-Output '--- end'
    $ev = Get-WinEvent -FilterHashtable @{ LogName = 'System'; ProviderName = 'NETLOGON'; Id = 3210, 5719 } -MaxEvents 10 -ErrorAction SilentlyContinue
    foreach ($e in $ev) {
        Write-Output "ts.event=$($e.Id)|$($e.TimeCreated.ToFileTimeUtc())|$($e.Properties[0].Value)|$($e.Properties[1].Value)"
    }
}

$x = @{ a = 1; b = "two" }
try { Get-Item -Path "HKLM:\SOFTWARE" -ErrorAction Stop | Out-Null } catch { throw "no: $($_.Exception.Message)" }
foreach ($i in @(1,2,3)) { if ($i -eq 2 -and -not $false) { $x.a += $i } elseif ($i -like "3*") { exit 3 } else { $input | Out-String } }
[Console]::InputEncoding = [System.Text.Encoding]::UTF8
nltest.exe "/sc_query:$env:USERDNSDOMAIN" 2>&1 | Select-Object -ExpandProperty Length

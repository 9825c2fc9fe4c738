try { Test-ComputerSecureChannel -Repair {{server}}-Credential $cred -ErrorAction Stop; Write-Output 'ts.reset=ok' } catch { Write-Output "ts.reset_error=$($_.Exception.Message)" }

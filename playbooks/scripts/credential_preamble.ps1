$ProgressPreference = 'SilentlyContinue'
[Console]::InputEncoding = New-Object System.Text.UTF8Encoding $false
$lines = @($input)
$cred = New-Object System.Management.Automation.PSCredential($lines[0], (ConvertTo-SecureString $lines[1] -AsPlainText -Force))

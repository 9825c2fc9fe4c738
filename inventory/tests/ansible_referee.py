"""The referee of inventory/tests/ansible_referee.rs: what the pinned ansible-core makes of an
inventory. Arguments: the inventory sources, `--`, the host patterns. Prints JSON:
`list` (`ansible-inventory --list`), `hosts` (per host: the winrm connection's options as
its plugin resolves them from the host's templated variables, the host's groups, and its
variables templated) and `patterns` (`ansible --list-hosts PATTERN`)."""
import json, os, subprocess, sys
args = sys.argv[1:]
sep = args.index('--')
sources, patterns = args[:sep], args[sep+1:]
bindir = os.path.dirname(sys.executable)
iargs = [x for s in sources for x in ('-i', s)]
env = dict({k: v for k, v in os.environ.items() if not k.startswith('ANSIBLE_')}, ANSIBLE_NOCOLOR='1', ANSIBLE_HOME=os.environ.get('ANSIBLE_HOME', '/tmp'))
r = subprocess.run([os.path.join(bindir, 'ansible-inventory'), *iargs, '--list'], env=env, capture_output=True, text=True)
if r.returncode != 0:
    sys.exit('ansible-inventory failed:\n' + r.stderr)
listing = json.loads(r.stdout)

def list_hosts(p):
    r = subprocess.run([os.path.join(bindir, 'ansible'), *iargs, '--list-hosts', p], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        return {'error': r.stderr.strip()}
    return [l.strip() for l in r.stdout.splitlines()[1:] if l.strip()]

from ansible.parsing.dataloader import DataLoader
from ansible.inventory.manager import InventoryManager
from ansible.vars.manager import VariableManager
from ansible.template import Templar
from ansible.plugins.loader import connection_loader
from ansible.playbook.play_context import PlayContext
from ansible import constants as C
loader = DataLoader()
inv = InventoryManager(loader=loader, sources=sources)
vm = VariableManager(loader=loader, inventory=inv)
# Loading the plugin registers its options' variables.
connection_loader.get('winrm', PlayContext(), None)
option_vars = C.config.get_plugin_vars('connection', 'winrm')
hosts = {}
for host in inv.get_hosts('all'):
    hv = vm.get_vars(host=host, include_hostvars=False)
    templar = Templar(loader=loader, variables=hv)
    opts = {}
    for k in option_vars:
        if k in hv:
            opts[k] = templar.template(hv[k])
    conn = connection_loader.get('winrm', PlayContext(), None)
    conn.set_options(var_options=opts)
    port = conn.get_option('port')
    scheme = conn.get_option('scheme') or ('http' if port == 5985 else 'https')
    rendered = {}
    for k, v in listing['_meta']['hostvars'].get(host.name, {}).items():
        try:
            rendered[k] = templar.template(hv[k])
        except Exception as e:
            rendered[k] = {'__error__': type(e).__name__}
    hosts[host.name] = {
        'address': conn.get_option('remote_addr'), 'port': port, 'scheme': scheme,
        'user': conn.get_option('remote_user'), 'password': conn.get_option('remote_password'),
        'operation_timeout': conn.get_option('connection_timeout'),
        'groups': sorted(g.name for g in host.get_groups()),
        'rendered': rendered,
    }
json.dump({'list': listing, 'hosts': hosts, 'patterns': {p: list_hosts(p) for p in patterns}}, sys.stdout, default=str)

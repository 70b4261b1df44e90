{#- saltmasq.service: install saltmasq on the master and run it under systemd, from pillar.
    Pillar, under saltmasq:service (source and env are required):
      source        a saltmasq package tarball (`npm run build && npm pack`): salt://, https:// or a path
      source_hash   its hash, when source is not on the salt fileserver
      user          saltmasq                   the system user it runs as (created here)
      install_dir   /opt/saltmasq
      node          /usr/bin/node              Node.js >= 20.18.1 (22 LTS recommended)
      env_file      /etc/saltmasq/saltmasq.env written from `env` below, root-only (0600)
      env           {VARIABLE: value, ...}     saltmasq's environment (.env.example lists it)
    The directories of the files saltmasq writes (from env, or saltmasq's defaults) are created,
    owned by the user, and are the only paths the unit may write.
    Apply on the master's minion:  salt <master minion> state.apply saltmasq.service #}
{%- set cfg = salt['pillar.get']('saltmasq:service', {}) %}
{%- set user = cfg.get('user', 'saltmasq') %}
{%- set install_dir = cfg.get('install_dir', '/opt/saltmasq') %}
{%- set node = cfg.get('node', '/usr/bin/node') %}
{%- set env_file = cfg.get('env_file', '/etc/saltmasq/saltmasq.env') %}
{%- set env = cfg.get('env', {}) %}
{%- set format = env.get('RESERVATIONS_FORMAT', 'hostsfile') %}
{%- set dirname = salt['file.dirname'] %}
{%- if env.get('DNSMASQ_PUBLISH', 'local') == 'salt' %}
{#-   Publishing through Salt: saltmasq writes nothing but its state here. #}
{%-   set dirs = [] %}
{%- elif format == 'conf' %}
{%-   set dirs = [dirname(env.get('RESERVATIONS_FILE', '/etc/dnsmasq.d/reservations.conf'))] %}
{%- elif format == 'hostsdir' %}
{%-   set dirs = [env.get('DHCP_HOSTSDIR', '/etc/dnsmasq.saltmasq/dhcp-hosts.d'), env.get('DNS_HOSTSDIR', '/etc/dnsmasq.saltmasq/hosts.d')] %}
{%- else %}
{%-   set dirs = [dirname(env.get('DHCP_HOSTSFILE', '/etc/dnsmasq.saltmasq/dhcp-hosts')), dirname(env.get('ADDN_HOSTS_FILE', '/etc/dnsmasq.saltmasq/addn-hosts'))] %}
{%-   if env.get('HOSTSFILE_DELTAS', 'true') | string | lower != 'false' %}
{%-     set dirs = dirs + [env.get('DHCP_HOSTSDIR', '/etc/dnsmasq.saltmasq/dhcp-hosts.d'), env.get('DNS_HOSTSDIR', '/etc/dnsmasq.saltmasq/hosts.d')] %}
{%-   endif %}
{%- endif %}
{%- set write_dirs = (dirs + [dirname(env.get('STATE_FILE', '/var/lib/saltmasq/state.json'))]) | unique | list %}

{%- if 'source' not in cfg or not env %}
saltmasq-service-pillar:
  test.fail_without_changes:
    - name: "pillar saltmasq:service needs source (a saltmasq package) and env (its environment)"
{%- else %}

saltmasq-user:
  user.present:
    - name: {{ user }}
    - system: True
    - home: {{ install_dir }}
    - createhome: False
    - shell: /usr/sbin/nologin

saltmasq-code:
  archive.extracted:
    - name: {{ install_dir }}
    - source: {{ cfg['source'] }}
{%-   if 'source_hash' in cfg %}
    - source_hash: {{ cfg['source_hash'] }}
{%-   else %}
    - skip_verify: True
{%-   endif %}
    - options: --strip-components=1
    - enforce_toplevel: False
    - user: root
    - group: root

saltmasq-dependencies:
  cmd.run:
    - name: npm install --omit=dev --no-audit --no-fund
    - cwd: {{ install_dir }}
    - onchanges:
      - archive: saltmasq-code

{%-   for dir in write_dirs %}

saltmasq-dir-{{ loop.index }}:
  file.directory:
    - name: {{ dir }}
    - user: {{ user }}
    - group: {{ user }}
    - mode: '0755'
    - makedirs: True
    - require:
      - user: saltmasq-user
{%-   endfor %}

saltmasq-env-file:
  file.managed:
    - name: {{ env_file }}
    - user: root
    - group: root
    - mode: '0600'
    - makedirs: True
    - show_changes: False
    - contents: |
        # Managed by Salt (saltmasq.service, pillar saltmasq:service:env).
{%-   for key, value in env | dictsort %}
        {{ key }}={{ value }}
{%-   endfor %}

{%-   set unit %}{% include 'saltmasq/files/saltmasq.service.jinja' %}{% endset %}

saltmasq-unit:
  file.managed:
    - name: /etc/systemd/system/saltmasq.service
    - mode: '0644'
    - contents: {{ unit | yaml_encode }}

saltmasq-systemd-reload:
  module.run:
    - service.systemctl_reload: []
    - onchanges:
      - file: saltmasq-unit

saltmasq-running:
  service.running:
    - name: saltmasq
    - enable: True
    - require:
      - cmd: saltmasq-dependencies
      - module: saltmasq-systemd-reload
{%-   for dir in write_dirs %}
      - file: saltmasq-dir-{{ loop.index }}
{%-   endfor %}
    - watch:
      - file: saltmasq-env-file
      - file: saltmasq-unit
      - archive: saltmasq-code
{%- endif %}

{#- saltmasq.dnsmasq: point dnsmasq at the files saltmasq writes, and make sure reloads work.
    Pillar (all optional), under saltmasq:dnsmasq:
      format          hostsfile                 as saltmasq's RESERVATIONS_FORMAT: hostsfile or hostsdir
      conf_dir        /etc/dnsmasq.d            where this state drops saltmasq.conf
      hosts_dir       /etc/dnsmasq.saltmasq     hostsdir:  DHCP_HOSTSDIR is <hosts_dir>/dhcp-hosts.d
                                                           and DNS_HOSTSDIR <hosts_dir>/hosts.d
                                                hostsfile: DHCP_HOSTSFILE is <hosts_dir>/dhcp-hosts,
                                                           ADDN_HOSTS_FILE <hosts_dir>/addn-hosts and
                                                           the delta files' DHCP_HOSTSDIR
                                                           <hosts_dir>/dhcp-hosts.d and
                                                           DNS_HOSTSDIR <hosts_dir>/hosts.d
      manage_service  True                      install, enable and run the dnsmasq service
    Apply on the dnsmasq minion:  salt <dnsmasq minion> state.apply saltmasq.dnsmasq #}
{%- set cfg = salt['pillar.get']('saltmasq:dnsmasq', {}) %}
{%- set format = cfg.get('format', 'hostsfile') %}
{%- set conf_dir = cfg.get('conf_dir', '/etc/dnsmasq.d') %}
{%- set hosts_dir = cfg.get('hosts_dir', '/etc/dnsmasq.saltmasq') %}
{%- if format == 'hostsdir' %}
{%-   set watched = {'dhcp-hostsdir': hosts_dir ~ '/dhcp-hosts.d', 'hostsdir': hosts_dir ~ '/hosts.d'} %}
{%- elif format == 'hostsfile' %}
{#-   The directories hold the delta files of additions (saltmasq's HOSTSFILE_DELTAS, on by default). #}
{%-   set watched = {'dhcp-hostsfile': hosts_dir ~ '/dhcp-hosts', 'addn-hosts': hosts_dir ~ '/addn-hosts', 'dhcp-hostsdir': hosts_dir ~ '/dhcp-hosts.d', 'hostsdir': hosts_dir ~ '/hosts.d'} %}
{%- else %}
saltmasq-format:
  test.fail_without_changes:
    - name: "saltmasq:dnsmasq:format must be hostsdir or hostsfile (conf needs no state), not {{ format }}"
{%-   set watched = {} %}
{%- endif %}

saltmasq-modules:
  saltutil.sync_modules:
    - refresh: True

saltmasq-hosts-dir:
  file.directory:
    - name: {{ hosts_dir }}
    - mode: '0755'
    - makedirs: True

{%- for option, path in watched.items() %}
{#- dnsmasq will not start on a missing file or directory; saltmasq owns the content, so never
    replace a file or clean a directory. #}
saltmasq-{{ option }}:
{%-   if option in ('dhcp-hostsdir', 'hostsdir') %}
  file.directory:
    - name: {{ path }}
    - mode: '0755'
{%-   else %}
  file.managed:
    - name: {{ path }}
    - mode: '0644'
    - replace: False
{%-   endif %}
    - require:
      - file: saltmasq-hosts-dir
{%- endfor %}

saltmasq-dnsmasq-conf:
  file.managed:
    - name: {{ conf_dir }}/saltmasq.conf
    - mode: '0644'
    - makedirs: True
    - contents: |
        # Managed by Salt (saltmasq.dnsmasq, format {{ format }}).
{%- if format == 'hostsdir' %}
        # dnsmasq watches both directories with inotify: a new reservation is live the moment
        # saltmasq renames its file into place, with no signal. Deletions need a SIGHUP,
        # which saltmasq batches.
{%- else %}
        # dnsmasq re-reads both files on SIGHUP: saltmasq adds and removes reservations
        # without restarting dnsmasq. New reservations come as delta files in the
        # dhcp-hostsdir (and hostsdir), read through inotify with no signal.
{%- endif %}
{%- for option, path in watched.items() %}
        {{ option }}={{ path }}
{%- endfor %}

{%- if cfg.get('manage_service', True) %}

dnsmasq-package:
  pkg.installed:
    - pkgs: [dnsmasq, dnsmasq-utils]

{#- conf-dir files are read only at start: a change to saltmasq.conf needs this one restart. #}
dnsmasq-service:
  service.running:
    - name: dnsmasq
    - enable: True
    - require:
      - pkg: dnsmasq-package
{%- for option in watched %}
      - file: saltmasq-{{ option }}
{%- endfor %}
    - watch:
      - file: saltmasq-dnsmasq-conf

saltmasq-reload-works:
  module.run:
    - saltmasq.reload: []
    - require:
      - service: dnsmasq-service
      - saltutil: saltmasq-modules
{%- endif %}

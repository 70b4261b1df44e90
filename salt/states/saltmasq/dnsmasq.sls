{#- saltmasq.dnsmasq: point dnsmasq at the files saltmasq writes, and make sure reloads work.
    Pillar (all optional), under saltmasq:dnsmasq:
      conf_dir        /etc/dnsmasq.d            where this state drops saltmasq.conf
      hosts_dir       /etc/dnsmasq.saltmasq     DHCP_HOSTSFILE and ADDN_HOSTS_FILE live here
      manage_service  True                      install, enable and run the dnsmasq service
    Apply on the dnsmasq minion:  salt <dnsmasq minion> state.apply saltmasq.dnsmasq #}
{%- set cfg = salt['pillar.get']('saltmasq:dnsmasq', {}) %}
{%- set conf_dir = cfg.get('conf_dir', '/etc/dnsmasq.d') %}
{%- set hosts_dir = cfg.get('hosts_dir', '/etc/dnsmasq.saltmasq') %}

saltmasq-modules:
  saltutil.sync_modules:
    - refresh: True

saltmasq-hosts-dir:
  file.directory:
    - name: {{ hosts_dir }}
    - mode: '0755'
    - makedirs: True

{%- for name in ['dhcp-hosts', 'addn-hosts'] %}
{#- dnsmasq will not start on a missing file; saltmasq owns the content, so never replace it. #}
saltmasq-{{ name }}:
  file.managed:
    - name: {{ hosts_dir }}/{{ name }}
    - mode: '0644'
    - replace: False
    - require:
      - file: saltmasq-hosts-dir
{%- endfor %}

saltmasq-dnsmasq-conf:
  file.managed:
    - name: {{ conf_dir }}/saltmasq.conf
    - mode: '0644'
    - makedirs: True
    - contents: |
        # Managed by Salt (saltmasq.dnsmasq). dnsmasq re-reads both files on SIGHUP:
        # saltmasq adds and removes reservations without restarting dnsmasq.
        dhcp-hostsfile={{ hosts_dir }}/dhcp-hosts
        addn-hosts={{ hosts_dir }}/addn-hosts

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
      - file: saltmasq-dhcp-hosts
      - file: saltmasq-addn-hosts
    - watch:
      - file: saltmasq-dnsmasq-conf

saltmasq-reload-works:
  module.run:
    - saltmasq.reload: []
    - require:
      - service: dnsmasq-service
      - saltutil: saltmasq-modules
{%- endif %}

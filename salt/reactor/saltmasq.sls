{#- saltmasq: post this salt-cloud event to saltmasq's webhook.
    Only the master's own cloud events are posted: any minion can fire an event with any tag
    (`salt-call event.send salt/cloud/db01/destroyed`), and the master relays it wrapped as
    {"cmd": "_minion_event", "id": <minion>, ...}. Minions that run salt-cloud themselves are
    listed in `saltmasq:cloud_event_minions`; saltmasq checks again on its side.
    The body is rendered as a JSON *string*: http.query would url-encode a dict.
    URL, header file and timeouts come from the `saltmasq:` block of the master config
    (master.d/saltmasq.conf). Every header is read from `header_file` when the request is made,
    so the bearer token never appears in the runner job's arguments (the job cache) or the
    master log. No `header_dict` here: Salt 3008 adds the file's headers to that dict in place,
    and the job cache then records them with the job's arguments.
    The runner's result is discarded by the reactor and it never retries: saltmasq's event
    stream and periodic resync repair an event lost here. #}
{%- set cfg = opts.get('saltmasq', {}) %}
{%- set from_minion = data.get('cmd') == '_minion_event' %}
{%- if not from_minion or data.get('id') in cfg.get('cloud_event_minions', []) %}
saltmasq_notify:
  runner.http.query:
    - args:
      - url: {{ cfg.get('url', 'http://127.0.0.1:8080/hooks/salt') | yaml_dquote }}
      - method: POST
      - data: {{ {'tag': tag, 'data': data} | json | yaml_dquote }}
      - header_file: {{ cfg.get('header_file', '/etc/salt/saltmasq-webhook.headers') | yaml_dquote }}
      - status: True
      {#- A hung webhook would hold one of the reactor's worker threads for an hour by default. #}
      - opts:
          http_connect_timeout: {{ cfg.get('connect_timeout', 5) }}
          http_request_timeout: {{ cfg.get('request_timeout', 10) }}
{%- endif %}
